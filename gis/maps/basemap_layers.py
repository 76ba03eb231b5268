"""A resolved basemap (``gis.basemaps``) on the folium map.

- tile basemaps: Leaflet tile layers in the tile pane (below every overlay),
  with a watchdog that shows a notice over the map when tiles fail
  (``TILE_ERRORS_FOR_NOTICE`` errors, more errors than loads) or none has
  loaded ``TILE_TIMEOUT_MS`` after the first request: an intranet without
  internet, a wrong key. The data stay on the map; nothing waits for tiles.
- a server-side notice (Tianditu without key, missing file): the same box,
  shown at once, and no tile layer at all — nothing is requested.
- local rasters: the whole-image underlay goes to ``build_map(basemap=...)``
  (the imagery group of the layer switcher); the sharper image of the current
  view is a feature group for streamlit-folium's ``feature_group_to_add``,
  so a pan replaces it without re-rendering the map.

Text reaches the page only through ``textContent`` (notice) or
``escape_html`` (attributions, which Leaflet puts in with ``innerHTML``);
options go in as script-safe JSON (``js_json``).
"""
from __future__ import annotations

import folium
from folium.template import Template

from gis.base.i18n import t
from gis.maps.basemaps import TILE_ERRORS_FOR_NOTICE, TILE_TIMEOUT_MS, Basemap
from gis.maps.elements import RawFeatureGroup, RawMacroElement, escape_html, js_json
from gis.maps.mapview import GENERATED_URL
from gis.maps.rasterview import raster_info, render_underlay, render_view


class _TileBasemap(RawMacroElement):
    """Tile layers and the unreachable-basemap notice (one per map)."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            RenewalBasemap.add({{ this._parent.get_name() }}, {{ this.options_json() }});
        {% endmacro %}
        """
    )

    def __init__(self, options: dict):
        super().__init__()
        self._name = "AtlasTileBasemap"
        self.options = options

    def options_json(self) -> str:
        return js_json(self.options)


class _ViewImage(RawMacroElement):
    """One image overlay in the basemap pane (above the underlay, below every vector)."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            L.imageOverlay({{ this.url }}, {{ this.bounds }},
                           {pane: 'ratlasBasemap', interactive: false, className: 'ratlas-view-image'})
             .addTo({{ this._parent.get_name() }});
        {% endmacro %}
        """
    )

    def __init__(self, url: str, bounds):
        super().__init__()
        self._name = "AtlasViewImage"
        self.url = js_json(str(url))
        self.bounds = js_json(bounds)


def add_basemap(m: folium.Map, basemap: Basemap | None, lang: str = "zh") -> folium.Map:
    """Add a tile basemap (or the server-side notice) to a map from ``build_map``; local kinds add nothing."""
    if basemap is None or (not basemap.tiles and not basemap.notice):
        return m
    options = {
        "tiles": [{"url": s.url, "subdomains": s.subdomains, "attribution": escape_html(s.attribution),
                   "maxNativeZoom": s.max_native_zoom} for s in basemap.tiles],
        "notice": basemap.notice_text(lang) or t("basemap.unreachable", lang, name=basemap.label),
        "noticeNow": bool(basemap.notice),
        "maxErrors": TILE_ERRORS_FOR_NOTICE,
        "timeoutMs": TILE_TIMEOUT_MS,
    }
    _TileBasemap(options).add_to(m)
    return m


def raster_underlay(basemap: Basemap | None, out_dir, url_prefix: str = GENERATED_URL) -> dict | None:
    """For a local raster basemap: ``build_map``'s ``basemap=`` dict (whole-image underlay), else None.

    Raises:
        InputError: the raster cannot be read.
    """
    if basemap is None or basemap.raster is None:
        return None

    out = render_underlay(basemap.raster, out_dir, url_prefix)
    if out is not None:
        out["attribution"] = basemap.attribution
    return out


def returned_view(out: dict | None):
    """``(bounds [[s, w], [n, e]], zoom)`` from streamlit-folium's returned value, or None."""
    if not out:
        return None
    b, zoom = out.get("bounds"), out.get("zoom")
    try:
        sw, ne = b["_southWest"], b["_northEast"]
        bounds = [[float(sw["lat"]), float(sw["lng"])], [float(ne["lat"]), float(ne["lng"])]]
        zoom = float(zoom)
    except (TypeError, KeyError, ValueError):
        return None
    if bounds[0][0] >= bounds[1][0] or bounds[0][1] >= bounds[1][1]:
        return None
    return bounds, zoom


def view_image(basemap: Basemap | None, view, underlay: dict | None, out_dir, url_prefix: str = GENERATED_URL,
               previous: dict | None = None) -> dict | None:
    """The sharp image of the current view for a large local raster (``rasterview.render_view``); None when not needed.

    ``view``: :func:`returned_view` of the map's last reported state;
    ``previous``: the image shown now (kept while it covers the view).

    Raises:
        InputError: the raster cannot be read.
    """
    if basemap is None or basemap.raster is None or view is None:
        return None

    bounds, zoom = view
    return render_view(basemap.raster, bounds, zoom, out_dir, url_prefix, underlay=underlay, previous=previous)


def view_group(image: dict | None) -> folium.FeatureGroup | None:
    """A view image as a feature group for streamlit-folium's ``feature_group_to_add``."""
    if image is None:
        return None
    fg = RawFeatureGroup(name="view", control=False, show=True)
    _ViewImage(image["url"], image["bounds"]).add_to(fg)
    return fg


def wants_view_updates(basemap: Basemap | None, underlay: dict | None) -> bool:
    """Whether the page needs the map's bounds and zoom back (each pan then reruns the page).

    Only for a local raster the underlay does not show at full resolution.
    """
    if basemap is None or basemap.raster is None:
        return False

    info = raster_info(basemap.raster)
    return underlay is None or underlay["mpp"] > 1.2 * info.mpp
