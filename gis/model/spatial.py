"""Spatial look-ups on parcels: which parcel is under a click, where a result is."""
from __future__ import annotations

import numpy as np
import shapely


class ParcelIndex:
    """An STR-tree over parcel geometries (EPSG:4490, which web maps show as 4326)."""

    def __init__(self, parcels):
        self.codes = parcels["code"].to_numpy()
        self.geoms = parcels.geometry.to_numpy()
        self.tree = shapely.STRtree(self.geoms)

    def at(self, lon: float, lat: float) -> str | None:
        """Code of the parcel containing the point, or None. On shared edges the smallest wins."""
        hits = self.tree.query(shapely.Point(lon, lat), predicate="intersects")
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
