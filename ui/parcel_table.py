"""The filtered parcels as a table under the map: sortable, a row opens the parcel, several rows
can be updated at once (``ui.bulk_form``), and the selection downloads as CSV or as the ledger."""
from __future__ import annotations

import hashlib
import json

import streamlit as st

from gis.io.exporter import MIME, export_bytes, export_filename
from gis.io.parcel_table import COLUMNS, LiveTables, headers, store_names, table_csv
from gis.maps.area_select import is_drawing, parcels_in_area
from ui.bulk_form import bulk_form
from ui.common import lang, live_parcels, store, tr

AREA_KEY = "area_codes"


def new_area(out: dict | None) -> str | None:
    """The signature of a rectangle drawn with the 框选 tool that the page has not taken in yet, else None."""
    feature = (out or {}).get("last_active_drawing")
    if not is_drawing(feature):
        return None
    signature = json.dumps(feature["geometry"], sort_keys=True)
    return None if signature == st.session_state.get("_area_drawn") else signature


def area_picked(out: dict | None, bm, shown) -> bool:
    """A rectangle newly drawn with the map's 框选 tool (streamlit-folium's ``last_active_drawing``):
    the parcels of ``shown`` in it become the bulk selection and the page runs again; False when there
    was none. The click that ended the drawing picks no parcel (it is marked seen under the map page's key)."""
    signature = new_area(out)
    if signature is None:
        return False
    feature = out["last_active_drawing"]
    st.session_state["_area_drawn"] = signature
    st.session_state[AREA_KEY] = parcels_in_area(shown, feature, bm.to_store)
    st.session_state["_last_click"] = repr(out.get("last_clicked") or out.get("last_object_clicked"))
    st.rerun()  # again, so that the map outlines the parcels picked (its highlight group; the map stays)


def area_parcels(parcels):
    """The rows of ``parcels`` picked by the last rectangle drawn (none when there is none), to outline."""
    return parcels[parcels["code"].isin(st.session_state.get(AREA_KEY) or [])]


def _area_form(filtered) -> None:
    codes = st.session_state.get(AREA_KEY)
    if codes is None:
        return
    rows = filtered[filtered["code"].isin(codes)]
    if codes and not len(rows):  # the filter changed since: the rectangle's parcels are not shown any more
        st.session_state.pop(AREA_KEY, None)
        return
    with st.container(border=True):
        head, close = st.columns([4, 1])
        head.markdown(f"**{tr('bulk.area_title', n=len(rows))}**")
        if close.button(tr("bulk.area_clear"), key="area-clear"):
            st.session_state.pop(AREA_KEY, None)
            st.rerun()
        if len(rows):
            bulk_form(rows, key="area")
        else:
            st.caption(tr("bulk.area_none"))


def _key(codes) -> str:
    """A table key per filter, so that a new filter starts with nothing selected."""
    return "parcel-table-" + hashlib.sha1(repr(codes).encode()).hexdigest()[:10]


@st.cache_resource(show_spinner=False)
def _tables(path: str) -> LiveTables:
    return LiveTables()


@st.cache_resource(max_entries=8, show_spinner=False)
def _rows(path: str, version: int, codes: tuple | None, language: str):
    """The table of the filter ``codes`` (None: every parcel), cached like the parcels it comes from: the
    whole table patched for what a write changed (``LiveTables``), a filter's rows taken from it.
    Never modified by the page (a resource, not a copy per run)."""
    s = store()
    table = _tables(path).of(live_parcels(path), version, s.catalog, store_names(s, language), language)
    if codes is not None:
        table = table[table["code"].isin(codes)].reset_index(drop=True)
    return table


_EXPANDER = "table-open"  # the list's expander
_OPEN = "_table_open"  # the planner opened the list: a new count in its title is a new expander, opened as well


def _remember_open() -> None:
    st.session_state[_OPEN] = bool(st.session_state.get(_EXPANDER))


def shows_parcel_state() -> bool:
    """Whether the table's part shows the parcels' stages now: the list open, or a rectangle's bulk form.
    Shut, it shows only the result's count (what a write to one parcel changes only under some filters)."""
    return bool(st.session_state.get(_OPEN)) or st.session_state.get(AREA_KEY) is not None


def filtered_table(filtered, codes) -> None:
    """The table of ``filtered`` (the sidebar's result; ``codes`` None when no filter is set)."""
    s = store()
    language = lang()
    _area_form(filtered)
    # shut, the table is not sent: the whole district's (2,470 rows of the demo, ≈0.4 MB) came with every run of
    # the page and held up the map's first drawing after a login, and a filter's table (its grid drawn anew) held
    # up the map's zoom to the result (issue 19). It opens at the planner's click and stays open, filter or not
    box = st.expander(tr("table.title", n=len(filtered)), expanded=bool(st.session_state.get(_OPEN)),
                      on_change=_remember_open, key=_EXPANDER)
    if box.open is False:
        return
    table = _rows(s.location, s.data_version(), codes, language)
    head = headers(language)
    with box:
        st.caption(tr("table.hint"))
        event = st.dataframe(
            table[list(COLUMNS)], hide_index=True, width="stretch", height=min(420, 38 + 35 * max(len(table), 1)),
            on_select="rerun", selection_mode="multi-row", key=_key(codes),
            column_config={
                **head,
                "stage_date": st.column_config.DateColumn(head["stage_date"], format="YYYY-MM-DD"),
                "area_mu": st.column_config.NumberColumn(head["area_mu"], format="%.2f"),
            },
        )
        rows = list(event.selection.rows) if event and event.selection else []
        picked = table.iloc[rows]
        codes_picked = list(picked["code"])
        if codes_picked != st.session_state.get("_table_picked"):
            st.session_state["_table_picked"] = codes_picked
            if len(codes_picked) == 1 and st.session_state.get("selected") != codes_picked[0]:
                st.session_state["selected"] = codes_picked[0]  # one row chosen: its panel opens
                st.rerun()
        left, right = st.columns(2)
        left.download_button(tr("table.csv"), data=lambda: table_csv(table, language), mime="text/csv",
                             file_name=export_filename("xlsx", language).rsplit(".", 1)[0] + ".csv",
                             key="table-csv", on_click="ignore", icon=":material/download:", width="stretch")
        selection = list(table["code"])
        right.download_button(tr("table.xlsx"), data=lambda: export_bytes(s, "xlsx", selection, None, language),
                              file_name=export_filename("xlsx", language), mime=MIME["xlsx"], key="table-xlsx",
                              on_click="ignore", icon=":material/table:", width="stretch",
                              disabled=not selection)
        if len(codes_picked) > 1:
            bulk_form(filtered[filtered["code"].isin(codes_picked)])
