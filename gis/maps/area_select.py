"""Area selection on the district map (框选): a rectangle drawn with Leaflet.draw selects the
tracked parcels in it, for a bulk update.

Offline like the rest of the map: folium's ``Draw`` plugin would load
Leaflet.draw from a CDN; here it loads the copy vendored in
``static/vendor/leaflet-draw`` (absolute URL, the map runs in the component's
iframe). Only the rectangle tool is offered (a polygon's vertex clicks would
each reach the page as map clicks); its texts are the catalogue's.
"""
from __future__ import annotations

import numpy as np
import shapely
from folium.plugins import Draw
from folium.template import Template

from gis.base.i18n import t
from gis.maps.elements import RawMacroElement, js_json
from gis.maps.mapview import STATIC_URL

DRAW_URL = f"{STATIC_URL}/vendor/leaflet-draw"
DRAW_LAYER = "area_select"  # not a catalogue layer: a drawn shape carries no ``layer`` property


class _DrawTexts(RawMacroElement):
    """Leaflet.draw's texts in the reader's language, and one rectangle at a time."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            (function (texts) {
                var d = L.drawLocal.draw;
                d.toolbar.buttons.rectangle = texts.button;
                d.toolbar.actions.title = texts.cancel; d.toolbar.actions.text = texts.cancel;
                d.handlers.rectangle.tooltip.start = texts.start;
                d.handlers.simpleshape.tooltip.end = texts.end;
                {{ this._parent.get_name() }}.on('draw:drawstart', function () {
                    if (window.drawnItems && window.drawnItems.clearLayers) { window.drawnItems.clearLayers(); }
                });
            })({{ this.texts }});
        {% endmacro %}
        """
    )

    def __init__(self, lang: str):
        super().__init__()
        self._name = "AreaSelectTexts"
        self.texts = js_json({k: t(f"bulk.draw_{k}", lang) for k in ("button", "cancel", "start", "end")})


def add_area_select(m, lang: str = "zh"):
    """Add the rectangle tool to a map built by ``build_map`` (top left, under the zoom buttons); returns ``m``."""
    _DrawTexts(lang).add_to(m)
    draw = Draw(
        position="topleft", show_geometry_on_click=False,
        draw_options={"polyline": False, "polygon": False, "circle": False, "marker": False, "circlemarker": False,
                      "rectangle": {"shapeOptions": {"color": "#00b7ff", "weight": 2, "fillOpacity": 0.08},
                                    "showArea": False}},
        edit_options={"edit": False, "remove": False},
    )
    # instance attributes: the class lists (the CDN) stay untouched for anyone else
    draw.default_js = [("leaflet_draw_js", f"{DRAW_URL}/leaflet.draw.js")]
    draw.default_css = [("leaflet_draw_css", f"{DRAW_URL}/leaflet.draw.css")]
    draw.add_to(m)
    return m


def is_drawing(feature) -> bool:
    """Whether a feature streamlit-folium reports (``last_active_drawing``) is a drawn shape, not a clicked parcel."""
    return bool(isinstance(feature, dict) and feature.get("geometry")
                and not (feature.get("properties") or {}).get("layer"))


def parcels_in_area(parcels, feature, to_store=None) -> list[str]:
    """Codes of the parcels (EPSG:4490) lying in a drawn shape, in code order.

    A parcel counts when a point inside it (``representative_point``) is in the shape, so
    a rectangle's edge crossing a neighbour does not pick it. ``to_store(lon, lat)``
    converts the drawing's coordinates back to the store's (e.g. from GCJ-02 over AMap).
    """
    if not is_drawing(feature) or parcels is None or not len(parcels):
        return []
    area = shapely.geometry.shape(feature["geometry"])
    if to_store is not None:
        area = shapely.transform(area, lambda xy: np.array([to_store(x, y) for x, y in xy], dtype=float))
    if area.is_empty or not area.is_valid:
        return []
    inside = parcels.geometry.representative_point().within(area)
    return sorted(parcels.loc[inside.to_numpy(), "code"].astype(str))
