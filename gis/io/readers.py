"""Readers: every format an import takes, from a staged upload to a layer of
geometries and text columns (:class:`RawLayer`), with nothing checked yet.

The upload is staged and sniffed first (``gis.io.uploads``); here the bytes
are read: Shapefile, GeoPackage, KML and DXF through GDAL (pyogrio), GeoJSON
and CSV in Python. The text encoding is found (a ``.cpg``, the DBF's bytes,
a BOM) or taken from the user. Rows that cannot be read are noted on the
layer (row, message key) for the importer's report.
"""
from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import json
import math
import re
import sqlite3
import struct
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from gis.base.errors import InputError
from gis.io.uploads import LayerRef, Upload, ensure_gdal_hardened
from gis.store import schema

#: the columns of the event table, as an exported GeoPackage carries them
EVENT_COLUMNS = tuple(name for name, _ in schema.EVENT_COLUMNS)


@dataclass
class RawLayer:
    """A layer as read from the file, before any checking."""

    gdf: gpd.GeoDataFrame
    format: str
    encoding: str
    encoding_source: str                 # cpg, detected, user, format
    history: list[dict] | None = None    # stage events carried by the file (our own GeoPackage export)
    notes: list[tuple[int, str, dict]] = field(default_factory=list)  # rows rejected while reading


# ------------------------------------------------------------------ cells and names
def column_key(name: str) -> str:
    """A column name as compared with the known aliases: lower case, without spaces, dashes and brackets."""
    return re.sub(r"[\s_\-（）()【】\[\]]", "", str(name).lower())


def cell_text(values) -> np.ndarray:
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


# ------------------------------------------------------------------ text encodings
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
    import pyogrio

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
    texts = cell_text(gdf["Text"]) if "Text" in gdf.columns else np.array([""] * len(gdf), dtype=object)
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


# ------------------------------------------------------------------ GeoPackage tables and JSON
def read_gpkg_table(path: Path, table: str, columns: tuple[str, ...]) -> list[dict] | None:
    """Rows of an attributes table of a staged GeoPackage (e.g. an exported ``stage_events``), or None."""
    uri = "file:" + str(path) + "?mode=ro&immutable=1"
    con = sqlite3.connect(uri, uri=True)
    con.row_factory = sqlite3.Row
    try:
        cols = {r[1] for r in con.execute(f'PRAGMA table_info("{table}")')}
        if not set(columns) <= cols:
            return None
        sel = ", ".join(f'"{c}"' for c in columns)
        return [dict(r) for r in con.execute(f'SELECT {sel} FROM "{table}" ORDER BY rowid')]
    except sqlite3.Error:
        return None
    finally:
        con.close()


def parse_json_file(path: Path, name: str, encoding: str | None = None) -> tuple[object, str]:
    """A JSON document (UTF-8 with or without BOM; GB18030 tolerated) and the encoding used.

    Raises:
        InputError: not JSON.
    """
    raw = path.read_bytes()
    encs = [encoding] if encoding else ["utf-8-sig", "gb18030"]
    for enc in encs:
        try:
            text = raw.decode(enc)
            return json.loads(text), ("utf-8" if enc == "utf-8-sig" else enc)
        except (UnicodeDecodeError, LookupError):
            continue
        except json.JSONDecodeError:
            raise InputError("import.content_mismatch", name=name, format="geojson") from None
    raise InputError("import.content_mismatch", name=name, format="geojson")


