"""The basemap picker (sidebar of the map page) and what the map page needs from the choice.

Which basemap a user sees is remembered per user (``gis.basemaps.save_choice``
→ the store's ``preferences`` table, shared by every app server), keyed by
who they are: the signed-in user where the store has accounts, else the name
they record changes under.
The current kind is also mirrored in the address (``?basemap=amap_road``):
a reload keeps it before anyone has given a name, and a link shows a
colleague the same basemap. Order: the address, then the user's stored
choice, then the settings (``RENEWAL_BASEMAP``).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import streamlit as st

from gis.base.errors import RenewalError
from gis.maps.basemap_layers import (
    add_basemap,
    raster_underlay,
    returned_view,
    view_group,
    view_image,
    wants_view_updates,
)
from gis.maps.basemaps import (
    KINDS,
    Basemap,
    BasemapChoice,
    bounds_to_display,
    click_to_store,
    export_basemap,
    fill_choice,
    kind_label,
    load_choice,
    points_to_display,
    resolve_basemap,
    save_choice,
    stored_choice,
    to_display,
)
from gis.maps.rasterview import build_overviews, raster_info
from gis.printing.briefing import default_raster
from ui.common import all_parcels, context_layers, current_user, lang, plain, settings, store, tr

_STATE = "bm_choice"


def _user() -> str | None:
    return st.session_state.get("user") or st.session_state.get("author") or settings().user or None


def _may_configure() -> bool:
    """Typing a server path or building overviews (writes FILE.ovr): admins, or anyone on a store without accounts."""
    user = current_user()
    return user is None or user.role == "admin"


def _show(choice: BasemapChoice) -> None:
    st.session_state[_STATE] = choice.as_dict()
    st.session_state["bm_kind"] = choice.kind
    st.session_state["bm_path"] = choice.path
    st.session_state["bm_url"] = choice.url
    st.session_state["bm_attr"] = choice.attribution


def _current() -> BasemapChoice:
    user = _user()
    if _STATE not in st.session_state:
        choice = load_choice(settings(), user, store())
        asked = st.query_params.get("basemap")
        if asked in KINDS and asked != choice.kind:
            choice = fill_choice(BasemapChoice(kind=asked), settings())
        _show(choice)
        st.session_state["bm_for"] = user
    elif st.session_state.get("bm_for") != user:
        # someone else signed in, or a name was given: their stored choice, else they keep this one
        st.session_state["bm_for"] = user
        stored = stored_choice(settings(), user, store())
        if stored is not None:
            _show(stored)
        else:
            try:
                save_choice(settings(), user, BasemapChoice.from_dict(st.session_state[_STATE]) or BasemapChoice(),
                            store())
            except (OSError, RenewalError):  # remembering is a convenience: a read-only store still shows the map
                pass
    return BasemapChoice.from_dict(st.session_state[_STATE]) or BasemapChoice()


def _changed() -> None:
    kind = st.session_state.get("bm_kind", "none")
    choice = fill_choice(BasemapChoice(kind=kind, path=st.session_state.get("bm_path", "").strip(),
                                       url=st.session_state.get("bm_url", "").strip(),
                                       attribution=st.session_state.get("bm_attr", "").strip()), settings())
    st.session_state["bm_path"], st.session_state["bm_url"] = choice.path, choice.url
    st.session_state[_STATE] = choice.as_dict()
    st.query_params["basemap"] = kind
    try:
        st.session_state["bm_saved"] = save_choice(settings(), _user(), choice, store())
    except (OSError, RenewalError):
        st.session_state["bm_saved"] = False


@st.cache_resource(max_entries=4, show_spinner=False)
def _underlay(raster: str, stamp: str, attribution: str, _basemap: Basemap) -> dict | None:
    """The whole-image underlay (rendered once per file version; the PNG itself is cached on disk too)."""
    return raster_underlay(_basemap, settings().generated_dir)


@st.cache_resource(max_entries=2, show_spinner=False)
def _context_display(path: str, datum: str) -> dict:
    return {k: to_display(v, datum) for k, v in context_layers(path).items()}


@st.cache_resource(max_entries=2, show_spinner=False)
def _parcels_display(path: str, version: int, datum: str):
    return to_display(all_parcels(path, version), datum)


@dataclass
class MapBasemap:
    """The chosen basemap as the map page uses it."""

    basemap: Basemap
    underlay: dict | None = None

    @property
    def track_view(self) -> bool:
        """The map must report its bounds and zoom (a large local raster: each pan draws the view)."""
        return wants_view_updates(self.basemap, self.underlay)

    @property
    def returned_objects(self) -> list[str]:
        return ["bounds", "zoom"] if self.track_view else []

    def context(self) -> dict:
        return _context_display(store().location, self.basemap.datum)

    def parcels(self):
        s = store()
        return _parcels_display(s.location, s.data_version(), self.basemap.datum)

    def display(self, gdf):
        return to_display(gdf, self.basemap)

    def bounds(self, bounds):
        return bounds_to_display(bounds, self.basemap)

    def points(self, points: list[dict]) -> list[dict]:
        return points_to_display(points, self.basemap)

    def to_store(self, lon: float, lat: float) -> tuple[float, float]:
        return click_to_store(lon, lat, self.basemap)

    def add_to(self, m):
        return add_basemap(m, self.basemap, lang())

    def view_groups(self, map_key: str) -> list:
        """The sharp view image for the map's last reported view (empty when not needed)."""
        if not self.track_view:
            return []
        view = returned_view(st.session_state.get(map_key))
        try:
            image = view_image(self.basemap, view, self.underlay, settings().generated_dir,
                               previous=st.session_state.get("bm_view_image"))
        except RenewalError as e:
            st.warning(e.message(lang()))
            return []
        st.session_state["bm_view_image"] = image
        fg = view_group(image)
        return [fg] if fg is not None else []


def _prepare_button(path) -> None:
    info = raster_info(path)
    st.warning(tr("basemap.needs_overviews", width=f"{info.width:,}", height=f"{info.height:,}"))
    if st.button(tr("basemap.prepare"), key="bm_prepare"):
        bar = st.progress(0)
        factors = build_overviews(path, progress=lambda done, total, label: bar.progress(min(1.0, done / total)))
        _underlay.clear()
        st.success(tr("basemap.prepared", levels=", ".join(f"1:{f}" for f in factors)))


def export_background() -> tuple[object, str]:
    """What briefing exports print under their maps, and its name: the basemap chosen for the map where its
    terms allow (own rasters, Tianditu; ``gis.basemaps.export_basemap``), else the configured GeoTIFF;
    (None, "") when the map has no basemap or no imagery is configured.

    A GeoTIFF comes back as its path (what the renderers cache on), Tianditu as the
    ``ExportBasemap`` that fetches its tiles for each page.
    """
    choice = _current()
    if choice.kind == "orthophoto" and not _may_configure():
        choice = fill_choice(replace(choice, path=""), settings())
    if choice.kind == "none":
        return None, ""
    eb = export_basemap(settings(), choice, lang())
    if eb is None:
        path = default_raster(settings())
        return (path, kind_label("raster", lang())) if path is not None else (None, "")
    return (eb.raster if eb.raster is not None else eb), eb.label


def basemap_sidebar() -> MapBasemap:
    """The picker in the sidebar; returns the chosen basemap, resolved and ready for the map."""
    choice = _current()
    if "bm_kind" not in st.session_state:  # back from another page, which dropped the widgets' state
        _show(choice)
    if choice.kind == "orthophoto" and not _may_configure():
        # other users see the configured orthophoto only: a typed path would show any GeoTIFF the server can read
        choice = fill_choice(replace(choice, path=""), settings())
    with st.sidebar:
        st.selectbox(tr("basemap.picker"), KINDS, key="bm_kind", on_change=_changed,
                     format_func=lambda k: kind_label(k, lang()))
        if choice.kind == "orthophoto" and _may_configure():
            st.text_input(tr("basemap.path"), key="bm_path", on_change=_changed)
        elif choice.kind == "custom":
            st.text_input(tr("basemap.url"), key="bm_url", on_change=_changed, help=tr("basemap.url_help"))
            st.text_input(tr("basemap.attribution"), key="bm_attr", on_change=_changed)
        basemap = resolve_basemap(choice, settings(), lang())
        if basemap.attribution:
            st.caption(tr("basemap.source", name=plain(basemap.attribution)))
        if basemap.notice:
            st.warning(basemap.notice_text(lang()))
        if basemap.datum == "gcj02":
            st.caption(tr("basemap.gcj_note"))
        if st.session_state.get("bm_saved") and _user():
            st.caption(tr("basemap.remembered", user=plain(_user())))
        elif choice.kind != "none" and not _user():
            st.caption(tr("basemap.remember_hint"))
        underlay = None
        if basemap.raster is not None:
            try:
                info = raster_info(basemap.raster)
                if info.needs_overviews and _may_configure():
                    _prepare_button(basemap.raster)
                    info = raster_info(basemap.raster)
                if info.needs_overviews and not _may_configure():
                    st.warning(tr("basemap.needs_overviews", width=f"{info.width:,}", height=f"{info.height:,}"))
                else:
                    with st.spinner():
                        underlay = _underlay(str(basemap.raster), info.stamp, basemap.attribution, basemap)
            except RenewalError as e:
                st.warning(e.message(lang()))
    return MapBasemap(basemap=basemap, underlay=underlay)
