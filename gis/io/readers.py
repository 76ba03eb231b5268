"""Readers: every format an import takes, from a staged upload to a layer of
geometries and text columns (:class:`RawLayer`), with nothing checked yet.

The upload is staged and sniffed first (``gis.io.uploads``); here the bytes
are read: Shapefile, GeoPackage, KML and DXF through GDAL (pyogrio), GeoJSON
and CSV in Python. The text encoding is found (a ``.cpg``, the DBF's bytes,
a BOM) or taken from the user. Rows that cannot be read are noted on the
layer (row, message key) for the importer's report.

Geometry that GEOS cannot hold is made into what it can, and counted:

- curves (CircularString, CompoundCurve, CurvePolygon, MultiSurface … from
  ArcGIS and CAD exports, in a GeoPackage or as WKT in a CSV) are linearised
  by GDAL (``OGR_G_GetLinearGeometry``) with a segment every
  :data:`ARC_STEP_DEGREES` degrees of arc: on a 100 m radius the chords stray
  less than 1 mm from the arc, on 1 km less than 1 cm. DXF bulges are
  linearised at the same step by GDAL's DXF reader;
- TIN, PolyhedralSurface and Triangle become the union of their faces seen
  from above (vertical faces add nothing); one without a face of any area is
  rejected on its row, with that reason.
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
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pyproj
import shapely
from pyogrio.raw import read, read_arrow

from gis.base.errors import InputError, RenewalError
from gis.io.media_tables import read_media
from gis.io.uploads import LayerRef, Upload, ensure_gdal_hardened
from gis.store import schema

#: the columns of the event table, as an exported GeoPackage carries them
EVENT_COLUMNS = tuple(name for name, _ in schema.EVENT_COLUMNS)

#: degrees of arc per segment when curves are linearised (GDAL's OGR_ARC_STEPSIZE; its default is 4)
ARC_STEP_DEGREES = 0.5
#: ISO WKB type numbers (without Z/M) of curves and of surfaces made of faces
CURVE_TYPES = frozenset({8, 9, 10, 11, 12, 13, 14})    # CircularString … Surface
SURFACE_TYPES = frozenset({15, 16, 17})                # PolyhedralSurface, TIN, Triangle
_LINEAR_LAYER_TYPES = {"Point", "LineString", "Polygon", "MultiPoint", "MultiLineString", "MultiPolygon"}
_NONLINEAR_WKT = re.compile(r"\b(CIRCULARSTRING|COMPOUNDCURVE|CURVEPOLYGON|MULTICURVE|MULTISURFACE|TIN|"
                            r"POLYHEDRALSURFACE|TRIANGLE)\b", re.I)
_WKT_START = re.compile(r"^\s*(SRID=\d+;)?\s*(MULTI)?(POLYGON|POINT|LINESTRING|GEOMETRYCOLLECTION|SURFACE|CURVE)\b"
                        r"|^\s*(SRID=\d+;)?\s*(CIRCULARSTRING|COMPOUNDCURVE|CURVEPOLYGON|TIN|POLYHEDRALSURFACE)\b",
                        re.I)


@dataclass
class RawLayer:
    """A layer as read from the file, before any checking."""

    gdf: gpd.GeoDataFrame
    format: str
    encoding: str
    encoding_source: str                 # cpg, detected, user, format
    history: list[dict] | None = None    # stage events carried by the file (our own GeoPackage export)
    media: list | None = None            # attachments it carries for the layer (gis.io.media_tables.MediaRow)
    media_path: Path | None = None       # the staged GeoPackage holding their bytes
    notes: list[tuple[int, str, dict]] = field(default_factory=list)  # rows rejected while reading (-1: a warning)
    linearised: int = 0                  # features whose curves were linearised
    surfaces: int = 0                    # TIN / PolyhedralSurface features turned into polygons


#: what a library may raise on a file odd in a way no check foresaw (RuntimeError: pyogrio's and pyproj's
#: errors, and shapely's NotImplementedError for a geometry type it cannot hold)
UNFORESEEN = (ValueError, TypeError, KeyError, IndexError, OSError, UnicodeError, RuntimeError, struct.error,
              shapely.errors.GEOSException)


@contextmanager
def file_failures(name: str):
    """Turn what an odd file makes a library raise into a message: never a traceback, never exit 1.

    Raises:
        InputError: ``import.failed`` naming the file, the cause's type and text as detail (and chained
            for the log); the project's own errors pass unchanged.
    """
    try:
        yield
    except UNFORESEEN as e:
        if isinstance(e, RenewalError):
            raise
        raise InputError("import.failed", name=name, detail=f"{type(e).__name__}: {e}"[:200]) from e


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
    with file_failures(ref.name):
        if ref.format == "geojson":
            try:
                return _read_geojson(path, ref.name, user_enc)
            except RecursionError:  # nested deeper than Python's stack (no real GeoJSON is): say so plainly
                raise InputError("import.too_deep", name=ref.name) from None
        if ref.format == "csv":
            return _read_csv(path, ref.name, user_enc)
        return _read_gdal(path, ref, user_enc)


def _shapefile_encoding(path: Path) -> tuple[str, str]:
    """A shapefile's encoding: its .cpg when it names one, else detected from the DBF's bytes."""
    cpg = path.with_suffix(".cpg")
    cpg_text = cpg.read_text("latin-1").strip() if cpg.exists() else ""
    if cpg_text:
        try:
            return normalise_encoding(cpg_text), "cpg"
        except InputError:
            pass
    return detect_encoding(dbf_text_bytes(path.with_suffix(".dbf")))[0], "detected"


def _read_gdal(path: Path, ref: LayerRef, user_enc: str | None) -> RawLayer:
    """Shapefile, GeoPackage, KML, DXF: read by GDAL, curves linearised, surfaces made polygons."""
    ensure_gdal_hardened()
    enc, enc_source = user_enc, "user" if user_enc else "format"
    if ref.format == "shp" and not user_enc:
        enc, enc_source = _shapefile_encoding(path)
    kwargs = {"on_invalid": "ignore"}
    if ref.format == "shp":
        kwargs["encoding"] = enc
    pyogrio.set_gdal_config_options({"SHAPE_RESTORE_SHX": "YES", "OGR_ARC_STEPSIZE": str(ARC_STEP_DEGREES)})
    try:
        info = pyogrio.read_info(path, layer=ref.layer, **({"encoding": enc} if ref.format == "shp" else {}))
        try:
            gdf = pyogrio.read_dataframe(path, layer=ref.layer, use_arrow=ref.format == "gpkg", **kwargs)
        except NotImplementedError:  # shapely met a curve in the Arrow batch; GDAL linearises on this path
            gdf = pyogrio.read_dataframe(path, layer=ref.layer, use_arrow=False, **kwargs)
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
        enc = enc or "utf-8"
    raw = RawLayer(gdf=gdf, format=ref.format, encoding=enc or "utf-8", encoding_source=enc_source, history=history)
    if ref.format == "gpkg":
        raw.media = read_media(path, ref.layer or ref.name)
        raw.media_path = path if raw.media else None
    if str(info.get("geometry_type") or "").removesuffix(" Z").removesuffix(" M").removesuffix(" ZM") \
            not in _LINEAR_LAYER_TYPES:
        _fix_nonlinear(raw, path, ref)
    if ref.format == "dxf":
        _dxf_to_polygons(raw)
    return raw


def wkb_type(b) -> int:
    """The ISO type number of a WKB geometry without its Z/M part (3 Polygon, 10 CurvePolygon, 16 TIN …); 0 if none."""
    if b is None or len(b) < 5:
        return 0
    code = struct.unpack("<I" if b[0] == 1 else ">I", bytes(b[1:5]))[0]
    return (code & 0x0FFFFFFF) % 1000


def _fix_nonlinear(raw: RawLayer, path: Path, ref: LayerRef) -> None:
    """Count the curves GDAL linearised and turn TIN / PolyhedralSurface features into polygons.

    The layer's own WKB (read again, geometry only, where GDAL leaves curves
    as they are) says which features were curved or made of faces.
    """
    try:
        _, table = read_arrow(path, layer=ref.layer, columns=[])
    except Exception:  # GDAL read it once already; without a second look there is nothing to count
        return
    if table.num_rows != len(raw.gdf):
        return
    wkbs = table.column(table.num_columns - 1).to_pylist()
    types = np.array([wkb_type(b) for b in wkbs])
    raw.linearised = int(np.isin(types, list(CURVE_TYPES)).sum())
    geoms = np.asarray(raw.gdf.geometry.values, dtype=object).copy()
    for i in np.flatnonzero(np.isin(types, list(SURFACE_TYPES))):
        geoms[i] = _surface_polygons(bytes(wkbs[i]), raw, int(i))
    if raw.surfaces:
        raw.gdf = raw.gdf.set_geometry(gpd.GeoSeries(geoms, crs=raw.gdf.crs))


def _wkb_dims(code: int) -> tuple[int, bool]:
    """(coordinates per point, whether an SRID follows) of an ISO or extended WKB type code."""
    flags, iso = code & 0xF0000000, (code & 0x0FFFFFFF) // 1000
    z = bool(flags & 0x80000000) or iso in (1, 3)
    m = bool(flags & 0x40000000) or iso in (2, 3)
    return 2 + z + m, bool(flags & 0x20000000)


def surface_faces(b: bytes) -> list:
    """The faces of a WKB PolyhedralSurface, TIN or Triangle, as 2D shapely polygons.

    Raises:
        struct.error, ValueError: WKB shorter than it says.
    """
    def polygon_at(off: int):
        order = "<" if b[off] == 1 else ">"
        dims, srid = _wkb_dims(struct.unpack(order + "I", b[off + 1:off + 5])[0])
        off += 5 + 4 * srid
        (n_rings,) = struct.unpack(order + "I", b[off:off + 4])
        off += 4
        rings = []
        for _ in range(n_rings):
            (n_pts,) = struct.unpack(order + "I", b[off:off + 4])
            off += 4
            pts = np.frombuffer(b, dtype=order + "f8", count=n_pts * dims, offset=off).reshape(n_pts, dims)[:, :2]
            off += n_pts * dims * 8
            rings.append(pts)
        ok = rings and len(rings[0]) >= 4
        return (shapely.Polygon(rings[0], [r for r in rings[1:] if len(r) >= 4]) if ok else None), off

    if wkb_type(b) == 17:
        return [g for g in (polygon_at(0)[0],) if g is not None]
    order = "<" if b[0] == 1 else ">"
    _, srid = _wkb_dims(struct.unpack(order + "I", b[1:5])[0])
    off = 5 + 4 * srid
    (n,) = struct.unpack(order + "I", b[off:off + 4])
    off += 4
    faces = []
    for _ in range(n):
        g, off = polygon_at(off)
        if g is not None:
            faces.append(g)
    return faces


def _surface_polygons(b: bytes, raw: RawLayer, row: int):
    """The footprint of a surface made of faces (their union seen from above), or None with the row noted."""
    try:
        faces = surface_faces(b)
    except (struct.error, ValueError):
        faces = []
    parts = [p for f in faces for p in shapely.get_parts(shapely.make_valid(f))
             if shapely.get_type_id(p) in (3, 6) and p.area > 0]
    if not parts:
        raw.notes.append((row, "import.reject_surface", {}))
        return None
    raw.surfaces += 1
    return shapely.union_all(parts)


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
    raw = RawLayer(gdf=gpd.GeoDataFrame(), format="csv", encoding=enc, encoding_source=source)
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
        geoms = _geometries_from_wkt(clean, path, raw)
        noted = {row for row, _, _ in raw.notes}  # surfaces without a face have their own reason
        for i, (v, g) in enumerate(zip(clean, geoms)):
            if v and g is None and i not in noted:
                raw.notes.append((i, "import.reject_bad_geometry", {}))
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
    raw.gdf = gpd.GeoDataFrame(df, geometry=list(geoms), crs=crs)
    return raw


def _geometries_from_wkt(texts: list[str | None], path: Path, raw: RawLayer) -> np.ndarray:
    """Shapely geometries of WKT texts (None where there is none or it does not parse).

    Curves and surfaces, which GEOS cannot hold, go through GDAL: written to a
    small CSV beside the upload (inside the private folder) and read back
    linearised; TIN / PolyhedralSurface become the union of their faces.
    """
    texts = np.array(texts, dtype=object)
    special = np.array([bool(v) and bool(_NONLINEAR_WKT.search(v)) for v in texts], dtype=bool)
    plain = texts.copy()
    plain[special] = None
    try:
        geoms = shapely.from_wkt(plain, on_invalid="ignore")
    except (NotImplementedError, shapely.errors.GEOSException):  # a type GEOS reads but shapely cannot hold
        geoms = np.array([_one_wkt(v) for v in plain], dtype=object)
    if special.any():
        idx = np.flatnonzero(special)
        side = path.with_name(path.stem + "-curves.csv")
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(["n", "WKT"])
        writer.writerows([k, texts[i]] for k, i in enumerate(idx))
        side.write_text(buf.getvalue(), encoding="utf-8")
        ensure_gdal_hardened()
        pyogrio.set_gdal_config_options({"OGR_ARC_STEPSIZE": str(ARC_STEP_DEGREES)})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # "Ignoring invalid WKT": noted by row below
            _, _, wkbs, _ = read(side, encoding="UTF-8")
        side.unlink(missing_ok=True)
        for i, b in zip(idx, wkbs):
            kind = wkb_type(b) if b is not None else 0
            if kind in SURFACE_TYPES:
                geoms[i] = _surface_polygons(bytes(b), raw, int(i))
            elif kind:
                g = shapely.from_wkb(b, on_invalid="ignore")
                geoms[i] = g
                raw.linearised += g is not None
    return geoms


def _one_wkt(text):
    try:
        return shapely.from_wkt(text, on_invalid="ignore") if text else None
    except (NotImplementedError, shapely.errors.GEOSException):
        return None


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
        except RecursionError:  # nested deeper than the parser's stack: no GeoJSON is
            raise InputError("import.too_deep", name=name) from None
    raise InputError("import.content_mismatch", name=name, format="geojson")


