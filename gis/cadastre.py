"""The cadastre: every land parcel (宗地) of the district, a read-only context layer.

The tracked renewal parcels (table ``parcels``) number in the thousands and
carry a stage history; the cadastre holds all land parcels, 50,000–300,000
polygons, and is only looked at: drawn under the tracked parcels (as vector
tiles, ``gis.vectortiles``) and identified by a click. It lives in the store as
its own table ``cadastre`` (EPSG:4490, geometry ``geom``):

    code        宗地代码, 19 characters: county code (6), 地籍区 (3), 地籍子区 (3),
                宗地特征码 (2, e.g. GB 国有建设用地使用权, JC 宅基地, JD 承包地), number (5)
    land_use    first-level class of GB/T 21010-2017 (耕地, 住宅用地, …)
    owner_type  国有 or 集体
    area_m2     area in m², computed in the local Gauss-Krüger zone

This module generates a fictional cadastre for the demo district
(:func:`generate_cadastre`, deterministic for a seed and a size), writes it
(:func:`write_cadastre`) and answers the app's questions without loading the
layer: which cadastre parcel is under a click (the GeoPackage's own R-tree, or
PostGIS's index), what is known about it, and a cheap key of its content that
the tile pyramid is named after (:func:`cadastre_key`).
"""
from __future__ import annotations

import hashlib
import math
import sqlite3

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from .errors import InputError, NotFoundError
from .units import M2_PER_HA, M2_PER_MU, STORE_CRS

TABLE = "cadastre"
FIELDS = ("code", "land_use", "owner_type", "area_m2")
#: county code of the fictional district (no province has the code 99)
ADMIN_CODE = "990101"

#: GB/T 21010-2017 first-level land-use classes: Chinese name → English
LAND_USES = {
    "耕地": "Cropland", "园地": "Orchard", "林地": "Forest", "草地": "Grassland", "商服用地": "Commercial",
    "工矿仓储用地": "Industrial and storage", "住宅用地": "Residential",
    "公共管理与公共服务用地": "Public administration and services", "特殊用地": "Special use",
    "交通运输用地": "Transport", "水域及水利设施用地": "Water and water works", "其他土地": "Other land",
}
OWNER_TYPES = {"国有": "State-owned", "集体": "Collective"}


# --------------------------------------------------------------------------- the demo cadastre
def _weighted(rng, choices, size):
    names, p = zip(*choices)
    p = np.asarray(p, float)
    return np.asarray(names, dtype=object)[rng.choice(len(names), size=size, p=p / p.sum())]


# Where a parcel lies decides its land use, owner and how small the lots are
# (density: parcels per unit area relative to farmland).
_SETTINGS = {
    # setting: (density, [(land use, weight)], owner, 宗地特征码 by land use)
    "village": (5.0, [("住宅用地", 0.82), ("公共管理与公共服务用地", 0.05), ("商服用地", 0.05), ("其他土地", 0.08)], "集体"),
    "town": (3.0, [("住宅用地", 0.55), ("商服用地", 0.25), ("公共管理与公共服务用地", 0.17), ("特殊用地", 0.03)], "国有"),
    "industry": (0.6, [("工矿仓储用地", 0.85), ("商服用地", 0.1), ("公共管理与公共服务用地", 0.05)], "国有"),
    "public": (0.8, [("公共管理与公共服务用地", 0.8), ("商服用地", 0.1), ("住宅用地", 0.1)], "国有"),
    "green": (0.35, [("林地", 0.6), ("公共管理与公共服务用地", 0.3), ("草地", 0.1)], "国有"),
    "hill": (0.45, [("林地", 0.72), ("园地", 0.2), ("草地", 0.08)], "集体"),
    "farm": (1.0, [("耕地", 0.74), ("园地", 0.1), ("住宅用地", 0.04), ("草地", 0.03), ("其他土地", 0.05),
                   ("商服用地", 0.02), ("工矿仓储用地", 0.02)], "集体"),
}


def _feature_code(land_use: np.ndarray, owner: np.ndarray) -> np.ndarray:
    """宗地特征码: G/J (state/collective) + B (建设用地使用权), C (宅基地), D (承包经营), E (林地) …"""
    second = np.full(len(land_use), "B", dtype=object)
    second[(land_use == "住宅用地") & (owner == "集体")] = "C"
    second[np.isin(land_use, ["耕地", "园地", "草地"])] = "D"
    second[land_use == "林地"] = "E"
    second[land_use == "水域及水利设施用地"] = "H"
    second[land_use == "其他土地"] = "Y"
    first = np.where(owner == "国有", "G", "J").astype(object)
    return first + second


def _settings_at(lay, pts: np.ndarray) -> np.ndarray:
    """The setting (``_SETTINGS`` key) of each point (local metres)."""
    x, y = pts[:, 0], pts[:, 1]
    out = np.full(len(pts), "farm", dtype=object)
    height = np.zeros(len(pts))
    for hx, hy, h, sx, sy in lay.hills:
        height += h * np.exp(-0.5 * (((x - hx) / sx) ** 2 + ((y - hy) / sy) ** 2))
    out[height > 60] = "hill"
    inside = lambda g: shapely.contains_xy(g, x, y)  # noqa: E731
    out[inside(lay.town)] = "town"
    for g in (*lay.parks.values(), *lay.low_efficiency, lay.devzone.buffer(-400)):
        out[inside(g)] = "industry"
    for g in lay.ministry:
        out[inside(g)] = "public"
    for code, g in lay.landmarks.items():
        out[inside(g)] = {"LM-CEM": "industry", "LM-GOV": "public"}.get(code, "green")
    for v in lay.villages:
        out[inside(v.geom)] = "village"
    return out


def _jittered(rng, poly, n: int) -> np.ndarray:
    """Exactly ``n`` points inside ``poly``: a rotated, jittered grid, topped up or thinned at random."""
    c = poly.centroid
    a = rng.uniform(0, np.pi / 2)
    s = math.sqrt(poly.area / n)
    minx, miny, maxx, maxy = poly.bounds
    r = math.hypot(maxx - minx, maxy - miny) / 2 + s
    g = np.arange(-r, r + s, s)
    gx, gy = np.meshgrid(g, g)
    u = gx.ravel() + rng.uniform(-0.3, 0.3, gx.size) * s
    v = gy.ravel() + rng.uniform(-0.3, 0.3, gx.size) * s
    x = c.x + u * math.cos(a) - v * math.sin(a)
    y = c.y + u * math.sin(a) + v * math.cos(a)
    keep = shapely.contains_xy(poly, x, y)
    pts = np.c_[x[keep], y[keep]]
    if len(pts) > n:
        pts = pts[np.sort(rng.choice(len(pts), n, replace=False))]
    tries = 0
    while len(pts) < n and tries < 200:
        tries += 1
        x = rng.uniform(minx, maxx, 4 * (n - len(pts)) + 8)
        y = rng.uniform(miny, maxy, len(x))
        ok = shapely.contains_xy(poly, x, y)
        pts = np.vstack([pts, np.c_[x[ok], y[ok]][: n - len(pts)]])
    return pts


def _polygon_parts(geoms) -> list:
    parts = shapely.get_parts(np.asarray(geoms, dtype=object))
    return [p for p in parts if isinstance(p, shapely.Polygon) and not p.is_empty]


def _allocate(weights: np.ndarray, total: int) -> np.ndarray:
    """Integer counts ≥ 1 proportional to ``weights`` that sum to ``total`` (largest remainders)."""
    n = len(weights)
    if total < n:
        raise InputError("cadastre.too_few", n=total)
    share = weights / weights.sum() * (total - n)
    counts = np.floor(share).astype(int)
    rest = total - n - counts.sum()
    counts[np.argsort(-(share - counts), kind="stable")[:rest]] += 1
    return counts + 1


def generate_cadastre(n: int, seed: int = 2026, layout=None) -> gpd.GeoDataFrame:
    """A fictional cadastre of exactly ``n`` parcels covering the demo district (EPSG:4490).

    Blocks (a coarse Voronoi tessellation cut by the main roads, the railway
    and Phoenix Lake, with 6 m lanes between them) are cut into lots (Voronoi
    cells of a jittered grid), smaller in villages and the town, larger in
    parks and on the hills. Roads and the lake are parcels too. The same
    ``seed`` and ``n`` give the same parcels, value for value.

    Raises:
        InputError: ``n`` too small to cover the district (under 100).
    """
    from .demo import WIDTH, _rng, build_layout  # the demo's layout and random streams

    n = int(n)
    if n < 100:
        raise InputError("cadastre.too_few", n=n)
    lay = layout or build_layout(seed)
    rng = _rng(seed, f"cadastre-{n}")
    district = lay.district

    # coarse blocks: Voronoi cells of a jittered grid, about 40 lots each
    n_blocks = int(np.clip(n // 40, 12, 5000))
    seeds = _jittered(rng, district, n_blocks)
    coarse = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=district))
    coarse = _polygon_parts(shapely.intersection(coarse, district))

    # main roads and the railway as corridors, cut into pieces by the blocks; the lake
    corridor = shapely.union_all([r.buffer(11, cap_style="flat") for r in lay.roads]
                                 + [lay.railway.buffer(7, cap_style="flat")]).intersection(district)
    obstacles = shapely.union(corridor, lay.lake)
    shapely.prepare(obstacles)
    roads, blocks = [], []
    for cell in coarse:
        if shapely.intersects(obstacles, cell):
            local = shapely.clip_by_rect(obstacles, *np.add(cell.bounds, (-1, -1, 1, 1)))
            roads.extend(p for p in _polygon_parts([shapely.intersection(cell, shapely.difference(local, lay.lake))])
                         if p.area > 20)
            blocks.extend(_polygon_parts([shapely.difference(cell, local)]))
        else:
            blocks.append(cell)
    blocks = _polygon_parts(shapely.buffer(np.asarray(blocks, dtype=object), -3.0, join_style="mitre"))
    blocks = [b for b in blocks if b.area > 150]
    specials = [(g, "交通运输用地", "国有") for g in roads] + [(lay.lake, "水域及水利设施用地", "国有")]

    # lots per block: proportional to area × the density of where the block lies
    block_arr = np.asarray(blocks, dtype=object)
    where = _settings_at(lay, shapely.get_coordinates(shapely.point_on_surface(block_arr)))
    density = np.array([_SETTINGS[w][0] for w in where])
    counts = _allocate(shapely.area(block_arr) * density, n - len(specials))

    lots = []
    for block, k in zip(blocks, counts):
        if k == 1:
            lots.append(block)
            continue
        pts = _jittered(rng, block, int(k))
        cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(pts), extend_to=block, ordered=True))
        for cell in shapely.intersection(cells, block):
            parts = _polygon_parts([cell])
            lots.append(max(parts, key=lambda p: p.area) if len(parts) > 1 else
                        (parts[0] if parts else shapely.Point(0, 0).buffer(1)))
    # exactly n: a degenerate Voronoi diagram (rare) can return one cell fewer than points
    geoms = np.asarray(lots + [g for g, _, _ in specials], dtype=object)
    if len(geoms) != n:
        raise RuntimeError(f"cadastre: made {len(geoms)} parcels instead of {n}; try another seed")

    inner = shapely.get_coordinates(shapely.point_on_surface(geoms))
    setting = _settings_at(lay, inner)
    land_use = np.empty(n, dtype=object)
    owner = np.empty(n, dtype=object)
    for key, (_, uses, own) in _SETTINGS.items():
        m = setting == key
        land_use[m] = _weighted(rng, uses, int(m.sum()))
        owner[m] = own
    # land use comes in patches: most lots of a block share the block's main use
    block_use = np.empty(len(blocks), dtype=object)
    for key, (_, uses, _) in _SETTINGS.items():
        m = where == key
        block_use[m] = _weighted(rng, uses, int(m.sum()))
    of_block = np.repeat(np.arange(len(blocks)), counts)
    same = (rng.random(len(lots)) < 0.7) & (setting[: len(lots)] == where[of_block])
    land_use[: len(lots)][same] = block_use[of_block][same]
    k0 = len(lots)
    for i, (_, use, own) in enumerate(specials):
        land_use[k0 + i], owner[k0 + i] = use, own
    owner[np.isin(land_use, ["商服用地", "工矿仓储用地"]) & (setting == "farm")] = "集体"

    # 宗地代码: 地籍区 = zone × west/east half (the sub-district offices), 子区 = a 1.5 km grid cell
    # inside it, number = reading order (north-west first) inside the 子区
    zone_idx = np.zeros(n, int)
    for i, z in enumerate(("north", "central", "south")):
        zone_idx[shapely.contains_xy(lay.zones[z], inner[:, 0], inner[:, 1])] = i
    section = zone_idx * 2 + (inner[:, 0] > WIDTH / 2) + 1
    gx, gy = (inner[:, 0] // 1500).astype(int), (inner[:, 1] // 1500).astype(int)
    sub_key = section * 10**6 + (40 - gy) * 100 + gx
    order = np.lexsort((inner[:, 0], -np.round(inner[:, 1] / 60), sub_key))
    sub_sorted = sub_key[order]
    first = np.r_[True, sub_sorted[1:] != sub_sorted[:-1]]
    subzone_rank = np.cumsum(first)  # 1.. over all 子区; numbered per 地籍区 below
    seq = np.arange(n) - np.maximum.accumulate(np.where(first, np.arange(n), 0)) + 1
    sec_sorted = section[order]
    sec_first = np.r_[True, sec_sorted[1:] != sec_sorted[:-1]]
    subzone = subzone_rank - np.maximum.accumulate(np.where(sec_first, subzone_rank, 0)) + 1
    feature = _feature_code(land_use[order], owner[order])
    codes = np.array([f"{ADMIN_CODE}{s:03d}{z:03d}{f}{q:05d}"
                      for s, z, f, q in zip(sec_sorted, subzone, feature, seq)], dtype=object)

    geoms = geoms[order]
    area = np.round(shapely.area(geoms), 1)  # local metres are GK zone 40 metres
    origin = np.asarray(lay.origin)
    world = shapely.transform(geoms, lambda c: c + origin)
    gs = gpd.GeoSeries(world, crs="EPSG:4549").to_crs(STORE_CRS)
    geo = gs.values.copy()
    bad = ~shapely.is_valid(geo)
    if bad.any():  # reprojection can, very rarely, fold a sliver
        geo[bad] = shapely.make_valid(geo[bad])
    parts, index = shapely.get_parts(geo, return_index=True)
    poly = shapely.get_type_id(parts) == 3
    multi = shapely.multipolygons(parts[poly], indices=index[poly])
    return gpd.GeoDataFrame(
        {"code": codes, "land_use": land_use[order], "owner_type": owner[order], "area_m2": area},
        geometry=multi, crs=STORE_CRS,
    )


# --------------------------------------------------------------------------- writing
def content_hash(gdf) -> str:
    """A short hash of a cadastre's codes, attributes and geometry (its tiles are named after it)."""
    h = hashlib.sha256()
    for f in FIELDS:
        if f in gdf.columns:
            h.update(pd.util.hash_pandas_object(gdf[f], index=False).to_numpy().tobytes())
    wkb = shapely.to_wkb(gdf.geometry.values)
    h.update(pd.util.hash_array(np.asarray(wkb, dtype=object)).tobytes())
    return h.hexdigest()[:16]


def as_store(store):
    """A store object for a store, a GeoPackage path or a postgresql:// URL."""
    if hasattr(store, "_connect"):
        return store
    from .store import open_store_at

    return open_store_at(str(store))


def write_cadastre(store, gdf: gpd.GeoDataFrame, by: str | None = None, note: str = "") -> dict:
    """Replace the store's ``cadastre`` table with ``gdf`` (any CRS; stored in EPSG:4490), in one transaction.

    ``by``: who replaces it. On a store with accounts it must be an admin (a
    refusal is logged and nothing is written); the write is a line of the audit
    trail, by ``by`` or, without one, by the ``renewal demo`` generator.

    ``store`` is a store, a GeoPackage path or a ``postgresql://`` URL. In a
    GeoPackage GDAL writes the table with its R-tree (what clicks are answered
    from); in PostGIS it is copied in (``COPY``) and gets a GiST index. Either
    way ``meta.cadastre_version`` records the content hash.
    Returns ``{"table", "parcels", "cadastre_version"}``.

    Raises:
        InputError: not a store, or ``gdf`` lacks a field.
        PermissionRefused: ``by`` is not an admin of a store with accounts.
    """
    missing = [f for f in FIELDS if f not in gdf.columns]
    if missing:
        raise InputError("cadastre.bad_fields", fields=", ".join(missing))
    gdf = gdf[list(FIELDS) + [gdf.geometry.name]]
    if gdf.crs is None or not gdf.crs.equals(STORE_CRS):
        gdf = gdf.to_crs(STORE_CRS) if gdf.crs is not None else gdf.set_crs(STORE_CRS)
    version = content_hash(gdf)
    store = as_store(store)
    if by is not None:
        with store._refusals_logged(by, "cadastre", TABLE), store._connect() as con:
            store._admin(con, by, "cadastre import")
    audit = (by or "renewal demo", {"parcels": len(gdf), "cadastre_version": version}, note)
    if store.backend == "gpkg":
        _write_gpkg(store, gdf, version, audit)
    else:
        _write_pg(store, gdf, version, audit)
    return {"table": TABLE, "parcels": len(gdf), "cadastre_version": version}


def _write_gpkg(store, gdf: gpd.GeoDataFrame, version: str, audit: tuple) -> None:
    import pyogrio

    store_path = store.path
    try:
        pyogrio.write_dataframe(gdf, store_path, layer=TABLE, driver="GPKG", promote_to_multi=True,
                                layer_options={"GEOMETRY_NAME": "geom", "OVERWRITE": "YES",
                                               "DESCRIPTION": "地籍宗地（只读）cadastre, read-only"})
        con = sqlite3.connect(store_path, isolation_level=None)
        try:
            con.execute("BEGIN IMMEDIATE")
            con.execute("CREATE UNIQUE INDEX IF NOT EXISTS cadastre_code_idx ON cadastre(code)")
            # the content hash, and the change stamp GDAL gave the table: while the stamp is
            # unchanged the hash names the content (a rewrite of the same cadastre keeps its key)
            changed = con.execute("SELECT last_change FROM gpkg_contents WHERE table_name = ?", (TABLE,)).fetchone()
            con.execute("DELETE FROM meta WHERE key IN ('cadastre_version', 'cadastre_changed')")
            con.executemany("INSERT INTO meta (key, value) VALUES (?, ?)",
                            [("cadastre_version", version), ("cadastre_changed", changed[0] if changed else "")])
            store._audit(con, audit[0], "cadastre", TABLE, "ok", None, audit[1], audit[2])
            con.execute("COMMIT")
        finally:
            con.close()
    except (pyogrio.errors.DataSourceError, sqlite3.DatabaseError) as e:
        raise InputError("error.bad_store", path=str(store_path), detail=str(e)) from e


def _write_pg(store, gdf: gpd.GeoDataFrame, version: str, audit: tuple) -> None:
    """Drop, create, COPY and index in one transaction: readers see the old cadastre or the new one."""
    geoms = shapely.force_2d(gdf.geometry.values)
    single = shapely.get_type_id(geoms) == 3  # Polygon → MultiPolygon, as GDAL's promote_to_multi
    geoms = np.array([shapely.MultiPolygon([g]) if t else g for g, t in zip(geoms, single)], dtype=object)
    ewkb = shapely.to_wkb(shapely.set_srid(geoms, 4490), hex=True, include_srid=True)
    cols = [gdf[f].tolist() for f in FIELDS]
    with store._connect(write=True) as con:
        cur = con.con.cursor()
        cur.execute(f'DROP TABLE IF EXISTS "{TABLE}"')
        cur.execute(f'CREATE TABLE "{TABLE}" (fid serial PRIMARY KEY, code text NOT NULL UNIQUE, land_use text,'
                    " owner_type text, area_m2 double precision, geom geometry(MultiPolygon, 4490))")
        cur.execute(f"""COMMENT ON TABLE "{TABLE}" IS '地籍宗地（只读）cadastre, read-only'""")
        with cur.copy(f'COPY "{TABLE}" ({", ".join(FIELDS)}, geom) FROM STDIN') as copy:
            for row in zip(*cols, ewkb):
                copy.write_row(row)
        cur.execute(f'CREATE INDEX "{TABLE}_geom_idx" ON "{TABLE}" USING GIST (geom)')
        cur.execute(f'ANALYZE "{TABLE}"')
        cur.execute("DELETE FROM meta WHERE key IN ('cadastre_version', 'cadastre_changed')")
        cur.execute("INSERT INTO meta (key, value) VALUES ('cadastre_version', %s)", (version,))
        store._audit(con, audit[0], "cadastre", TABLE, "ok", None, audit[1], audit[2])


# --------------------------------------------------------------------------- reading (no layer load)
def _gpkg_geometry_column(con) -> str | None:
    row = con.execute("SELECT column_name FROM gpkg_geometry_columns WHERE table_name = ?", (TABLE,)).fetchone()
    return row[0] if row else None


def has_cadastre(store) -> bool:
    """Whether the store has a cadastre table."""
    return cadastre_key(store) is not None


def cadastre_key(store) -> str | None:
    """A short key of the cadastre's content, or None without a cadastre. A few cheap queries.

    Built from ``meta.cadastre_version`` (the content hash :func:`write_cadastre`
    records) and the table's row count and largest id; in a GeoPackage also
    from the table's last change when that differs from the one recorded at
    writing, so a cadastre edited by another tool (QGIS, ogr2ogr) gets a new
    key, while writing the same cadastre again keeps it.
    """
    with store._connect() as con:
        meta = dict(tuple(r) for r in con.execute(
            "SELECT key, value FROM meta WHERE key IN ('cadastre_version', 'cadastre_changed')"))
        if store.backend == "gpkg":
            if _gpkg_geometry_column(con) is None:
                return None
            last = con.execute("SELECT last_change FROM gpkg_contents WHERE table_name = ?", (TABLE,)).fetchone()
            last = last[0] if last else ""
            count = con.execute(f'SELECT count(*), max(fid) FROM "{TABLE}"').fetchone()
            parts = [*count, "" if last == meta.get("cadastre_changed") else last]
        else:
            row = con.execute("SELECT 1 FROM geometry_columns WHERE f_table_schema = current_schema()"
                              " AND f_table_name = ?", (TABLE,)).fetchone()
            if row is None:
                return None
            parts = list(con.execute(f'SELECT count(*), max(code) FROM "{TABLE}"').fetchone())
    parts.append(meta.get("cadastre_version", ""))
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:16]


def _record(row: dict, geom) -> dict:
    out = {f: row.get(f) for f in FIELDS}
    out["geometry"] = geom
    return out


def cadastre_at(store, lon: float, lat: float) -> dict | None:
    """The cadastre parcel under a point (EPSG:4490 lon/lat), or None.

    Answered from the store's spatial index (the GeoPackage R-tree, or
    PostGIS's), so nothing is held in memory. On a shared edge the smaller
    parcel wins. Returns ``{code, land_use, owner_type, area_m2, geometry}``.
    """
    from .gpkg import _parse

    pt = shapely.Point(lon, lat)
    found = []
    with store._connect() as con:
        if store.backend == "gpkg":
            col = _gpkg_geometry_column(con)
            if col is None:
                return None
            sql = (f'SELECT c.code, c.land_use, c.owner_type, c.area_m2, c."{col}" AS g FROM "{TABLE}" c'
                   f' JOIN "rtree_{TABLE}_{col}" r ON r.id = c.fid'
                   " WHERE r.minx <= ? AND r.maxx >= ? AND r.miny <= ? AND r.maxy >= ?")
            for r in con.execute(sql, (lon, lon, lat, lat)):
                empty, _, offset = _parse(r["g"])
                if not empty:
                    found.append((dict(r), shapely.from_wkb(bytes(r["g"][offset:]))))
        else:
            if not has_cadastre(store):
                return None
            sql = (f'SELECT code, land_use, owner_type, area_m2, ST_AsBinary(geom) AS g FROM "{TABLE}"'
                   " WHERE ST_Intersects(geom, ST_SetSRID(ST_MakePoint(?, ?), 4490))")
            found = [(dict(r), shapely.from_wkb(bytes(r["g"]))) for r in con.execute(sql, (lon, lat))]
    hits = [(row, g) for row, g in found if g.intersects(pt)]
    if not hits:
        return None
    row, geom = min(hits, key=lambda h: h[1].area)
    return _record(row, geom)


def cadastre_parcel(store, code: str) -> dict:
    """One cadastre parcel by its code: ``{code, land_use, owner_type, area_m2, geometry}``.

    Raises:
        NotFoundError: no such parcel (or no cadastre).
    """
    from .gpkg import _parse

    with store._connect() as con:
        if store.backend == "gpkg":
            col = _gpkg_geometry_column(con)
            row = col and con.execute(f'SELECT code, land_use, owner_type, area_m2, "{col}" AS g FROM "{TABLE}"'
                                      " WHERE code = ?", (code,)).fetchone()
            if row:
                return _record(dict(row), shapely.from_wkb(bytes(row["g"][_parse(row["g"])[2]:])))
        elif has_cadastre(store):
            row = con.execute(f'SELECT code, land_use, owner_type, area_m2, ST_AsBinary(geom) AS g FROM "{TABLE}"'
                              " WHERE code = ?", (code,)).fetchone()
            if row:
                return _record(dict(row), shapely.from_wkb(bytes(row["g"])))
    raise NotFoundError("cadastre.no_parcel", code=code)


_FEATURE_FIRST = {"G": ("国有土地", "state land"), "J": ("集体土地", "collective land"), "Z": ("争议土地", "disputed land")}
_FEATURE_SECOND = {
    "A": ("集体土地所有权", "collective ownership"), "B": ("建设用地使用权", "construction-land use right"),
    "C": ("宅基地使用权", "homestead use right"), "D": ("土地承包经营权", "contracted farming right"),
    "E": ("林地使用权", "forest use right"), "H": ("水域滩涂养殖权", "water and tidal-flat use right"),
    "Y": ("其他使用权", "other use right"),
}


def describe_cadastre(record: dict, lang: str = "zh") -> dict:
    """A cadastre record with what the code says and the area in m², 亩 and 公顷, labelled in the language."""
    code = str(record.get("code") or "")
    en = lang == "en"
    out = {k: v for k, v in record.items() if k != "geometry"}
    use = record.get("land_use") or ""
    out["land_use_label"] = (LAND_USES.get(use) or use) if en else use
    own = record.get("owner_type") or ""
    out["owner_type_label"] = (OWNER_TYPES.get(own) or own) if en else own
    area = float(record.get("area_m2") or 0.0)
    out.update(area_m2=round(area, 1), area_mu=round(area / M2_PER_MU, 2), area_ha=round(area / M2_PER_HA, 4))
    if len(code) == 19:
        f1, f2 = _FEATURE_FIRST.get(code[12]), _FEATURE_SECOND.get(code[13])
        out.update(section=code[6:9], subsection=code[9:12], number=code[14:])
        if f1 and f2:
            out["right_label"] = f"{f1[1]}, {f2[1]}" if en else f"{f1[0]}·{f2[0]}"
    return out


def overlapping_parcels(geom, index, min_share: float = 0.05) -> list[str]:
    """Codes of tracked parcels (a ``gis.spatial.ParcelIndex``) covering at least ``min_share`` of ``geom``."""
    if geom is None or index is None or geom.is_empty:
        return []
    hits = index.tree.query(geom, predicate="intersects")
    if len(hits) == 0:
        return []
    share = shapely.area(shapely.intersection(index.geoms[hits], geom)) / max(geom.area, 1e-15)
    keep = hits[share >= min_share]
    return sorted(str(c) for c in index.codes[keep])


# --------------------------------------------------------------------------- tiles
def cadastre_tiles(store, spec, out_dir, *, datum: str = "wgs84", url_prefix: str | None = None,
                   isolate: bool = False) -> dict | None:
    """The vector tile pyramid of the store's cadastre for the catalogue layer ``spec``; None without a cadastre.

    Named after the cadastre's content (:func:`cadastre_key`), what the
    tiles carry and ``datum`` (``gcj02``: shifted to line up with AMap), and
    built only when that pyramid is not on disk yet: a few cheap queries
    otherwise. Building reads the table once (≈8 s and ≈600 MB for 100,000
    parcels); ``isolate`` builds in a child process (``python -m gis.cadastre``),
    so a long-running app does not keep that memory, nor hold its other
    sessions up.

    Raises:
        InputError: the child process failed (its message is passed on).
    """
    from .vectortiles import find_tileset, tileset_key

    key = cadastre_key(store)
    if key is None:
        return None
    fields = tuple(spec.tooltip)
    name = f"{spec.id}_{tileset_key(key + '|' + datum, spec.class_field or 'land_use', fields)}"
    found = find_tileset(out_dir, name)
    if found:
        return found
    if isolate:
        return _build_in_child(store, spec, out_dir, datum, url_prefix)
    return _build(store, spec, out_dir, name, datum, url_prefix)


def _build(store, spec, out_dir, name: str, datum: str, url_prefix: str | None) -> dict:
    from .vectortiles import build_tileset

    fields = tuple(spec.tooltip)
    gdf = store.layer(TABLE)
    if datum == "gcj02":
        from .gcj02 import gdf_to_gcj02

        gdf = gdf_to_gcj02(gdf)
    kw = {"url_prefix": url_prefix} if url_prefix else {}
    return build_tileset(gdf, out_dir, name, layer=spec.id, class_field=spec.class_field or "land_use",
                         detail_fields=fields, value_labels={"en": {**LAND_USES, **OWNER_TYPES}}, **kw)


def add_demo_cadastre(store, n: int, seed: int | None = None) -> dict:
    """Generate a fictional cadastre of ``n`` parcels and write it into a demo store (a store, path or URL).

    The cadastre matches the store's district: its seed comes from the store's
    ``meta`` (``seed`` overrides it). Returns what :func:`write_cadastre` returns
    plus ``generate_s`` and ``write_s``.

    Raises:
        InputError: the store is not the fictional demo (a real district
            must not get a made-up cadastre), or ``n`` is under 100.
    """
    import time

    store = as_store(store)
    meta = store.meta()
    if meta.get("demo") != "1":
        raise InputError("cadastre.not_demo", path=store.location)
    seed = int(seed if seed is not None else meta.get("seed") or 2026)
    t0 = time.perf_counter()
    gdf = generate_cadastre(n, seed=seed)
    t1 = time.perf_counter()
    out = write_cadastre(store, gdf)
    out.update(generate_s=round(t1 - t0, 2), write_s=round(time.perf_counter() - t1, 2), seed=seed)
    return out


# --------------------------------------------------------------------------- building in a child process
def _build_in_child(store, spec, out_dir, datum: str, url_prefix: str | None) -> dict:
    import json
    import subprocess
    import sys

    from .settings import ROOT

    ref = store.url if store.backend != "gpkg" else str(store.path)
    cmd = [sys.executable, "-m", "gis.cadastre", "tiles", ref, str(out_dir), "--datum", datum,
           "--spec", json.dumps(_spec_dict(spec), ensure_ascii=False)]
    if url_prefix:
        cmd += ["--url-prefix", url_prefix]
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if res.returncode != 0:
        raise InputError("error.bad_store", path=store.location, detail=(res.stderr.strip().splitlines() or ["?"])[-1])
    return json.loads(res.stdout.strip().splitlines()[-1])


def _spec_dict(spec) -> dict:
    return {"id": spec.id, "label_zh": spec.label_zh, "label_en": spec.label_en, "group": spec.group,
            "source": spec.source, "tooltip": list(spec.tooltip), "render": spec.render,
            "class_field": spec.class_field, "style": dict(spec.style), "classes": dict(spec.classes)}


def _main(argv=None) -> int:
    """``python -m gis.cadastre tiles STORE OUT_DIR [--datum D] [--spec JSON] [--url-prefix P]``:
    build the pyramid in this process and print its manifest (with this process's peak memory)."""
    import argparse
    import json

    from .catalog import LayerSpec, load_layer_catalog
    from .store import open_store_at

    ap = argparse.ArgumentParser(prog="python -m gis.cadastre")
    ap.add_argument("command", choices=["tiles"])
    ap.add_argument("store")
    ap.add_argument("out_dir")
    ap.add_argument("--datum", default="wgs84")
    ap.add_argument("--spec", help="the catalogue layer as JSON (default: layers/catalog.toml's cadastre)")
    ap.add_argument("--url-prefix")
    args = ap.parse_args(argv)
    store = open_store_at(args.store)
    if args.spec:
        d = json.loads(args.spec)
        spec = LayerSpec(**{**d, "tooltip": tuple(d.get("tooltip", ()))})
    else:
        spec = load_layer_catalog().get("cadastre")
    out = cadastre_tiles(store, spec, args.out_dir, datum=args.datum, url_prefix=args.url_prefix)
    for line in open("/proc/self/status", encoding="ascii"):
        if line.startswith("VmHWM:"):
            out["build_peak_rss_mb"] = round(int(line.split()[1]) / 1024, 1)
    print(json.dumps(out, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(_main())
