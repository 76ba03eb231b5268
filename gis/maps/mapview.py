"""The district map: a folium (Leaflet) map built from GeoDataFrames.

Never imports streamlit: the caller reads and caches the layers and hands
them in; this module only turns them into a map (and rasters into a PNG the
browser can show).

Offline by construction (DESIGN.md section 5):
- the map loads exactly one script and one stylesheet, the vendored Leaflet
  under ``static/vendor/leaflet`` served by Streamlit at the absolute path
  ``/app/static/vendor/leaflet/`` (the map lives in the streamlit-folium
  iframe, where a relative path resolves under ``/component/`` and 404s);
  no jQuery, Bootstrap, awesome-markers or Font Awesome;
- no tile basemap: an optional offline image (``render_basemap_png``).

Safe by construction: every vector layer is one pre-serialised GeoJSON
FeatureCollection embedded as JSON (``<``, ``>``, ``&``, ``'`` and a ``{``
that would open a Jinja tag written as ``\\uXXXX``) and styled and
tooltipped in JavaScript from its properties; tooltip, legend, labels and demo
mark are built with ``textContent``, never ``innerHTML``. The only strings
that reach Leaflet's ``innerHTML`` (layer control names, the basemap
attribution) pass through :func:`escape_html`, which also neutralises
backticks, ``$``, backslashes and braces so the text is inert inside a JS
template literal (folium's Tooltip/Popup) and in a Jinja template.

Beware when adding folium elements to these maps: branca compiles every
element's rendered output as a Jinja template a second time, so a
``{{ ... }}`` in data handed to a stock folium element (GeoJson properties,
Tooltip, Popup, Marker...) runs as Python on the server. Our own elements skip
that second pass (``RawMacroElement``); anything else must get
:func:`escape_html`-ed text.

Clicks: streamlit-folium attaches its click handler to every layer on the map
when the map starts; a click on a feature of one of our layers reaches the
GeoJSON layer through Leaflet's event propagation, so ``last_active_drawing``
is that feature (with ``properties.layer`` and, for parcels,
``properties.code``) and ``last_object_clicked`` its lat/lng. Layers must be
on the map when it starts to be reported, so every group starts shown.
"""
from __future__ import annotations

# Lazy imports, on purpose: rasterio and Pillow are imported only where the basemap PNG is rendered,
# so that the command line and the app start without those heavy libraries.
import base64
import hashlib
import json
import math
import os
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path

import folium
import numpy as np
import pandas as pd
import shapely
from folium.template import Template

from gis.base.errors import InputError, UnknownCRSError
from gis.base.fileio import atomic_write
from gis.base.i18n import LANGUAGES, catalogue, t
from gis.base.units import WEB_CRS, to_web  # noqa: F401 -- to_web is part of this module's interface
from gis.maps.elements import RawFeatureGroup, RawLayerControl, RawMacroElement, escape_html, js_json, safe_json_text
from gis.maps.mapstate import view_key
from gis.maps.photos import photo_group
from gis.maps.vectortiles import tile_layer_options
from gis.model.catalog import load_layer_catalog
from gis.model.pipelines import NOT_STARTED, Catalog
from gis.model.project_views import format_wan, marker_radius, project_stage

# Where Streamlit serves ``static/`` (``server.enableStaticServing``). Absolute:
# the map runs inside the component's iframe.
STATIC_URL = "/app/static"
LEAFLET_URL = f"{STATIC_URL}/vendor/leaflet"
GENERATED_URL = f"{STATIC_URL}/generated"
LEAFLET_VERSION = "1.9.4"
STATIC_DIR = Path(__file__).resolve().parents[2] / "static"


def _static_asset(name: str, path: str) -> tuple[str, str, str]:
    """``(name, path under static/, content version)``: the version in the URL lets the browser cache the file
    until it changes."""
    return name, path, hashlib.sha256((STATIC_DIR / path).read_bytes()).hexdigest()[:10]


#: the map's own JavaScript and CSS, real files in static/ that every map of the app loads after Leaflet
MAP_SCRIPTS = (_static_asset("renewal_atlas", "js/renewal-atlas.js"),
               _static_asset("renewal_tiles", "js/vector-tiles.js"),
               _static_asset("renewal_basemap", "js/basemap-tiles.js"))
MAP_STYLES = (_static_asset("renewal_atlas_css", "css/renewal-atlas.css"),
              _static_asset("renewal_basemap_css", "css/basemap-notice.css"))

BLOCKED_COLOR = "#d7191c"
SELECTED_COLOR = "#00b7ff"
LAND_COLOR = "#f2efe9"
CONTEXT_SOURCES = ("district", "sea", "zones", "devzone", "parks", "villages", "points")
COORD_DECIMALS = 6  # ≈ 0.1 m: keeps the HTML small
# permanent labels of layers with a catalogue ``label_field``: from which zoom on
LABEL_MIN_ZOOM = {"zones": 0, "villages": 14}

def _tx(key: str, lang: str) -> str:
    """A map string from the ``[map]`` section of the catalogues."""
    return t(f"map.{key.replace('.', '_')}", lang)


# --------------------------------------------------------------------------- legend

def legend_items(catalog: Catalog, lang: str = "zh") -> list[dict]:
    """The map legend as data, shared by the web map and the exports.

    One item per colour phase (``kind="fill"``) in catalogue order, then the
    red outline of blocked parcels (``kind="outline"``). Each item:
    ``{"key", "label", "kind", "fill", "stroke"}`` (``fill`` is None for outlines).
    """
    items = [
        {"key": p.key, "label": p.label(lang), "kind": "fill", "fill": p.color, "stroke": "#555555"}
        for p in catalog.phases.values()
    ]
    items.append({"key": "blocked", "label": _tx("blocked", lang), "kind": "outline", "fill": None,
                  "stroke": BLOCKED_COLOR})
    return items


# --------------------------------------------------------------------------- serialisation

# GeoJSON already written, per source frame (the app hands the same cached frame to every run
# until the data change): a click that reruns the page does not serialise 2,470 parcels again
_JSON: dict[int, tuple] = {}


def _json_of(src, key, build) -> str:
    """``build()`` once per (source frame, key); forgotten when the frame is."""
    entry = _JSON.get(id(src))
    if entry is None or entry[0]() is not src:
        try:
            ref = weakref.ref(src, lambda _, k=id(src): _JSON.pop(k, None))
        except TypeError:
            return build()
        entry = _JSON[id(src)] = (ref, {})
    done = entry[1]
    if key not in done:
        done[key] = build()
    return done[key]


class LayerFiles:
    """GeoJSON texts of the map's layers as files the map's script fetches (``publish=`` of :func:`build_map`).

    With the data inline, every rerun of the app sent streamlit-folium a ~2 MB script that it
    re-rendered, regex-rewrote, dedented and hashed (most of a click's server time, issue 19);
    with a URL the script is a few kB and stays the same while the data do. A file is named
    after its content, written once (atomically) and found again by any process that serves
    the same ``static/`` folder; files not used for ``keep_s`` are removed, the newest
    ``keep`` are always kept (a map an open page shows may still fetch its layer).
    """

    def __init__(self, out_dir, url_prefix: str = f"{GENERATED_URL}/layers", keep: int = 24,
                 keep_s: float = 3600.0):
        self.dir = Path(out_dir)
        self.url_prefix = url_prefix.rstrip("/")
        self.keep, self.keep_s = keep, keep_s
        self._memo: dict[int, tuple[str, str]] = {}  # id(text) -> (text, url): cached texts are the same str
        self._bases: dict = {}  # parcel layers: key -> _Base (what the map's script fetches, and what changed since)
        self._last: dict = {}  # key -> (props, answer) of the last call: a click's run asks the same again
        self._lock = threading.Lock()

    def __call__(self, text: str) -> str:
        hit = self._memo.get(id(text))
        if hit is not None and hit[0] is text:
            return hit[1]
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]
        path = self.dir / f"{digest}.json"
        if path.exists():
            os.utime(path)
        else:
            self.dir.mkdir(parents=True, exist_ok=True)
            atomic_write(path, lambda f: f.write(text.encode("utf-8")))
            self._prune()
        url = f"{self.url_prefix}/{digest}.json"
        if len(self._memo) > 64:
            self._memo.clear()
        self._memo[id(text)] = (text, url)
        return url

    def patched(self, key, gdf, props: list[dict]) -> tuple[str, dict]:
        """A parcel layer as ``(url, patch)``: the URL of a file published earlier for the same parcels
        (``key`` and the same codes, in order, with the same geometries) and ``{code: properties}`` of every
        parcel whose properties changed since, which the map applies over that file
        (:func:`patch_group`). A stage update then leaves the map's script, and the 2 MB file the
        browser holds, as they were (issue 19); more than :data:`MAX_PATCHED` changed parcels, other
        parcels or a moved geometry: a new file."""
        last = self._last.get(key)
        if last is not None and last[0] is props:  # the same cached properties (so parcels) as the last run
            return last[1]
        out = self._patched(key, gdf, props)
        self._last[key] = (props, out)
        return out

    def _patched(self, key, gdf, props: list[dict]) -> tuple[str, dict]:
        codes = tuple(p.get("code") for p in props)
        geoms = np.asarray(gdf.geometry.values, dtype=object)
        full = (key, hash(codes))
        with self._lock:
            base = self._bases.get(full)
            if base is not None and base.codes == codes:
                changed = [i for i, (a, b) in enumerate(zip(props, base.props)) if a != b]
                moved = [i for i in range(len(geoms)) if geoms[i] is not base.geoms[i]]
                if moved and not all(shapely.equals_exact(geoms[moved], base.geoms[moved], tolerance=0)):
                    base = None
                elif len(base.patched) + len(changed) > MAX_PATCHED:
                    base = None
                else:
                    base.patched.update(codes[i] for i in changed)
                    self._touch(base.url)
            else:
                base = None
            if base is None:
                base = _Base(codes, geoms, props, self(feature_collection(gdf, props)), set())
                self._bases.pop(full, None)
                self._bases[full] = base
                while len(self._bases) > MAX_BASES:
                    self._bases.pop(next(iter(self._bases)))
            at = {c: i for i, c in enumerate(codes)} if base.patched else {}
            return base.url, {c: props[at[c]] for c in sorted(base.patched)}

    def _touch(self, url: str) -> None:
        """Mark a file still in use (``_prune`` keeps what was used within ``keep_s``)."""
        try:
            os.utime(self.dir / url.rsplit("/", 1)[1])
        except OSError:  # removed by another process: the next new file is written again
            pass

    def _prune(self) -> None:
        files = sorted(self.dir.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
        cutoff = time.time() - self.keep_s
        for old in files[self.keep:]:
            try:
                if old.stat().st_mtime < cutoff:
                    old.unlink()
            except OSError:  # another process removed it first
                pass


MAX_PATCHED = 300  # parcels changed since a layer's file was written: beyond, a new file
MAX_BASES = 16  # parcel layer files held for patching (filters, languages, colourings)


@dataclass
class _Base:
    codes: tuple
    geoms: np.ndarray
    props: list
    url: str
    patched: set


def _clean(v):
    """A property value as plain JSON (NaN/NA → None, numpy scalars → Python)."""
    if v is None:
        return None
    if isinstance(v, (float, np.floating)):
        return None if math.isnan(v) else float(v)
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.bool_,)):
        return bool(v)
    if v is pd.NA or v is pd.NaT:
        return None
    return v if isinstance(v, (str, int, bool)) else str(v)


def feature_collection(gdf, props: list[dict]) -> str:
    """A FeatureCollection JSON text (script-safe) from a layer in EPSG:4326 and one dict per row.

    Geometries are serialised by GEOS in one vectorised call after rounding to
    ``COORD_DECIMALS``; rows without geometry are left out.
    """
    geoms = np.asarray(gdf.geometry.values, dtype=object)
    ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    geoms = shapely.transform(geoms[ok], lambda c: np.round(c, COORD_DECIMALS))
    gj = shapely.to_geojson(geoms)
    keep = np.flatnonzero(ok)
    parts = [
        '{"type":"Feature","properties":%s,"geometry":%s}'
        % (json.dumps(props[i], ensure_ascii=False, separators=(",", ":")), g)
        for i, g in zip(keep, gj)
    ]
    return safe_json_text('{"type":"FeatureCollection","features":[' + ",".join(parts) + "]}")


def _column(gdf, name, default=None) -> list:
    if name in gdf.columns:
        # plain str and int values are what most cells hold: only the others go through _clean
        return [v if type(v) is str or type(v) is int else _clean(v) for v in gdf[name].tolist()]
    return [default] * len(gdf)


def _local(gdf, field: str, lang: str) -> list:
    """A text field in the language: ``name``→``name_en``, ``roles``→``roles_en`` when English."""
    base = _column(gdf, field)
    if lang == "en" and f"{field}_en" in gdf.columns:
        return [e or b for e, b in zip(_column(gdf, f"{field}_en"), base)]
    return base


def _context_props(gdf, spec, lang: str) -> list[dict]:
    fields = {"code", "name", *spec.tooltip}
    cols = {f: _local(gdf, f, lang) for f in fields if f in gdf.columns}
    return [
        {"layer": spec.id, **{f: v[i] for f, v in cols.items()}}
        for i in range(len(gdf))
    ]


def _names(gdf, lang: str) -> dict:
    if gdf is None or len(gdf) == 0 or "code" not in gdf.columns:
        return {}
    return dict(zip(_column(gdf, "code"), _local(gdf, "name", lang)))


def _parcel_props(gdf, spec, catalog: Catalog, lang: str, village_names: dict, park_names: dict) -> list[dict]:
    """Parcel properties: what the tooltip shows and what a click must report (``code``)."""
    cache: dict = {}

    def phase_and_label(kind, stage):
        key = (kind, stage)
        if key not in cache:
            try:
                cache[key] = (catalog.phase_of(kind, stage).key, catalog.stage_label(kind, stage, lang))
            except (ValueError, LookupError):  # unknown kind/stage in the data: grey, raw key shown
                cache[key] = (NOT_STARTED, stage or catalog.phases[NOT_STARTED].label(lang))
        return cache[key]

    codes, names, kinds = _column(gdf, "code"), _column(gdf, "name"), _column(gdf, "kind")
    stages, blocked = _column(gdf, "stage"), _column(gdf, "blocked", 0)
    villages, parks = _column(gdf, "village"), _column(gdf, "park")
    extra = [f for f in spec.tooltip if f not in ("code", "name", "stage", "village", "park") and f in gdf.columns]
    extra_cols = {f: _column(gdf, f) for f in extra}
    out = []
    for i in range(len(gdf)):
        stage = stages[i] or None
        phase, label = phase_and_label(kinds[i], stage)
        p = {"layer": spec.id, "code": codes[i], "name": names[i], "kind": kinds[i], "stage": stage,
             "stage_label": label, "phase": phase, "blocked": 1 if blocked[i] else 0}
        if villages[i]:
            p["village"] = villages[i]
            p["village_name"] = village_names.get(villages[i], villages[i])
        if parks[i]:
            p["park"] = parks[i]
            p["park_name"] = park_names.get(parks[i], parks[i])
        for f in extra:
            p[f] = extra_cols[f][i]
        out.append(p)
    return out


_PARCEL_FIELD_PROP = {"stage": "stage_label", "village": "village_name", "park": "park_name"}


def _tooltip_fields(spec, lang: str) -> list[list[str]]:
    return [[_tx(f"field.{f}", lang) if f"map.field_{f}" in catalogue("zh") else f,
             _PARCEL_FIELD_PROP.get(f, f) if spec.is_parcels else f] for f in spec.tooltip]


def _tile_texts(spec, lang: str) -> dict:
    """Field labels, separator and area unit for a tile layer's tooltip."""
    return {"field_labels": {f: label for label, f in _tooltip_fields(spec, lang)}, "sep": _tx("sep", lang),
            "mu": _tx("mu", lang)}


def _context_style(style: dict, interactive: bool) -> dict:
    fill_opacity = float(style.get("fill_opacity", 0.2))
    out = {
        "color": style.get("color", "#3388ff"),
        "weight": float(style.get("weight", 1.5)),
        "opacity": float(style.get("opacity", 1.0)),
        # fill stays on (even at opacity 0) so the interior answers hover and click
        "fill": True,
        "fillColor": style.get("fill_color", style.get("color", "#3388ff")),
        "fillOpacity": fill_opacity,
        "interactive": interactive,
    }
    if style.get("dash"):
        out["dashArray"] = str(style["dash"])
    if style.get("radius"):
        out["radius"] = float(style["radius"])
    return out


# --------------------------------------------------------------------------- folium elements




class _Support(RawMacroElement):
    """Shared JS (layer factory, legend, demo mark, scale, basemap pane) and CSS; added first."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            RenewalAtlas.init({{ this._parent.get_name() }}, {{ this.options }});
        {% endmacro %}
        """
    )

    def __init__(self, options: dict):
        super().__init__()
        self._name = "RenewalAtlasSupport"
        self.options = js_json(options)


class _GeoJsonLayer(RawMacroElement):
    """One FeatureCollection, styled and tooltipped in JS; a child of a FeatureGroup."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            var {{ this.get_name() }} = RenewalAtlas.addLayer(
                {{ this._parent._parent.get_name() }}, {{ this._parent.get_name() }},
                {{ this.data }}, {{ this.options }});
        {% endmacro %}
        """
    )

    def __init__(self, data: str, options: dict, publish=None):
        super().__init__()
        self._name = "AtlasGeoJson"
        self.data = js_json(publish(data)) if publish is not None else data  # a URL: the script fetches it
        self.options = js_json(options)


class _ImageLayer(RawMacroElement):
    _template = Template(
        """
        {% macro script(this, kwargs) %}
            var {{ this.get_name() }} = RenewalAtlas.addImage(
                {{ this._parent._parent.get_name() }}, {{ this._parent.get_name() }}, {{ this.options }});
        {% endmacro %}
        """
    )

    def __init__(self, options: dict):
        super().__init__()
        self._name = "AtlasImage"
        self.options = js_json(options)


class _TrackGroups(RawMacroElement):
    """Reports which layer groups are on, and the view, with every click and switch (``gis.maps.mapstate``);
    added after the groups. Group keys are the catalogue's, their variables named at render time."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            RenewalAtlas.track({{ this._parent.get_name() }}, {
            {%- for key, fg in this.groups %}{{ key|tojson }}: {{ fg.get_name() }}{{ "," if not loop.last }}{% endfor -%}
            });
        {% endmacro %}
        """
    )

    def __init__(self, groups: list):
        super().__init__()
        self._name = "AtlasTrack"
        self.groups = groups


class _Restore(RawMacroElement):
    """Brings a newly mounted map back to the planner's layer groups and view (``MapState.restore``)."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            RenewalAtlas.restore({{ this._parent._parent.get_name() }}, {{ this.options }});
        {% endmacro %}
        """
    )

    def __init__(self, options: dict):
        super().__init__()
        self._name = "AtlasRestore"
        self.options = js_json(options)


def add_support(m: folium.Map, background: str = LAND_COLOR) -> folium.Map:
    """The shared map code on a map of :func:`offline_map` (a land-coloured background, a metric
    scale bar) without a legend or demo mark: for small maps such as the import preview."""
    _Support({"background": background, "legend": None, "demoMark": None}).add_to(m)
    return m


def restore_group(options: dict) -> folium.FeatureGroup:
    """A feature group (not in the layer switcher) that restores ``options`` (``MapState.restore()``:
    the groups to switch off, the view to go back to) once, when the map is new. For streamlit-folium's
    ``feature_group_to_add``: it changes with the state without changing the map's own script."""
    fg = RawFeatureGroup(name="restore", control=False, show=True)
    _Restore(options).add_to(fg)
    return fg


def offline_map(assets_url: str = LEAFLET_URL, **kwargs) -> folium.Map:
    """A folium Map that loads only the vendored Leaflet (instance attributes: the class lists stay untouched)."""
    m = folium.Map(tiles=None, **kwargs)
    static = assets_url.removesuffix("/vendor/leaflet") if assets_url.endswith("/vendor/leaflet") else STATIC_URL
    m.default_js = [("leaflet", f"{assets_url}/leaflet.js"),
                    *((name, f"{static}/{path}?v={version}") for name, path, version in MAP_SCRIPTS)]
    m.default_css = [("leaflet_css", f"{assets_url}/leaflet.css"),
                     *((name, f"{static}/{path}?v={version}") for name, path, version in MAP_STYLES)]
    return m


# --------------------------------------------------------------------------- the map

def _latlng_bounds(bounds) -> list[list[float]] | None:
    """``[[s, w], [n, e]]`` from that form or from ``(minx, miny, maxx, maxy)`` in lon/lat."""
    if bounds is None:
        return None
    b = np.asarray(bounds, dtype=float)
    if not np.all(np.isfinite(b)):
        return None
    if b.shape == (2, 2):
        (s, w), (n, e) = b
    elif b.shape == (4,):
        w, s, e, n = b
    else:
        return None
    return [[float(s), float(w)], [float(n), float(e)]]


def gdf_bounds(gdf) -> list[list[float]] | None:
    """``[[s, w], [n, e]]`` (EPSG:4326) of a layer, for ``bounds=``; None when empty."""
    if gdf is None or len(gdf) == 0:
        return None
    minx, miny, maxx, maxy = to_web(gdf).total_bounds
    if not np.all(np.isfinite([minx, miny, maxx, maxy])):
        return None
    return [[float(miny), float(minx)], [float(maxy), float(maxx)]]


def _parcel_options(catalog: Catalog, lang: str, spec) -> dict:
    return {
        "mode": "phase",
        "colors": {k: p.color for k, p in catalog.phases.items()},
        "fillOpacity": 0.72, "color": "#555555", "weight": 0.6,
        "blockedColor": BLOCKED_COLOR, "blockedWeight": 2.5, "hoverWeight": 3,
        "interactive": True,
        "tooltip": _tooltip_fields(spec, lang), "sep": _tx("sep", lang), "blockedText": _tx("blocked_tip", lang),
    }


def build_map(
    context: dict,
    parcels,
    catalog: Catalog,
    lang: str = "zh",
    basemap: dict | None = None,
    bounds=None,
    selected: str | None = None,
    demo: bool = True,
    *,
    layers=None,
    assets_url: str = LEAFLET_URL,
    collapsed: bool = True,
    renderer: str = "svg",
    tiles: dict | None = None,
    colouring: dict | None = None,
    projects=None,
    photos: list[dict] | None = None,
    publish=None,
) -> folium.Map:
    """The district map.

    Args:
        context: context layers by name (``district``, ``sea``, ``zones``,
            ``devzone``, ``parks``, ``villages``, ``points``; any may be
            missing), EPSG:4490 GeoDataFrames as in docs/DATA_MODEL.md.
        parcels: tracked parcels (``code``, ``name``, ``kind``, ``zone``,
            ``village``, ``park``, ``stage``, ``blocked``, ``area_m2``, geometry).
        catalog: the stage pipelines (``gis.pipelines.load_catalog()``): fill
            colour = the stage's phase colour; legend = the phases.
        lang: ``zh`` or ``en`` for every label.
        basemap: ``{"url", "bounds": [[s, w], [n, e]], "attribution"}`` from
            :func:`render_basemap_png`, shown below the vectors.
        bounds: fit the view to ``[[s, w], [n, e]]`` or ``(minx, miny, maxx, maxy)``
            in degrees (e.g. :func:`gdf_bounds` of a parcel); else the district.
        selected: code of a parcel to outline thickly.
        demo: show the "示例数据（虚构）" mark.
        layers: the layer catalogue (default: ``layers/catalog.toml``).
        assets_url: where leaflet.js/.css are served (absolute; tests use file://).
        collapsed: collapse the layer switcher to its button (the default: open, it covers the map's
            north-east and, on a phone, the top third of the map).
        renderer: ``svg`` (one DOM path per feature; what tests/test_browser.py
            counts) or ``canvas`` (≈20 % faster zoom/pan at 2,500 parcels, the
            choice for much bigger layers). Clicks and tooltips work with both.
        tiles: for catalogue layers drawn from a vector tile pyramid
            (``render = "tiles"``, e.g. the cadastre), ``{layer id: manifest}``
            from ``gis.vectortiles.build_tileset``; a layer without one is left out.
        colouring: fill parcels by another property than the stage's phase, e.g. the plan
            status (``gis.maps.plan_colouring.plan_colouring``): ``{"field", "values": {code:
            value}, "default", "colors": {value: colour}, "legend": {"title", "items"}}``.
        projects: the key projects' footprints (``Store.project_footprints()``: code, name, stage,
            investment_total, geometry), drawn last in a group of their own (:func:`add_projects`).
        photos: site photos with a location (``store.photo_points()``), drawn as points with their
            direction from zoom ``gis.maps.photos.PHOTO_MIN_ZOOM`` on, a group of the layer switcher.
        publish: ``text -> url`` (a :class:`LayerFiles`): the parcels' and context layers' GeoJSON
            go to files the map fetches, and the map's script carries only their URLs (the app);
            None: inline, so the HTML stands alone (exports, tests over file://).

    Every feature's properties carry ``layer`` (the catalogue layer id); parcels
    also ``code``, ``name``, ``kind``, ``stage``, ``stage_label``, ``phase``,
    ``blocked`` and ``village``/``park`` (+ ``_name``).
    """

    layers = layers or load_layer_catalog()
    lang = lang if lang in LANGUAGES else "zh"
    sources = {k: v for k, v in (context or {}).items() if v is not None and len(v)}
    context = {k: _json_of(v, "web", lambda v=v: to_web(v)) for k, v in sources.items()}  # once per cached layer
    parcel_source = parcels
    parcels = _json_of(parcels, "web", lambda: to_web(parcel_source)) if parcels is not None else None

    district = sources.get("district")
    view = _latlng_bounds(bounds) or (_json_of(district, "bounds", lambda: gdf_bounds(context["district"]))
                                      if district is not None else None) or gdf_bounds(parcels)
    if view:
        center = [(view[0][0] + view[1][0]) / 2, (view[0][1] + view[1][1]) / 2]
    else:
        center = [37.45, 121.35]
    m = offline_map(assets_url, location=center, zoom_start=13, control_scale=False,
                     prefer_canvas=renderer == "canvas",
                     minZoom=6, maxZoom=20, zoomSnap=0.5)
    legend = {"title": f"{_tx('legend', lang)} · {_tx('stage', lang)}", "items": legend_items(catalog, lang)}
    if colouring:
        legend = colouring["legend"]
    if projects is not None and len(projects):  # circles sized by investment, filled by the stage's phase
        legend = {**legend, "items": [*legend["items"], {"key": PROJECTS_GROUP, "kind": "circle", "fill": "#ffffff",
                                                         "label": t("projects_ui.map_legend", lang),
                                                         "stroke": "#222222"}]}
    _Support({"background": LAND_COLOR, "legend": legend,
              "demoMark": t("app.demo_mark", lang) if demo else None}).add_to(m)

    village_names = _names(context.get("villages"), lang)
    park_names = _names(context.get("parks"), lang)
    tracked: list = []
    patches: dict = {}
    for group_key, group in layers.groups.items():
        specs = layers.in_group(group_key)
        fg = None
        for spec in specs:
            if spec.is_raster:
                if not basemap:
                    continue
                opts = {"url": str(basemap["url"]), "bounds": basemap["bounds"],
                        "opacity": float(basemap.get("opacity", 1.0)),
                        "attribution": escape_html(basemap.get("attribution") or "")}
                layer = _ImageLayer(opts)
            elif spec.is_tiles:
                if not (tiles or {}).get(spec.id):
                    continue
                layer = tile_layer(tiles[spec.id], spec, lang, **_tile_texts(spec, lang))
            elif spec.is_parcels:
                if parcels is None or not len(parcels) or "kind" not in parcels.columns:
                    continue
                sub = _json_of(parcel_source, ("kinds", spec.id),  # once per cached frame, not per run
                               lambda spec=spec: parcels[parcels["kind"].isin(spec.kinds)])
                if not len(sub):
                    continue
                options = _parcel_options(catalog, lang, spec)
                patchable = hasattr(publish, "patched")
                if colouring:  # e.g. 计划状态: the value rides in the feature, the colours in the options
                    props = _parcel_props(sub, spec, catalog, lang, village_names, park_names)
                    field, labels = colouring["field"], colouring.get("labels", {})
                    for pr in props:
                        pr[field] = colouring["values"].get(pr["code"], colouring.get("default"))
                        pr[field + "_label"] = labels.get(pr[field], pr[field])
                    options.update(colorField=field, colors=colouring["colors"])
                    options["tooltip"] = options["tooltip"] + [[colouring.get("title", field), field + "_label"]]
                    data = None if patchable else feature_collection(sub, props)
                elif patchable:  # the stage colouring: the same properties for every run until the data change
                    props = _json_of(parcel_source, ("props", spec.id, lang), lambda sub=sub, spec=spec: (
                        _parcel_props(sub, spec, catalog, lang, village_names, park_names)))
                else:
                    data = _json_of(parcel_source, ("parcels", spec.id, lang), lambda sub=sub, spec=spec: (
                        feature_collection(sub, _parcel_props(sub, spec, catalog, lang, village_names, park_names))))
                if patchable:  # the app: a file published earlier and what changed since (patch_group)
                    key = (spec.id, lang, colouring["field"] if colouring else None)
                    url, patch = publish.patched(key, sub, props)
                    options["id"] = spec.id
                    if patch:
                        patches[spec.id] = patch
                    layer = _GeoJsonLayer(js_json(url), options)
                else:
                    layer = _GeoJsonLayer(data, options, publish)
            else:
                gdf = context.get(spec.source)
                if gdf is None:
                    continue
                interactive = spec.source != "district"  # the boundary would cover everything
                opts = {"mode": "static", "style": _context_style(spec.style, interactive),
                        "interactive": interactive, "tooltip": _tooltip_fields(spec, lang),
                        "sep": _tx("sep", lang), "hoverWeight": 0}
                if spec.label_field:
                    opts["labelField"] = spec.label_field
                    opts["labelMinZoom"] = LABEL_MIN_ZOOM.get(spec.source, 14)
                data = _json_of(sources[spec.source], ("context", spec.id, lang),
                                lambda gdf=gdf, spec=spec: feature_collection(gdf, _context_props(gdf, spec, lang)))
                layer = _GeoJsonLayer(data, opts, publish)
            if fg is None:
                fg = RawFeatureGroup(name=escape_html(group.label(lang)), overlay=True, control=True, show=True)
                fg.add_to(m)
                tracked.append((group_key, fg))
            layer.add_to(fg)

    if projects is not None and len(projects):
        tracked.append((PROJECTS_GROUP, add_projects(m, projects, catalog, lang, publish)))

    if selected is not None and parcels is not None and len(parcels) and "code" in parcels.columns:
        sel = parcels[parcels["code"] == selected]
        if len(sel):
            selection_group(sel, lang=lang).add_to(m)

    if photos:
        fg = photo_group(photos, lang)
        fg.add_to(m)
        tracked.append(("photos", fg))
    _TrackGroups(tracked).add_to(m)
    RawLayerControl(position="topright", collapsed=collapsed).add_to(m)
    if view:
        m.fit_bounds(view, padding=(12, 12))
    m.ratlas_patch = patches  # for patch_group(m): the parcels changed since their layer's file was written
    if publish is not None:
        _prefetch_layers(m)
    return m


def _prefetch_layers(m: folium.Map) -> None:
    """Start fetching the map's published layer files at once, side by side, before Leaflet loads.

    streamlit-folium loads the map's scripts one after another, then runs the map's script, which reads
    each layer's file synchronously (``fetched`` in static/js/renewal-atlas.js: the layers are added,
    ordered and labelled as with inline data): a dozen requests in a row (≈0.1 s of a login, issue 19).
    A first script (a ``data:`` URL, nothing to fetch) sends them all; the map's script takes the answers
    that are in and asks again only for one that is not."""
    urls: list[str] = []

    def walk(el) -> None:
        for child in el._children.values():
            if isinstance(child, _GeoJsonLayer) and child.data.startswith('"'):  # a URL, not inline GeoJSON
                url = json.loads(child.data)
                if url not in urls:
                    urls.append(url)
            walk(child)

    walk(m)
    if urls:
        src = ("(function(){var p=window.RenewalAtlasPrefetched={};" + json.dumps(urls) +
               ".forEach(function(u){var x=new XMLHttpRequest();x.open('GET',u,true);x.send(null);p[u]=x;});})();")
        m.default_js = [("ratlas_prefetch", "data:text/javascript;base64," + base64.b64encode(src.encode()).decode()),
                        *m.default_js]


class _Patch(RawMacroElement):
    """Puts changed parcels' properties over a layer's published file (:meth:`LayerFiles.patched`)."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            RenewalAtlas.patch({{ this._parent._parent.get_name() }}, {{ this.patches }});
        {% endmacro %}
        """
    )

    def __init__(self, patches: dict):
        super().__init__()
        self._name = "AtlasPatch"
        self.patches = js_json(patches)


def patch_group(m: folium.Map) -> folium.FeatureGroup:
    """The parcels of a map of :func:`build_map` (with ``publish=`` a :class:`LayerFiles`) whose properties
    (stage, colour, blocked …) changed since their layer's file was written, as a feature group for
    streamlit-folium's ``feature_group_to_add``: a stage update recolours its parcel in the map the browser
    already holds, with no new map script and no new 2 MB file to fetch."""
    fg = RawFeatureGroup(name="patch", control=False, show=True)
    _Patch(getattr(m, "ratlas_patch", None) or {}).add_to(fg)
    return fg


class _Filter(RawMacroElement):
    """Shows only a filter's parcels on the map the browser holds and fits the view to them (:func:`filter_group`)."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            RenewalAtlas.filter({{ this._parent._parent.get_name() }}, {{ this.options }});
        {% endmacro %}
        """
    )

    def __init__(self, options: dict):
        super().__init__()
        self._name = "AtlasFilter"
        self.options = js_json(options)


def filter_group(codes, bounds=None, token: str | None = None) -> folium.FeatureGroup:
    """A filter's result on the map the browser already holds, as a feature group for streamlit-folium's
    ``feature_group_to_add`` (issue 19): the map is built from every parcel, so its script and its layer
    files stay the same whatever the filter, and this group's script takes the parcels whose code is not in
    ``codes`` off their layers (kept aside: no tooltip, no click; None: every parcel back) and fits the view
    to ``bounds`` (``[[s, w], [n, e]]`` as drawn, or ``(minx, miny, maxx, maxy)``) when they are new to the
    map: the same bounds again (a click, a panel, a stage update) leave the planner's pan and zoom alone.
    ``token`` (``MapState.token``) names where the browser keeps the bounds it fitted last, so that a map
    mounted anew (another basemap, the other language) does not fit them again."""
    fg = RawFeatureGroup(name="filter", control=False, show=True)
    _Filter({"codes": None if codes is None else sorted({str(c) for c in codes}),
             "bounds": _latlng_bounds(bounds), "key": view_key(_latlng_bounds(bounds)), "token": token}).add_to(fg)
    return fg


# --------------------------------------------------------------------------- key projects

PROJECTS_GROUP = "projects"  # the group's key in the layer switcher's report (gis.maps.mapstate)
PROJECT_EDGE = "#222222"


def project_props(footprints, catalog: Catalog, lang: str = "zh") -> list[dict]:
    """Each project's feature properties: what its tooltip shows, its colour (the phase of its stage), its
    circle's radius (∝ √investment) and ``layer``/``code``, which a click reports (``last_active_drawing``)."""
    inv = [v or 0.0 for v in _column(footprints, "investment_total", 0.0)]
    largest = max(inv, default=0.0)
    out = []
    for code, name, stage, total in zip(_column(footprints, "code"), _column(footprints, "name"),
                                        _column(footprints, "stage"), inv):
        st = project_stage(catalog, stage, lang)
        label = f"{name or code} · {format_wan(total, lang)}"
        out.append({"layer": PROJECTS_GROUP, "code": code, "name": name or code, "stage_label": st["label"],
                    "phase": st["phase"], "color": st["color"], "investment": format_wan(total, lang),
                    "radius": marker_radius(total, largest), "label": label})
    return out


def add_projects(m: folium.Map, footprints, catalog: Catalog, lang: str = "zh", publish=None) -> folium.FeatureGroup:
    """The key projects on ``m``, in a group of their own (重点项目, switched like the others): each footprint
    outlined in its stage's colour (not clickable: the parcels under it stay clickable) and a circle at its
    centre, sized by the investment, which opens the project's panel when clicked. ``publish``: as for
    :func:`build_map`."""
    def texts():
        gdf = to_web(footprints)
        gdf = gdf[~(gdf.geometry.isna() | gdf.geometry.is_empty)]
        if "investment_total" in gdf.columns:  # the big circles below, the small ones on top: each keeps a spot
            gdf = gdf.sort_values("investment_total", ascending=False, kind="stable")
        props = project_props(gdf, catalog, lang)
        centres = gdf.set_geometry(shapely.point_on_surface(np.asarray(gdf.geometry.values, dtype=object)), crs=gdf.crs)
        return feature_collection(gdf, props), feature_collection(centres, props)

    # once per footprints frame (the app caches it until a project changes), not on every click's run
    outlines, circles = _json_of(footprints, ("projects", lang, id(catalog)), texts)
    fg = RawFeatureGroup(name=escape_html(t("projects_ui.map_group", lang)), overlay=True, control=True, show=True)
    fg.add_to(m)
    outline = {"mode": "project", "interactive": False, "labelField": "label", "labelMinZoom": 17}  # street scale:
    # several projects share a park, and their names would pile up further out
    _GeoJsonLayer(outlines, outline, publish).add_to(fg)
    fields = [[t(f"projects_ui.map_{f}", lang), f] for f in ("name", "code", "stage_label", "investment")]
    marker = {"mode": "project", "interactive": True, "tooltip": fields, "sep": _tx("sep", lang), "hoverWeight": 3,
              "edge": PROJECT_EDGE}
    _GeoJsonLayer(circles, marker, publish).add_to(fg)
    return fg


def selection_group(parcels, code: str | None = None, lang: str = "zh") -> folium.FeatureGroup:
    """A thick outline around a parcel (or all of ``parcels``), not in the layer switcher.

    Also usable as streamlit-folium's ``feature_group_to_add`` to move the
    highlight without rebuilding the map.
    """
    gdf = to_web(parcels)
    if code is not None:
        gdf = gdf[gdf["code"] == code]
    props = [{"layer": "selected", "code": c} for c in _column(gdf, "code")]
    fg = RawFeatureGroup(name=escape_html(_tx("selected", lang)), control=False, show=True)
    halo = {"color": "#000000", "weight": 7, "opacity": 0.55, "fill": False, "interactive": False}
    line = {"color": SELECTED_COLOR, "weight": 3.5, "opacity": 1, "fill": False, "interactive": False}
    data = feature_collection(gdf, props)
    for style in (halo, line):
        _GeoJsonLayer(data, {"mode": "static", "style": style, "interactive": False}).add_to(fg)
    return fg


# --------------------------------------------------------------------------- basemap raster

def _stretch(band: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """A band → uint8: as is when already 8-bit, else a 2–98 % stretch of the valid pixels."""
    if band.dtype == np.uint8:
        return band
    vals = band[valid]
    if vals.size == 0:
        return np.zeros(band.shape, np.uint8)
    lo, hi = np.percentile(vals, [2, 98])
    if hi <= lo:
        hi = lo + 1
    return np.clip((band.astype("float64") - lo) * (255.0 / (hi - lo)), 0, 255).astype(np.uint8)


def render_basemap_png(
    tif_path,
    out_dir,
    max_size: int = 2048,
    *,
    url_prefix: str = GENERATED_URL,
    attribution: str | None = None,
) -> dict:
    """A GeoTIFF (any CRS) → a Web-Mercator PNG for an ImageOverlay.

    Reads only an overview level (or a decimated read) that is just finer than
    the output needs, warps it to EPSG:3857 (bilinear; alpha from the mask),
    writes ``basemap_<hash>.png`` (hash of the tif's path, mtime, size and
    ``max_size``) plus a JSON sidecar into ``out_dir``, and returns
    ``{"url", "bounds": [[s, w], [n, e]] (EPSG:4326), "attribution", "path", "width", "height"}``.
    Skips the work when the PNG exists already.

    Raises:
        InputError: unreadable raster. UnknownCRSError: the raster has no CRS.
    """
    import rasterio
    from affine import Affine
    from PIL import Image
    from rasterio.enums import ColorInterp, Resampling
    from rasterio.warp import calculate_default_transform, reproject, transform_bounds


    tif_path = Path(tif_path).resolve()
    out_dir = Path(out_dir)
    try:
        st = tif_path.stat()
    except OSError as e:
        raise InputError("error.bad_store", path=str(tif_path), detail=str(e)) from e
    key = hashlib.sha256(f"{tif_path}|{st.st_mtime_ns}|{st.st_size}|{max_size}|v1".encode()).hexdigest()[:20]
    png, meta = out_dir / f"basemap_{key}.png", out_dir / f"basemap_{key}.json"
    if png.exists() and meta.exists():
        try:
            return json.loads(meta.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            pass
    dst_crs = "EPSG:3857"
    try:
        with rasterio.Env(GDAL_PAM_ENABLED="NO"):
            with rasterio.open(tif_path) as src:
                if src.crs is None:
                    raise UnknownCRSError("error.unknown_crs")
                _, w0, h0 = calculate_default_transform(src.crs, dst_crs, src.width, src.height, *src.bounds)
                k = max(w0, h0) / max_size
                dst_w, dst_h = (max(1, round(w0 / k)), max(1, round(h0 / k))) if k > 1 else (w0, h0)
                dst_transform, dst_w, dst_h = calculate_default_transform(
                    src.crs, dst_crs, src.width, src.height, *src.bounds, dst_width=dst_w, dst_height=dst_h)
                # source pixels per output pixel: read no finer than needed
                need = min(src.width / dst_w, src.height / dst_h)
                fits = [(f, i) for i, f in enumerate(src.overviews(1)) if f <= need]
                ovr_factor, level = max(fits) if fits else (1, -1)
                bands_idx = _rgb_bands(src, ColorInterp)
                colormap = None
                if len(bands_idx) == 1:
                    try:
                        colormap = src.colormap(1)
                    except ValueError:
                        colormap = None
                src_crs = src.crs
            open_kw = {"overview_level": level} if level >= 0 else {}
            with rasterio.open(tif_path, **open_kw) as ds:
                factor = need / ovr_factor
                if factor >= 2:  # no overview close enough: decimated read
                    f = int(factor)
                    shape = (max(1, ds.height // f), max(1, ds.width // f))
                    data = ds.read(bands_idx, out_shape=(len(bands_idx), *shape), resampling=Resampling.average)
                    mask = ds.dataset_mask(out_shape=shape, resampling=Resampling.nearest)
                    src_transform = ds.transform @ Affine.scale(ds.width / shape[1], ds.height / shape[0])
                else:
                    data = ds.read(bands_idx)
                    mask = ds.dataset_mask()
                    src_transform = ds.transform
    except rasterio.errors.RasterioIOError as e:
        raise InputError("error.bad_store", path=str(tif_path), detail=str(e)) from e

    valid = mask > 0
    if colormap:
        lut = np.zeros((256, 4), np.uint8)
        for i, rgba in colormap.items():
            if 0 <= i < 256:
                lut[i] = rgba
        rgb = [lut[np.clip(data[0], 0, 255).astype(np.uint8)][..., c] for c in range(3)]
    elif len(bands_idx) >= 3:
        rgb = [_stretch(data[i], valid) for i in range(3)]
    else:
        g = _stretch(data[0], valid)
        rgb = [g, g, g]
    out = np.zeros((4, dst_h, dst_w), np.uint8)
    for i, band in enumerate(rgb + [np.where(valid, 255, 0).astype(np.uint8)]):
        reproject(source=band, destination=out[i], src_transform=src_transform, src_crs=src_crs,
                  dst_transform=dst_transform, dst_crs=dst_crs,
                  resampling=Resampling.nearest if i == 3 else Resampling.bilinear, dst_nodata=0)
    left, top = dst_transform @ (0, 0)
    right, bottom = dst_transform @ (dst_w, dst_h)
    w, s, e, n = transform_bounds(dst_crs, WEB_CRS, left, bottom, right, top)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = {
        "url": f"{url_prefix.rstrip('/')}/{png.name}",
        "bounds": [[round(s, 7), round(w, 7)], [round(n, 7), round(e, 7)]],
        "attribution": attribution if attribution is not None else tif_path.stem,
        "path": str(png),
        "width": int(dst_w),
        "height": int(dst_h),
    }
    atomic_write(png, lambda f: Image.fromarray(np.moveaxis(out, 0, -1), "RGBA").save(f, format="PNG"))
    atomic_write(meta, lambda f: f.write(json.dumps(result, ensure_ascii=False).encode("utf-8")))
    return result


def _rgb_bands(src, ColorInterp) -> list[int]:
    """1-based band indexes to show: red/green/blue by colour interpretation, else the first three, else band 1."""
    ci = list(src.colorinterp)
    want = [ColorInterp.red, ColorInterp.green, ColorInterp.blue]
    if all(c in ci for c in want):
        return [ci.index(c) + 1 for c in want]
    return [1, 2, 3] if src.count >= 3 else [1]


# ------------------------------------------------------------------ tile pyramids (gis/maps/vectortiles.py)
def tile_layer(manifest: dict, spec, lang: str = "zh", **kwargs):
    """A folium element drawing a pyramid (``gis.maps.vectortiles.tile_layer_options``); add it to a FeatureGroup.

    Here, not beside the pyramid code: building tiles (the CLI, imports) needs no folium."""
    return _VectorTileLayer(tile_layer_options(manifest, spec, lang, **kwargs))


class _VectorTileLayer(RawMacroElement):
    """The GridLayer of a tile pyramid; its script is included once per page."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            var {{ this.get_name() }} = RenewalTiles.add(
                {{ this._parent._parent.get_name() }}, {{ this._parent.get_name() }}, {{ this.options }});
        {% endmacro %}
        """
    )

    def __init__(self, options: dict):
        super().__init__()
        self._name = "AtlasVectorTiles"
        self.options = js_json(options)
