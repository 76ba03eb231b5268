"""The plan section of a parcel's panel: its targets (planned against actual, days late) and the
follow-up orders on it, with the forms its reader may use (reply, close, return, issue).
Every write goes to the store, which refuses what the user may not do."""
from __future__ import annotations

import datetime as dt

import pandas as pd
import streamlit as st

from gis.base.clock import office_today
from gis.base.i18n import local_time

from .common import author_field, current_user, lang, plain, shown_errors, store, tr
from .plan_common import parcel_plan_evaluation, status_label

_DOT = {"done": ":green[●]", "done_late": ":green[◐]", "on_track": ":blue[●]", "due_soon": ":orange[●]",
        "overdue": ":red[●]", "stalled": ":red[◆]", "no_plan": ":gray[○]"}


def _targets(p: dict, past=None) -> None:
    s = store()
    rows = (past.parcel_plan(p["code"], lang=lang()) if past is not None
            else s.parcel_plan(p["code"], lang=lang(), evaluation=parcel_plan_evaluation(p), parcel=p))
    st.markdown(f"**{tr('plans.ui_plan')}**")
    if not rows:
        st.caption(tr("plans.ui_no_targets"))
        return
    df = pd.DataFrame([{
        tr("plans.ui_baseline"): r["baseline_label"],
        tr("plans.ui_object"): r["object_label"],
        tr("plans.ui_target_stage"): r["stage_label"],
        tr("plans.ui_planned"): r["due"],
        tr("plans.ui_actual"): r["reached_on"] or "",
        tr("plans.ui_status"): status_label(r["status"]),
        tr("plans.ui_days_late"): r["days_late"] or None,
    } for r in rows])
    st.dataframe(df, hide_index=True, width="stretch")
    late = [r for r in rows if r["status"] == "overdue"]
    if late:
        worst = max(late, key=lambda r: r["days_late"])
        st.error(f"{_DOT['overdue']} " + tr("plans.ui_overdue_line", stage=plain(worst["stage_label"]),
                                             due=worst["due"], days=worst["days_late"]))


def order_forms(f: dict) -> None:
    user = current_user()
    can_reply = f["state"] in ("issued", "returned") and (user is None or user.role in ("editor", "admin"))
    can_close = f["state"] in ("issued", "replied", "returned") and (
        user is None or user.role == "admin" or user.username == f["issued_by"])
    if can_reply:
        with st.form(f"reply-{f['id']}"):
            text = st.text_area(tr("plans.ui_reply_text"), height=68, key=f"reply-text-{f['id']}")
            by = author_field(f"reply-by-{f['id']}")
            if st.form_submit_button(tr("plans.ui_reply"), type="primary"):
                with shown_errors():
                    store().reply_followup(f["id"], text, by)
                    st.session_state["flash"] = tr("plans.ui_replied", id=f["id"])
                    st.rerun()
    if can_close:
        with st.form(f"close-{f['id']}"):
            text = st.text_input(tr("plans.ui_close_text"), key=f"close-text-{f['id']}")
            by = author_field(f"close-by-{f['id']}")
            c1, c2 = st.columns(2)
            close = c1.form_submit_button(tr("plans.ui_close"), type="primary")
            back = c2.form_submit_button(tr("plans.ui_return")) if f["state"] == "replied" else False
            if close or back:
                with shown_errors():
                    if close:
                        store().close_followup(f["id"], by, text=text)
                    else:
                        store().return_followup(f["id"], text, by)
                    st.session_state["flash"] = tr("plans.ui_closed" if close else "plans.ui_returned", id=f["id"])
                    st.rerun()


def _orders(code: str, codes: list[str], past=None) -> None:
    """The orders on the parcel, its village or site, with their forms; ``past`` (a view of a past date):
    the orders issued by then, each in its state then, and no forms (they act on today's orders)."""
    s = past if past is not None else store()
    orders = s.followups(codes=codes)
    open_orders = [f for f in orders if f["state"] != "closed"]
    st.markdown(f"**{tr('plans.ui_orders')}**（{len(open_orders)}/{len(orders)}）")
    for f in orders:
        flag = " " + tr("plans.ui_order_overdue") if f["overdue"] else ""
        title = f"#{f['id']} {tr('plans.state_' + f['state'])}{flag} · {plain(f['unit'])} · {tr('plans.ui_due')} {f['due']}"
        with st.expander(title, expanded=f["state"] != "closed"):
            for e in s.followup_trail(f["id"]):
                st.markdown(f"{local_time(e['at'])} **{plain(e['actor'])}** "
                            f"{tr('plans.action_' + e['action'])}：{plain(e['text'] or '')}")
            if f["state"] != "closed" and past is None:
                order_forms(f)
    if past is not None:
        return
    user = current_user()
    if user is None or user.role in ("leader", "admin"):
        with st.expander(tr("plans.ui_issue")):
            with st.form(f"issue-{code}"):
                on = st.selectbox(tr("plans.ui_object"), codes, key=f"issue-on-{code}")
                unit = st.text_input(tr("ui.unit"), key=f"issue-unit-{code}")
                due = st.date_input(tr("plans.ui_due"), value=office_today() + dt.timedelta(days=14),
                                    key=f"issue-due-{code}")
                text = st.text_area(tr("plans.ui_issue_text"), height=68, key=f"issue-text-{code}")
                by = author_field(f"issue-by-{code}")
                if st.form_submit_button(tr("plans.ui_issue_submit"), type="primary"):
                    with shown_errors():
                        f = store().issue_followup(on, unit or None, due, text, by)
                        st.session_state["flash"] = tr("plans.ui_issued", id=f["id"])
                        st.rerun()


def plan_section(p: dict, past=None) -> None:
    """The plan and the orders of parcel ``p`` (a record from ``Store.parcel``); ``past``: a view of the
    store at a past date (``gis.store.asof``), whose plan and orders are shown as they stood then."""
    with shown_errors():
        _targets(p, past)
        codes = [p["code"]] + [c for c in (p.get("village"), p.get("park")) if c]
        _orders(p["code"], codes, past)
