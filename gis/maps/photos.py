"""Site photos on the map as points with their direction (issue 17 item 3), for every map of the app.

Never imports streamlit; text reaches the page only through ``textContent`` (a caption is data): the
layer is one escaped GeoJSON drawn by ``RenewalAtlas.addPhotos`` in ``static/js/renewal-atlas.js``,
shown from ``PHOTO_MIN_ZOOM`` on (a district of photos would bury the map).
"""
from __future__ import annotations

import json

import folium
from folium.template import Template

from gis.base.i18n import t
from gis.maps.elements import RawFeatureGroup, RawMacroElement, escape_html, js_json, safe_json_text

PHOTO_MIN_ZOOM = 15
PHOTO_COLOR = "#6a3d9a"


class _PhotoLayer(RawMacroElement):
    """The photo points of one FeatureCollection, arrows turned to their direction; a child of a FeatureGroup."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            var {{ this.get_name() }} = RenewalAtlas.addPhotos(
                {{ this._parent._parent.get_name() }}, {{ this._parent.get_name() }},
                {{ this.data }}, {{ this.options }});
        {% endmacro %}
        """
    )

    def __init__(self, data: str, options: dict):
        super().__init__()
        self._name = "AtlasPhotos"
        self.data = data
        self.options = js_json(options)


def photo_collection(points: list[dict]) -> str:
    """A FeatureCollection (script-safe JSON text) of ``store.photo_points()`` rows with a location."""
    feats = []
    for p in points:
        lon, lat = p.get("lon"), p.get("lat")
        if lon is None or lat is None:
            continue
        d = p.get("direction")
        feats.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [round(float(lon), 7), round(float(lat), 7)]},
                      "properties": {"layer": "photos", "id": int(p["id"]), "code": p.get("code"),
                                     "direction": None if d is None else float(d) % 360,
                                     "caption": p.get("caption") or "", "taken_at": p.get("taken_at") or ""}})
    return safe_json_text(json.dumps({"type": "FeatureCollection", "features": feats}, ensure_ascii=False,
                                     separators=(",", ":"), allow_nan=False))


def photo_group(points: list[dict], lang: str = "zh", min_zoom: int = PHOTO_MIN_ZOOM) -> folium.FeatureGroup:
    """Site photos as points, each with an arrow (a cone) turned to the direction it was taken in (EXIF
    GPSImgDirection; a dot where there is none), drawn from zoom ``min_zoom`` on; a tooltip shows the
    parcel, the caption and the time taken. A layer-switcher group named 现场照片."""
    fg = RawFeatureGroup(name=escape_html(t("map.photos", lang)), overlay=True, control=True, show=True)
    _PhotoLayer(photo_collection(points), {"minZoom": min_zoom, "color": PHOTO_COLOR, "sep": t("ux.sep", lang),
                                           "codeLabel": t("ui.code", lang)}).add_to(fg)
    return fg


