"""What the plan pages share: the evaluation of the plan, cached on the store's data version and
the office's day, and the words for each status."""
from __future__ import annotations

import streamlit as st

from gis.base.clock import office_today
from gis.maps.plan_colouring import plan_colouring
from gis.store.live import LivePlan

from .common import lang, store, tr


@st.cache_resource(show_spinner=False)
def _live_plan(path: str) -> LivePlan:
    """The evaluation for this app process: a write re-evaluates only the targets of what changed."""
    return LivePlan(store())


def plan_evaluation():
    """Every target's and parcel's plan status today (a stage update or a plan change refreshes it)."""
    s = store()
    return _live_plan(s.location).current(s.data_version(), office_today().isoformat())


def parcel_plan_evaluation(p: dict):
    """An evaluation that holds one parcel's targets today (``LivePlan.of_parcel``): the panel's, without
    patching the district's after every write."""
    s = store()
    return _live_plan(s.location).of_parcel(p, s.data_version(), office_today().isoformat())


def status_label(status: str) -> str:
    return tr(f"plans.status_{status}")


def map_colouring():
    """The sidebar's choice of map colouring: by stage (None) or by plan status (``build_map(colouring=)``)."""
    with st.sidebar:
        choice = st.radio(tr("plans.ui_colouring"), ("stage", "plan"), horizontal=True, key="map_colouring",
                          format_func=lambda c: tr(f"plans.ui_colour_{c}"))
    return plan_colouring(plan_evaluation(), lang()) if choice == "plan" else None
