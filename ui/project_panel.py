"""The panel of one key project (重点项目), on the map beside it or on the projects page: its facts,
the investment curve (plan against actual, cumulative by month), its reports (latest first,
corrections marked), the parcels it stands on (a click opens the parcel) and the follow-up orders on
it. Writes (a report) go to the store, which refuses what the user may not do."""
from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from gis.base.clock import office_today
from gis.base.i18n import local_time
from gis.model.project_views import curve_long, project_curve, reports_latest_first

from .common import author_field, current_user, lang, plain, shown_errors, store, tr
from .project_common import stage_label, wan

#: what a click on a parcel under a project leaves for the map page
GOTO_PARCEL = "goto_parcel"


def curve_chart(curve: pd.DataFrame) -> alt.Chart:
    """Plan against actual, cumulative by month, in 万元 (an altair line chart, as the dashboard's charts)."""
    long = curve_long(curve, lang())
    plan, actual = tr("projects_ui.series_plan"), tr("projects_ui.series_actual")
    return (
        alt.Chart(long)
        .mark_line(point=True)
        .encode(
            x=alt.X("month:O", title=None, axis=alt.Axis(labelAngle=0, labelExpr="slice(datum.value, 5)")),
            y=alt.Y("wan:Q", title=tr("projects_ui.wan_axis"), axis=alt.Axis(format="~s")),
            color=alt.Color("series:N", title=None, scale=alt.Scale(domain=[plan, actual],
                                                                    range=["#9e9e9e", "#d7191c"]),
                            legend=alt.Legend(orient="top")),
            strokeDash=alt.StrokeDash("series:N", scale=alt.Scale(domain=[plan, actual], range=[[5, 4], [1, 0]]),
                                      legend=None),
            tooltip=[alt.Tooltip("month:O", title=tr("projects_ui.month")),
                     alt.Tooltip("series:N", title=" "),
                     alt.Tooltip("wan:Q", title=tr("projects_ui.wan_axis"), format=",.0f")],
        )
        .properties(height=220)
    )


def _facts(p: dict) -> None:
    total, done = p.get("investment_total"), p.get("invested_to_date")
    share = f"{100 * done / total:.0f}%" if total and done is not None else ""
    rows = [
        (tr("projects_ui.code"), p.get("code")),
        (tr("projects_ui.kind"), p.get("kind_label") or p.get("kind")),
        (tr("projects_ui.industry"), p.get("industry_label") or p.get("industry")),
        (tr("projects_ui.stage"), stage_label(p.get("stage")) + (tr("ux.paren", text=p["stage_date"])
                                                                  if p.get("stage_date") else "")),
        (tr("projects_ui.investment_total"), wan(total)),
        (tr("projects_ui.invested_to_date"), f"{wan(done)}" + (tr("ux.paren", text=share) if share else "")),
        (tr("projects_ui.lists"), tr("ux.list_sep").join(p.get("list_labels") or p.get("lists") or [])),
        (tr("projects_ui.unit"), p.get("unit")),
        (tr("projects_ui.investor"), p.get("investor")),
        (tr("projects_ui.signed_on"), p.get("signed_on")),
        (tr("projects_ui.started_on"), p.get("started_on")),
        (tr("projects_ui.production_on"), p.get("production_on")),
        (tr("projects_ui.completed_on"), p.get("completed_on")),
    ]
    st.markdown("  \n".join(f"**{k}**{tr('ux.sep')}{plain(v)}" for k, v in rows if v))


def _curve(p: dict) -> None:
    today = office_today()
    year = today.year
    curve = project_curve(p, year, as_of=today)
    st.markdown(f"**{tr('projects_ui.curve', year=year)}**")
    if not curve["planned_cum"].any() and not (curve["actual_cum"].fillna(0)).any():
        st.caption(tr("projects_ui.no_plan"))
        return
    now = curve.dropna(subset=["actual_cum"]).iloc[-1] if curve["actual_cum"].notna().any() else None
    st.altair_chart(curve_chart(curve), width="stretch")
    if now is not None:
        gap = now["gap_cum"]
        line = tr("projects_ui.curve_behind" if gap < 0 else "projects_ui.curve_ahead",
                  month=now["month"], plan=wan(now["planned_cum"]), actual=wan(now["actual_cum"]), gap=wan(abs(gap)))
        (st.error if gap < 0 else st.caption)(line)


def _reports(p: dict) -> None:
    reports = reports_latest_first(p.get("reports"))
    st.markdown(f"**{tr('projects_ui.reports')}**（{len(reports)}）")
    if not reports:
        st.caption(tr("projects_ui.no_reports"))
        return
    names = store().display_names()
    df = pd.DataFrame([{
        "date": r.get("report_date"),
        "invested": r.get("invested_wan"),
        "id": r.get("id"),
        "mark": (tr("projects_ui.correction_mark", id=r.get("correction_of"))
                 + (tr("ux.paren", text=r["reason"]) if r.get("reason") else "") if r["is_correction"] else "")
        + (tr("projects_ui.superseded_mark") if r["superseded"] else ""),
        "note": r.get("note") or "",
        "by": names.get(r.get("recorded_by") or "", r.get("recorded_by") or ""),
        "at": local_time(r.get("recorded_at")),
    } for r in reports[:200]])
    st.dataframe(df, hide_index=True, width="stretch", key=f"reports-{p['code']}", column_config={
        "date": tr("projects_ui.report_date"),
        "id": st.column_config.NumberColumn(tr("projects_ui.report_id"), format="%d"),
        "mark": tr("projects_ui.report_mark"),
        "invested": st.column_config.NumberColumn(tr("projects_ui.report_invested"), format="%.1f"),
        "note": tr("projects_ui.report_note"), "by": tr("ui.by"), "at": tr("projects_ui.recorded_at"),
    })


PARCEL_BUTTONS = 24  # a project on a whole park or village lists this many of its parcels


def land_codes(p: dict) -> list[str]:
    """The parcels a project stands on: those linked one by one, then those of a site (park) or village
    it is linked to as a whole."""
    s = store()
    out = []
    for link in p.get("parcels") or []:
        kind, code = (("parcel", link) if isinstance(link, str) else (link.get("object_type"), link.get("code")))
        if kind == "parcel":
            out.append(code)
        elif kind == "village":
            out += list(s.parcels(village=code, geometry=False)["code"])
        elif kind == "site":
            every = s.parcels(geometry=False)
            out += list(every.loc[every["park"] == code, "code"])
    return list(dict.fromkeys(out))


def _parcels(p: dict, on_map: bool) -> None:
    codes = land_codes(p)
    st.markdown(f"**{tr('projects_ui.parcels')}**（{len(codes)}）")
    if not codes:
        st.caption(tr("projects_ui.no_parcels"))
        return
    parcels = store().parcels(geometry=False)
    names = dict(zip(parcels["code"], parcels["name"]))
    with st.container(horizontal=True, wrap=True, gap="small"):
        for c in codes[:PARCEL_BUTTONS]:
            label = f"{c} {names[c]}" if c in names else c
            if st.button(label, key=f"proj-parcel-{p['code']}-{c}", icon=":material/location_on:",
                         help=tr("projects_ui.parcel_open"), disabled=c not in names):
                st.session_state["selected"] = c
                st.session_state.pop("selected_project", None)
                if not on_map:
                    st.switch_page("ui/map_page.py")
                st.rerun()
    if len(codes) > PARCEL_BUTTONS:
        st.caption(tr("projects_ui.more_parcels", n=len(codes) - PARCEL_BUTTONS))


def _orders(p: dict) -> None:
    links = [c if isinstance(c, str) else c.get("code") for c in (p.get("parcels") or [])]
    orders = store().followups(codes=list(dict.fromkeys([p["code"], *links, *land_codes(p)])))
    st.markdown(f"**{tr('plans.ui_orders')}**（{len([f for f in orders if f['state'] != 'closed'])}/{len(orders)}）")
    if not orders:
        st.caption(tr("projects_ui.no_orders"))
        return
    st.dataframe(pd.DataFrame([{
        "id": f"#{f['id']}", "on": f["on"], "state": tr("plans.state_" + f["state"])
        + (" " + tr("plans.ui_order_overdue") if f["overdue"] else ""),
        "unit": f["unit"], "due": f["due"], "text": f["text"],
    } for f in orders]), hide_index=True, width="stretch", key=f"orders-{p['code']}", column_config={
        "id": "#", "on": tr("plans.ui_object"), "state": tr("plans.ui_status"), "unit": tr("ui.unit"),
        "due": tr("plans.ui_due"), "text": tr("plans.ui_issue_text"),
    })


def report_form(code: str, key: str = "panel") -> None:
    """The day's report of a project (completed investment in 万元, a note; or a correction of an earlier
    report with its reason). The store refuses a user who is not of the project's unit, and an amount
    that would take the investment past its total; the refusal is shown in the user's language."""
    with st.form(f"report-{key}-{code}", clear_on_submit=False, border=False):
        today = office_today()
        c1, c2 = st.columns(2)
        day = c1.date_input(tr("projects_ui.report_date"), value=today, max_value=today, key=f"rd-{key}-{code}")
        amount = c2.number_input(tr("projects_ui.report_invested"), min_value=0.0, value=None, step=10.0,
                                 key=f"ra-{key}-{code}", help=tr("projects_ui.report_invested_help"))
        note = st.text_area(tr("projects_ui.report_note"), height=68, key=f"rn-{key}-{code}")
        correction = st.number_input(tr("projects_ui.correction_of"), min_value=1, value=None, step=1,
                                     key=f"rc-{key}-{code}", help=tr("projects_ui.correction_help"))
        reason = st.text_input(tr("ui.correction_reason"), key=f"rr-{key}-{code}")
        by = author_field(f"rb-{key}-{code}")
        if st.form_submit_button(tr("projects_ui.report_submit"), type="primary"):
            if amount is None:
                st.error(tr("projects_ui.amount_needed"))
                return
            with shown_errors():
                store().report_project(code, day, amount, by, note=note or "",
                                       correction_of=int(correction) if correction else None,
                                       reason=reason or None)
                st.session_state["flash"] = tr("projects_ui.reported", code=code, amount=wan(amount))
                st.rerun()


def project_panel(code: str, on_map: bool = False) -> None:
    """Everything about one project, in tabs so that the map or the list stays in view."""
    with shown_errors():
        p = store().project(code)
        st.subheader(plain(p.get("name") or code))
        st.caption(f"{plain(code)} · {plain(stage_label(p.get('stage')))} · {wan(p.get('investment_total'))}")
        facts, reports, land, actions = st.tabs([tr("ux.tab_facts"), tr("projects_ui.tab_reports"),
                                                 tr("projects_ui.tab_land"), tr("ux.tab_actions")])
        with facts:
            _facts(p)
            _curve(p)
        with reports:
            _reports(p)
        with land:
            _parcels(p, on_map)
            _orders(p)
        with actions:
            st.markdown(f"**{tr('projects_ui.report_title')}**")
            user = current_user()
            if not store().may_report_project(code, user.username if user else None):
                # the store would refuse: said before the planner types, and refused again if tried
                st.info(tr("projects_ui.not_your_unit", unit=plain(p.get("unit") or "")))
            report_form(code, "panel")
