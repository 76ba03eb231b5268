"""The map page: filters, the layered district map, the parcel panel."""
from __future__ import annotations

import streamlit as st
from streamlit_folium import st_folium

from gis.maps.area_select import add_area_select
from gis.maps.mapstate import MapState
from gis.maps.mapview import PROJECTS_GROUP, build_map, restore_group, selection_group
from gis.model.catalog import load_layer_catalog
from gis.model.spatial import fit_bounds
from ui import cadastre_panel as cadastre
from ui import timeline_control as timeline
from ui.basemap_picker import MapBasemap, basemap_sidebar
from ui.common import current_parcels, lang, parcel_index, shown_errors, sidebar_filters, store, tr
from ui.downloads import project_downloads, village_downloads
from ui.evidence_widgets import photo_points
from ui.parcel_panel import parcel_panel
from ui.parcel_table import area_parcels, area_picked, filtered_table
from ui.plan_common import map_colouring
from ui.project_common import project_footprints
from ui.project_panel import project_panel
from ui.quick_find import quick_find

MAP_KEY = "district-map"


@st.cache_resource
def _layers():
    return load_layer_catalog()  # the catalogue build_map draws


def _state() -> MapState:
    """This session's layer groups and view (what a rerun that mounts a new map must keep)."""
    if "map_state" not in st.session_state:
        st.session_state["map_state"] = MapState()
    return st.session_state["map_state"]


def _map(codes: tuple | None, bounds, bm: MapBasemap, day=None, since=None):
    """The folium map of the current filter result. Built each run (≈0.1 s for the demo) from
    cached layers: folium maps are mutated by st_folium, so the object itself is not cached.
    Over a GCJ-02 basemap (AMap) every layer is drawn shifted to GCJ-02 (``bm``)."""
    s = store()
    parcels = bm.parcels()
    colouring = map_colouring()
    if day or since:  # the district as of a past month, or what changed between two dates
        rp = timeline.replay(parcels, bm.basemap.datum)
        parcels = rp.at(day) if day else parcels
        if since:
            colouring = timeline.compare_colouring(rp, codes, since, day)
    shown = parcels[parcels["code"].isin(codes)] if codes is not None else parcels
    return bm.add_to(build_map(bm.context(), shown, s.catalog, lang=lang(), basemap=bm.underlay,
                               bounds=bm.bounds(bounds), demo=s.is_demo,
                               tiles=cadastre.map_tiles(bm.basemap.datum), colouring=colouring,
                               projects=bm.display(project_footprints()),
                               photos=bm.points(photo_points())))


def _clicked_project(out: dict | None, state: MapState) -> str | None:
    """The key project whose circle a new click hit: the click reports the feature (``last_active_drawing``)
    at the spot clicked (``last_object_clicked`` is the click's own lat/lng then; after a click on empty
    map it keeps an older one)."""
    if not out or not state.shows(PROJECTS_GROUP):
        return None
    click, hit = out.get("last_clicked"), out.get("last_object_clicked")
    props = ((out.get("last_active_drawing") or {}).get("properties") or {})
    if click is None or hit is None or props.get("layer") != PROJECTS_GROUP:
        return None
    if abs(click["lat"] - hit["lat"]) > 1e-9 or abs(click["lng"] - hit["lng"]) > 1e-9:
        return None
    if repr(click) == st.session_state.get("_last_click"):
        return None
    st.session_state["_last_click"] = repr(click)
    return props.get("code")


def _clicked_code(out: dict | None, bm: MapBasemap, codes: tuple | None, state: MapState) -> str | None:
    """The parcel a new click picked, by location: only among what the map draws (the filter's
    result, the groups switched on); else the cadastre parcel there, when the cadastre is on."""
    if not out:
        return None
    # last_clicked changes on every click; the feature fields keep their old value
    # after a click on empty map, so the location decides (an STR-tree look-up)
    click = out.get("last_clicked") or out.get("last_object_clicked")
    if click is None or repr(click) == st.session_state.get("_last_click"):
        return None
    st.session_state["_last_click"] = repr(click)
    s = store()
    lon, lat = bm.to_store(click["lng"], click["lat"])  # back from GCJ-02 over AMap
    code = parcel_index(s.location, s.data_version()).at(
        lon, lat, codes=frozenset(codes) if codes is not None else None, kinds=_layers().drawn_kinds(state.hidden))
    if code is None and state.shows("cadastre"):  # the cadastre parcel under the click (read-only)
        was_open = cadastre.view_bounds() is not None
        if cadastre.pick(lon, lat):
            st.session_state.pop("selected", None)
            st.rerun()
        if was_open:  # a click outside the cadastre closes its panel
            st.rerun()
    return code


def page() -> None:
    st.title(tr("app.title"))
    quick_find()
    filtered, codes = sidebar_filters()
    bm = basemap_sidebar()
    day, since = timeline.moment_control()
    if day:
        st.caption(tr("timeline.as_of_caption", date=day.isoformat()))
    if "flash" in st.session_state:
        st.success(st.session_state.pop("flash"))
    if len(filtered) == 0:
        st.info(tr("ui.no_results"))
    elif codes is not None:
        st.caption(tr("ui.results", n=len(filtered)))

    state = _state()
    state.read(st.session_state.get(MAP_KEY))  # the last report: groups switched, the view
    selected = st.session_state.get("selected")
    project = None if selected else st.session_state.get("selected_project")
    land = None if selected or project else st.session_state.get(cadastre.SESSION_KEY)
    left, right = st.columns([3, 2]) if selected or land or project else (st.container(), None)
    with left:
        bounds = fit_bounds(filtered) if codes is not None and len(filtered) else None
        if land and bounds is None:
            bounds = cadastre.view_bounds()
        view = st.session_state.get("project_view")  # (code, bounds): the projects page sent a planner here
        if project and bounds is None and view and view[0] == project:
            bounds = view[1]
        # the selection outline is sent as a separate feature group, so selecting a
        # parcel does not reload the map (and lose the planner's pan and zoom)
        parcels = current_parcels()
        highlight = parcels[parcels["code"] == selected] if selected else area_parcels(parcels)
        if land is not None and cadastre.highlight(land) is not None:
            highlight = cadastre.highlight(land)
        if project:  # the project's footprint outlined as a selection
            fp = project_footprints()
            highlight = fp[fp["code"] == project].assign(code=project)
        # a new map (the panel opened, another basemap …) comes back to the planner's groups and view
        restore = restore_group(state.restore(bounds))
        out = st_folium(add_area_select(_map(codes, bounds, bm=bm, day=day, since=since), lang()), height=680, width=None, key=MAP_KEY,
                        feature_group_to_add=[selection_group(bm.display(highlight), lang=lang()), restore,
                                              *bm.view_groups(MAP_KEY)],
                        returned_objects=["last_clicked", "last_object_clicked", "last_active_drawing",
                                          "selected_layers", *bm.returned_objects])
        state.read(out)
        picked = _clicked_project(out, state)
        if picked and picked != project:
            st.session_state["selected_project"] = picked
            st.session_state.pop("selected", None)
            cadastre.close()
            st.rerun()
        code = None if picked or area_picked(out, bm, filtered) else _clicked_code(out, bm, codes, state)
        if code and code != selected:
            st.session_state.pop("selected_project", None)
            st.session_state["selected"] = code
            cadastre.close()
            st.rerun()
        if not selected and not land and not project:
            st.caption(tr("ui.click_hint"))
        if st.session_state.get("f_village"):  # a village is open: its briefing page
            village_downloads(st.session_state["f_village"])
        filtered_table(filtered, codes)
    if selected or land or project:
        with right:
            if st.button(tr("ui.close"), key="close-panel"):
                st.session_state.pop("selected", None)
                st.session_state.pop("selected_project", None)
                st.session_state.pop("project_view", None)
                cadastre.close()
                st.rerun()
            if selected:
                parcel_panel(selected)
            elif project:
                project_downloads(project)
                project_panel(project, on_map=True)
            else:
                cadastre.cadastre_panel(land)


with shown_errors():
    page()
    timeline.play_on()
