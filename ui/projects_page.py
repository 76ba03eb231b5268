"""The key projects page (重点项目): the lists (省/市重点, the district's three lists) with the projects
on them, the day's dispatch (日调度: reported, missing, behind the month's plan), the indicator board
(target, actual, expected by now, gap and the projects that could close it), the day's report form
and the project ledger spreadsheet in and out. Thin over ``gis.model.projects`` and the store."""
from __future__ import annotations

import datetime as dt

import altair as alt
import pandas as pd
import streamlit as st

from gis.base.clock import office_today
from gis.base.errors import InputError
from gis.io import projects_io
from gis.model.project_views import WAN_PER_YI, board_rows, bullet_long
from gis.model.spatial import fit_bounds
from ui.common import author_field, lang, shown_errors, store, tr
from ui.downloads import project_downloads
from ui.project_common import dispatch, indicators, project_footprints, project_rows, stage_label
from ui.project_panel import project_panel, report_form

ALL = ""


def _list_labels() -> dict[str, str]:
    return {k: n.label(lang()) for k, n in store().project_config.lists.items()}


def _list_table(rows: list[dict]) -> pd.DataFrame:
    labels = _list_labels()
    return pd.DataFrame({
        "code": [r["code"] for r in rows],
        "name": [r["name"] for r in rows],
        "industry": [r.get("industry_label") or r.get("industry") or "" for r in rows],
        "stage": [stage_label(r.get("stage")) for r in rows],
        "investment_total": [r.get("investment_total") for r in rows],
        "invested_to_date": [r.get("invested_to_date") for r in rows],
        "share": [100 * (r.get("invested_to_date") or 0) / r["investment_total"] if r.get("investment_total") else None
                  for r in rows],
        "unit": [r.get("unit") or "" for r in rows],
        "lists": [tr("ux.list_sep").join(labels.get(x, x) for x in (r.get("lists") or [])) for r in rows],
    }, columns=["code", "name", "industry", "stage", "investment_total", "invested_to_date", "share", "unit", "lists"])


def _lists(rows: list[dict]) -> None:
    labels = _list_labels()
    c1, c2 = st.columns(2)
    # a select box, not pills: the lists' names are long, and a phone has room for one line
    chosen = c1.selectbox(tr("projects_ui.list"), [ALL, *labels], key="proj-list",
                          format_func=lambda n: tr("projects_ui.all_lists") if n == ALL else labels[n])
    cfg = store().project_config
    industry = c2.selectbox(tr("projects_ui.industry"), [ALL, *cfg.industries], key="proj-industry",
                            format_func=lambda n: tr("ui.all") if n == ALL else cfg.industries[n].label(lang()))
    shown = [r for r in rows if (not chosen or chosen in (r.get("lists") or []))
             and (not industry or r.get("industry") == industry)]
    total = sum(r.get("investment_total") or 0 for r in shown)
    done = sum(r.get("invested_to_date") or 0 for r in shown)
    with st.container(horizontal=True, wrap=True, gap="medium"):  # two by two on a phone, one row on a desk
        st.metric(tr("projects_ui.count"), f"{len(shown):,}", border=True, width=160)
        st.metric(tr("projects_ui.total_yi"), f"{total / WAN_PER_YI:,.2f}", border=True, width=160)
        st.metric(tr("projects_ui.done_yi"), f"{done / WAN_PER_YI:,.2f}", border=True, width=160)
        st.metric(tr("projects_ui.big_ones"), sum(1 for r in shown if (r.get("investment_total") or 0) >= 100000),
                  border=True, width=160, help=tr("projects_ui.big_ones_help"))
    table = _list_table(shown)
    st.caption(tr("projects_ui.select_hint"))
    event = st.dataframe(table, hide_index=True, width="stretch", on_select="rerun", selection_mode="single-row",
                         key="proj-table", column_config={
                             "code": tr("projects_ui.code"), "name": tr("projects_ui.name"),
                             "industry": tr("projects_ui.industry"), "stage": tr("projects_ui.stage"),
                             "investment_total": st.column_config.NumberColumn(tr("projects_ui.total_wan"),
                                                                               format="%,.0f"),
                             "invested_to_date": st.column_config.NumberColumn(tr("projects_ui.done_wan"),
                                                                               format="%,.0f"),
                             "share": st.column_config.ProgressColumn(tr("projects_ui.share"), min_value=0,
                                                                      max_value=100, format="%.0f%%"),
                             "unit": tr("projects_ui.unit"), "lists": tr("projects_ui.lists")})
    picked = event.selection.rows if event and event.selection else []
    code = table.iloc[picked[0]]["code"] if picked and picked[0] < len(table) else None
    if code != st.session_state.get("_proj_picked"):  # a new pick opens the panel; closing it keeps the pick
        st.session_state["_proj_picked"] = code
        if code:
            st.session_state["project_open"] = code
            st.rerun()


#: the columns of each part of the dispatch table (``gis.model.projects.dispatch_rows``) and their headers
DISPATCH_COLUMNS = {
    "reported": ("code", "name", "unit", "report_date", "invested_wan", "note", "recorded_by"),
    "missing": ("code", "name", "unit", "investment_total", "last_report", "days_since"),
    "behind_plan": ("code", "name", "unit", "planned_year", "expected_by_now", "invested_year", "shortfall", "share"),
}


def _dispatch_frame(items: list[dict], kind: str) -> tuple[pd.DataFrame, dict]:
    cols = DISPATCH_COLUMNS[kind]
    df = pd.DataFrame(items or [])
    for c in cols:
        if c not in df.columns:
            df[c] = None
    df = df[list(cols)].copy()
    if "recorded_by" in df:  # who reported, as planners know them
        names = store().display_names()
        df["recorded_by"] = [names.get(u, u) for u in df["recorded_by"]]
    if "share" in df:
        df["share"] = df["share"].astype(float) * 100
    num = lambda key, fmt="%,.0f": st.column_config.NumberColumn(tr(key), format=fmt)  # noqa: E731
    config = {"code": tr("projects_ui.code"), "name": tr("projects_ui.name"), "unit": tr("projects_ui.unit"),
              "report_date": tr("projects_ui.report_date"),
              "invested_wan": num("projects_ui.report_invested", "%,.1f"), "note": tr("projects_ui.report_note"),
              "recorded_by": tr("ui.by"), "investment_total": num("projects_ui.total_wan"),
              "last_report": tr("projects_ui.last_report"), "days_since": num("projects_ui.days_since", "%d"),
              "planned_year": num("projects_ui.planned_year"), "expected_by_now": num("projects_ui.expected_wan"),
              "invested_year": num("projects_ui.invested_year"), "shortfall": num("projects_ui.shortfall"),
              "share": st.column_config.ProgressColumn(tr("projects_ui.share_of_expected"), min_value=0,
                                                       max_value=100, format="%.0f%%")}
    return df, {c: config[c] for c in cols}


def _dispatch() -> None:
    today = office_today()
    last = store().last_report_day()  # before today's first report: the last day reported on opens
    day = st.columns([1, 2])[0].date_input(tr("projects_ui.dispatch_day"), value=last or today,
                                            max_value=today, key="proj-dispatch-day")
    if last and day == last != today:
        st.caption(tr("projects_ui.dispatch_last_day", day=last.isoformat()))
    d = dispatch(day)
    parts = ("reported", "missing", "behind_plan")
    counts = d.get("counts") or {}
    window = d.get("window") or [day.isoformat()] * 2
    st.caption(tr("projects_ui.dispatch_caption", n=counts.get("dispatched", 0), start=window[0], end=window[1])
               + ("" if d.get("due", True) else tr("projects_ui.dispatch_not_due")))
    with st.container(horizontal=True, wrap=True, gap="medium"):
        for k in parts:
            st.metric(tr(f"projects_ui.dispatch_{k}"), counts.get(k, len(d.get(k) or [])), border=True, width=160)
    tabs = st.tabs([f"{tr('projects_ui.dispatch_' + k)}（{len(d.get(k) or [])}）" for k in parts])
    for tab, k in zip(tabs, parts):
        with tab:
            items = d.get(k) or []
            if not items:
                st.caption(tr(f"projects_ui.dispatch_none_{k}"))
                continue
            df, config = _dispatch_frame(items, k)
            st.dataframe(df, hide_index=True, width="stretch", key=f"dispatch-{k}", column_config=config)


def bullet_chart(board: pd.DataFrame) -> alt.Chart:
    """Each indicator's actual against what the date asks, as shares of the year's target (100 %)."""
    long = bullet_long(board, lang())
    actual, expected = tr("projects_ui.col_actual"), tr("projects_ui.col_expected_by_now")
    base = alt.Chart(long).encode(y=alt.Y("indicator:N", title=None, sort=list(board["indicator"]),
                                          axis=alt.Axis(labelLimit=220, labelFontSize=12)))
    bars = base.transform_filter(alt.datum.measure == actual).mark_bar(size=16).encode(
        x=alt.X("share:Q", title=tr("projects_ui.share_of_target"), scale=alt.Scale(domain=[0, 110]),
                axis=alt.Axis(values=[0, 25, 50, 75, 100])),
        color=alt.value("#4c78a8"),
        tooltip=[alt.Tooltip("indicator:N", title=tr("projects_ui.indicator")),
                 alt.Tooltip("share:Q", title=actual, format=".1f")])
    ticks = base.transform_filter(alt.datum.measure == expected).mark_tick(thickness=3, size=26, color="#d7191c").encode(
        x="share:Q", tooltip=[alt.Tooltip("share:Q", title=expected, format=".1f")])
    rule = alt.Chart(pd.DataFrame({"x": [100]})).mark_rule(color="#333333", strokeDash=[4, 3]).encode(x="x:Q")
    return (bars + ticks + rule).properties(height=34 * max(len(board), 1) + 40)


def _board() -> None:
    today = office_today()
    c1, c2 = st.columns(2)
    year = c1.selectbox(tr("projects_ui.year"), [today.year, today.year - 1], key="proj-year")
    as_of = c2.date_input(tr("projects_ui.as_of"), value=today if year == today.year else dt.date(year, 12, 31),
                          max_value=today, key=f"proj-as-of-{year}")
    board = board_rows(indicators(year, as_of), lang())
    if not len(board):
        st.caption(tr("projects_ui.no_indicators"))
        return
    st.caption(tr("projects_ui.board_caption"))
    st.altair_chart(bullet_chart(board), width="stretch")
    st.dataframe(board.drop(columns=["key", "behind"]), hide_index=True, width="stretch", key="proj-board",
                 column_config={
                     "indicator": tr("projects_ui.indicator"), "unit": tr("projects_ui.indicator_unit"),
                     "target": st.column_config.NumberColumn(tr("projects_ui.col_target"), format="%,.0f"),
                     "actual": st.column_config.NumberColumn(tr("projects_ui.col_actual"), format="%,.0f"),
                     "expected_by_now": st.column_config.NumberColumn(tr("projects_ui.col_expected_by_now"),
                                                                      format="%,.0f"),
                     "gap": st.column_config.NumberColumn(tr("projects_ui.col_gap"), format="%,.0f",
                                                          help=tr("projects_ui.col_gap_help")),
                     "behind_by": st.column_config.NumberColumn(tr("projects_ui.col_behind_by"), format="%,.0f",
                                                                help=tr("projects_ui.col_behind_by_help")),
                     "done_share": st.column_config.ProgressColumn(tr("projects_ui.share_of_target"), min_value=0,
                                                                   max_value=100, format="%.0f%%"),
                     "candidates": tr("projects_ui.col_candidates")})


def _report(rows: list[dict]) -> None:
    st.subheader(tr("projects_ui.report_title"))
    st.caption(tr("projects_ui.report_caption"))
    codes = [r["code"] for r in rows]
    names = {r["code"]: r["name"] for r in rows}
    if not codes:
        st.caption(tr("projects_ui.none"))
        return
    code = st.selectbox(tr("projects_ui.name"), codes, key="proj-report-code",
                        format_func=lambda c: f"{c} {names.get(c, '')}")
    report_form(code, "page")


def _files() -> None:
    s = store()
    st.subheader(tr("projects_ui.files"))
    st.caption(tr("projects_ui.files_caption"))
    st.download_button(tr("projects_ui.template"), data=lambda: projects_io.template_bytes(s, lang()),
                       file_name=tr("projects_ui.template_file"), on_click="ignore",
                       mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                       icon=":material/download:", key="proj-template")
    up = st.file_uploader(tr("projects_ui.upload"), type=["xlsx", "csv", "txt"], key="proj-upload")
    if up is None:
        return
    with st.form("proj-import"):
        by = author_field("proj-import-by")
        if st.form_submit_button(tr("projects_ui.import"), type="primary"):
            with shown_errors():
                try:
                    out = s.upsert_projects(projects_io.read_project_rows(up.getvalue(), up.name), by)
                except InputError as e:  # the rows refused, then the error edge says why nothing was imported
                    rejected = e.params.get("rejected")
                    if rejected:
                        st.dataframe(pd.DataFrame(rejected).rename(columns={
                            "row": tr("projects_ui.row"), "code": tr("projects_ui.code"),
                            "reason": tr("ui.reason")}), hide_index=True, width="stretch", key="proj-rejected")
                    raise
                said = [tr("projects_ui.imported", added=out.get("added", 0), changed=out.get("updated", 0)),
                        tr("ledger.blanks_kept")]
                if out.get("examples_skipped"):
                    said.append(tr("ledger.examples_skipped", n=out["examples_skipped"]))
                st.session_state["flash"] = "；".join(said) if lang() == "zh" else "; ".join(said)
                st.rerun()


def page() -> None:
    st.title(tr("projects_ui.title"))
    st.caption(tr("projects_ui.subtitle", date=office_today().isoformat()))
    note = st.container()  # always there: a message coming and going must not move (and so reset) the tabs
    if "flash" in st.session_state:
        note.success(st.session_state.pop("flash"))
    rows = project_rows()
    open_code = st.session_state.get("project_open")
    left, right = st.columns([3, 2]) if open_code else (st.container(), None)
    with left:
        lists, day, board, work = st.tabs([tr("projects_ui.tab_lists"), tr("projects_ui.tab_dispatch"),
                                           tr("projects_ui.tab_board"), tr("projects_ui.tab_work")])
        with lists:
            _lists(rows)
        with day:
            _dispatch()
        with board:
            _board()
        with work:
            _report(rows)
            _files()
    open_code = st.session_state.get("project_open")
    if open_code and right is not None:
        with right:
            if st.button(tr("ui.close"), key="close-project"):
                st.session_state.pop("project_open", None)
                st.rerun()
            if st.button(tr("projects_ui.on_map"), key="project-on-map", icon=":material/map:"):
                fp = project_footprints()
                fp = fp[fp["code"] == open_code]
                st.session_state["selected_project"] = open_code
                st.session_state.pop("selected", None)
                if len(fp):
                    st.session_state["project_view"] = (open_code, fit_bounds(fp))
                st.switch_page("ui/map_page.py")
            project_downloads(open_code)
            project_panel(open_code)


with shown_errors():
    page()
