"""The cadastre: every land parcel (宗地) of the district, a read-only context layer.

The tracked renewal parcels (table ``parcels``) number in the thousands and
carry a stage history; the cadastre holds all land parcels, 50,000–300,000
polygons, and is only looked at: drawn under the tracked parcels (as vector
tiles, ``gis.maps.cadastre_tiles``) and identified by a click. It lives in the
store as its own table ``cadastre`` (EPSG:4490, geometry ``geom``):

    code        宗地代码, 19 characters: county code (6), 地籍区 (3), 地籍子区 (3),
                宗地特征码 (2, e.g. GB 国有建设用地使用权, JC 宅基地, JD 承包地), number (5)
    land_use    first-level class of GB/T 21010-2017 (耕地, 住宅用地, …)
    owner_type  权属性质: the 三调 label of the QSXZ code (国有土地使用权 for 20 …), or 国有 / 集体
    area_m2     area in m², computed in the local Gauss-Krüger zone

``CadastreMixin`` writes it (``write_cadastre``) and answers the app's
questions without loading the layer: which cadastre parcel is under a click
(the GeoPackage's own R-tree, or PostGIS's index; ``PostgisStore`` overrides
the back-end primitives), what is known about it, and a cheap key of its
content that the tile pyramid is named after (``cadastre_key``). ``gis.store.open``
has the same look-ups for a store, a GeoPackage path or a URL.
"""
from __future__ import annotations

import hashlib
import sqlite3

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from gis.base.errors import InputError, NotFoundError
from gis.base.units import M2_PER_HA, M2_PER_MU, STORE_CRS
from gis.store.gpkg import parse_blob

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
#: 权属性质 (QSXZ) code table of the land surveys (三调, as 二调 before it): code → label. The cadastre's
#: ``owner_type`` holds the label (one per code, so the code is kept too: :data:`QSXZ_OF`); a source
#: that only says 国有 or 集体 keeps that. Ownership is read from this table, never from a first digit:
#: 20 is a right to use *state* land.
QSXZ = {
    "10": "国有土地所有权", "20": "国有土地使用权", "30": "集体土地所有权",
    "31": "集体土地所有权（村民小组）", "32": "集体土地所有权（村集体经济组织）",
    "33": "集体土地所有权（乡集体经济组织）", "34": "集体土地所有权（其他农民集体经济组织）",
    "40": "集体土地使用权",
}
QSXZ_OF = {label: code for code, label in QSXZ.items()}
OWNER_TYPES = {
    "国有": "State-owned", "集体": "Collective",
    "国有土地所有权": "State land ownership", "国有土地使用权": "State land use right",
    "集体土地所有权": "Collective land ownership",
    "集体土地所有权（村民小组）": "Collective land ownership (villagers' group)",
    "集体土地所有权（村集体经济组织）": "Collective land ownership (village collective)",
    "集体土地所有权（乡集体经济组织）": "Collective land ownership (township collective)",
    "集体土地所有权（其他农民集体经济组织）": "Collective land ownership (other farmers' collective)",
    "集体土地使用权": "Collective land use right",
}


def content_hash(gdf) -> str:
    """A short hash of a cadastre's codes, attributes and geometry (its tiles are named after it)."""
    h = hashlib.sha256()
    for f in FIELDS:
        if f in gdf.columns:
            h.update(pd.util.hash_pandas_object(gdf[f], index=False).to_numpy().tobytes())
    wkb = shapely.to_wkb(gdf.geometry.values)
    h.update(pd.util.hash_array(np.asarray(wkb, dtype=object)).tobytes())
    return h.hexdigest()[:16]


def _record(row: dict, geom) -> dict:
    out = {f: row.get(f) for f in FIELDS}
    out["geometry"] = geom
    return out


class CadastreMixin:
    """The cadastre's table: replacing it whole, and look-ups by point or code from the spatial index."""

    def write_cadastre(self, gdf: gpd.GeoDataFrame, by: str | None = None, note: str = "") -> dict:
        """Replace the store's ``cadastre`` table with ``gdf`` (any CRS; stored in EPSG:4490), in one transaction.

        ``by``: who replaces it. On a store with accounts it must be an admin (a
        refusal is logged and nothing is written); the write is a line of the audit
        trail, by ``by`` or, without one, by the ``renewal demo`` generator.

        In a GeoPackage GDAL writes the table with its R-tree (what clicks are
        answered from); in PostGIS it is copied in (``COPY``) and gets a GiST
        index. Either way ``meta.cadastre_version`` records the content hash.
        Returns ``{"table", "parcels", "cadastre_version"}``.

        Raises:
            InputError: ``gdf`` lacks a field.
            PermissionRefused: ``by`` is not an admin of a store with accounts.
        """
        missing = [f for f in FIELDS if f not in gdf.columns]
        if missing:
            raise InputError("cadastre.bad_fields", fields=", ".join(missing))
        gdf = gdf[list(FIELDS) + [gdf.geometry.name]]
        if gdf.crs is None or not gdf.crs.equals(STORE_CRS):
            gdf = gdf.to_crs(STORE_CRS) if gdf.crs is not None else gdf.set_crs(STORE_CRS)
        version = content_hash(gdf)
        if by is not None:
            with self._refusals_logged(by, "cadastre", TABLE), self._connect() as con:
                self._admin(con, by, "cadastre import")
        audit = (by or "renewal demo", {"parcels": len(gdf), "cadastre_version": version}, note)
        self._write_cadastre_table(gdf, version, audit)
        return {"table": TABLE, "parcels": len(gdf), "cadastre_version": version}

    def _write_cadastre_table(self, gdf: gpd.GeoDataFrame, version: str, audit: tuple) -> None:
        try:
            pyogrio.write_dataframe(gdf, self.path, layer=TABLE, driver="GPKG", promote_to_multi=True,
                                    layer_options={"GEOMETRY_NAME": "geom", "OVERWRITE": "YES",
                                                   "DESCRIPTION": "地籍宗地（只读）cadastre, read-only"})
            con = sqlite3.connect(self.path, isolation_level=None)
            try:
                con.execute("BEGIN IMMEDIATE")
                con.execute("CREATE UNIQUE INDEX IF NOT EXISTS cadastre_code_idx ON cadastre(code)")
                # the content hash, and the change stamp GDAL gave the table: while the stamp is
                # unchanged the hash names the content (a rewrite of the same cadastre keeps its key)
                changed = con.execute("SELECT last_change FROM gpkg_contents WHERE table_name = ?", (TABLE,)).fetchone()
                con.execute("DELETE FROM meta WHERE key IN ('cadastre_version', 'cadastre_changed')")
                con.executemany("INSERT INTO meta (key, value) VALUES (?, ?)",
                                [("cadastre_version", version), ("cadastre_changed", changed[0] if changed else "")])
                self._audit(con, audit[0], "cadastre", TABLE, "ok", None, audit[1], audit[2])
                con.execute("COMMIT")
            finally:
                con.close()
        except (pyogrio.errors.DataSourceError, sqlite3.DatabaseError) as e:
            raise InputError("error.bad_store", path=str(self.path), detail=str(e)) from e

    def has_cadastre(self) -> bool:
        """Whether the store has a cadastre table."""
        return self.cadastre_key() is not None

    def cadastre_key(self) -> str | None:
        """A short key of the cadastre's content, or None without a cadastre. A few cheap queries.

        Built from ``meta.cadastre_version`` (the content hash ``write_cadastre``
        records) and the table's row count and largest id; in a GeoPackage also
        from the table's last change when that differs from the one recorded at
        writing, so a cadastre edited by another tool (QGIS, ogr2ogr) gets a new
        key, while writing the same cadastre again keeps it.
        """
        with self._connect() as con:
            meta = dict(tuple(r) for r in con.execute(
                "SELECT key, value FROM meta WHERE key IN ('cadastre_version', 'cadastre_changed')"))
            parts = self._cadastre_key_parts(con, meta)
        if parts is None:
            return None
        parts.append(meta.get("cadastre_version", ""))
        return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:16]

    def _cadastre_geometry_column(self, con) -> str | None:
        row = con.execute("SELECT column_name FROM gpkg_geometry_columns WHERE table_name = ?", (TABLE,)).fetchone()
        return row[0] if row else None

    def _cadastre_key_parts(self, con, meta: dict) -> list | None:
        if self._cadastre_geometry_column(con) is None:
            return None
        last = con.execute("SELECT last_change FROM gpkg_contents WHERE table_name = ?", (TABLE,)).fetchone()
        last = last[0] if last else ""
        count = con.execute(f'SELECT count(*), max(fid) FROM "{TABLE}"').fetchone()
        return [*count, "" if last == meta.get("cadastre_changed") else last]

    def _cadastre_candidates(self, con, lon: float, lat: float) -> list[tuple[dict, object]]:
        """(row, geometry) of the cadastre parcels whose box holds the point."""
        col = self._cadastre_geometry_column(con)
        if col is None:
            return []
        sql = (f'SELECT c.code, c.land_use, c.owner_type, c.area_m2, c."{col}" AS g FROM "{TABLE}" c'
               f' JOIN "rtree_{TABLE}_{col}" r ON r.id = c.fid'
               " WHERE r.minx <= ? AND r.maxx >= ? AND r.miny <= ? AND r.maxy >= ?")
        found = []
        for r in con.execute(sql, (lon, lon, lat, lat)):
            empty, _, offset = parse_blob(r["g"])
            if not empty:
                found.append((dict(r), shapely.from_wkb(bytes(r["g"][offset:]))))
        return found

    def _cadastre_row(self, con, code: str) -> tuple[dict, object] | None:
        col = self._cadastre_geometry_column(con)
        row = col and con.execute(f'SELECT code, land_use, owner_type, area_m2, "{col}" AS g FROM "{TABLE}"'
                                  " WHERE code = ?", (code,)).fetchone()
        if not row:
            return None
        return dict(row), shapely.from_wkb(bytes(row["g"][parse_blob(row["g"])[2]:]))

    def cadastre_at(self, lon: float, lat: float) -> dict | None:
        """The cadastre parcel under a point (EPSG:4490 lon/lat), or None.

        Answered from the store's spatial index (the GeoPackage R-tree, or
        PostGIS's), so nothing is held in memory. On a shared edge the smaller
        parcel wins. Returns ``{code, land_use, owner_type, area_m2, geometry}``.
        """
        pt = shapely.Point(lon, lat)
        with self._connect() as con:
            found = self._cadastre_candidates(con, lon, lat)
        hits = [(row, g) for row, g in found if g.intersects(pt)]
        if not hits:
            return None
        row, geom = min(hits, key=lambda h: h[1].area)
        return _record(row, geom)

    def cadastre_parcel(self, code: str) -> dict:
        """One cadastre parcel by its code: ``{code, land_use, owner_type, area_m2, geometry}``.

        Raises:
            NotFoundError: no such parcel (or no cadastre).
        """
        with self._connect() as con:
            found = self._cadastre_row(con, code)
        if found is None:
            raise NotFoundError("cadastre.no_parcel", code=code)
        return _record(*found)


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
    out["qsxz"] = QSXZ_OF.get(own, "")
    if out["qsxz"]:  # 国有土地使用权（20）: the label and its code of the 三调 table
        out["owner_type_label"] += f" ({out['qsxz']})" if en else f"（{out['qsxz']}）"
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


