"""Import parcels from the files a renewal office receives.

Formats: zipped or loose Shapefile, GeoPackage (a chosen layer), GeoJSON
(BOM or not), KML/KMZ, DXF (closed polylines become polygons) and CSV with a
WKT or a lon/lat column. Files are staged and checked by ``gis.uploads``
first; this module reads them, works out the coordinate system and the text
encoding, repairs or rejects geometries, maps columns onto parcel fields,
warns about overlaps and parcels outside the district, and hands a plan to
``Store.upsert_parcels``, which writes it in one transaction.

    upload = stage_path("地块.zip")            # or stage_files([...]) from the app
    plan = prepare_import(store, upload, ImportOptions(kind="village"))
    plan.report                                # show it: counts, rejected rows, CRS, encoding
    commit_import(store, plan, by="张伟")       # everything lands, or nothing

Row numbers in the report count the features of the file from 1, in file order.
"""
from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import json
import math
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pyproj
import shapely

from gis.base import clock
from gis.base.errors import InputError, RenewalError, UnknownCRSError
from gis.base.gcj02 import geometries_from_gcj02
from gis.base.i18n import t
from gis.base.units import STORE_CRS, areas_m2, gk_epsg
from gis.io.uploads import LayerRef, Upload, ensure_gdal_hardened, parse_json_file, read_gpkg_table, stage_path
from gis.store import schema

STORE_EPSG = 4490
#: parcel fields an import can set, in the order the mapping form shows them
TARGETS = ("code", "name", "kind", "zone", "village", "park", "stage", "stage_date", "unit",
           "owner", "land_use", "blocked", "blocked_reason", "note")
TEXT_FIELDS = ("name", "zone", "village", "park", "unit", "owner", "land_use", "blocked_reason", "note")
#: the columns of the event table, as an exported GeoPackage carries them
EVENT_COLUMNS = tuple(name for name, _ in schema.EVENT_COLUMNS)
EVENT_ACTIONS = ("advance", "correction", "block", "unblock", "import")
LIST_CAP = 200  # longest list of rows or pairs a report carries; counts are always complete

# Column names seen in the field (Chinese offices, GIS exports, English data), normalised:
# lower case, without spaces, underscores, hyphens and brackets.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "code": ("code", "编号", "地块编号", "地块编码", "地块代码", "地块号", "宗地编号", "宗地号", "宗地代码", "宗地编码",
             "编码", "图斑编号", "项目编号", "dkbh", "zdh", "zddm", "parcelcode", "parcelid", "parcelno", "plotcode",
             "plotid", "标注"),
    "name": ("name", "名称", "地块名称", "宗地名称", "项目名称", "图斑名称", "dkmc", "mc", "parcelname", "title"),
    "kind": ("kind", "type", "类型", "地块类型", "类别", "项目类型", "dklx", "category"),
    "zone": ("zone", "片区", "分区", "所属片区", "功能区", "区域", "pq", "district_zone"),
    "village": ("village", "村", "村名", "村庄", "所属村", "所属村庄", "村居", "村社区", "社区", "行政村", "cun", "cm",
                "villagecode", "villagename"),
    "park": ("park", "园区", "所属园区", "产业园", "parkcode"),
    "stage": ("stage", "阶段", "当前阶段", "进度", "进展", "工作进度", "推进阶段", "jd", "status", "状态"),
    "stage_date": ("stagedate", "阶段日期", "日期", "时间", "完成时间", "date", "rq"),
    "unit": ("unit", "责任单位", "负责单位", "实施单位", "实施主体", "牵头单位", "单位", "zrdw", "responsible",
             "responsibleunit"),
    "owner": ("owner", "权利人", "权属人", "权属单位", "土地权利人", "qlr", "qsdw"),
    "land_use": ("landuse", "用地性质", "现状用途", "土地用途", "地类", "地类名称", "dlmc", "ydxz", "use"),
    "blocked": ("blocked", "卡点", "是否卡点"),
    "blocked_reason": ("blockedreason", "卡点原因", "卡点问题"),
    "note": ("note", "备注", "说明", "bz", "remark", "remarks", "comment"),
}

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
class RawLayer:
    """A layer as read from the file, before any checking."""

    gdf: gpd.GeoDataFrame
    format: str
    encoding: str
    encoding_source: str                 # cpg, detected, user, format
    history: list[dict] | None = None    # stage events carried by the file (our own GeoPackage export)
    notes: list[tuple[int, str, dict]] = field(default_factory=list)  # rows rejected while reading


@dataclass
class ImportPlan:
    """A checked import, ready to preview and commit."""

    report: dict
    parcels: gpd.GeoDataFrame            # one row per parcel to write: ``status`` new / update
    fields: tuple[str, ...]              # fields the file sets (the rest of an existing parcel is kept)
    history: list[dict]
    source: str

    @property
    def preview(self) -> gpd.GeoDataFrame:
        """The parcels to write with their status, for the preview map."""
        return self.parcels[["code", "name", "status", "repaired", "geometry"]]


# ------------------------------------------------------------------ small helpers
def _msg(key: str, lang: str, **params) -> str:
    return t(key, lang, **params)


def column_key(name: str) -> str:
    """A column name as compared with the known aliases: lower case, without spaces, dashes and brackets."""
    return re.sub(r"[\s_\-（）()【】\[\]]", "", str(name).lower())


def _text(values) -> np.ndarray:
    """Cell values as stripped strings ('' for missing); whole floats lose their '.0'."""
    series = values if isinstance(values, pd.Series) else pd.Series(list(values), dtype=object)
    if pd.api.types.is_string_dtype(series.dtype) and series.dtype != object:  # pandas' own string columns
        return series.fillna("").astype(str).str.strip().to_numpy(dtype=object)
    if pd.api.types.is_integer_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype):
        return series.astype(str).to_numpy(dtype=object)
    out = []
    for v in series.tolist():
        if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NaT or v is pd.NA:
            out.append("")
        elif isinstance(v, str):
            out.append(v.strip())
        elif isinstance(v, float) and v.is_integer():
            out.append(str(int(v)))
        elif isinstance(v, (pd.Timestamp, dt.datetime)):
            out.append(v.date().isoformat())
        elif isinstance(v, dt.date):
            out.append(v.isoformat())
        elif isinstance(v, bytes):
            out.append(v.decode("utf-8", "replace").strip())
        else:
            out.append(str(v).strip())
    return np.array(out, dtype=object)


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


def normalise_encoding(name: str | None) -> str | None:
    """A Python codec name for what a .cpg file or a user says (``GBK``, ``936``, ``UTF-8`` …).

    Raises:
        InputError: not an encoding Python knows.
    """
    if name is None or not str(name).strip():
        return None
    n = str(name).strip().lower().replace("_", "-")
    n = {"936": "gbk", "cp936": "gbk", "ansi-936": "gbk", "54936": "gb18030", "65001": "utf-8", "utf8": "utf-8",
         "950": "big5", "1252": "cp1252", "88591": "latin-1", "8859-1": "latin-1"}.get(n, n)

    try:
        return codecs.lookup(n).name
    except LookupError:
        raise InputError("import.bad_encoding", encoding=str(name)) from None


def _is_cjk(ch: str) -> bool:
    o = ord(ch)
    return (0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or 0x3000 <= o <= 0x303F or 0xFF00 <= o <= 0xFFEF
            or 0x20000 <= o <= 0x2A6DF or 0xF900 <= o <= 0xFAFF)


def detect_encoding(raw: bytes) -> tuple[str, bool]:
    """The encoding of Chinese text bytes: ``utf-8`` or ``gb18030`` (and whether it is a confident call).

    UTF-8 is tried first (GBK text almost never decodes as UTF-8); otherwise
    GB18030 is accepted when what it decodes to is mostly Chinese characters —
    which is what tells real GBK from mojibake.
    """
    if not any(b >= 0x80 for b in raw):
        return "utf-8", True
    non_ascii = sum(1 for b in raw if b >= 0x80)
    u = raw.decode("utf-8", errors="replace")
    if u.count("\ufffd") <= max(1, non_ascii // 200):
        return "utf-8", True
    g = raw.decode("gb18030", errors="replace")
    chars = [c for c in g if ord(c) >= 0x80]
    bad = g.count("\ufffd")
    cjk = sum(1 for c in chars if _is_cjk(c))
    if chars and cjk / len(chars) >= 0.8 and bad <= max(1, len(chars) // 50):
        return "gb18030", True
    return "gb18030", False


def dbf_text_bytes(path: Path, max_records: int = 20000) -> bytes:
    """The raw bytes of a DBF's field names and text (C) fields, joined by spaces, for encoding detection."""
    with open(path, "rb") as f:
        head = f.read(32)
        if len(head) < 32:
            return b""
        n_records, header_len, record_len = struct.unpack("<IHH", head[4:12])
        desc = f.read(max(0, header_len - 32))
        fields, offset = [], 1  # byte 0 of a record is the deletion flag
        names = []
        for i in range(0, len(desc) - 31, 32):
            d = desc[i:i + 32]
            if d[0] == 0x0D:
                break
            names.append(d[:11].split(b"\x00")[0])
            length = d[16]
            if d[11:12] == b"C":
                fields.append((offset, length + 256 * d[17] if length == 0 else length))
            offset += length
        out = [b" ".join(names)]
        if fields and record_len:
            f.seek(header_len)
            for _ in range(min(n_records, max_records)):
                rec = f.read(record_len)
                if len(rec) < record_len:
                    break
                for off, ln in fields:
                    out.append(rec[off:off + ln].strip(b" \x00"))
    return b" ".join(out)


# ------------------------------------------------------------------ reading
def read_layer(upload: Upload, ref: LayerRef, encoding: str | None = None) -> RawLayer:
    """Read one layer of a staged upload (no checking of features yet).

    Raises:
        InputError: unreadable file, bad encoding name, CSV without geometry.
    """
    user_enc = normalise_encoding(encoding)
    path = upload.inside(ref.path)
    if ref.format == "geojson":
        return _read_geojson(path, ref.name, user_enc)
    if ref.format == "csv":
        return _read_csv(path, ref.name, user_enc)
    ensure_gdal_hardened()
    enc, enc_source = user_enc, "user" if user_enc else "format"
    if ref.format == "shp" and not user_enc:
        cpg = path.with_suffix(".cpg")
        cpg_text = cpg.read_text("latin-1").strip() if cpg.exists() else ""
        if cpg_text:
            try:
                enc, enc_source = normalise_encoding(cpg_text), "cpg"
            except InputError:
                enc = None
        if not enc:
            enc, _ = detect_encoding(dbf_text_bytes(path.with_suffix(".dbf")))
            enc_source = "detected"
    kwargs = {"on_invalid": "ignore"}
    if ref.format == "shp":
        pyogrio.set_gdal_config_options({"SHAPE_RESTORE_SHX": "YES"})
        kwargs["encoding"] = enc
    if ref.format == "gpkg":
        kwargs["use_arrow"] = True
    try:
        gdf = pyogrio.read_dataframe(path, layer=ref.layer, **kwargs)
    except UnicodeDecodeError:
        raise InputError("import.bad_text", name=ref.name, encoding=enc or "?") from None
    except Exception as e:  # pyogrio's DataSourceError, FieldError, …: GDAL could not read the file
        raise InputError("import.unreadable", name=ref.name, detail=str(e)[:200]) from None
    if not isinstance(gdf, gpd.GeoDataFrame):
        raise InputError("import.no_geometry", name=ref.name)
    gdf = gdf.reset_index(drop=True)
    history = None
    if ref.format == "gpkg":
        enc, enc_source = "utf-8", "format"
        history = read_gpkg_table(path, "stage_events", EVENT_COLUMNS)
    elif ref.format in ("kml", "dxf"):
        enc, enc_source = (enc or "utf-8"), enc_source
    raw = RawLayer(gdf=gdf, format=ref.format, encoding=enc or "utf-8", encoding_source=enc_source, history=history)
    if ref.format == "dxf":
        _dxf_to_polygons(raw)
    return raw


def _dxf_to_polygons(raw: RawLayer) -> None:
    """DXF: closed polylines become polygons; text entities label the polygon they sit in."""
    gdf = raw.gdf
    geoms = np.asarray(gdf.geometry.values, dtype=object)
    types = shapely.get_type_id(geoms)
    texts = _text(gdf["Text"]) if "Text" in gdf.columns else np.array([""] * len(gdf), dtype=object)
    is_label = (types == 0) & (texts != "")
    lines = np.isin(types, (1, 2, 5))  # LineString, LinearRing, MultiLineString
    closed = np.zeros(len(geoms), dtype=bool)
    closed[lines] = [bool(shapely.is_closed(g)) if shapely.get_type_id(g) != 5
                     else all(shapely.is_closed(p) for p in g.geoms) for g in geoms[lines]]
    new = geoms.copy()
    if closed.any():
        new[closed] = shapely.build_area(shapely.force_2d(geoms[closed]))
    for i in np.flatnonzero(lines & ~closed):
        raw.notes.append((i, "import.reject_open_line", {}))
        new[i] = None
    polys = np.isin(shapely.get_type_id(new), (3, 6)) & ~shapely.is_empty(new)
    labels = np.array([""] * len(gdf), dtype=object)
    if is_label.any() and polys.any():
        tree = shapely.STRtree(new[polys])
        pts = geoms[is_label]
        pairs = tree.query(pts, predicate="within")
        poly_idx = np.flatnonzero(polys)
        for p, q in zip(*pairs):
            target = poly_idx[q]
            if not labels[target]:
                labels[target] = texts[is_label][p]
    gdf = gdf.set_geometry(gpd.GeoSeries(new, crs=gdf.crs))
    gdf["标注"] = labels
    keep = ~is_label
    raw.notes = [(int(np.flatnonzero(keep).tolist().index(i)), k, p) for i, k, p in raw.notes if keep[i]]
    raw.gdf = gdf[keep].reset_index(drop=True)


def _geojson_crs(obj) -> tuple[object | None, bool]:
    """(CRS or None, whether a crs member was present but ignored). Links are never followed."""
    crs = obj.get("crs") if isinstance(obj, dict) else None
    if not crs:
        return None, False
    name = ((crs.get("properties") or {}).get("name") if isinstance(crs, dict) else None) or ""
    if re.search(r"CRS84$", str(name)):
        return pyproj.CRS.from_epsg(4326), False
    m = re.search(r"EPSG:{1,2}(\d{4,6})$", str(name))
    if isinstance(crs, dict) and crs.get("type") == "name" and m:
        try:
            return pyproj.CRS.from_epsg(int(m.group(1))), False
        except pyproj.exceptions.CRSError:
            return None, True
    return None, True


def _read_geojson(path: Path, name: str, user_enc: str | None) -> RawLayer:
    obj, enc = parse_json_file(path, name, user_enc)
    if not isinstance(obj, dict) or obj.get("type") not in (
            "FeatureCollection", "Feature", "Polygon", "MultiPolygon", "GeometryCollection", "Point",
            "MultiPoint", "LineString", "MultiLineString"):
        raise InputError("import.content_mismatch", name=name, format="geojson")
    if obj["type"] == "FeatureCollection":
        features = obj.get("features")
        if not isinstance(features, list):
            raise InputError("import.content_mismatch", name=name, format="geojson")
    elif obj["type"] == "Feature":
        features = [obj]
    else:
        features = [{"type": "Feature", "geometry": obj, "properties": {}}]
    geoms, props, notes = [], [], []
    for i, f in enumerate(features):
        if not isinstance(f, dict):
            f = {}
        p = f.get("properties")
        p = dict(p) if isinstance(p, dict) else {}
        if "id" in f and "id" not in p:
            p["id"] = f["id"]
        props.append({k: (json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else v)
                      for k, v in p.items()})
        g = f.get("geometry")
        try:
            geoms.append(shapely.geometry.shape(g) if g else None)
        except (ValueError, TypeError, KeyError, AttributeError, IndexError, shapely.errors.GEOSException):
            geoms.append(None)
            notes.append((i, "import.reject_bad_geometry", {}))
    crs, ignored = _geojson_crs(obj)
    gdf = gpd.GeoDataFrame(pd.DataFrame(props, index=range(len(features))), geometry=geoms, crs=crs)
    raw = RawLayer(gdf=gdf, format="geojson", encoding=enc, encoding_source="user" if user_enc else "detected",
                   notes=notes)
    if ignored:
        raw.notes.append((-1, "import.warn_crs_ignored", {}))
    return raw


_WKT_START = re.compile(r"^\s*(SRID=\d+;)?\s*(MULTI)?(POLYGON|POINT|LINESTRING|GEOMETRYCOLLECTION)\b", re.I)


def _read_csv(path: Path, name: str, user_enc: str | None) -> RawLayer:
    raw_bytes = path.read_bytes()
    if user_enc:
        enc, source = user_enc, "user"
    elif raw_bytes.startswith(b"\xef\xbb\xbf"):
        enc, source = "utf-8", "detected"
    else:
        enc, _ = detect_encoding(raw_bytes[: 4 * 1024 * 1024])
        source = "detected"
    try:
        text = raw_bytes.decode("utf-8-sig" if enc == "utf-8" else enc)
    except (UnicodeDecodeError, LookupError):
        raise InputError("import.bad_text", name=name, encoding=enc) from None

    try:
        dialect = csv.Sniffer().sniff(text[:65536], delimiters=",;\t|")
        sep = dialect.delimiter
    except csv.Error:
        sep = ","
    try:
        df = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError):
        raise InputError("import.unreadable", name=name, detail="CSV") from None
    cols = list(df.columns)
    norm = {column_key(c): c for c in cols}
    wkt_col = next((norm[k] for k in ("wkt", "geometry", "geom", "thegeom", "shape", "几何", "图形", "空间信息",
                                      "坐标") if k in norm), None)
    if wkt_col is None:
        for c in cols:
            first = next((v for v in df[c] if str(v).strip()), "")
            if _WKT_START.match(str(first)):
                wkt_col = c
                break
    crs = None
    notes = []
    if wkt_col is not None:
        values = df[wkt_col].astype(str).tolist()
        srids = set()
        clean = []
        for v in values:
            m = re.match(r"^\s*SRID=(\d+);(.*)$", v, flags=re.S | re.I)
            if m:
                srids.add(int(m.group(1)))
                v = m.group(2)
            clean.append(v.strip() or None)
        geoms = shapely.from_wkt(np.array(clean, dtype=object), on_invalid="ignore")
        for i, (v, g) in enumerate(zip(clean, geoms)):
            if v and g is None:
                notes.append((i, "import.reject_bad_geometry", {}))
        if len(srids) == 1:
            try:
                crs = pyproj.CRS.from_epsg(srids.pop())
            except pyproj.exceptions.CRSError:
                crs = None
        df = df.drop(columns=[wkt_col])
    else:
        lon = next((norm[k] for k in ("lon", "lng", "longitude", "经度", "x") if k in norm), None)
        lat = next((norm[k] for k in ("lat", "latitude", "纬度", "y") if k in norm), None)
        if lon is None or lat is None:
            raise InputError("import.csv_no_geometry", name=name)
        x = pd.to_numeric(df[lon], errors="coerce").to_numpy()
        y = pd.to_numeric(df[lat], errors="coerce").to_numpy()
        geoms = shapely.points(x, y)
        geoms[~(np.isfinite(x) & np.isfinite(y))] = None
    gdf = gpd.GeoDataFrame(df, geometry=list(geoms), crs=crs)
    return RawLayer(gdf=gdf, format="csv", encoding=enc, encoding_source=source, notes=notes)


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


def guess_crs(geoms: np.ndarray, district_lon: float | None) -> CRSChoice:
    """Propose a CRS from the size of the coordinates (for files that carry none).

    - longitude/latitude within China → EPSG:4490;
    - eastings with a zone prefix (8 digits, e.g. 40 512 345) → that 3-degree
      Gauss-Krüger zone, EPSG:4513–4533;
    - six-digit eastings → the CM zone of the district's longitude,
      EPSG:4534–4554, flagged for the user to confirm.

    Raises:
        UnknownCRSError: the coordinates fit none of these.
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
        raise UnknownCRSError("import.crs_outside_china", **where)
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


def _lookup(values: dict[str, tuple], v: str) -> str | None:
    """A code from a code, Chinese or English name (case-insensitive)."""
    if not v:
        return None
    lv = v.lower()
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


def _source_column(gdf, mapping: dict, target: str) -> np.ndarray | None:
    col = mapping.get(target)
    return _text(gdf[col]) if col else None


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
    try:
        return _prepare(store, upload, options, today, raw)
    except (ValueError, TypeError, KeyError, IndexError, OSError, UnicodeError, shapely.errors.GEOSException,
            pyproj.exceptions.ProjError) as e:
        if isinstance(e, RenewalError):
            raise
        # a file odd in a way no check foresaw: say so plainly, keep the cause for the log
        raise InputError("import.failed", name=upload.source_name, detail=f"{type(e).__name__}: {e}"[:200]) from e


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


def clean_geometries(store, gdf: gpd.GeoDataFrame, codes: np.ndarray, rows: "RowReport", opts: ImportOptions):
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
        choice = guess_crs(geoms[present], district_longitude(store))
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
    opts = options or ImportOptions()
    lang = opts.lang
    today = today or clock.office_today()
    ref = upload.layer(opts.layer)
    raw = raw or read_layer(upload, ref, opts.encoding)
    gdf = raw.gdf
    n = len(gdf)
    columns = [c for c in gdf.columns if c != gdf.geometry.name]

    # --- mapping
    mapping = apply_mapping(suggest_mapping(columns), opts.mapping, columns, TARGETS)
    if opts.kind:
        store.catalog.kind(opts.kind)

    codes = _source_column(gdf, mapping, "code")
    rows = RowReport(lang, codes)
    warnings: list[dict] = []
    for i, key, params in raw.notes:
        if i < 0:
            warnings.append({"key": key, "message": _msg(key, lang, **params)})
        else:
            rows.reject(i, key, **params)

    choice, work, ok, repaired_rows, repaired_mask = clean_geometries(store, gdf, codes, rows, opts)

    # --- attributes
    cat = store.catalog
    existing = store.parcels()  # with geometry: for unchanged parcels and overlaps
    existing = existing.set_index("code", drop=False)
    exists = np.asarray(pd.Index(existing.index).get_indexer(codes) >= 0) if len(existing) else np.zeros(n, bool)
    values: dict[str, np.ndarray] = {}
    for target in TARGETS:
        col = _source_column(gdf, mapping, target)
        if col is not None:
            values[target] = col
    kinds = np.full(n, "", dtype=object)
    old_kind = existing["kind"].reindex(codes).to_numpy(dtype=object) if len(existing) else np.full(n, None)
    if "kind" in values:
        names = {c: (k.label_zh, k.label_en) for c, k in cat.kinds.items()}
        given = values["kind"]
        resolved = {v: _lookup(names, v) for v in set(given[ok].tolist()) if v}
        for i in np.flatnonzero(ok & (given != "")):
            if resolved[given[i]] is None:
                rows.reject(int(i), "import.reject_kind", kind=given[i], known=", ".join(cat.kinds))
                ok[i] = False
            else:
                kinds[i] = resolved[given[i]]
    fallback = ok & (kinds == "")
    kinds[fallback] = opts.kind or ""
    use_old = fallback & (kinds == "") & exists
    kinds[use_old] = old_kind[use_old]
    for i in np.flatnonzero(ok & (kinds == "")):
        rows.reject(int(i), "import.reject_no_kind")
        ok[i] = False

    stages = np.array([None] * n, dtype=object)
    stage_dates = np.array([None] * n, dtype=object)
    stage_given = np.zeros(n, dtype=bool)
    if "stage" in values:
        memo: dict[tuple[str, str], str | None] = {}

        def stage_key(kind: str, v: str) -> str | None:
            """A stage key of the kind's pipeline from a key or a label; "" for not started; None if unknown."""
            if (kind, v) not in memo:
                low = v.lower()
                key = "" if low in ("not_started", "未启动", "not started") else None
                for st in cat.pipeline_for(kind).stages:
                    if low in (st.key.lower(), st.label_zh.lower(), st.label_en.lower()) or v == st.label_zh.split("（")[0]:
                        key = st.key
                        break
                memo[(kind, v)] = key
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
    # an existing parcel whose kind changes must keep a stage of its new pipeline
    for i in np.flatnonzero(ok & exists & (kinds != old_kind)):
        stage = stages[i] if stage_given[i] else existing.at[codes[i], "stage"]
        if isinstance(stage, str) and stage and stage not in cat.pipeline_for(kinds[i]).keys:
            rows.reject(int(i), "import.reject_kind_stage", stage=stage)
            ok[i] = False

    blocked = None
    if "blocked" in values:
        blocked = np.zeros(n, dtype=np.int64)
        for i in np.flatnonzero(ok):
            v = values["blocked"][i].lower()
            if v in _TRUE:
                blocked[i] = 1
            elif v not in _FALSE:
                rows.warn(int(i), "import.warn_blocked", value=values["blocked"][i])

    # zone / village / park: normalise given codes or names, derive the rest spatially
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

    # --- warnings: overlaps, outside the district
    good = np.flatnonzero(ok)
    if len(good):
        warnings.extend(_overlap_warnings(existing, work, good, codes, exists, lang))
        warnings.extend(_outside_warnings(store, work, good, codes, lang))

    # --- assemble
    area = np.zeros(n)
    if len(good):
        area[good] = areas_m2(gpd.GeoDataFrame(geometry=list(work[good]), crs=STORE_CRS))
    fields: list[str] = ["kind", "area_m2"]
    data = {"code": codes[good], "kind": kinds[good], "area_m2": np.round(area[good], 2)}
    name = values.get("name")
    data["name"] = np.where(name[good] != "", name[good], codes[good]) if name is not None else codes[good]
    if name is not None:
        fields.append("name")
    for f in ("unit", "owner", "land_use", "blocked_reason", "note"):
        if f in values:
            v = values[f][good]
            # the store keeps "" for unset places and units, NULL for an absent reason or note
            data[f] = np.where(v == "", None, v) if f in ("blocked_reason", "note") else v
            fields.append(f)
    for target, arr in place.items():
        data[target] = arr[good]
        fields.append(target)
    if "stage" in values:
        data["stage"] = stages[good]
        data["stage_date"] = stage_dates[good]
        data["stage_given"] = stage_given[good]
        fields += ["stage", "stage_date"]
    if blocked is not None:
        data["blocked"] = blocked[good]
        fields.append("blocked")
    data["row"] = good + 1
    data["repaired"] = repaired_mask[good]
    data["status"] = np.where(exists[good], "update", "new")
    plan_gdf = gpd.GeoDataFrame(data, geometry=list(work[good]), crs=STORE_CRS)

    # unchanged parcels (a re-import of the same data) are left alone
    if exists[good].any():
        plan_gdf = _drop_unchanged(plan_gdf, existing, fields)

    # history carried by the file, for parcels new to the store: checked like live events
    new = plan_gdf[plan_gdf["status"] == "new"]
    ends = {}
    if "stage" in new.columns and "stage_given" in new.columns:
        ends = {c: (st if isinstance(st, str) and st else None)
                for c, st, given in zip(new["code"], new["stage"], new["stage_given"]) if given}
    history = check_carried_history(raw.history or [], dict(zip(new["code"], new["kind"])), ends,
                                    store.catalog, today)

    n_new = int((plan_gdf["status"] == "new").sum())
    n_upd = int((plan_gdf["status"] == "update").sum())
    rejected = sorted(rows.rejected.values(), key=lambda r: r["row"])
    warnings = rows.row_warnings[:LIST_CAP] + warnings
    report = {
        "source": upload.source_name,
        "layer": ref.name,
        "format": raw.format,
        "features_read": n,
        "features_imported": n_new + n_upd,
        "new": n_new,
        "updated": n_upd,
        "unchanged": int(len(good) - len(plan_gdf)),
        "repaired": len(repaired_rows),
        "repaired_rows": repaired_rows[:LIST_CAP],
        "rejected": rejected[:LIST_CAP],
        "rejected_count": len(rejected),
        "warnings": warnings,
        "crs": choice.epsg if choice.epsg is not None else choice.crs.name,
        "crs_name": choice.crs.name,
        "crs_source": choice.source,
        "crs_confirm": choice.confirm,
        "crs_note": _msg(choice.reason, lang, epsg=choice.epsg) if choice.reason else "",
        "gcj02": bool(opts.gcj02),
        "encoding": raw.encoding,
        "encoding_source": raw.encoding_source,
        "mapping": mapping,
        "columns": [str(c) for c in columns],
        "kind": opts.kind,
        "derived": derived,
        "history_events": len(history),
        "layers": upload.layer_names(),
        "ignored_files": upload.ignored[:LIST_CAP],
        "bounds": [round(float(v), 7) for v in plan_gdf.total_bounds] if len(plan_gdf) else None,
        "dry_run": True,
        "committed": False,
    }
    return ImportPlan(report=report, parcels=plan_gdf, fields=tuple(dict.fromkeys(fields)), history=history,
                      source=upload.source_name or ref.name)


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


def _outside_warnings(store, work, good, codes, lang) -> list[dict]:
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
    if len(gdf) == 0:
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
    result = store.upsert_parcels(records, by=by, note=note, history=plan.history, today=today)
    report.update(dry_run=False, committed=True, new=result["inserted"], updated=result["updated"],
                  features_imported=result["inserted"] + result["updated"], events_written=result["events"],
                  data_version=result["data_version"])
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
