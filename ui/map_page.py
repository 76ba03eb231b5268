"""The map page: filters, the layered district map, the parcel panel."""
from __future__ import annotations

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx
from streamlit_folium import st_folium

from gis.maps.area_select import add_area_select
from gis.maps.mapstate import MapState
from gis.maps.mapview import (
    PROJECTS_GROUP,
    LayerFiles,
    build_map,
    filter_group,
    patch_group,
    restore_group,
    selection_group,
)
from gis.model.catalog import load_layer_catalog
from gis.model.spatial import fit_bounds
from ui import cadastre_panel as cadastre
from ui import timeline_control as timeline
from ui.basemap_picker import MapBasemap, basemap_sidebar
from ui.common import (
    MAP_VIEWS,
    current_parcels,
    filter_result,
    lang,
    parcel_index,
    parcel_rows,
    settings,
    shown_errors,
    sidebar_filters,
    store,
    tr,
)
from ui.downloads import project_downloads, village_downloads
from ui.evidence_widgets import photo_points
from ui.parcel_panel import parcel_panel
from ui.parcel_table import area_parcels, area_picked, filtered_table, new_area
from ui.plan_common import map_colouring
from ui.project_common import project_footprints
from ui.project_panel import project_panel
from ui.quick_find import quick_find
from ui.village_panel import village_charts

MAP_KEY = "district-map"
MAP_FRAGMENT, BELOW_FRAGMENT = MAP_VIEWS  # the keys of the two fragments a filter or an advance reruns


@st.cache_resource(show_spinner=False)
def _layers():
    return load_layer_catalog()  # the catalogue build_map draws


@st.cache_resource(show_spinner=False)
def _layer_files() -> LayerFiles:
    return LayerFiles(settings().generated_dir / "layers")  # the layers' GeoJSON, fetched by the map


def _state() -> MapState:
    """This session's layer groups and view (what a rerun that mounts a new map must keep)."""
    if "map_state" not in st.session_state:
        st.session_state["map_state"] = MapState()
    return st.session_state["map_state"]


def _map(codes: tuple | None, bm: MapBasemap, day=None, since=None):
    """The folium map of every parcel, whatever the filter: its script and its layer file stay the same, so
    streamlit-folium keeps the map the browser holds, and the filter's result rides in :func:`filter_group`
    (issue 19); ``codes`` only narrow a two-date comparison's counts. Built each run from cached layers:
    folium maps are mutated by st_folium, so the object itself is not cached. Over a GCJ-02 basemap (AMap)
    every layer is drawn shifted to GCJ-02 (``bm``)."""
    s = store()
    parcels = bm.parcels()
    colouring = map_colouring()
    if day or since:  # the district as of a past month, or what changed between two dates
        rp = timeline.replay(parcels, bm.basemap.datum)
        parcels = rp.at(day) if day else parcels
        if since:
            colouring = timeline.compare_colouring(rp, codes, since, day)
    return bm.add_to(build_map(bm.context(), parcels, s.catalog, lang=lang(), basemap=bm.underlay, demo=s.is_demo,
                               tiles=cadastre.map_tiles(bm.basemap.datum), colouring=colouring,
                               projects=bm.display(project_footprints()), layers=_layers(),
                               photos=bm.points(photo_points()), publish=_layer_files()))


def _clicked_project(out: dict | None, state: MapState) -> str | None:
    """The key project whose circle a new click hit: the click reports the feature (``last_active_drawing``)
    at the spot clicked (``last_object_clicked`` is the click's own lat/lng then; after a click on empty
    map it keeps an older one)."""
    code = _project_hit(out, state)
    if code is None or repr(out.get("last_clicked")) == st.session_state.get("_last_click"):
        return None
    st.session_state["_last_click"] = repr(out.get("last_clicked"))
    return code


def _project_hit(out: dict | None, state: MapState) -> str | None:
    """The project code when the map's last report is a click on a project's circle, else None."""
    if not out or not state.shows(PROJECTS_GROUP):
        return None
    click, hit = out.get("last_clicked"), out.get("last_object_clicked")
    props = ((out.get("last_active_drawing") or {}).get("properties") or {})
    if click is None or hit is None or props.get("layer") != PROJECTS_GROUP:
        return None
    if abs(click["lat"] - hit["lat"]) > 1e-9 or abs(click["lng"] - hit["lng"]) > 1e-9:
        return None
    return props.get("code")


def _rerun_map() -> None:
    """Run the map's fragment again when only it runs (a click), else the whole page: Streamlit refuses a
    fragment-scoped rerun inside a full run."""
    ctx = get_script_run_ctx()
    st.rerun(scope="fragment" if ctx is not None and ctx.fragment_ids_this_run else "app")


def _pick(click: dict, bm: MapBasemap, codes: tuple | None, state: MapState) -> str | None:
    """The tracked parcel drawn at a click (only among what the map draws: the filter's result, the
    groups switched on), from the store's STR-tree index; None off every parcel."""
    s = store()
    lon, lat = bm.to_store(click["lng"], click["lat"])  # back from GCJ-02 over AMap
    return parcel_index(s.location, s.data_version()).at(
        lon, lat, codes=frozenset(codes) if codes is not None else None, kinds=_layers().drawn_kinds(state.hidden))


def _new_click(out: dict | None) -> dict | None:
    # last_clicked changes on every click; the feature fields keep their old value
    # after a click on empty map, so the location decides
    click = (out or {}).get("last_clicked") or (out or {}).get("last_object_clicked")
    return None if click is None or repr(click) == st.session_state.get("_last_click") else click


def _on_map_report(bm: MapBasemap, codes: tuple | None, state: MapState):
    """streamlit-folium's ``on_change``: a click on a tracked parcel selects it before the run that
    follows, so that one run (of the map's fragment) opens its panel instead of two (issue 19).
    Everything else (a rectangle drawn, the cadastre, a click off every parcel) is left to the run."""
    def report() -> None:
        out = st.session_state.get(MAP_KEY)
        click = _new_click(out)
        if click is None or new_area(out) is not None:
            return
        state.read(out)
        if _project_hit(out, state) is not None:  # a project's circle over its parcels: the run opens it
            return
        code = _pick(click, bm, codes, state)
        if code is not None:
            st.session_state["_last_click"] = repr(click)
            if code != st.session_state.get("selected"):
                st.session_state["selected"] = code
                cadastre.close()
    return report


def _clicked_code(out: dict | None, bm: MapBasemap, codes: tuple | None, state: MapState) -> str | None:
    """The parcel a new click picked, by location (see :func:`_pick`); else the cadastre parcel
    there, when the cadastre is on."""
    click = _new_click(out)
    if click is None:
        return None
    st.session_state["_last_click"] = repr(click)
    code = _pick(click, bm, codes, state)
    if code is None and state.shows("cadastre"):  # the cadastre parcel under the click (read-only)
        lon, lat = bm.to_store(click["lng"], click["lat"])
        was_open = cadastre.view_bounds() is not None
        if cadastre.pick(lon, lat):
            st.session_state.pop("selected", None)
            _rerun_map()
        if was_open:  # a click outside the cadastre closes its panel
            _rerun_map()
    return code


def page() -> None:
    st.title(tr("app.title"))
    quick_find()
    sidebar_filters()  # the widgets; each fragment below takes their result from the state (``filter_result``)
    bm = basemap_sidebar()
    day, since = timeline.moment_control()
    map_and_panel(bm, day, since)
    below_map(day)  # outside the map's fragment: a click on the map does not redo the table


# A fragment's arguments are those of the last full run: what a write changes (the filter's result, the
# flash) is read inside each fragment, so that the panel's advance reruns these two only (issue 19).
@st.fragment(key=MAP_FRAGMENT)
def map_and_panel(bm: MapBasemap, day, since) -> None:
    """The map and the panel beside it, as one fragment: a click on the map, a tab or a form of the
    panel reruns this part only (not the sidebar, its filters, the quick find and the table); an advance,
    a block, a new search text or stage rerun it with the part below the map (``ui.common.MAP_VIEWS``); a
    zone, kind or village, the whole page."""
    with shown_errors(), store().one_connection():  # a run of the fragment alone: app.py's connection is not held
        # the notes above the map in one block that is always there: the map keeps its place in the page, and so
        # its iframe (a block that moves, e.g. under a new "n parcels" caption, is mounted anew: a new map, issue 19)
        notes = st.container()
        with notes:
            if day:
                st.caption(tr("timeline.as_of_caption", date=day.isoformat()))
            if "flash" in st.session_state:  # an advance's confirmation, before the filter's result is made again
                st.success(st.session_state.pop("flash"))
        filtered, codes = filter_result()
        with notes:
            if len(filtered) == 0:
                st.info(tr("ui.no_results"))
            elif codes is not None:
                st.caption(tr("ui.results", n=len(filtered)))
        _map_and_panel(filtered, codes, bm, day, since)


@st.fragment(key=BELOW_FRAGMENT)
def below_map(day) -> None:
    """What is below the map: an open village's briefing and charts, the filter's table."""
    with shown_errors(), store().one_connection():
        filtered, codes = filter_result()
        if st.session_state.get("f_village"):  # a village is open: its briefing page
            village_downloads(st.session_state["f_village"])
            village_charts(st.session_state["f_village"], day)
        filtered_table(filtered, codes)


def _map_and_panel(filtered, codes: tuple | None, bm: MapBasemap, day, since) -> None:
    state = _state()
    state.read(st.session_state.get(MAP_KEY))  # the last report: groups switched, the view
    selected = st.session_state.get("selected")
    project = None if selected else st.session_state.get("selected_project")
    land = None if selected or project else st.session_state.get(cadastre.SESSION_KEY)
    # columns either way, so that the map keeps its place in the page when a panel opens beside it:
    # streamlit-folium keeps the same map (no reload of the iframe, its layers and the view)
    left, right = st.columns([3, 2]) if selected or land or project else (st.columns(1)[0], None)
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
        highlight = parcel_rows([selected]) if selected else area_parcels(parcels)
        if land is not None and cadastre.highlight(land) is not None:
            highlight = cadastre.highlight(land)
        if project:  # the project's footprint outlined as a selection
            fp = project_footprints()
            highlight = fp[fp["code"] == project].assign(code=project)
        # a new map (the panel opened, another basemap …) comes back to the planner's groups and view
        restore = restore_group(state.restore(bounds))
        fmap = _map(codes, bm=bm, day=day, since=since)
        out = st_folium(add_area_select(fmap, lang()), height=680, width=None, key=MAP_KEY,
                        feature_group_to_add=[selection_group(bm.display(highlight), lang=lang()), restore,
                                              patch_group(fmap), filter_group(codes, bm.bounds(bounds), state.token),
                                              *bm.view_groups(MAP_KEY)],
                        returned_objects=["last_clicked", "last_object_clicked", "last_active_drawing",
                                          "selected_layers", *bm.returned_objects],
                        on_change=_on_map_report(bm, codes, state),
                        render=False)  # the map renders once, not twice: the same component arguments, ≈1.5 ms less
        state.read(out)
        picked = _clicked_project(out, state)
        if picked and picked != project:
            st.session_state["selected_project"] = picked
            st.session_state.pop("selected", None)
            cadastre.close()
            _rerun_map()
        code = None if picked or area_picked(out, bm, filtered) else _clicked_code(out, bm, codes, state)
        if code and code != selected:
            st.session_state.pop("selected_project", None)
            st.session_state["selected"] = code
            cadastre.close()
            _rerun_map()
        if not selected and not land and not project:
            st.caption(tr("ui.click_hint"))
    if selected or land or project:
        with right:
            if st.button(tr("ui.close"), key="close-panel"):
                st.session_state.pop("selected", None)
                st.session_state.pop("selected_project", None)
                st.session_state.pop("project_view", None)
                cadastre.close()
                _rerun_map()
            if selected:
                parcel_panel(selected, day=day)
            elif project:
                project_downloads(project)
                project_panel(project, on_map=True)
            else:
                cadastre.cadastre_panel(land)


with shown_errors():
    page()
    timeline.play_on()
