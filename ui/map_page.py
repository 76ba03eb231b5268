"""The map page: filters, the layered district map, the parcel panel."""
from __future__ import annotations

import streamlit as st
from streamlit_folium import st_folium

from gis.mapview import build_map, render_basemap_png, selection_group
from gis.spatial import fit_bounds

from ui.common import (context_layers, current_parcels, lang, parcel_index, settings, shown_errors,
                       sidebar_filters, store, tr)
from ui.parcel_panel import parcel_panel


@st.cache_resource(max_entries=2)
def _basemap(tif: str) -> dict | None:
    return render_basemap_png(tif, settings().generated_dir)


def _map(codes: tuple | None, bounds, narrow: bool):
    """The folium map of the current filter result. Built each run (≈0.1 s for the demo) from
    cached layers: folium maps are mutated by st_folium, so the object itself is not cached."""
    s = store()
    parcels = current_parcels()
    shown = parcels[parcels["code"].isin(codes)] if codes is not None else parcels
    raster = settings().raster
    basemap = _basemap(str(raster)) if raster and raster.exists() else None
    return build_map(context_layers(str(s.path)), shown, s.catalog, lang=lang(), basemap=basemap,
                     bounds=bounds, demo=s.is_demo, collapsed=narrow)


def _clicked_code(out: dict | None) -> str | None:
    """The parcel a new click picked: from the clicked feature's properties, else by location."""
    if not out:
        return None
    # last_clicked changes on every click; the feature fields keep their old value
    # after a click on empty map, so the location decides (an STR-tree look-up)
    click = out.get("last_clicked") or out.get("last_object_clicked")
    if click is None or repr(click) == st.session_state.get("_last_click"):
        return None
    st.session_state["_last_click"] = repr(click)
    s = store()
    return parcel_index(str(s.path), s.data_version()).at(click["lng"], click["lat"])


def page() -> None:
    s = store()
    st.title(tr("app.title"))
    filtered, codes = sidebar_filters()
    if "flash" in st.session_state:
        st.success(st.session_state.pop("flash"))
    if len(filtered) == 0:
        st.info(tr("ui.no_results"))
    elif codes is not None:
        st.caption(tr("ui.results", n=len(filtered)))

    selected = st.session_state.get("selected")
    left, right = st.columns([3, 2]) if selected else (st.container(), None)
    with left:
        bounds = fit_bounds(filtered) if codes is not None and len(filtered) else None
        # the selection outline is sent as a separate feature group, so selecting a
        # parcel does not reload the map (and lose the planner's pan and zoom)
        parcels = current_parcels()
        highlight = parcels[parcels["code"] == selected] if selected else parcels.iloc[:0]
        out = st_folium(_map(codes, bounds, narrow=bool(selected)), height=680, width=None, key="district-map",
                        feature_group_to_add=selection_group(highlight, lang=lang()),
                        returned_objects=["last_clicked", "last_object_clicked", "last_active_drawing"])
        code = _clicked_code(out)
        if code and code != selected:
            st.session_state["selected"] = code
            st.rerun()
        if not selected:
            st.caption(tr("ui.click_hint"))
    if selected:
        with right:
            if st.button(tr("ui.close"), key="close-panel"):
                st.session_state.pop("selected", None)
                st.rerun()
            parcel_panel(selected)


with shown_errors():
    page()
