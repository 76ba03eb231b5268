"""A village's progress over time, under the map when a village is open: cumulative area cleared by month and
its signing and demolition rates (``gis.model.timeline.trend_by_month``), up to the date the map shows."""
from __future__ import annotations

import datetime as dt

import pandas as pd
import streamlit as st

from gis.base.clock import office_today
from gis.model.timeline import trend_by_month
from ui.common import lang, store, tr


@st.cache_data(max_entries=32, show_spinner=False)
def village_trend(path: str, version: int, village: str, until: str) -> pd.DataFrame:
    """The village's month-by-month series (cached per store version, village and last day)."""
    s = store()
    parcels = s.parcels(village=village, geometry=False)
    events = s.events()
    return trend_by_month(parcels, events[events["parcel"].isin(parcels["code"])], s.catalog,
                          until=dt.date.fromisoformat(until))


def village_charts(village: str, day: dt.date | None = None) -> None:
    """Two charts of one village: area past site clearance (亩), and the signing and demolition rates (%)."""
    s = store()
    trend = village_trend(s.location, s.data_version(), village, (day or office_today()).isoformat())
    if not len(trend):
        return
    rec = s.attributes("villages").get(village) or {}
    name = (rec.get("name_en") if lang() == "en" else None) or rec.get("name") or village
    st.subheader(tr("village.trend_title", name=name))
    left, right = st.columns(2)
    left.markdown(f"**{tr('timeline.board_trend')}**")
    left.line_chart(trend.set_index("month")[["area_mu_cleared"]]
                    .rename(columns={"area_mu_cleared": tr("village.cleared_mu")}), height=240)
    right.markdown(f"**{tr('village.rates')}**")
    rates = pd.DataFrame({tr("village.signed"): trend["signed_share"] * 100,
                          tr("village.demolished"): trend["demolished_share"] * 100}).set_index(trend["month"])
    right.line_chart(rates, height=240, y_label="%", color=["#4575b4", "#d73027"])
