"""The field page's small map: the parcels around me, where I am, the site photos there.

Like ``mapview`` it never imports streamlit; the only marks it adds itself carry no text.
"""
from __future__ import annotations

import folium

from gis.maps.elements import RawFeatureGroup
from gis.maps.mapview import build_map
from gis.model.pipelines import Catalog

HERE_COLOR = "#1f78b4"


def here_group(lon: float, lat: float, accuracy_m: float | None = None) -> folium.FeatureGroup:
    """Where the phone is: a blue dot and, when known, the circle of its accuracy (no text on it)."""
    fg = RawFeatureGroup(name="here", control=False, show=True)
    if accuracy_m and accuracy_m > 0:
        folium.Circle([lat, lon], radius=float(min(accuracy_m, 5000)), color=HERE_COLOR, weight=1,
                      fill=True, fill_opacity=0.12, interactive=False).add_to(fg)
    folium.CircleMarker([lat, lon], radius=8, color="#ffffff", weight=3, fill=True, fill_color=HERE_COLOR,
                        fill_opacity=1, interactive=False).add_to(fg)
    return fg


def field_map(parcels, catalog: Catalog, lang: str = "zh", *, here: tuple | None = None, bounds=None,
              photos: list[dict] | None = None, demo: bool = True) -> folium.Map:
    """The field page's map: only ``parcels`` (those around me), coloured by stage like the district map,
    the layer switcher folded, the photos around; ``here`` = ``(lon, lat, accuracy_m)`` adds my position."""
    m = build_map({}, parcels, catalog, lang=lang, bounds=bounds, demo=demo, collapsed=True, photos=photos)
    if here is not None:
        here_group(*here).add_to(m)
    return m
