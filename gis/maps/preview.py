"""The import page's preview: the parcels an import would write, on a small offline map."""
from __future__ import annotations

import folium
import numpy as np
import shapely

from gis.io.importer import ImportPlan
from gis.maps.mapview import LAND_COLOR, add_support, offline_map, to_web

PREVIEW_LIMIT = 2000
PREVIEW_COLORS = {"new": "#1a9850", "update": "#f46d43", "repaired": "#d7191c"}
DISTRICT_STYLE = {"color": "#333333", "weight": 2, "dashArray": "8 4", "fill": False, "interactive": False}


def _geometries(geoms) -> dict:
    """A FeatureCollection of geometries only: no text from any file reaches the page."""
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": shapely.geometry.mapping(g)} for g in geoms
        if g is not None and not g.is_empty]}


def preview_map(plan: ImportPlan, limit: int = PREVIEW_LIMIT, district=None):
    """A small offline Leaflet map of the parcels an import would write, coloured by status, on the
    map's land colour with the district's outline (``district``: its layer, optional) and a metric
    scale bar.

    Only geometry and a status (new/update/repaired) go into the page — no
    text from the file — and Leaflet comes from the app's own static folder.
    Returns ``(folium.Map, shown)``.
    """
    gdf = plan.parcels.iloc[:limit]
    m = add_support(offline_map(control_scale=False, prefer_canvas=True), LAND_COLOR)
    if district is not None and len(district):
        folium.GeoJson(_geometries(to_web(district).geometry), style_function=lambda f: DISTRICT_STYLE,
                       control=False).add_to(m)
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
