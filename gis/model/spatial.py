"""Spatial look-ups on parcels: which parcel is under a click, where a result is."""
from __future__ import annotations

import numpy as np
import shapely


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
