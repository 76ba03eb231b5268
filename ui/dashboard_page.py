"""The district dashboard (总览): totals, progress of each kind of site, blocked parcels, latest changes.

Thin: the figures come from ``gis.model.dashboard`` (cached on the data version);
this page lays them out with Streamlit's metrics, tables and altair charts.
"""
from __future__ import annotations

import datetime as dt

import altair as alt
import pandas as pd
import streamlit as st

from gis.model.dashboard import dashboard_of
from gis.model.timeline import Moment
from gis.store.asof import store_at
from ui import timeline_control as timeline
from ui.common import dashboard_figures, lang, shown_errors, store, tr


@st.cache_data(max_entries=16, show_spinner=False)
def _figures_at(path: str, version: int, language: str, day: str) -> dict:
    """The dashboard as it stood on ``day`` (replayed from the event log)."""
    return dashboard_of(store_at(store(), Moment(as_of=dt.date.fromisoformat(day))), language)


def _bars(rows: list[dict], colors: list[str] | None = None) -> alt.Chart:
    """Horizontal bars of area (亩), labelled with the parcel count."""
    df = pd.DataFrame(rows)
    df["text"] = [f"{a:,.0f} {tr('dash.mu')} · {n} {tr('dash.parcels_unit')}" for a, n in zip(df["area_mu"], df["parcels"])]
    color = (alt.Color("label:N", scale=alt.Scale(domain=list(df["label"]), range=colors), legend=None)
             if colors else alt.value("#4c78a8"))
    top = float(df["area_mu"].max() or 1) * 1.7  # room for the labels right of the bars
    base = alt.Chart(df).encode(
        y=alt.Y("label:N", sort=list(df["label"]), title=None,
                axis=alt.Axis(labelLimit=160, labelOverlap=False, labelFontSize=12)),
        x=alt.X("area_mu:Q", title=tr("dash.area_mu"), scale=alt.Scale(domain=[0, top], nice=False),
                axis=alt.Axis(tickCount=3, format="~s")),
        tooltip=[alt.Tooltip("label:N", title=tr("dash.col_item")),
                 alt.Tooltip("parcels:Q", title=tr("dash.col_parcels")),
                 alt.Tooltip("area_mu:Q", title=tr("dash.area_mu"), format=",.1f")],
    )
    bars = base.mark_bar().encode(color=color)
    text = base.mark_text(align="left", dx=4, fontSize=11).encode(text="text:N")
    return (bars + text).properties(height=34 * len(df) + 30)


def _progress(rows: list[dict]) -> None:
    df = pd.DataFrame(rows)
    table = pd.DataFrame({  # the share first after the kind: what a phone shows without scrolling
        "label": df["label"],
        "past_key_share": df["past_key_share"] * 100,
        "key_stage": df["key_stage_label"],
        "parcels": df["parcels"],
        "area_mu": df["area_mu"],
        "past_key_mu": df["past_key_mu"],
        "completed_share": df["completed_share"] * 100,
        "blocked": df["blocked"],
    })
    pct = lambda key: st.column_config.ProgressColumn(tr(key), min_value=0, max_value=100, format="%.0f%%")
    st.dataframe(table, hide_index=True, width="stretch", key="dash-progress", column_config={
        "label": tr("dash.col_kind"),
        "parcels": st.column_config.NumberColumn(tr("dash.col_parcels")),
        "area_mu": st.column_config.NumberColumn(tr("dash.area_mu"), format="%.1f"),
        "key_stage": tr("dash.col_key_stage"),
        "past_key_mu": st.column_config.NumberColumn(tr("dash.col_past_key_mu"), format="%.1f"),
        "past_key_share": pct("dash.col_past_key_share"),
        "completed_share": pct("dash.col_completed_share"),
        "blocked": st.column_config.NumberColumn(tr("dash.col_blocked")),
    })


def _latest(rows: list[dict]) -> None:
    if not rows:
        st.caption(tr("dash.no_changes"))
        return
    df = pd.DataFrame({
        "recorded_at": [r["recorded_at"] for r in rows],
        "parcel": [r["parcel"] for r in rows],
        "name": [r["name"] for r in rows],
        "action": [r["action_label"] for r in rows],
        "change": [f"{r['from_label']} → {r['to_label']}" if r["from_label"] != r["to_label"] else r["to_label"]
                   for r in rows],
        "event_date": [r["event_date"] for r in rows],
        "by": [r["by"] for r in rows],
        "reason": [r["reason"] for r in rows],
    })
    st.dataframe(df, hide_index=True, width="stretch", key="dash-latest", column_config={
        "recorded_at": tr("dash.col_recorded_at"),
        "parcel": tr("ui.code"),
        "name": tr("ui.name"),
        "action": tr("ui.action"),
        "change": tr("dash.col_change"),
        "event_date": tr("dash.col_event_date"),
        "by": tr("ui.by"),
        "reason": tr("ui.reason"),
    })


def page() -> None:
    s = store()
    st.title(tr("dash.title"))
    st.caption(tr("dash.subtitle"))
    day, _ = timeline.moment_control(compare=False)
    if day:  # the district as it stood at the end of a past month
        st.caption(tr("timeline.as_of_caption", date=day.isoformat()))
        d = _figures_at(s.location, s.data_version(), lang(), day.isoformat())
    else:
        d = dashboard_figures(s.location, s.data_version(), lang())
    tot = d["totals"]
    with st.container(horizontal=True, wrap=True, gap="medium"):  # two by two on a phone, one row on a desk
        st.metric(tr("dash.total_area"), f"{tot['area_mu']:,.0f}", help=f"{tot['area_ha']:,.1f} ha",
                  border=True, width=160)
        st.metric(tr("dash.total_parcels"), f"{tot['parcels']:,}", border=True, width=160)
        st.metric(tr("dash.blocked"), f"{tot['blocked']:,}", border=True, width=160)
        st.metric(tr("dash.blocked_area"), f"{tot['blocked_area_mu']:,.0f}", border=True, width=160)

    st.subheader(tr("dash.progress"))
    st.caption(tr("dash.progress_caption"))
    _progress(d["progress"])

    left, mid, right = st.columns(3)
    with left:
        st.markdown(f"**{tr('dash.by_zone')}**")
        st.altair_chart(_bars(d["by_zone"]), width="stretch")
    with mid:
        st.markdown(f"**{tr('dash.by_kind')}**")
        st.altair_chart(_bars(d["by_kind"]), width="stretch")
    with right:
        st.markdown(f"**{tr('dash.by_phase')}**")
        phases = [r for r in d["by_phase"] if r["parcels"]]
        st.altair_chart(_bars(phases, [r["color"] for r in phases]), width="stretch")

    left, right = st.columns([2, 3])
    with left:
        st.subheader(tr("dash.blocked_by_reason"))
        reasons = d["blocked_by_reason"]
        if reasons:
            st.dataframe(pd.DataFrame(reasons), hide_index=True, width="stretch", key="dash-reasons",
                         column_config={"reason": tr("dash.col_reason"),
                                        "parcels": st.column_config.NumberColumn(tr("dash.col_parcels")),
                                        "area_mu": st.column_config.NumberColumn(tr("dash.area_mu"), format="%.1f")})
        else:
            st.caption(tr("dash.none_blocked"))
    with right:
        st.subheader(tr("dash.latest"))
        _latest(d["latest"])


with shown_errors():
    page()
    timeline.play_on()
