"""The fictional demo cadastre: every land parcel of the demo district, generated.

Deterministic for a seed and a size; its land use, ownership and lot sizes
follow where a parcel lies in the demo's layout (villages, town, industry,
hills, farmland).
"""
from __future__ import annotations

import math
import time

import geopandas as gpd
import numpy as np
import shapely

from gis.base.errors import InputError
from gis.base.units import STORE_CRS
from gis.demo.district import WIDTH, build_layout, district_rng
from gis.store.cadastre import ADMIN_CODE
from gis.store.open import as_store, write_cadastre


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
    n = int(n)
    if n < 100:
        raise InputError("cadastre.too_few", n=n)
    lay = layout or build_layout(seed)
    rng = district_rng(seed, f"cadastre-{n}")
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


def add_demo_cadastre(store, n: int, seed: int | None = None) -> dict:
    """Generate a fictional cadastre of ``n`` parcels and write it into a demo store (a store, path or URL).

    The cadastre matches the store's district: its seed comes from the store's
    ``meta`` (``seed`` overrides it). Returns what :func:`write_cadastre` returns
    plus ``generate_s`` and ``write_s``.

    Raises:
        InputError: the store is not the fictional demo (a real district
            must not get a made-up cadastre), or ``n`` is under 100.
    """
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
