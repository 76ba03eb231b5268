"""The cadastre on the map page: its tile pyramid (cached on the cadastre's
content key), what a click picked, and the read-only panel of a cadastre parcel.

A cadastre parcel is not a tracked parcel: the panel shows its facts and the
tracked parcels that lie on it (a button opens each), nothing to edit.
"""
from __future__ import annotations

import geopandas as gpd
import shapely
import streamlit as st

from gis.base.errors import InputError, NotFoundError
from gis.base.units import STORE_CRS, format_area
from gis.maps.cadastre_tiles import cadastre_tiles
from gis.model.catalog import load_layer_catalog
from gis.model.spatial import containing_names
from gis.store.cadastre import describe_cadastre, overlapping_parcels
from gis.store.open import cadastre_at, cadastre_key, cadastre_parcel

from .common import context_layers, current_parcels, lang, parcel_index, plain, settings, shown_errors, store, tr

SESSION_KEY = "cadastre"  # code of the cadastre parcel whose panel is open
VIEW_KEY = "_cadastre_view"  # the map view fitted when the panel opened
VIEW_PAD = 0.0025  # degrees (≈ 250 m) around the first parcel clicked: a street-level view


@st.cache_resource(max_entries=4, show_spinner=False)
def _spec(layers_dir: str):
    try:
        return load_layer_catalog(f"{layers_dir}/catalog.toml").get("cadastre")
    except InputError:  # a catalogue without the cadastre layer: nothing to draw
        return None


@st.cache_resource(max_entries=4, show_spinner=False)
def _pyramid(location: str, key: str, datum: str) -> dict | None:
    """The tile pyramid of a cadastre content key: on disk after the first call, in memory after that."""
    spec = _spec(str(settings().layers_dir))
    if spec is None:
        return None
    with st.spinner(tr("cadastre.building")):
        # in a child process: the app does not keep the build's memory, other sessions go on
        return cadastre_tiles(store(), spec, settings().generated_dir, datum=datum, isolate=True)


def map_tiles(datum: str = "wgs84") -> dict:
    """``build_map(tiles=...)`` for the map page: ``{"cadastre": manifest}``, or ``{}`` without a cadastre.

    A few cheap queries per run (the content key); the pyramid is built once per content.
    """
    s = store()
    key = cadastre_key(s)
    if key is None:
        return {}
    manifest = _pyramid(s.location, key, datum)
    return {"cadastre": manifest} if manifest else {}


def pick(lon: float, lat: float) -> str | None:
    """The cadastre parcel at a click (store coordinates) from the store's spatial index; remembered for the panel."""
    rec = cadastre_at(store(), lon, lat)
    if rec is None:
        close()
        return None
    if SESSION_KEY not in st.session_state:
        # opening the panel narrows the map, which reloads it: show the parcel close up, then keep
        # that view while other parcels are clicked (only the outline moves, the map stays)
        w, s_, e, n = rec["geometry"].bounds
        st.session_state[VIEW_KEY] = [[s_ - VIEW_PAD, w - VIEW_PAD], [n + VIEW_PAD, e + VIEW_PAD]]
    st.session_state[SESSION_KEY] = rec["code"]
    return rec["code"]


def close() -> None:
    """Close the cadastre panel (and forget its view)."""
    st.session_state.pop(SESSION_KEY, None)
    st.session_state.pop(VIEW_KEY, None)


def view_bounds():
    """``[[s, w], [n, e]]`` to fit the map to while a cadastre panel is open, else None."""
    return st.session_state.get(VIEW_KEY) if SESSION_KEY in st.session_state else None


@st.cache_data(max_entries=64, show_spinner=False)
def _record(location: str, key: str, code: str) -> dict:
    rec = cadastre_parcel(store(), code)
    return {**{k: v for k, v in rec.items() if k != "geometry"}, "wkb": shapely.to_wkb(rec["geometry"])}


def highlight(code: str | None) -> gpd.GeoDataFrame | None:
    """The cadastre parcel ``code`` as a one-row layer for the selection outline, or None."""
    if not code:
        return None
    s = store()
    try:
        rec = _record(s.location, cadastre_key(s) or "", code)
    except NotFoundError:
        return None
    return gpd.GeoDataFrame({"code": [code]}, geometry=[shapely.from_wkb(rec["wkb"])], crs=STORE_CRS)


def cadastre_panel(code: str) -> None:
    """The read-only facts of a cadastre parcel and the tracked parcels on it."""
    with shown_errors():
        s = store()
        rec = _record(s.location, cadastre_key(s) or "", code)
        geom = shapely.from_wkb(rec["wkb"])
        d = describe_cadastre(rec, lang())
        st.subheader(tr("cadastre.title", code=plain(code)))
        st.caption(tr("cadastre.readonly"))
        zone, village = containing_names(geom, context_layers(s.location), ("zones", "villages"), lang())
        rows = [
            (tr("cadastre.code"), d["code"]),
            (tr("cadastre.land_use"), d["land_use_label"]),
            (tr("cadastre.owner_type"), d["owner_type_label"]),
            (tr("cadastre.right"), d.get("right_label")),
            (tr("cadastre.section"), f"{d['section']} / {d['subsection']}" if d.get("section") else None),
            (tr("cadastre.area"), format_area(d["area_m2"], lang())),
            (tr("ui.zone"), zone),
            (tr("ui.village"), village),
        ]
        st.markdown("  \n".join(f"**{k}**{tr('ux.sep')}{plain(v)}" for k, v in rows if v))
        tracked = overlapping_parcels(geom, parcel_index(s.location, s.data_version()))
        st.markdown(f"**{tr('cadastre.tracked')}**")
        if not tracked:
            st.caption(tr("cadastre.no_tracked"))
        names = dict(zip(current_parcels()["code"], current_parcels()["name"]))
        for c in tracked[:20]:
            if st.button(f"{c} {names.get(c, '')}", key=f"open-{c}"):
                close()
                st.session_state["selected"] = c
                st.rerun()
