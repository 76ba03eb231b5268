"""我的待办 (my work): what waits for the signed-in planner — late and due-soon targets of their
area, orders to reply to, replies to close — with the forms to answer them."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from gis.base.i18n import local_time
from ui.common import current_user, lang, plain, shown_errors, store, tr
from ui.plan_common import status_label
from ui.plan_panel import order_forms


def _orders(title: str, orders: list[dict]) -> None:
    st.subheader(f"{title}（{len(orders)}）")
    if not orders:
        st.caption(tr("plans.ui_nothing"))
    s = store()
    for f in orders:
        flag = " " + tr("plans.ui_order_overdue") if f["overdue"] else ""
        with st.expander(f"#{f['id']} {plain(f['on'])} · {tr('plans.state_' + f['state'])}{flag} · "
                         f"{tr('plans.ui_due')} {f['due']}"):
            for e in s.followup_trail(f["id"]):
                st.markdown(f"{local_time(e['at'])} **{plain(e['actor'])}** "
                            f"{tr('plans.action_' + e['action'])}：{plain(e['text'] or '')}")
            order_forms(f)


def page() -> None:
    st.title(tr("plans.ui_my_work"))
    if "flash" in st.session_state:
        st.success(st.session_state.pop("flash"))
    user = current_user()
    work = store().my_work(user.username if user else "")
    t = work["targets"]
    st.subheader(f"{tr('plans.ui_late_targets')}（{len(t)}）")
    if len(t):
        cat = store().catalog
        st.dataframe(pd.DataFrame({
            tr("plans.ui_object"): t["object"],
            tr("plans.ui_target_stage"): [cat.stage_label(k or "village", s, lang()) for k, s in zip(t["kind"], t["stage"])],
            tr("plans.ui_planned"): t["due_date"],
            tr("plans.ui_status"): [status_label(x) for x in t["status"]],
            tr("plans.ui_days_late"): t["days_late"],
            tr("ui.unit"): t["unit"],
        }), hide_index=True, width="stretch")
    else:
        st.caption(tr("plans.ui_nothing"))
    _orders(tr("plans.ui_to_reply"), work["to_reply"])
    _orders(tr("plans.ui_to_close"), work["to_close"])


with shown_errors():
    page()
