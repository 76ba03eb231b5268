"""Import parcels from the files a renewal office receives.

Formats: zipped or loose Shapefile, GeoPackage (a chosen layer), GeoJSON
(BOM or not), KML/KMZ, DXF (closed polylines become polygons) and CSV with a
WKT or a lon/lat column. Files are staged and checked by ``gis.io.uploads``
and read by ``gis.io.readers``; this module maps columns onto parcel fields,
works out the coordinate system, repairs or rejects geometries, checks kinds,
stages and dates, derives zone / village / park, warns about overlaps, parcels
outside the district, GCJ-02 data and declared areas that do not match, and
hands a plan to ``Store.upsert_parcels``, which writes it in one transaction.
``_prepare`` reads as the list of these steps, each a function of its own.

    upload = stage_path("地块.zip")            # or stage_files([...]) from the app
    plan = prepare_import(store, upload, ImportOptions(kind="village"))
    plan.report                                # show it: counts, rejected rows, CRS, encoding
    commit_import(store, plan, by="张伟")       # everything lands, or nothing

Row numbers in the report count the features of the file from 1, in file order.
"""
from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from gis.base.clock import office_today
from gis.base.errors import InputError, UnknownCRSError
from gis.base.gcj02 import geometries_from_gcj02
from gis.base.i18n import t
from gis.base.units import M2_PER_MU, STORE_CRS, areas_m2, gk_epsg
from gis.io.media_tables import media_data
from gis.io.readers import ARC_STEP_DEGREES, EVENT_COLUMNS, RawLayer, cell_text, column_key, file_failures, read_layer
from gis.io.uploads import Upload, stage_path
from gis.model.catalog import load_layer_catalog
from gis.model.media import inspect

STORE_EPSG = 4490
#: parcel fields an import can set, in the order the mapping form shows them
TARGETS = ("code", "name", "kind", "zone", "village", "park", "stage", "stage_date", "unit",
           "owner", "land_use", "blocked", "blocked_reason", "note", "area")
TEXT_FIELDS = ("name", "zone", "village", "park", "unit", "owner", "land_use", "blocked_reason", "note")
EVENT_ACTIONS = ("advance", "correction", "block", "unblock", "import")
LIST_CAP = 200  # longest list of rows or pairs a report carries; counts are always complete

# Column names seen in the field (Chinese offices, GIS exports, English data), normalised:
# lower case, without spaces, underscores, hyphens and brackets. The pinyin initials are the
# field codes of the national data standards: the 三调 land-survey database (BSM 标识码, TBBH
# 图斑编号, DLBM/DLMC 地类编码/名称, QSDWMC 权属单位名称, ZLDWMC 坐落单位名称, TBMJ 图斑面积), the
# cadastral database (ZDDM 宗地代码, DJH 地籍号, BDCDYH 不动产单元号, QLRMC 权利人名称, TDYT 土地用途,
# ZDMJ 宗地面积) and the rural land-contract database (DKBM/DKMC 地块编码/名称, FBFMC 发包方名称,
# SCMJ 实测面积), and XZQDM/XZQMC 行政区代码/名称. Earlier synonyms win: a code unique in the whole
# database (ZDDM, DKBM, BSM) before one unique only within a village (TBBH).
SYNONYMS: dict[str, tuple[str, ...]] = {
    "code": ("code", "编号", "地块编号", "地块编码", "地块代码", "地块号", "宗地编号", "宗地号", "宗地代码", "宗地编码",
             "编码", "图斑编号", "项目编号", "dkbh", "dkbm", "zdh", "zddm", "bdcdyh", "不动产单元号", "djh", "地籍号",
             "parcelcode", "parcelid", "parcelno", "plotcode", "plotid", "bsm", "标识码", "tbbh", "标注"),
    "name": ("name", "名称", "地块名称", "宗地名称", "项目名称", "图斑名称", "dkmc", "xmmc", "mc", "parcelname", "title"),
    "kind": ("kind", "type", "类型", "地块类型", "类别", "项目类型", "dklx", "category"),
    "zone": ("zone", "片区", "分区", "所属片区", "功能区", "区域", "pq", "district_zone"),
    "village": ("village", "村", "村名", "村庄", "所属村", "所属村庄", "村居", "村社区", "社区", "行政村", "cun", "cm",
                "villagecode", "villagename", "zldwmc", "坐落单位名称", "xzqmc", "行政区名称"),
    "park": ("park", "园区", "所属园区", "产业园", "parkcode"),
    "stage": ("stage", "阶段", "当前阶段", "进度", "进展", "工作进度", "推进阶段", "jd", "status", "状态"),
    "stage_date": ("stagedate", "阶段日期", "日期", "时间", "完成时间", "date", "rq"),
    "unit": ("unit", "责任单位", "负责单位", "实施单位", "实施主体", "牵头单位", "单位", "zrdw", "responsible",
             "responsibleunit"),
    "owner": ("owner", "权利人", "权属人", "权属单位", "土地权利人", "qlr", "qsdw", "qlrmc", "权利人名称", "qsdwmc",
              "权属单位名称", "fbfmc", "发包方名称"),
    "land_use": ("landuse", "用地性质", "现状用途", "土地用途", "地类", "地类名称", "dlmc", "tdyt", "sjyt", "实际用途",
                 "ydxz", "use", "dlbm", "地类编码"),
    "blocked": ("blocked", "卡点", "是否卡点"),
    "blocked_reason": ("blockedreason", "卡点原因", "卡点问题"),
    "note": ("note", "备注", "说明", "bz", "remark", "remarks", "comment"),
    # in m²; never stored (areas are computed from the geometry), only compared with the computed area
    "area": ("area", "aream2", "面积", "面积平方米", "面积m2", "tbmj", "图斑面积", "zdmj", "宗地面积", "scmj", "实测面积",
             "fzmj", "发证面积", "mj"),
}
#: properties of AMap/DataV GeoJSON (DataV.GeoAtlas boundaries, AMap district search): their
#: coordinates are GCJ-02, hundreds of metres off CGCS2000
DATAV_PROPERTIES = ("adcode", "center", "centroid", "acroutes", "childrenNum", "subFeatureIndex")
#: how far a file's area may differ from the computed one before the report says so
AREA_TOLERANCE = 0.05
#: a village's committee as the surveys name it (东岙村民委员会) → the village (东岙村)
_COMMITTEE = re.compile(r"(村|社区)?(民委员会|居民委员会|村委会|居委会)$")

_TRUE = {"1", "true", "t", "yes", "y", "是", "卡点", "√"}
_FALSE = {"", "0", "false", "f", "no", "n", "否", "无"}


# ------------------------------------------------------------------ options and results
@dataclass
class ImportOptions:
    """What the user chose. Everything is optional: the importer proposes the rest."""

    layer: str | None = None
    crs: str | int | None = None         # "EPSG:4528", 4528: overrides the file's and the guess
    encoding: str | None = None          # overrides the detected text encoding
    mapping: dict[str, str] = field(default_factory=dict)  # target field → source column ("" to unmap)
    kind: str | None = None              # kind of parcels when the file has no kind column
    gcj02: bool = False                  # coordinates come from a GCJ-02 source (AMap, …)
    derive: bool = True                  # fill missing zone / village / park by spatial join
    lang: str = "zh"                     # language of the report's messages


@dataclass
class ImportPlan:
    """A checked import, ready to preview and commit."""

    report: dict
    parcels: gpd.GeoDataFrame            # one row per parcel to write: ``status`` new / update
    fields: tuple[str, ...]              # fields the file sets (the rest of an existing parcel is kept)
    history: list[dict]
    source: str
    attachments: list[dict] = field(default_factory=list)  # checked attachments the file carries (media_tables)

    @property
    def preview(self) -> gpd.GeoDataFrame:
        """The parcels to write with their status, for the preview map."""
        return self.parcels[["code", "name", "status", "repaired", "geometry"]]


# ------------------------------------------------------------------ small helpers
def _msg(key: str, lang: str, **params) -> str:
    return t(key, lang, **params)


def parse_crs(value) -> pyproj.CRS:
    """A CRS the user named: an EPSG code as ``4528`` or ``EPSG:4528``.

    Raises:
        InputError: anything else, or an unknown code.
    """
    m = re.fullmatch(r"\s*(?:epsg\s*:\s*)?(\d{4,6})\s*", str(value), flags=re.I)
    if not m:
        raise InputError("import.bad_crs", crs=str(value))
    try:
        return pyproj.CRS.from_epsg(int(m.group(1)))
    except pyproj.exceptions.CRSError:
        raise InputError("import.bad_crs", crs=str(value)) from None


def _epsg_of(crs) -> int | None:
    if crs is None:
        return None
    crs = pyproj.CRS.from_user_input(crs)
    return crs.to_epsg(min_confidence=70)


# ------------------------------------------------------------------ field mapping
def suggest_mapping(columns) -> dict[str, str]:
    """Target field → source column, guessed from common Chinese and English column names.

    Exact names win over partial ones; a column is used for one field only.
    """
    cols = [c for c in columns if c != "geometry"]
    normed = {c: column_key(c) for c in cols}
    out: dict[str, str] = {}
    used: set[str] = set()
    for target in TARGETS:  # exact
        for syn in SYNONYMS[target]:
            hit = next((c for c in cols if c not in used and normed[c] == syn), None)
            if hit:
                out[target] = hit
                used.add(hit)
                break
    for target in TARGETS:  # partial, for Chinese names like 所属村名 or 地块编号（新）
        if target in out:
            continue
        for syn in SYNONYMS[target]:
            if len(syn) < 2 or not re.search(r"[\u4e00-\u9fff]", syn):
                continue
            hit = next((c for c in cols if c not in used and syn in normed[c]), None)
            if hit:
                out[target] = hit
                used.add(hit)
                break
    return out


# ------------------------------------------------------------------ coordinate systems
@dataclass(frozen=True)
class CRSChoice:
    crs: pyproj.CRS
    epsg: int | None
    source: str          # file, guessed, user
    confirm: bool        # a guess the user should confirm (six-digit eastings)
    reason: str          # message key explaining a guess


def district_longitude(store) -> float | None:
    """Longitude of the district's centre, from the store's district (else zones, else parcels)."""
    for layer in ("district", "zones", "parcels"):
        try:
            if layer in store.layer_names():
                gdf = store.layer(layer)
                if len(gdf):
                    minx, _, maxx, _ = gdf.to_crs(STORE_CRS).total_bounds
                    if np.isfinite(minx):
                        return float((minx + maxx) / 2)
        except Exception:  # a broken context layer must not stop an import; the guess then asks the user
            continue
    return None


def guess_crs(geoms: np.ndarray, district_lon: float | None, drawing: bool = False) -> CRSChoice:
    """Propose a CRS from the size of the coordinates (for files that carry none).

    - longitude/latitude within China → EPSG:4490;
    - eastings with a zone prefix (8 digits, e.g. 40 512 345) → that 3-degree
      Gauss-Krüger zone, EPSG:4513–4533;
    - six-digit eastings → the CM zone of the district's longitude,
      EPSG:4534–4554, flagged for the user to confirm.

    Coordinates too small for metres of a zone — and any outside China in a
    CAD drawing (``drawing``), whose numbers are never degrees — are called
    what they look like: local drawing units.

    Raises:
        UnknownCRSError: the coordinates fit none of these (``import.crs_local_units``,
            ``import.crs_outside_china``, ``import.crs_unknown``, ``import.crs_need_zone``).
    """
    b = shapely.bounds(geoms)
    b = b[np.all(np.isfinite(b), axis=1)]
    if len(b) == 0:
        raise UnknownCRSError("import.crs_unknown", x="?", y="?")
    cx = float(np.median((b[:, 0] + b[:, 2]) / 2))
    cy = float(np.median((b[:, 1] + b[:, 3]) / 2))
    where = dict(x=f"{cx:.3f}", y=f"{cy:.3f}")
    if -180 <= cx <= 180 and -90 <= cy <= 90:
        if 73 <= cx <= 136 and 3 <= cy <= 54:
            return CRSChoice(pyproj.CRS.from_epsg(4490), 4490, "guessed", False, "import.crs_guess_geographic")
        raise UnknownCRSError("import.crs_local_units" if drawing else "import.crs_outside_china", **where)
    if 300_000 <= cy <= 6_100_000:
        zone = int(cx // 1_000_000)
        if 25 <= zone <= 45 and 100_000 <= cx - zone * 1_000_000 <= 900_000:
            epsg = 4513 + zone - 25
            return CRSChoice(pyproj.CRS.from_epsg(epsg), epsg, "guessed", False, "import.crs_guess_prefixed")
        if 100_000 <= cx < 1_000_000:
            if district_lon is None:
                raise UnknownCRSError("import.crs_need_zone", **where)
            epsg = gk_epsg(district_lon, prefixed=False)
            return CRSChoice(pyproj.CRS.from_epsg(epsg), epsg, "guessed", True, "import.crs_guess_cm")
    if abs(cx) < 100_000 and abs(cy) < 300_000:
        raise UnknownCRSError("import.crs_local_units", **where)
    raise UnknownCRSError("import.crs_unknown", **where)


# ------------------------------------------------------------------ the import
class RowReport:
    """Rejections and warnings by row, with their messages."""

    def __init__(self, lang: str, codes: np.ndarray):
        self.lang = lang
        self.codes = codes
        self.rejected: dict[int, dict] = {}
        self.row_warnings: list[dict] = []

    def reject(self, i: int, key: str, **params) -> None:
        if i in self.rejected:
            return
        self.rejected[i] = {"row": i + 1, "code": self.codes[i] if i < len(self.codes) else "",
                            "reason_key": key, "reason": _msg(key, self.lang, **params)}

    def warn(self, i: int, key: str, **params) -> None:
        self.row_warnings.append({"row": i + 1, "code": self.codes[i], "key": key,
                                  "message": _msg(key, self.lang, **params)})


def _kind_aliases() -> dict[str, str]:
    """The map's layer names that stand for a kind (``重点片区和地标``), from the layer catalogue."""
    try:
        return load_layer_catalog().kind_aliases()
    except InputError:  # no catalogue to read: keys and labels still work
        return {}


def _lookup(values: dict[str, tuple], v: str) -> str | None:
    """A code from a code, Chinese or English name (case-insensitive); a village committee's name
    (东岙村民委员会, as the surveys' 坐落单位 name it) finds its village."""
    if not v:
        return None
    for lv in dict.fromkeys((v.lower(), _COMMITTEE.sub(lambda m: m.group(1) or "村", v).lower())):
        for code, names in values.items():
            if lv == str(code).lower() or any(n and lv == str(n).lower() for n in names):
                return code
    return None


def _parse_date(v: str) -> str | None:
    v = v.strip()
    if not v:
        return None
    m = re.match(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?", v)
    if m:
        try:
            return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3))).isoformat()
        except ValueError:
            return None
    if re.fullmatch(r"\d{8}", v):
        try:
            return dt.date(int(v[:4]), int(v[4:6]), int(v[6:])).isoformat()
        except ValueError:
            return None
    return None


def prepare_import(store, upload: Upload, options: ImportOptions | None = None,
                   today: dt.date | None = None, raw: RawLayer | None = None) -> ImportPlan:
    """Read, check and repair a layer of ``upload``; nothing is written.

    ``raw``: the layer already read with :func:`read_layer` (the app reads it
    once to offer its columns for mapping).

    Raises:
        InputError: the file as a whole cannot be imported (unreadable, no code
            column, unknown kind, a mapped column that does not exist, …).
        UnknownCRSError: no CRS in the file and none can be guessed.
    """
    with file_failures(upload.source_name):  # a file odd in a way no check foresaw: said plainly
        return _prepare(store, upload, options, today, raw)


def apply_mapping(suggested: dict[str, str], asked: dict[str, str] | None, columns, targets) -> dict[str, str]:
    """The suggested field mapping with the user's choices over it (``target=""`` leaves a field out).

    Raises:
        InputError: an unknown target, a source column the file does not have, no code column.
    """
    mapping = dict(suggested)
    for target, source in (asked or {}).items():
        if target not in targets:
            raise InputError("import.bad_target", target=target, known=", ".join(targets))
        if source in (None, ""):
            mapping.pop(target, None)
        elif source not in columns:
            raise InputError("import.no_column", column=source, known="、".join(map(str, columns)))
        else:
            mapping[target] = source
    if "code" not in mapping:
        raise InputError("import.no_code_column", known="、".join(map(str, columns)))
    return mapping


def clean_geometries(store, gdf: gpd.GeoDataFrame, codes: np.ndarray, rows: "RowReport", opts: ImportOptions,
                     source_format: str = ""):
    """Geometry and codes of a layer made fit to store; rejects go to ``rows`` with their reasons.

    Keeps polygonal geometry only (collections give their polygons; others are
    rejected), drops Z, finds the CRS (the user's, the file's, else a guess from
    the coordinates), transforms to EPSG:4490 (from GCJ-02 too when asked),
    repairs invalid polygons keeping polygonal parts, promotes to MultiPolygon,
    and rejects empty geometry, missing codes and codes repeated in the file.

    Returns ``(crs_choice, geometries in EPSG:4490, ok mask, repaired rows, repaired mask)``.

    Raises:
        UnknownCRSError: no CRS and none can be guessed, or one that puts the data outside China.
        InputError: GCJ-02 asked for projected coordinates.
    """
    n = len(gdf)
    # --- geometry: present, polygonal, 2D
    geoms = np.asarray(gdf.geometry.values, dtype=object)
    missing = shapely.is_missing(geoms)
    geoms = np.where(missing, None, geoms)
    present = ~missing
    geoms[present] = shapely.force_2d(geoms[present])
    empty = missing | shapely.is_empty(geoms)
    types = shapely.get_type_id(geoms)
    for i in np.flatnonzero(types == 7):  # GeometryCollection: keep its polygonal parts
        parts = [p for p in shapely.get_parts(geoms[i]) if shapely.get_type_id(p) in (3, 6)]
        geoms[i] = shapely.union_all(parts) if parts else None
    types = shapely.get_type_id(geoms)
    empty = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    for i in np.flatnonzero(empty):
        rows.reject(int(i), "import.reject_empty")
    for i in np.flatnonzero(~empty & ~np.isin(types, (3, 6))):
        rows.reject(int(i), "import.reject_not_polygon", type=shapely.get_type(geoms[i]) if hasattr(shapely, "get_type")
                    else geoms[i].geom_type)
    ok = np.array([i not in rows.rejected for i in range(n)], dtype=bool)

    # --- coordinate system
    file_crs = gdf.crs
    if opts.crs not in (None, ""):
        src = parse_crs(opts.crs)
        choice = CRSChoice(src, _epsg_of(src), "user", False, "")
    elif file_crs is not None:
        choice = CRSChoice(pyproj.CRS.from_user_input(file_crs), _epsg_of(file_crs), "file", False, "")
    elif (present := ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))).any():
        # guess from every geometry read, polygonal or not
        choice = guess_crs(geoms[present], district_longitude(store), drawing=source_format == "dxf")
    else:
        choice = None
    work = geoms.copy()
    if choice is None:
        choice = CRSChoice(pyproj.CRS.from_epsg(STORE_EPSG), STORE_EPSG, "guessed", False, "")
    if ok.any():
        target = pyproj.CRS.from_epsg(STORE_EPSG)
        if not choice.crs.equals(target):
            if choice.crs.is_geographic and choice.crs.ellipsoid and choice.crs.ellipsoid.name in (
                    "WGS 84", "CGCS2000", "GRS 1980"):
                pass  # WGS84 and CGCS2000 differ by centimetres: coordinates are taken as they are
            else:
                transformer = pyproj.Transformer.from_crs(choice.crs, target, always_xy=True)
                work[ok] = shapely.transform(geoms[ok], lambda c: np.c_[transformer.transform(c[:, 0], c[:, 1])])
        if opts.gcj02:
            if not choice.crs.is_geographic:
                raise InputError("import.gcj_projected")

            work[ok] = geometries_from_gcj02(work[ok])
        b = shapely.bounds(work[ok])
        finite = np.all(np.isfinite(b), axis=1)
        for i in np.flatnonzero(ok)[~finite]:
            rows.reject(int(i), "import.reject_transform")
        ok[np.flatnonzero(ok)[~finite]] = False
        if ok.any():
            b = shapely.bounds(work[ok])
            cx = float(np.median((b[:, 0] + b[:, 2]) / 2))
            cy = float(np.median((b[:, 1] + b[:, 3]) / 2))
            if not (73 <= cx <= 136 and 3 <= cy <= 54):
                raise UnknownCRSError("import.crs_wrong", crs=choice.epsg or choice.crs.name,
                                      x=f"{cx:.4f}", y=f"{cy:.4f}")

    # --- validity: repair keeping polygonal parts only
    repaired_rows: list[dict] = []
    repaired_mask = np.zeros(n, dtype=bool)
    if ok.any():
        idx = np.flatnonzero(ok)
        valid = shapely.is_valid(work[idx])
        for i in idx[~valid]:
            reason = shapely.is_valid_reason(work[i])
            fixed = shapely.make_valid(work[i], method="structure", keep_collapsed=False)
            parts = [p for p in shapely.get_parts(fixed) if shapely.get_type_id(p) in (3, 6)]
            fixed = shapely.union_all(parts) if parts else None
            if fixed is None or fixed.is_empty or not fixed.is_valid:
                rows.reject(int(i), "import.reject_invalid", reason=reason)
                ok[i] = False
                continue
            work[i] = fixed
            repaired_mask[i] = True
            repaired_rows.append({"row": int(i) + 1, "code": codes[i], "reason": reason})
    # promote to MultiPolygon
    polys = ok & (shapely.get_type_id(work) == 3)
    if polys.any():
        work[polys] = shapely.multipolygons(work[polys], indices=np.arange(int(polys.sum())))
    if ok.any():
        tiny = ok.copy()
        tiny[ok] = shapely.area(work[ok]) <= 0
        for i in np.flatnonzero(tiny):
            rows.reject(int(i), "import.reject_empty")
        ok &= ~tiny

    # --- codes: present and unique in the file
    for i in np.flatnonzero(ok & (codes == "")):
        rows.reject(int(i), "import.reject_no_code")
    ok &= codes != ""
    uniq, inverse, counts = np.unique(codes[ok], return_inverse=True, return_counts=True)
    dup_codes = set(uniq[counts > 1])
    if dup_codes:
        where: dict[str, list[int]] = {}
        for i in np.flatnonzero(ok):
            if codes[i] in dup_codes:
                where.setdefault(codes[i], []).append(int(i) + 1)
        for code, rws in where.items():
            for r in rws:
                rows.reject(r - 1, "import.reject_duplicate", code=code, rows=", ".join(map(str, rws[:20])))
                ok[r - 1] = False
    return choice, work, ok, repaired_rows, repaired_mask


def _prepare(store, upload: Upload, options: ImportOptions | None, today: dt.date | None,
             raw: RawLayer | None) -> ImportPlan:
    """The import as named steps: read → map fields → clean geometries → compare with the store →
    kinds, stages and dates → zone / village / park → warnings → the plan and its report."""
    opts = options or ImportOptions()
    today = today or office_today()
    ref = upload.layer(opts.layer)
    raw = raw or read_layer(upload, ref, opts.encoding)
    check_polygonal(raw, ref.name)
    fields = map_fields(raw, opts.mapping)
    aliases = _kind_aliases()
    kind = None
    if opts.kind:  # a key, a label or the map's name of a layer (重点片区和地标)
        kind = store.catalog.kind_key(opts.kind, aliases) or store.catalog.kind(opts.kind).key
    rows, warnings = start_report(raw, fields.codes, opts.lang)
    choice, work, ok, repaired_rows, repaired_mask = clean_geometries(store, raw.gdf, fields.codes, rows, opts,
                                                                      raw.format)
    match = match_store(store, fields.codes)
    kinds = resolve_kinds(store.catalog, fields.values, match, ok, rows, kind, aliases)
    stages = check_stages(store.catalog, fields.values, kinds, ok, rows, today, opts.lang)
    check_kind_changes(store.catalog, match, fields.codes, kinds, stages, ok, rows)
    blocked = parse_blocked(fields.values, ok, rows)
    place, derived = derive_places(store, fields.values, kinds, work, ok, rows, opts)
    good = np.flatnonzero(ok)
    if len(good):
        warnings.extend(_overlap_warnings(match.existing, work, good, fields.codes, match.exists, opts.lang))
        warnings.extend(outside_warnings(store, work, good, fields.codes, opts.lang))
    plan_gdf, written = plan_rows(fields, kinds, stages, blocked, place, work, good, repaired_mask, match.exists)
    warnings.extend(area_warnings(fields, plan_gdf, opts.lang))
    if match.exists[good].any():  # unchanged parcels (a re-import of the same data) are left alone
        plan_gdf = _drop_unchanged(plan_gdf, match.existing, written)
    history = carried_history(store, raw, plan_gdf, today)
    attachments, skipped = check_attachments(raw, {str(fields.codes[i]) for i in good})
    hint = gcj02_hint(raw) if choice.crs.is_geographic else []
    if hint and not opts.gcj02:  # never shifted silently: the planner decides
        warnings.append({"key": "import.warn_gcj02", "properties": hint,
                         "message": _msg("import.warn_gcj02", opts.lang, properties="、".join(hint))})
    report = build_report(upload, ref, raw, opts, fields, rows, warnings, choice, repaired_rows, good, plan_gdf,
                          derived, history)
    report["gcj02_suggested"] = hint  # the AMap/DataV properties seen; the app ticks the conversion for them
    report["attachments"], report["attachments_skipped"] = len(attachments), skipped
    return ImportPlan(report=report, parcels=plan_gdf, fields=written, history=history,
                      source=upload.source_name or ref.name, attachments=attachments)


# ------------------------------------------------------------------ the steps
@dataclass
class FieldValues:
    """The file's columns mapped onto parcel fields: each mapped field's text, row by row."""

    columns: list[str]                   # the file's columns (geometry left out)
    mapping: dict[str, str]              # target field → source column
    values: dict[str, np.ndarray]        # target field → text per row ('' for missing)
    codes: np.ndarray                    # the parcel codes, '' where missing


def map_fields(raw: RawLayer, asked: dict[str, str] | None, targets=TARGETS) -> FieldValues:
    """Map the layer's columns onto ``targets`` (suggested, then the user's choices) and read them as text.

    Raises:
        InputError: an unknown target, a column the file does not have, no code column.
    """
    gdf = raw.gdf
    columns = [c for c in gdf.columns if c != gdf.geometry.name]
    mapping = apply_mapping(suggest_mapping(columns), asked, columns, targets)
    values = {target: cell_text(gdf[mapping[target]]) for target in targets if mapping.get(target)}
    return FieldValues(columns=columns, mapping=mapping, values=values, codes=values["code"])


def start_report(raw: RawLayer, codes: np.ndarray, lang: str) -> tuple["RowReport", list[dict]]:
    """The report's rows and file-level warnings, opened with what reading the file noted."""
    rows = RowReport(lang, codes)
    warnings: list[dict] = []
    for i, key, params in raw.notes:
        if i < 0:
            warnings.append({"key": key, "message": _msg(key, lang, **params)})
        else:
            rows.reject(i, key, **params)
    for key, n in (("import.linearised", raw.linearised), ("import.surfaces", raw.surfaces)):
        if n:
            warnings.append({"key": key, "count": n, "message": _msg(key, lang, n=n, step=ARC_STEP_DEGREES)})
    return rows, warnings


def gcj02_hint(raw: RawLayer) -> list[str]:
    """The AMap/DataV properties a lon/lat layer carries when it looks like their (GCJ-02) output, else [].

    Two of :data:`DATAV_PROPERTIES` make the call; a projected layer never gets one (GCJ-02 is lon/lat).
    """
    crs = raw.gdf.crs
    if crs is not None and not crs.is_geographic:
        return []
    keys = {column_key(c): str(c) for c in raw.gdf.columns}
    found = [keys[column_key(p)] for p in DATAV_PROPERTIES if column_key(p) in keys]
    return found if len(found) >= 2 else []


def check_polygonal(raw: RawLayer, name: str) -> None:
    """Refuse a layer that holds geometry but not one polygon (a line or point layer), saying so first.

    A layer with no geometry at all is left to the rows' own reasons (empty, open polyline …).

    Raises:
        InputError: ``import.no_polygons`` with the geometry types found and their counts.
    """
    geoms = np.asarray(raw.gdf.geometry.values, dtype=object)
    present = geoms[~(shapely.is_missing(geoms) | shapely.is_empty(geoms))]
    if not len(present):
        return
    types = shapely.get_type_id(present)
    if np.isin(types, (3, 6)).any():
        return
    for g in present[types == 7]:  # a collection with a polygon in it gives its polygons
        if np.isin(shapely.get_type_id(shapely.get_parts(g)), (3, 6)).any():
            return
    found = pd.Series([g.geom_type for g in present]).value_counts()
    raise InputError("import.no_polygons", name=name, types="、".join(f"{k} {v}" for k, v in found.items()))


@dataclass
class StoreMatch:
    """The file's codes against the store's parcels."""

    existing: gpd.GeoDataFrame           # the stored parcels, with geometry, indexed by code
    exists: np.ndarray                   # per row: the code is already stored
    old_kind: np.ndarray                 # per row: the stored kind (None for new codes)


def match_store(store, codes: np.ndarray) -> StoreMatch:
    """Which codes the store already has, and their kinds (with geometry: for unchanged parcels and overlaps)."""
    n = len(codes)
    existing = store.parcels().set_index("code", drop=False)
    exists = np.asarray(pd.Index(existing.index).get_indexer(codes) >= 0) if len(existing) else np.zeros(n, bool)
    old_kind = existing["kind"].reindex(codes).to_numpy(dtype=object) if len(existing) else np.full(n, None)
    return StoreMatch(existing=existing, exists=exists, old_kind=old_kind)


def resolve_kinds(cat, values: dict, match: StoreMatch, ok: np.ndarray, rows: "RowReport",
                  default: str | None, aliases: dict | None = None) -> np.ndarray:
    """Each row's kind: from the file (a key, a label or an alias such as the map's layer name
    ``重点片区和地标``), else the default, else what the store has.

    Rows with an unknown kind or none at all are rejected (``ok`` cleared); the message lists the
    kinds with their labels.
    """
    n = len(ok)
    kinds = np.full(n, "", dtype=object)
    if "kind" in values:
        given = values["kind"]
        resolved = {v: cat.kind_key(v, aliases) for v in set(given[ok].tolist()) if v}
        known = cat.known_kinds()["en" if rows.lang == "en" else "zh"]
        for i in np.flatnonzero(ok & (given != "")):
            if resolved[given[i]] is None:
                rows.reject(int(i), "import.reject_kind", kind=given[i], known=known)
                ok[i] = False
            else:
                kinds[i] = resolved[given[i]]
    fallback = ok & (kinds == "")
    kinds[fallback] = default or ""
    use_old = fallback & (kinds == "") & match.exists
    kinds[use_old] = match.old_kind[use_old]
    for i in np.flatnonzero(ok & (kinds == "")):
        rows.reject(int(i), "import.reject_no_kind")
        ok[i] = False
    return kinds


@dataclass
class StageValues:
    """Stages the file gives, per row."""

    stages: np.ndarray                   # a stage key of the row's pipeline, or None (not started)
    dates: np.ndarray                    # ISO date the stage was reached, or None
    given: np.ndarray                    # the file sets this row's stage (an unknown one is not "given")


def check_stages(cat, values: dict, kinds: np.ndarray, ok: np.ndarray, rows: "RowReport", today: dt.date,
                 lang: str) -> StageValues:
    """Stages from keys or labels of each row's pipeline, and their dates (none after ``today``).

    An unknown stage or a bad date is a warning on its row, and not used.
    """
    n = len(ok)
    stages = np.array([None] * n, dtype=object)
    stage_dates = np.array([None] * n, dtype=object)
    stage_given = np.zeros(n, dtype=bool)
    if "stage" in values:
        memo: dict[tuple[str, str], str | None] = {}

        def stage_key(kind: str, v: str) -> str | None:
            """A stage key of the kind's pipeline from a key or a label; "" for not started; None if unknown."""
            if (kind, v) not in memo:
                low = v.lower()
                memo[(kind, v)] = "" if low in ("not_started", "未启动", "not started") else \
                    cat.pipeline_for(kind).key_of(v)  # the resolver advance and the filters use
            return memo[(kind, v)]

        for i in np.flatnonzero(ok & (values["stage"] != "")):
            key = stage_key(kinds[i], values["stage"][i])
            if key is None:
                rows.warn(int(i), "import.warn_stage", stage=values["stage"][i], kind=cat.kinds[kinds[i]].label(lang))
                continue
            stages[i], stage_given[i] = key or None, True
    if "stage_date" in values:
        for i in np.flatnonzero(ok & stage_given):
            v = values["stage_date"][i]
            d = _parse_date(v)
            if v and d is None:
                rows.warn(int(i), "import.warn_date", value=v)
            elif d and d > today.isoformat():
                rows.warn(int(i), "import.warn_date", value=v)
                d = None
            stage_dates[i] = d if stages[i] else None
    return StageValues(stages=stages, dates=stage_dates, given=stage_given)


def check_kind_changes(cat, match: StoreMatch, codes: np.ndarray, kinds: np.ndarray, stages: StageValues,
                       ok: np.ndarray, rows: "RowReport") -> None:
    """Reject stored parcels whose new kind's pipeline lacks the stage they would be at."""
    for i in np.flatnonzero(ok & match.exists & (kinds != match.old_kind)):
        stage = stages.stages[i] if stages.given[i] else match.existing.at[codes[i], "stage"]
        if isinstance(stage, str) and stage and stage not in cat.pipeline_for(kinds[i]).keys:
            rows.reject(int(i), "import.reject_kind_stage", stage=stage)
            ok[i] = False


def parse_blocked(values: dict, ok: np.ndarray, rows: "RowReport") -> np.ndarray | None:
    """The blocked flag (1/0) per row when the file has one; a value neither yes nor no is a warning."""
    if "blocked" not in values:
        return None
    blocked = np.zeros(len(ok), dtype=np.int64)
    for i in np.flatnonzero(ok):
        v = values["blocked"][i].lower()
        if v in _TRUE:
            blocked[i] = 1
        elif v not in _FALSE:
            rows.warn(int(i), "import.warn_blocked", value=values["blocked"][i])
    return blocked


def derive_places(store, values: dict, kinds: np.ndarray, work: np.ndarray, ok: np.ndarray, rows: "RowReport",
                  opts: ImportOptions) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Zone, village and park codes per row: given codes or names normalised, the missing ones derived from
    the location (a point on each parcel's surface within the store's zones, villages, parks).

    Returns ``(place, derived)``: target → code per row ('' for none), for the targets the import sets,
    and target → how many rows were derived.
    """
    n = len(ok)
    lang = opts.lang
    derived: dict[str, int] = {}
    ctx = {name: store.names(name) for name in ("zones", "villages", "parks") if name in store.layer_names()}
    layer_of = {"zone": "zones", "village": "villages", "park": "parks"}
    applies = {"zone": np.ones(n, bool), "village": kinds == "village", "park": np.isin(kinds, ("park", "low_efficiency"))}
    place: dict[str, np.ndarray] = {}
    pts = None
    for target, layer in layer_of.items():
        out = np.array([""] * n, dtype=object)
        known = ctx.get(layer, {})
        given = values.get(target)
        need = ok & applies[target]
        if given is not None:
            resolved = {v: _lookup(known, v) for v in set(given[ok].tolist()) if v}
            for i in np.flatnonzero(ok & (given != "")):
                c = resolved[given[i]]
                if c is None:
                    rows.warn(int(i), "import.warn_place", value=given[i], field=_msg(f"import.field_{target}", lang))
                else:
                    out[i] = c
        if given is None and not (opts.derive and layer in ctx):
            continue  # nothing given, nothing to derive from: existing parcels keep theirs
        todo = need & (out == "")
        if opts.derive and todo.any() and layer in ctx:
            if pts is None:
                pts = np.array([None] * n, dtype=object)
                pts[ok] = shapely.point_on_surface(work[ok])
            lyr = store.layer(layer)
            tree = shapely.STRtree(np.asarray(lyr.geometry.values, dtype=object))
            idx = np.flatnonzero(todo)
            hit_pts, hit_polys = tree.query(pts[idx], predicate="within")
            lyr_codes = lyr["code"].to_numpy()
            seen = set()
            for p, q in zip(hit_pts, hit_polys):
                i = idx[p]
                if i in seen:
                    continue
                seen.add(i)
                out[i] = lyr_codes[q]
            derived[target] = len(seen)
        place[target] = out
    return place, derived


def plan_rows(fields: FieldValues, kinds: np.ndarray, stages: StageValues, blocked: np.ndarray | None,
              place: dict[str, np.ndarray], work: np.ndarray, good: np.ndarray, repaired_mask: np.ndarray,
              exists: np.ndarray) -> tuple[gpd.GeoDataFrame, tuple[str, ...]]:
    """The parcels to write (rows ``good``), with their area, status and row number, and the fields the
    import sets (the rest of a stored parcel is kept)."""
    values, codes = fields.values, fields.codes
    area = np.zeros(len(kinds))
    if len(good):
        area[good] = areas_m2(gpd.GeoDataFrame(geometry=list(work[good]), crs=STORE_CRS))
    written: list[str] = ["kind", "area_m2"]
    data = {"code": codes[good], "kind": kinds[good], "area_m2": np.round(area[good], 2)}
    name = values.get("name")
    data["name"] = np.where(name[good] != "", name[good], codes[good]) if name is not None else codes[good]
    if name is not None:
        written.append("name")
    for f in ("unit", "owner", "land_use", "blocked_reason", "note"):
        if f in values:
            v = values[f][good]
            # the store keeps "" for unset places and units, NULL for an absent reason or note
            data[f] = np.where(v == "", None, v) if f in ("blocked_reason", "note") else v
            written.append(f)
    for target, arr in place.items():
        data[target] = arr[good]
        written.append(target)
    if "stage" in values:
        data["stage"] = stages.stages[good]
        data["stage_date"] = stages.dates[good]
        data["stage_given"] = stages.given[good]
        written += ["stage", "stage_date"]
    if blocked is not None:
        data["blocked"] = blocked[good]
        written.append("blocked")
    data["row"] = good + 1
    data["repaired"] = repaired_mask[good]
    data["status"] = np.where(exists[good], "update", "new")
    return gpd.GeoDataFrame(data, geometry=list(work[good]), crs=STORE_CRS), tuple(dict.fromkeys(written))


def area_warnings(fields: FieldValues, plan_gdf: gpd.GeoDataFrame, lang: str) -> list[dict]:
    """The file's own areas (TBMJ, ZDMJ, SCMJ …) against the computed ones: a column in 亩, or parcels
    that differ by more than :data:`AREA_TOLERANCE` (a wrong CRS, a wrong polygon, a stale figure)."""
    if "area" not in fields.values or not len(plan_gdf):
        return []
    column = fields.mapping["area"]
    rows = plan_gdf["row"].to_numpy() - 1
    declared = pd.to_numeric(pd.Series(fields.values["area"][rows]), errors="coerce").to_numpy(dtype=float)
    computed = plan_gdf["area_m2"].to_numpy(dtype=float)
    usable = np.isfinite(declared) & (declared > 0) & (computed > 0)
    if not usable.any():
        return []
    ratio = computed[usable] / declared[usable]
    if abs(float(np.median(ratio)) / M2_PER_MU - 1) <= AREA_TOLERANCE:
        return [{"key": "import.warn_area_mu", "message": _msg("import.warn_area_mu", lang, column=column)}]
    off = np.flatnonzero(usable)[np.abs(ratio - 1) > AREA_TOLERANCE]
    if not len(off):
        return []
    return [{"key": "import.warn_area", "count": int(len(off)),
             "message": _msg("import.warn_area", lang, n=int(len(off)), column=column),
             "rows": [int(r) + 1 for r in rows[off[:LIST_CAP]]],
             "codes": [str(c) for c in plan_gdf["code"].to_numpy()[off[:LIST_CAP]]]}]


def carried_history(store, raw: RawLayer, plan_gdf: gpd.GeoDataFrame, today: dt.date) -> list[dict]:
    """Stage events the file carries (an exported GeoPackage's), for the parcels it writes — new ones, and
    those already stored (the store keeps of those only the events after its own history, when its history
    is where the file's begins: ``Store.upsert_parcels``), checked like live events
    (:func:`check_carried_history`).

    Raises:
        InputError: ``import.bad_history`` naming every bad row.
    """
    new = plan_gdf[plan_gdf["status"].isin(("new", "update"))]
    ends = {}
    if "stage" in new.columns and "stage_given" in new.columns:
        ends = {c: (st if isinstance(st, str) and st else None)
                for c, st, given in zip(new["code"], new["stage"], new["stage_given"]) if given}
    return check_carried_history(raw.history or [], dict(zip(new["code"], new["kind"])), ends, store.catalog, today)


def build_report(upload: Upload, ref, raw: RawLayer, opts: ImportOptions, fields: FieldValues, rows: "RowReport",
                 warnings: list[dict], choice: "CRSChoice", repaired_rows: list[dict], good: np.ndarray,
                 plan_gdf: gpd.GeoDataFrame, derived: dict[str, int], history: list[dict]) -> dict:
    """The import's report: counts, rejected and repaired rows, warnings, CRS, encoding, mapping (dry run)."""
    n_new = int((plan_gdf["status"] == "new").sum())
    n_upd = int((plan_gdf["status"] == "update").sum())
    rejected = sorted(rows.rejected.values(), key=lambda r: r["row"])
    return {
        "source": upload.source_name,
        "layer": ref.name,
        "format": raw.format,
        "features_read": len(raw.gdf),
        "features_imported": n_new + n_upd,
        "new": n_new,
        "updated": n_upd,
        "unchanged": int(len(good) - len(plan_gdf)),
        "repaired": len(repaired_rows),
        "repaired_rows": repaired_rows[:LIST_CAP],
        "linearised": raw.linearised,
        "surfaces": raw.surfaces,
        "rejected": rejected[:LIST_CAP],
        "rejected_count": len(rejected),
        "warnings": rows.row_warnings[:LIST_CAP] + warnings,
        "crs": choice.epsg if choice.epsg is not None else choice.crs.name,
        "crs_name": choice.crs.name,
        "crs_source": choice.source,
        "crs_confirm": choice.confirm,
        "crs_note": _msg(choice.reason, opts.lang, epsg=choice.epsg) if choice.reason else "",
        "gcj02": bool(opts.gcj02),
        "encoding": raw.encoding,
        "encoding_source": raw.encoding_source,
        "mapping": fields.mapping,
        "columns": [str(c) for c in fields.columns],
        "kind": opts.kind,
        "derived": derived,
        "history_events": len(history),
        "layers": upload.layer_names(),
        "ignored_files": upload.ignored[:LIST_CAP],
        "bounds": [round(float(v), 7) for v in plan_gdf.total_bounds] if len(plan_gdf) else None,
        "dry_run": True,
        "committed": False,
    }


def check_attachments(raw: RawLayer, codes: set[str]) -> tuple[list[dict], int]:
    """The attachments the file carries for the parcels it imports, each through the checks of an upload
    (``gis.model.media.inspect``: real type, size and pixel caps, read one at a time); (items, how many belong
    to rows not imported).

    Raises:
        InputError: ``import.bad_attachments`` naming every refused one (nothing is written).
    """
    items, problems, skipped = [], [], 0
    for m in raw.media or ():
        if m.code not in codes:
            skipped += 1
            continue
        try:
            inspect(media_data(raw.media_path, m.row_id), m.filename)
        except InputError as e:
            problems.append({lang: t("import.attachment_row", lang, id=m.row_id, name=m.filename,
                                     reason=e.message(lang)) for lang in ("zh", "en")})
            continue
        path, row = raw.media_path, m.row_id
        items.append({"code": m.code, "filename": m.filename, "caption": m.caption, "restricted": m.restricted,
                      "event": m.event, "known_sha256": {s for s in (m.sha256, m.store_sha256) if s},
                      "added_by": m.added_by, "added_at": m.added_at,
                      "data": lambda path=path, row=row: media_data(path, row)})
    if problems:
        shown = problems[:LIST_CAP]
        raise InputError("import.bad_attachments", n=len(problems),
                         detail={lang: "; ".join(p[lang] for p in shown) for lang in ("zh", "en")})
    return items, skipped


def check_carried_history(events: list[dict], kinds: dict[str, str], ends: dict[str, str | None], catalog,
                          today: dt.date) -> list[dict]:
    """The carried events (rows of the file's ``stage_events``, numbered from 1) of the parcels in ``kinds``
    (code → kind), checked like live ones: a known action, a business date that is a date and not after
    ``today``, stages of the parcel's pipeline, and a history that follows on — each event after the first
    starts where the previous one ended; an advance moves one stage forward; a correction gives its reason; a block
    or an unblock leaves the stage alone.

    Raises:
        InputError: ``import.bad_history`` naming every bad row (nothing is written).
    """
    problems: list[tuple[int, str, dict]] = []
    kept: list[tuple[str, int, dict]] = []
    for row, e in enumerate(events, start=1):
        code = str(e.get("parcel"))
        if code not in kinds:
            continue
        pipe = catalog.pipeline_for(kinds[code])
        date = _parse_date(str(e.get("event_date") or ""))
        if e.get("action") not in EVENT_ACTIONS:
            problems.append((row, "import.history_action", {"action": e.get("action")}))
        elif date is None:
            problems.append((row, "import.history_date", {"value": e.get("event_date")}))
        elif date > today.isoformat():
            problems.append((row, "import.history_future", {"date": date}))
        elif bad := next((s for s in (e.get("from_stage"), e.get("to_stage")) if s and s not in pipe.keys), None):
            problems.append((row, "import.history_stage", {"stage": bad, "pipeline": pipe.key}))
        else:
            kept.append((code, row, {**{k: e.get(k) for k in EVENT_COLUMNS}, "event_date": date}))
    current: dict[str, str | None] = {}
    last: dict[str, int] = {}
    for code, row, e in sorted(kept, key=lambda x: (x[0], x[2]["event_date"], x[1])):  # the order of history()
        pipe = catalog.pipeline_for(kinds[code])
        frm, to, action = e["from_stage"] or None, e["to_stage"] or None, e["action"]
        if code in current and frm != current[code]:  # the first may start anywhere: a history begun elsewhere
            problems.append((row, "import.history_gap", {"stage": frm or "-", "current": current.get(code) or "-"}))
        elif action == "advance" and pipe.index(to) != pipe.index(frm) + 1:
            problems.append((row, "import.history_jump", {"from_stage": frm or "-", "to_stage": to or "-"}))
        elif action == "correction" and not str(e.get("reason") or "").strip():
            problems.append((row, "import.history_reason", {}))
        elif action in ("block", "unblock") and to != frm:
            problems.append((row, "import.history_block", {}))
        current[code] = to
        last[code] = row
    for code, row in last.items():
        if code in ends and ends[code] != current.get(code):
            problems.append((row, "import.history_end", {"stage": current.get(code) or "-",
                                                         "current": ends[code] or "-"}))
    if problems:
        problems.sort()
        shown = problems[:LIST_CAP]
        detail = {lang: "; ".join(_msg("import.history_row", lang, row=r, code=str(events[r - 1].get("parcel")),
                                       reason=_msg(k, lang, **p)) for r, k, p in shown) for lang in ("zh", "en")}
        raise InputError("import.bad_history", n=len(problems), rows=", ".join(str(r) for r, _, _ in shown),
                         detail=detail)
    return [e for _, _, e in kept]


def _drop_unchanged(plan_gdf, existing, fields) -> gpd.GeoDataFrame:
    """Remove parcels whose geometry and every field the file sets equal what the store has."""
    upd = plan_gdf["status"].to_numpy() == "update"
    codes = plan_gdf["code"].to_numpy()
    geom_of = dict(zip(existing["code"], existing.geometry.values))
    same = np.zeros(len(plan_gdf), dtype=bool)
    new_geoms = np.asarray(plan_gdf.geometry.values, dtype=object)
    for j in np.flatnonzero(upd):
        old = geom_of.get(codes[j])
        if old is None or not shapely.equals_exact(old, new_geoms[j], tolerance=1e-9):
            continue
        row = existing.loc[codes[j]]
        equal = True
        for f in fields:
            if f == "area_m2" or f in ("stage", "stage_date") and not plan_gdf["stage_given"].iat[j]:
                continue
            a, b = row.get(f), plan_gdf[f].iat[j]
            a = None if a is None or (isinstance(a, float) and math.isnan(a)) or a == "" else a
            b = None if b is None or (isinstance(b, float) and math.isnan(b)) or b == "" else b
            if f == "blocked":
                a, b = int(a or 0), int(b or 0)
            if a != b:
                equal = False
                break
        same[j] = equal
    return plan_gdf[~same].reset_index(drop=True)


def _interior_pairs(tree_geoms, query_geoms, same: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(query index, tree index) of pairs whose interiors intersect.

    A bounding-box query, then the DE-9IM test on the candidates only:
    far cheaper than a predicate query, which also pays for every self-pair.
    """
    tree = shapely.STRtree(tree_geoms)
    a, b = tree.query(query_geoms)
    if same:  # one set against itself: each pair once, no self-pairs
        a, b = a[a < b], b[a < b]
    if len(a) == 0:
        return a, b
    hit = shapely.relate_pattern(query_geoms[a], tree_geoms[b], "T********")
    return a[hit], b[hit]


def _overlap_warnings(existing, work, good, codes, exists, lang) -> list[dict]:
    """Pairs of parcels whose interiors overlap: within the file, and with parcels already stored."""
    geoms = work[good]
    out = []
    a, b = _interior_pairs(geoms, geoms, same=True)
    pairs = sorted(zip(a.tolist(), b.tolist()))
    if pairs:
        listed = pairs[:LIST_CAP]
        out.append({"key": "import.warn_overlap", "count": len(pairs),
                    "message": _msg("import.warn_overlap", lang, n=len(pairs)),
                    "pairs": [[codes[good[i]], codes[good[j]]] for i, j in listed],
                    "rows": sorted({int(good[k]) + 1 for p in listed for k in p})})
    # with parcels already in the store that this import does not replace
    replaced = existing.index.isin(codes[good][exists[good]]) if len(existing) else np.zeros(0, bool)
    stored = existing[~replaced]
    if len(stored):
        a, b = _interior_pairs(np.asarray(stored.geometry.values, dtype=object), geoms)
        hits = sorted(zip(a.tolist(), b.tolist()))
        if hits:
            scodes = stored["code"].to_numpy()
            listed = hits[:LIST_CAP]
            out.append({"key": "import.warn_overlap_store", "count": len(hits),
                        "message": _msg("import.warn_overlap_store", lang, n=len(hits)),
                        "pairs": [[codes[good[i]], str(scodes[j])] for i, j in listed],
                        "rows": sorted({int(good[i]) + 1 for i, _ in listed})})
    return out


def outside_warnings(store, work, good, codes, lang) -> list[dict]:
    if "district" not in store.layer_names():
        return []
    district = store.layer("district")
    if not len(district):
        return []
    area = shapely.union_all(np.asarray(district.geometry.values, dtype=object))
    shapely.prepare(area)
    geoms = work[good]
    inside = shapely.covers(area, geoms)
    if inside.all():
        return []
    touching = shapely.intersects(area, geoms)
    out = []
    for key, mask in (("import.warn_outside", ~touching), ("import.warn_partly_outside", touching & ~inside)):
        idx = np.flatnonzero(mask)
        if len(idx):
            out.append({"key": key, "count": int(len(idx)), "message": _msg(key, lang, n=int(len(idx))),
                        "rows": [int(good[i]) + 1 for i in idx[:LIST_CAP]],
                        "codes": [codes[good[i]] for i in idx[:LIST_CAP]]})
    return out


def commit_import(store, plan: ImportPlan, by: str, today: dt.date | None = None) -> dict:
    """Write a prepared import in one transaction; returns the report with what was written.

    Raises:
        InputError: no author, or nothing to import.
    """
    report = dict(plan.report)
    gdf = plan.parcels
    if len(gdf) == 0 and not plan.attachments:
        report.update(dry_run=False, committed=False)
        return report
    blobs = shapely.to_wkb(np.asarray(gdf.geometry.values, dtype=object), byte_order=1, output_dimension=2)
    cols = [c for c in plan.fields if c in gdf.columns]
    records = []
    col_values = {c: gdf[c].tolist() for c in cols + ["code"]}
    given = gdf["stage_given"].tolist() if "stage_given" in gdf.columns else None
    for c in cols:  # pandas may hold a missing text as NaN: the store wants NULL
        col_values[c] = [None if isinstance(v, float) and math.isnan(v) and c != "area_m2" else v
                         for v in col_values[c]]
    for k in range(len(gdf)):
        rec = {c: col_values[c][k] for c in cols}
        rec["code"] = col_values["code"][k]
        if "stage" in rec and given is not None and not given[k]:
            rec.pop("stage", None)
            rec.pop("stage_date", None)
        rec["geom"] = blobs[k]
        records.append(rec)
    note = _msg("import.event_note", "zh", source=plan.source)  # stored data, in the office's language
    result = store.upsert_parcels(records, by=by, note=note, history=plan.history, today=today,
                                  attachments=plan.attachments)
    report.update(dry_run=False, committed=True, new=result["inserted"], updated=result["updated"],
                  features_imported=result["inserted"] + result["updated"], events_written=result["events"],
                  attachments_written=result.get("attachments", 0),
                  attachments_present=result.get("attachments_present", 0), data_version=result["data_version"])
    return report


def import_file(store, path: Path | str, options: ImportOptions | None = None, *, by: str = "",
                dry_run: bool = False, today: dt.date | None = None) -> dict:
    """Stage, check and (unless ``dry_run``) write a local file; returns the report.

    Raises:
        InputError, UnknownCRSError: as :func:`prepare_import`; InputError
            for a missing author when writing.
    """

    with stage_path(path) as upload:
        plan = prepare_import(store, upload, options, today=today)
        if dry_run:
            return plan.report
        return commit_import(store, plan, by=by, today=today)
