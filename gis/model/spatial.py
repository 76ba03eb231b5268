"""Spatial look-ups on parcels: which parcel is under a click, where a result is."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyproj
import shapely

from gis.base.errors import InputError
from gis.base.units import STORE_CRS


class ParcelIndex:
    """An STR-tree over parcel geometries (EPSG:4490, which web maps show as 4326)."""

    def __init__(self, parcels):
        self.codes = parcels["code"].to_numpy()
        self.kinds = parcels["kind"].to_numpy() if "kind" in parcels.columns else None
        self.geoms = parcels.geometry.to_numpy()
        self.tree = shapely.STRtree(self.geoms)

    def at(self, lon: float, lat: float, codes=None, kinds=None) -> str | None:
        """Code of the parcel containing the point, or None. On shared edges the smallest wins.

        ``codes`` / ``kinds``: only parcels among these (what the map draws: the filter's result,
        the kinds of the layer groups switched on); None for all. A click picks only what is drawn.
        """
        hits = self.tree.query(shapely.Point(lon, lat), predicate="intersects")
        if len(hits) and codes is not None:
            wanted = codes if isinstance(codes, (set, frozenset)) else set(codes)
            hits = hits[[str(c) in wanted for c in self.codes[hits]]]
        if len(hits) and kinds is not None and self.kinds is not None:
            hits = hits[[k in kinds for k in self.kinds[hits]]]
        if len(hits) == 0:
            return None
        if len(hits) > 1:
            hits = hits[np.argsort(shapely.area(self.geoms[hits]))]
        return str(self.codes[hits[0]])


def fit_bounds(gdf, pad: float = 0.1):
    """``[[south, west], [north, east]]`` of a layer with a margin, for Leaflet; None if empty."""
    if gdf is None or len(gdf) == 0:
        return None
    minx, miny, maxx, maxy = gdf.total_bounds
    dx, dy = (maxx - minx) * pad + 0.0005, (maxy - miny) * pad + 0.0005
    return [[float(miny - dy), float(minx - dx)], [float(maxy + dy), float(maxx + dx)]]


def containing_names(geom, layers: dict, tables=("zones", "villages"), lang: str = "zh") -> list[str]:
    """The names of the features of each of ``tables`` (context layers by name) that contain the
    geometry's inner point ("" where none does): e.g. the zone and village a cadastre parcel lies in.
    English names (``name_en``) when ``lang`` is ``en`` and there is one."""
    pt = shapely.point_on_surface(geom)
    out = []
    for table in tables:
        gdf = layers.get(table)
        name = ""
        if gdf is not None and len(gdf):
            hit = gdf[gdf.geometry.contains(pt)]
            if len(hit):
                row = hit.iloc[0]
                name = (row.get("name_en") if lang == "en" else None) or row.get("name") or ""
        out.append(str(name))
    return out


# the parcels measured exactly after the first cut in scaled degrees (at least 4 × n)
_NEAR_CANDIDATES = 64


def _local_metric(lon: float, lat: float) -> pyproj.Transformer:
    """Degrees → metres in an azimuthal equidistant frame centred on the point, on the CGCS2000 ellipsoid
    (GRS80): the distance from the centre to any point is its geodesic distance, in China or anywhere."""
    crs = pyproj.CRS.from_proj4(f"+proj=aeqd +lat_0={lat:.9f} +lon_0={lon:.9f} +ellps=GRS80 +units=m +no_defs")
    return pyproj.Transformer.from_crs(STORE_CRS, crs, always_xy=True)


def nearest_parcels(parcels, lon: float, lat: float, n: int = 10, max_m: float | None = None) -> pd.DataFrame:
    """The ``n`` parcels nearest to a place (lon/lat in EPSG:4490 or WGS84 degrees), nearest first.

    The distance is to the parcel's edge in metres (0 when the place is inside it), measured on the
    CGCS2000 ellipsoid, never in degrees. Parcels farther than ``max_m`` are left out. Returns a table of
    the parcels' columns without geometry plus ``distance_m`` (float), ``inside`` (bool) and ``bearing``
    (degrees from north, from the place to the parcel's inner point), in the order of the parcels when
    distances tie.

    Raises:
        InputError: a longitude or latitude that is not a place on Earth.
    """
    if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90):
        raise InputError("error.bad_location", lon=str(lon), lat=str(lat))
    if parcels is None or len(parcels) == 0 or n <= 0:
        return _empty_nearest(parcels)
    geoms = np.asarray(parcels.geometry.values, dtype=object)
    ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    # a first cut in degrees scaled to the latitude (cheap, vectorised), then the exact metric distance for
    # the few candidates: enough of them that the scaled-degree error cannot change the n nearest
    here = shapely.Point(lon * math.cos(math.radians(lat)), lat)
    scaled = shapely.transform(geoms[ok], lambda c: c * [math.cos(math.radians(lat)), 1.0])
    rough = np.full(len(geoms), np.inf)
    rough[ok] = shapely.distance(scaled, here)
    take = min(len(geoms), max(n * 4, _NEAR_CANDIDATES))
    cand = np.argsort(rough, kind="stable")[:take]
    cand = cand[np.isfinite(rough[cand])]
    to_m = _local_metric(lon, lat)
    local = shapely.transform(geoms[cand], lambda c: np.column_stack(to_m.transform(c[:, 0], c[:, 1])))
    origin = shapely.Point(0.0, 0.0)
    dist = shapely.distance(local, origin)
    inner = shapely.point_on_surface(local)
    bearing = (np.degrees(np.arctan2(shapely.get_x(inner), shapely.get_y(inner))) + 360.0) % 360.0
    order = np.argsort(dist, kind="stable")
    if max_m is not None:
        order = order[dist[order] <= max_m]
    order = order[:n]
    out = pd.DataFrame(parcels.iloc[cand[order]].drop(columns=parcels.geometry.name))
    out["distance_m"] = dist[order].astype(float)
    out["inside"] = dist[order] == 0.0
    out["bearing"] = np.where(out["inside"], np.nan, bearing[order])
    return out.reset_index(drop=True)


def _empty_nearest(parcels) -> pd.DataFrame:
    cols = [c for c in (parcels.columns if parcels is not None else []) if c != getattr(parcels, "_geometry_column_name", "geometry")]
    out = pd.DataFrame(columns=cols)
    out["distance_m"], out["inside"], out["bearing"] = pd.Series(dtype=float), pd.Series(dtype=bool), pd.Series(dtype=float)
    return out


#: the eight compass points, from north clockwise (keys of ``field.compass`` in the catalogues)
COMPASS = ("n", "ne", "e", "se", "s", "sw", "w", "nw")


def compass_point(bearing: float | None) -> str | None:
    """The compass point (``n``, ``ne`` …) of a bearing in degrees from north; None for none (inside)."""
    if bearing is None or not math.isfinite(bearing):
        return None
    return COMPASS[int(((bearing % 360) + 22.5) // 45) % 8]
