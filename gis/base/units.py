"""Coordinate systems and area units of the field (DESIGN.md section 5).

CGCS2000 geographic is EPSG:4490. Its 3-degree Gauss-Krüger zones are
EPSG:4513–4533 (zones 25–45, easting prefixed with the zone number) and
EPSG:4534–4554 (the same zones, "CM xxxE", no prefix). Areas are computed in
the zone whose central meridian is nearest to each feature, never in degrees.
"""
from __future__ import annotations

import functools

import geopandas as gpd
import numpy as np
import pyproj
import shapely

from gis.base.errors import UnknownCRSError
from gis.base.i18n import t

STORE_CRS = "EPSG:4490"
WEB_CRS = "EPSG:4326"
M2_PER_MU = 10000 / 15  # 1 亩 ≈ 666.67 m²
M2_PER_HA = 10000.0


def gk3_zone(lon: float) -> int:
    """3-degree zone number (central meridian = 3 × zone) for a longitude in China (25–45)."""
    zone = int(round(lon / 3.0))
    if not 25 <= zone <= 45:

        raise UnknownCRSError("error.outside_china", lon=f"{lon:.4f}")
    return zone


def gk_epsg(lon: float, prefixed: bool = False) -> int:
    """EPSG code of the CGCS2000 3-degree GK zone for a longitude.

    ``prefixed`` chooses the variant whose eastings carry the zone number
    (e.g. 40500000 instead of 500000).
    """
    zone = gk3_zone(lon)
    return (4513 if prefixed else 4534) + zone - 25


def mu(m2):
    """m² → 亩 (scalars or arrays)."""
    return m2 / M2_PER_MU


def hectares(m2):
    """m² → 公顷 (scalars or arrays)."""
    return m2 / M2_PER_HA


def areas_m2(gdf) -> np.ndarray:
    """Area of each geometry in m², computed in the 3-degree Gauss-Krüger zone of its own centre.

    One zone for a whole layer is only right near that zone: a province-wide
    file (Xinjiang spans eight zones) would be off by up to several per cent
    at its far end. Outside zones 25–45 (beyond China) the area is taken on
    the CGCS2000 ellipsoid. Missing geometry gives NaN, empty geometry 0.
    """
    if len(gdf) == 0:
        return np.zeros(0)
    geo = gdf.to_crs(STORE_CRS) if gdf.crs and not gdf.crs.equals(STORE_CRS) else gdf
    geoms = np.asarray(geo.geometry.values, dtype=object)
    bounds = shapely.bounds(geoms)
    zone = np.round((bounds[:, 0] + bounds[:, 2]) / 2 / 3.0)
    out = np.where(shapely.is_empty(geoms) & ~shapely.is_missing(geoms), 0.0, np.nan)
    finite = np.isfinite(zone)
    for z in np.unique(zone[finite]):
        mask = finite & (zone == z)
        if 25 <= z <= 45:
            out[mask] = gpd.GeoSeries(geoms[mask], crs=STORE_CRS).to_crs(4534 + int(z) - 25).area.to_numpy()
        else:
            geod = pyproj.Geod(ellps="GRS80")  # the CGCS2000 ellipsoid, to well under a millimetre
            out[mask] = [abs(geod.geometry_area_perimeter(g)[0]) for g in geoms[mask]]
    return out


def to_web(gdf):
    """A layer in EPSG:4326 (store layers are EPSG:4490; no CRS is taken as 4490).

    CGCS2000 and WGS 84 differ by centimetres and PROJ's transformation between
    them is the identity ("ballpark"): a layer in 4490 is only relabelled, instead
    of every vertex going through PROJ on every run of the page (a quarter of it)."""
    if gdf.crs is None or _crs_is(gdf.crs, STORE_CRS):
        return gdf.set_crs(_web_crs(), allow_override=True)  # a CRS object: not the string parsed again
    if not _crs_is(gdf.crs, WEB_CRS):
        gdf = gdf.to_crs(WEB_CRS)
    return gdf


@functools.lru_cache(maxsize=1)
def _web_crs() -> pyproj.CRS:
    return pyproj.CRS.from_user_input(WEB_CRS)


@functools.lru_cache(maxsize=64)
def _crs_equal(srs: str, code: str) -> bool:
    return pyproj.CRS.from_user_input(srs).equals(code)


def _crs_is(crs, code: str) -> bool:
    """``crs.equals(code)``, remembered by the CRS's definition: pyproj parses ``code`` again on every
    ``equals`` (≈0.3 ms; a page run with a panel open asked it a dozen times, issue 19)."""
    srs = getattr(crs, "srs", None)
    return _crs_equal(srs, code) if isinstance(srs, str) and srs else crs.equals(code)


def format_area(m2: float, lang: str = "zh") -> str:
    """'12,345 m²（18.52 亩 / 1.23 公顷）' — the three units planners read."""
    if lang == "en":
        return f"{m2:,.0f} m² ({m2 / M2_PER_MU:,.2f} mu / {m2 / M2_PER_HA:,.2f} ha)"
    return f"{m2:,.0f} 平方米（{m2 / M2_PER_MU:,.2f} 亩 / {m2 / M2_PER_HA:,.2f} 公顷）"


def crs_label(epsg: int, lang: str = "zh") -> str:
    """A CGCS2000 / WGS 84 code as planners know it: ``EPSG:4528 CGCS2000 3° GK zone 40``
    (eastings with the zone prefix, 4513–4533) or ``… CM 120°E`` (without, 4534–4554)."""
    epsg = int(epsg)
    if epsg == 4490:
        return "EPSG:4490 CGCS2000"
    if epsg == 4326:
        return "EPSG:4326 WGS 84"
    if 4513 <= epsg <= 4533:
        return t("ux.crs_gk_zone", lang, epsg=epsg, zone=epsg - 4513 + 25)
    if 4534 <= epsg <= 4554:
        return t("ux.crs_gk_cm", lang, epsg=epsg, cm=3 * (epsg - 4534 + 25))
    return f"EPSG:{epsg}"
