"""The village board: every old village's progress, sortable; a row opens it on the map."""
from __future__ import annotations

import datetime as dt

import altair as alt
import pandas as pd
import streamlit as st

from gis.base.clock import office_today
from gis.model.board import BOARD_COLUMNS, board_rows, village_progress
from gis.model.timeline import Moment, events_until, state_at, trend_by_month
from ui import timeline_control as timeline
from ui.common import board_table, lang, shown_errors, store, tr


def _chart(board: pd.DataFrame) -> alt.Chart:
    cat = store().catalog
    phases = list(cat.phases.values())
    long = board[["name"] + [f"phase_{p.key}" for p in phases]].melt(
        id_vars=["name"], var_name="phase", value_name="count")
    labels = {f"phase_{p.key}": p.label(lang()) for p in phases}
    long["phase"] = long["phase"].map(labels)
    long["order"] = long["phase"].map({p.label(lang()): i for i, p in enumerate(phases)})
    return (
        alt.Chart(long)
        .mark_bar()
        .encode(
            # every village named on the axis (Vega-Lite drops labels it thinks overlap)
            y=alt.Y("name:N", sort=list(board["name"]), title=None,
                    axis=alt.Axis(labelOverlap=False, labelLimit=160, labelFontSize=12)),
            x=alt.X("count:Q", stack="zero", title=tr("board.parcels")),
            color=alt.Color("phase:N", title=tr("ui.stage"),
                            scale=alt.Scale(domain=[p.label(lang()) for p in phases], range=[p.color for p in phases])),
            order=alt.Order("order:Q"),
            tooltip=["name:N", "phase:N", "count:Q"],
        )
        .properties(height=max(300, 22 * len(board)))
    )


def page() -> None:
    s = store()
    st.title(tr("board.title"))
    st.caption(tr("board.subtitle"))
    day, _ = timeline.moment_control()
    if day:  # the board as it stood at the end of a past month
        st.caption(tr("timeline.as_of_caption", date=day.isoformat()))
        board = _board_at(s.location, s.data_version(), lang(), day.isoformat())
    else:
        board = board_table(s.location, s.data_version(), lang())
    status = board["status"].value_counts()
    c = st.columns(4)
    c[0].metric(tr("board.done"), int(status.get("done", 0)))
    c[1].metric(tr("board.in_progress"), int(status.get("in_progress", 0)))
    c[2].metric(tr("board.not_started"), int(status.get("not_started", 0)))
    c[3].metric(tr("board.total_parcels"), int(board["parcels"].sum()))

    zones = {code: (r.get("name_en") if lang() == "en" else r["name"]) for code, r in s.attributes("zones").items()}
    table = board_rows(board, zones, lang())
    w = BOARD_COLUMNS  # widths that fit 1,400 px; a header cut short shows whole on hover (help)

    def pct(key: str, col: str):
        return st.column_config.ProgressColumn(tr(key), min_value=0, max_value=100, format="%.0f%%", width=w[col],
                                               help=tr(key))

    st.caption(tr("board.select_hint"))
    event = st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        on_select="rerun",
        selection_mode="single-row",
        key="board-table",
        placeholder="",
        column_config={
            "code": st.column_config.TextColumn(tr("ui.code"), width=w["code"]),
            "name": st.column_config.TextColumn(tr("ui.village"), width=w["name"]),
            "zone": st.column_config.TextColumn(tr("ui.zone"), width=w["zone"]),
            "parcels": st.column_config.NumberColumn(tr("board.parcels"), width=w["parcels"]),
            "area_mu": st.column_config.NumberColumn(tr("board.area_mu"), format="%.1f", width=w["area_mu"]),
            "cleared_share": pct("board.cleared_share", "cleared_share"),
            "signed_share": pct("board.signed_share", "signed_share"),
            "demolished_share": pct("board.demolished_share", "demolished_share"),
            "blocked": st.column_config.NumberColumn(tr("board.blocked"), width=w["blocked"], help=tr("board.blocked")),
            "last_activity": st.column_config.TextColumn(tr("board.last_activity"), width=w["last_activity"]),
            "status": st.column_config.TextColumn(tr("board.status"), width=w["status"]),
        },
    )
    rows = event.selection.rows if event and event.selection else []
    if rows:
        st.session_state["goto_village"] = table.iloc[rows[0]]["code"]
        st.session_state.pop("selected", None)
        st.switch_page("ui/map_page.py")

    st.subheader(tr("board.chart"))
    when = day.isoformat() if day else ""
    st.vega_lite_chart(spec=_spec("bars", s.location, s.data_version(), lang(), when, board), width="stretch")
    _trend_charts(day)


@st.cache_data(max_entries=16, show_spinner=False)
def _board_at(path: str, version: int, language: str, day: str) -> pd.DataFrame:
    s = store()
    moment = Moment(as_of=dt.date.fromisoformat(day))
    parcels, events = s.parcels(kind="village", geometry=False), s.events()
    return village_progress(state_at(parcels, events, s.catalog, moment), s.layer("villages"),
                            events_until(events, moment), s.catalog, language)


@st.cache_data(max_entries=8, show_spinner=False)
def _trend(path: str, version: int, until: str) -> pd.DataFrame:
    s = store()
    parcels = s.parcels(kind="village", geometry=False)
    events = s.events()
    return trend_by_month(parcels, events[events["parcel"].isin(parcels["code"])], s.catalog,
                          until=dt.date.fromisoformat(until))


def _cleared_chart(trend: pd.DataFrame) -> alt.Chart:
    label = tr("timeline.board_trend")
    return alt.Chart(trend[["month", "area_mu_cleared"]]).mark_line(point=False).encode(
        x=alt.X("month:O", title=None), y=alt.Y("area_mu_cleared:Q", title=label),
        tooltip=[alt.Tooltip("month:O", title=tr("timeline.month")),
                 alt.Tooltip("area_mu_cleared:Q", title=label, format=".1f")]).properties(height=300)


def _mix_chart(trend: pd.DataFrame) -> alt.Chart:
    phases = list(store().catalog.phases.values())
    labels = [p.label(lang()) for p in phases]
    long = trend[["month"] + [f"phase_{p.key}" for p in phases]].melt(id_vars=["month"], var_name="phase",
                                                                       value_name="count")
    long["phase"] = long["phase"].map({f"phase_{p.key}": p.label(lang()) for p in phases})
    long["order"] = long["phase"].map({label: i for i, label in enumerate(labels)})
    return alt.Chart(long).mark_area().encode(
        x=alt.X("month:O", title=None), y=alt.Y("count:Q", stack="zero", title=tr("board.parcels")),
        color=alt.Color("phase:N", title=tr("ui.stage"), scale=alt.Scale(domain=labels, range=[p.color for p in phases])),
        order=alt.Order("order:Q"),
        tooltip=[alt.Tooltip("month:O", title=tr("timeline.month")), alt.Tooltip("phase:N", title=tr("ui.stage")),
                 alt.Tooltip("count:Q", title=tr("board.parcels"))]).properties(height=300)


_CHARTS = {"bars": _chart, "cleared": _cleared_chart, "mix": _mix_chart}


@st.cache_data(max_entries=48, show_spinner=False)
def _spec(kind: str, path: str, version: int, language: str, day: str, _data: pd.DataFrame) -> dict:
    """A chart's Vega-Lite spec (its data inline), made and validated by Altair once per data version, language
    and date: Altair's schema validation took over half of the board's every run (issue 19)."""
    return _CHARTS[kind](_data).to_dict()


def _trend_charts(day) -> None:
    """Cumulative area past site clearance and the stage mix, month by month, up to the date shown."""
    s = store()
    until = (day or office_today()).isoformat()
    trend = _trend(s.location, s.data_version(), until)
    left, right = st.columns(2)
    left.subheader(tr("timeline.board_trend"))
    left.vega_lite_chart(spec=_spec("cleared", s.location, s.data_version(), lang(), until, trend), width="stretch")
    right.subheader(tr("timeline.board_phases"))  # the stage mix, stacked
    right.vega_lite_chart(spec=_spec("mix", s.location, s.data_version(), lang(), until, trend), width="stretch")


with shown_errors():
    page()
    timeline.play_on()
