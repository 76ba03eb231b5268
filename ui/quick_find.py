"""Search as you type in the sidebar: parcels, villages and responsible units, with suggestions.

A select box whose options are the store's search index (``gis.model.search``):
typing filters them in the browser; choosing a parcel filters the map to it
(the map zooms there) and opens its panel, a village opens the village, a unit
filters to its parcels; text that matches no option is used as the search
text of the filters.
"""
from __future__ import annotations

import streamlit as st

from gis.model.search import rank
from ui.common import lang, search_index, store, tr

KEY = "f_find"


def _chosen() -> None:
    """On change (runs before the script): turn the choice into the filters' state."""
    value = st.session_state.get(KEY)
    st.session_state[KEY] = None
    if not value:
        return
    kind, _, key = str(value).partition(":")
    for k in ("f_zone", "f_kind", "f_stage"):
        st.session_state.pop(k, None)
    if kind == "v" and key:
        st.session_state["f_village"] = key
        st.session_state["f_search"] = ""
        st.session_state.pop("selected", None)
        return
    st.session_state.pop("f_village", None)
    if kind == "p" and key:
        st.session_state["f_search"] = key
        st.session_state["selected"] = key
    elif kind == "u" and key:
        st.session_state["f_search"] = key
        st.session_state.pop("selected", None)
    else:  # free text (a new option): the best match opens when it is a parcel's exact code
        text = str(value).strip()
        st.session_state["f_search"] = text
        best = rank(search_index(store().location, store().data_version(), lang()), text, 1)
        if best and best[0].kind == "parcel" and best[0].rank == 0:
            st.session_state["selected"] = best[0].key
        else:
            st.session_state.pop("selected", None)


def quick_find() -> None:
    """The search box with suggestions, at the top of the sidebar's filters."""
    s = store()
    index = search_index(s.location, s.data_version(), lang())
    labels = {e.option: e.label for e in index}
    kinds = {"p": tr("search.parcel"), "v": tr("search.village"), "u": tr("search.unit")}

    def fmt(option: str) -> str:
        kind = option.partition(":")[0]
        label = labels.get(option)
        return f"{kinds[kind]}｜{label}" if label and kind in kinds else str(option)

    with st.sidebar:
        st.selectbox(tr("search.label"), [e.option for e in index], index=None, key=KEY, format_func=fmt,
                     placeholder=tr("search.placeholder"), filter_mode="contains",
                     on_change=_chosen, help=tr("search.help"))
