"""The dispatch-meeting pack page (调度会材料): pick the period and scope, build, download PDF / Word / Excel."""
from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

import streamlit as st

from gis.base import clock
from gis.printing.report import build_report, write_report
from ui.common import data_version, lang, settings, shown_errors, store, tr

MIME = {".pdf": "application/pdf", ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def _build(since: dt.date, until: dt.date, scope: dict) -> dict:
    bar = st.progress(0.0, text=tr("report_ui.progress", step="…"))

    def progress(done: int, total: int, label: str) -> None:
        bar.progress(min(1.0, done / total), text=tr("report_ui.progress", step=f"{done}/{total}"))

    rep = build_report(store(), since, until, lang=lang(), classification=settings().classification,
                       progress=progress, **scope)
    files = {}
    with tempfile.TemporaryDirectory(prefix="renewal-report-ui-") as d:
        for suffix in MIME:
            out = write_report(rep, Path(d) / f"pack{suffix}")
            files[suffix] = (Path(out["file"]).read_bytes(), out)
    bar.empty()
    return {"files": files, "counts": rep.counts, "title": rep.title}


def report_page() -> None:
    st.title(tr("report_ui.title"))
    today = clock.office_today()
    left, right = st.columns(2)
    since = left.date_input(tr("report_ui.since"), value=today - dt.timedelta(days=6), max_value=today,
                            key="report_since")
    until = right.date_input(tr("report_ui.until"), value=today, max_value=today, key="report_until")
    s = store()
    kind = st.radio(tr("report_ui.scope"), ["all", "zone", "village", "unit"], horizontal=True,
                    format_func=lambda k: tr(f"report_ui.scope_{k}"), key="report_scope")
    scope = {}
    if kind == "zone":
        zones = s.names("zones")
        scope["zone"] = st.selectbox(tr("ui.zone"), list(zones), format_func=lambda c: zones[c][lang() == "en"] or c,
                                     key="report_zone")
    elif kind == "village":
        villages = s.names("villages")
        scope["village"] = st.selectbox(tr("ui.village"), sorted(villages),
                                        format_func=lambda c: f"{c} {villages[c][lang() == 'en'] or ''}",
                                        key="report_village")
    elif kind == "unit":
        units = sorted(u for u in s.parcels(geometry=False)["unit"].dropna().unique() if u)
        scope["unit"] = st.selectbox(tr("report_ui.unit"), units, key="report_unit")
    if since > until:
        st.error(tr("error.bad_period", since=since.isoformat(), until=until.isoformat()))
        return
    key = (since, until, tuple(sorted(scope.items())), data_version(), lang())
    if st.button(tr("report_ui.build"), type="primary", key="report_build"):
        st.session_state["report_result"] = {"key": key, **_build(since, until, scope)}
    res = st.session_state.get("report_result")
    if not res or res["key"] != key:
        return
    c = res["counts"]
    st.success(tr("report_ui.done", advanced=c["advanced"], back=c["back"], blocked=c["blocked"]))
    cols = st.columns(len(MIME))
    stem = f"{res['title']}_{since.isoformat()}_{until.isoformat()}"
    for col, (suffix, (data, _)) in zip(cols, res["files"].items()):
        col.download_button(tr(f"report_ui.download{suffix.replace('.', '_')}"), data, file_name=stem + suffix,
                            mime=MIME[suffix], on_click="ignore", key=f"report_dl{suffix}")


with shown_errors():
    report_page()
