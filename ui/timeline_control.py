"""The sidebar's date control: the map (and the board) as of a past month, played month by month, and a
comparison with an earlier date. Replays are cached per data version; a step of the slider costs milliseconds."""
from __future__ import annotations

import datetime as dt
import time

import streamlit as st

from gis.base.clock import office_today
from gis.maps.compare_colouring import change_colouring
from gis.model.timeline import Replay, month_ends
from ui.common import lang, store, tr

TODAY = "today"


@st.cache_resource(max_entries=4, show_spinner=False)
def _replay(path: str, version: int, datum: str, _parcels) -> Replay:
    """The event log prepared once for the parcels as drawn (``datum``: shifted for AMap or not)."""
    s = store()
    return Replay(_parcels, s.event_log(), s.catalog)  # the few columns it needs, as arrays


@st.cache_resource(max_entries=2, show_spinner=False)
def _months(path: str, version: int) -> list[str]:
    today = office_today()
    first = store().first_event_date()
    first = dt.date.fromisoformat(first) if first else today
    return [d.isoformat() for d in month_ends(first, today)][:-1]  # the current month is "today"


def replay(parcels, datum: str) -> Replay:
    s = store()
    return _replay(s.location, s.data_version(), datum, parcels)


def moment_control(compare: bool = True) -> tuple[dt.date | None, dt.date | None]:
    """(the date to show, None for today; the earlier date to compare with, or None). A ``?as_of=YYYY-MM-DD``
    (and ``&compare=YYYY-MM-DD``) in the address opens the page there, so a link can be shared.
    ``compare=False``: no comparison offered (a page with no map to colour)."""
    s = store()
    options = [*_months(s.location, s.data_version()), TODAY]
    state = st.session_state
    if "_as_of_next" in state:  # the player moved on: set before the widget is drawn
        state["as_of_month"] = state.pop("_as_of_next")
    if "as_of_month" not in state:
        wanted = st.query_params.get("as_of")
        state["as_of_month"] = next((o for o in options if wanted and o >= wanted), TODAY) if wanted else TODAY
        if st.query_params.get("compare"):
            state["as_of_compare"] = True
            state["as_of_since"] = dt.date.fromisoformat(st.query_params["compare"])
    if state["as_of_month"] not in options:
        state["as_of_month"] = TODAY
    with st.sidebar:
        st.markdown(f"**{tr('timeline.slider')}**")
        value = st.select_slider(tr("timeline.as_of"), options=options, key="as_of_month",
                                 format_func=lambda o: tr("timeline.now") if o == TODAY else o[:7],
                                 help=tr("timeline.as_of_help"))
        st.toggle(tr("timeline.play"), key="as_of_play")
        since = None
        if compare and st.checkbox(tr("timeline.compare"), key="as_of_compare"):
            since = st.date_input(tr("timeline.compare_from"), key="as_of_since",
                                  value=office_today().replace(month=1, day=1), max_value=office_today())
    day = None if value == TODAY else dt.date.fromisoformat(value)
    return day, since


def compare_colouring(rp: Replay, codes, since: dt.date, day: dt.date | None) -> dict:
    """The two-date comparison of the parcels drawn, for ``build_map(colouring=)``."""
    until = day or office_today()
    before, after = rp.at(since), rp.at(until)
    if codes is not None:
        keep = set(codes)
        before, after = before[before["code"].isin(keep)], after[after["code"].isin(keep)]
    return change_colouring(before, after, store().catalog, since.isoformat(), until.isoformat(), lang())


def play_on() -> None:
    """At the end of a page run: while playing, show the next month after a second (the last one stops)."""
    state = st.session_state
    if not state.get("as_of_play"):
        return
    s = store()
    options = [*_months(s.location, s.data_version()), TODAY]
    current = state.get("as_of_month", TODAY)
    i = options.index(current) if current in options else len(options) - 1
    if i >= len(options) - 1:
        state["as_of_play"] = False
        return
    time.sleep(1.0)
    state["_as_of_next"] = options[i + 1]
    st.rerun()
