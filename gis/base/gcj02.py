"""GCJ-02 ("Mars coordinates"), the obfuscated datum of AMap/Gaode and Tencent maps.

AMap draws its tiles in GCJ-02: a WGS84/CGCS2000 point shows up hundreds of
metres away on them. The forward transform is the published algorithm (the
formulas of eviltransform / coordtransform: Krasovsky semi-major axis
a = 6378245.0, e² = 0.00669342162296594323) and applies only inside the
rough rectangle around China those libraries use; elsewhere the coordinates
pass unchanged. There is no closed-form inverse: :func:`gcj02_to_wgs84`
iterates the forward transform (fixed point, converging to < 1 mm in a few
rounds; we stop at 1e-9° ≈ 0.1 mm).

CGCS2000 and WGS84 differ by centimetres (DESIGN.md section 5), far below
what GCJ-02 or a web map resolves: both are treated as one datum here.

Everything is vectorised (numpy arrays or scalars in, the same shape out).
"""
from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely

from gis.base.errors import InputError

A = 6378245.0
EE = 0.00669342162296594323
# The out-of-China rectangle of eviltransform/coordtransform (lon 72.004–137.8347, lat 0.8293–55.8271)
CHINA_LON = (72.004, 137.8347)
CHINA_LAT = (0.8293, 55.8271)

DATUMS = ("wgs84", "cgcs2000", "gcj02")
_INVERSE_TOL_DEG = 1e-9
_INVERSE_MAX_ROUNDS = 30


def out_of_china(lon, lat):
    """True where the point lies outside China's rectangle (no GCJ-02 shift there)."""
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    return (lon < CHINA_LON[0]) | (lon > CHINA_LON[1]) | (lat < CHINA_LAT[0]) | (lat > CHINA_LAT[1])


def _offset(lon, lat):
    """(dlon, dlat) in degrees that GCJ-02 adds to a WGS84 point (ignoring the rectangle)."""
    x, y = lon - 105.0, lat - 35.0
    sx = 20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)
    dlat = (-100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
            + sx * 2.0 / 3.0
            + (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
            + (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0)
    dlon = (300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
            + sx * 2.0 / 3.0
            + (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
            + (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0)
    rad = lat / 180.0 * np.pi
    magic = 1.0 - EE * np.sin(rad) ** 2
    sqrt_magic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((A * (1.0 - EE)) / (magic * sqrt_magic) * np.pi)
    dlon = (dlon * 180.0) / (A / sqrt_magic * np.cos(rad) * np.pi)
    return dlon, dlat


def _out(lon, lat, like_lon):
    if np.ndim(like_lon) == 0:
        return float(lon), float(lat)
    return lon, lat


def wgs84_to_gcj02(lon, lat):
    """WGS84 (or CGCS2000) lon/lat → GCJ-02 lon/lat; unchanged outside China."""
    lon0, lat0 = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    dlon, dlat = _offset(lon0, lat0)
    outside = out_of_china(lon0, lat0)
    return _out(np.where(outside, lon0, lon0 + dlon), np.where(outside, lat0, lat0 + dlat), lon)


def gcj02_to_wgs84(lon, lat):
    """GCJ-02 lon/lat → WGS84 (≈ CGCS2000) lon/lat, the iterative inverse (error < 1 mm); unchanged outside China.

    Fixed-point iteration ``w ← w − (gcj(w) − g)``: the offset changes by
    less than 1e-4 of a degree per degree, so each round gains about four
    digits; a few rounds reach the 1e-9° tolerance.
    """
    g_lon, g_lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    outside = out_of_china(g_lon, g_lat)
    w_lon, w_lat = g_lon.copy(), g_lat.copy()
    for _ in range(_INVERSE_MAX_ROUNDS):
        dlon, dlat = _offset(w_lon, w_lat)
        e_lon, e_lat = (w_lon + dlon) - g_lon, (w_lat + dlat) - g_lat
        w_lon, w_lat = w_lon - e_lon, w_lat - e_lat
        if np.all(np.abs(e_lon) < _INVERSE_TOL_DEG) and np.all(np.abs(e_lat) < _INVERSE_TOL_DEG):
            break
    return _out(np.where(outside, g_lon, w_lon), np.where(outside, g_lat, w_lat), lon)


def convert(lon, lat, src: str, dst: str):
    """lon/lat from datum ``src`` to ``dst`` (``wgs84``, ``cgcs2000`` or ``gcj02``).

    Raises:
        InputError: an unknown datum name.
    """

    for d in (src, dst):
        if d not in DATUMS:
            raise InputError("basemap.bad_datum", datum=str(d), known=", ".join(DATUMS))
    src_gcj, dst_gcj = src == "gcj02", dst == "gcj02"
    if src_gcj == dst_gcj:
        if np.ndim(lon) == 0:
            return float(lon), float(lat)
        return np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    return wgs84_to_gcj02(lon, lat) if dst_gcj else gcj02_to_wgs84(lon, lat)


def _coords_to_gcj02(coords: np.ndarray) -> np.ndarray:
    lon, lat = wgs84_to_gcj02(coords[:, 0], coords[:, 1])
    return np.column_stack([lon, lat])


def _coords_from_gcj02(coords: np.ndarray) -> np.ndarray:
    lon, lat = gcj02_to_wgs84(coords[:, 0], coords[:, 1])
    return np.column_stack([lon, lat])


def geometries_to_gcj02(geoms):
    """Shapely geometries (array or GeoSeries values) in lon/lat → the same in GCJ-02 (one vectorised pass)."""
    return shapely.transform(geoms, _coords_to_gcj02)


def geometries_from_gcj02(geoms):
    """The inverse of :func:`geometries_to_gcj02`."""
    return shapely.transform(geoms, _coords_from_gcj02)


def gdf_to_gcj02(gdf):
    """A GeoDataFrame in geographic coordinates (EPSG:4490/4326) → a copy shifted to GCJ-02 for display.

    The copy keeps its CRS label (GCJ-02 has no EPSG code): it is for drawing
    over GCJ-02 tiles only, never for storing or measuring.
    """
    if gdf is None or len(gdf) == 0:
        return gdf
    shifted = geometries_to_gcj02(np.asarray(gdf.geometry.values, dtype=object))
    out = gdf.copy()
    out[gdf.geometry.name] = gpd.GeoSeries(shifted, index=gdf.index, crs=gdf.crs)
    return out
