"""The map page: filters, the layered district map, the parcel panel."""
from __future__ import annotations

import streamlit as st
from streamlit_folium import st_folium

from gis.mapview import build_map, render_basemap_png
from gis.spatial import fit_bounds

from ui.common import (context_layers, current_parcels, lang, parcel_index, settings, shown_errors,
                       sidebar_filters, store, tr)
from ui.parcel_panel import parcel_panel


@st.cache_resource(max_entries=2)
def _basemap(tif: str) -> dict | None:
    return render_basemap_png(tif, settings().generated_dir)


@st.cache_resource(max_entries=16)
def _map(path: str, version: int, codes: tuple, selected: str | None, language: str, bounds_key: tuple):
    """The folium map for one data version, filter result and selection (rebuilt only when one changes)."""
    s = store()
    parcels = current_parcels()
    shown = parcels[parcels["code"].isin(codes)] if codes is not None else parcels
    raster = settings().raster
    basemap = _basemap(str(raster)) if raster and raster.exists() else None
    bounds = [list(bounds_key[:2]), list(bounds_key[2:])] if bounds_key else None
    return build_map(context_layers(path), shown, s.catalog, lang=language, basemap=basemap,
                     bounds=bounds, selected=selected, demo=s.is_demo)


def _clicked_code(out: dict | None) -> str | None:
    """The parcel a new click picked: from the clicked feature's properties, else by location."""
    if not out:
        return None
    click = out.get("last_object_clicked") or out.get("last_clicked")
    feature = out.get("last_active_drawing") or {}
    token = repr((click, (feature.get("properties") or {}).get("code")))
    if click is None or token == st.session_state.get("_last_click"):
        return None
    st.session_state["_last_click"] = token
    s = store()
    code = parcel_index(str(s.path), s.data_version()).at(click["lng"], click["lat"])
    return code or (feature.get("properties") or {}).get("code")


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
        bounds_key = tuple(round(v, 6) for pair in bounds for v in pair) if bounds else ()
        m = _map(str(s.path), s.data_version(), codes, selected, lang(), bounds_key)
        out = st_folium(m, height=680, width=None, key="district-map",
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
