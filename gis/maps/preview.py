"""The import page's preview: the parcels an import would write, on a small offline map."""
from __future__ import annotations

import folium
import numpy as np
import shapely

from gis.io.importer import ImportPlan
from gis.maps.mapview import LEAFLET_URL

PREVIEW_LIMIT = 2000
PREVIEW_COLORS = {"new": "#1a9850", "update": "#f46d43", "repaired": "#d7191c"}


def preview_map(plan: ImportPlan, limit: int = PREVIEW_LIMIT):
    """A small offline Leaflet map of the parcels an import would write, coloured by status.

    Only geometry and a status (new/update/repaired) go into the page — no
    text from the file — and Leaflet comes from the app's own static folder.
    Returns ``(folium.Map, shown)``.
    """
    gdf = plan.parcels.iloc[:limit]
    m = folium.Map(tiles=None, control_scale=True, prefer_canvas=True)
    m.default_js = [("leaflet", f"{LEAFLET_URL}/leaflet.js")]
    m.default_css = [("leaflet_css", f"{LEAFLET_URL}/leaflet.css")]
    if len(gdf):
        status = np.where(gdf["repaired"].to_numpy(), "repaired", gdf["status"].to_numpy())
        geoms = shapely.simplify(np.asarray(gdf.geometry.values, dtype=object), 1e-6, preserve_topology=True)
        fc = {"type": "FeatureCollection", "features": [
            {"type": "Feature", "properties": {"s": str(s)}, "geometry": shapely.geometry.mapping(g)}
            for s, g in zip(status, geoms)]}
        folium.GeoJson(fc, style_function=lambda f: {
            "color": PREVIEW_COLORS.get(f["properties"]["s"], "#555555"), "weight": 1.5,
            "fillOpacity": 0.35}).add_to(m)
        minx, miny, maxx, maxy = gdf.total_bounds
        m.fit_bounds([[float(miny), float(minx)], [float(maxy), float(maxx)]])
    return m, len(gdf)
