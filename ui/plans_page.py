"""The plan page (计划与督办): campaigns counting down, the plan board per village and site,
the table editor of one village's or site's targets, and the plan spreadsheet in and out."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from gis.base.clock import office_today
from gis.base.errors import InputError
from gis.io.plans_io import read_plan_rows, template_bytes
from gis.model.plans import campaign_summary, rollup
from ui.common import author_field, lang, plain, shown_errors, store, tr
from ui.plan_common import plan_evaluation, status_label


def _campaigns(ev) -> None:
    s = store()
    for b in [b for b in s.plan_baselines() if b["kind"] == "campaign"]:
        c = campaign_summary(ev, b["name"], b["start_date"], b["end_date"])
        st.subheader(f"{plain(b['label'])}（{b['start_date']} – {b['end_date']}）")
        cols = st.columns(4)
        cols[0].metric(tr("plans.ui_days_left"), c["days_left"])
        cols[1].metric(tr("plans.ui_done_count"), f"{c['done']}/{c['targets']}", f"{c['done_share']:.0%}",
                       delta_color="off")
        cols[2].metric(tr("plans.ui_done_area"), f"{c['area_done_share']:.0%}")
        cols[3].metric(tr("plans.status_overdue"), c["overdue"])
        if c["left_by_unit"]:
            st.dataframe(pd.DataFrame(c["left_by_unit"]).rename(columns={
                "unit": tr("ui.unit"), "left": tr("plans.ui_left"), "overdue": tr("plans.status_overdue")}),
                hide_index=True, width="stretch")


def _board(ev, baseline: str) -> None:
    t = ev.targets[ev.targets["baseline"] == baseline]
    st.subheader(tr("plans.ui_board"))
    groups = t[t["object_type"] != "parcel"]
    villages = {c: (r.get("name_en") if lang() == "en" else r["name"]) for c, r in store().attributes("villages").items()}
    parks = {c: (r.get("name_en") if lang() == "en" else r["name"]) for c, r in store().attributes("parks").items()}
    cat = store().catalog
    table = pd.DataFrame({
        "object": groups["object"],
        "name": [villages.get(o) or parks.get(o) or o for o in groups["object"]],
        "stage": [cat.stage_label(k or "village", s, lang()) for k, s in zip(groups["kind"], groups["stage"])],
        "due": pd.to_datetime(groups["due_date"]),
        "original_due": pd.to_datetime(groups["original_due"]),
        "reached_on": pd.to_datetime(groups["reached_on"]),
        "progress": (groups["parcels_done"] / groups["parcels"].clip(lower=1) * 100).round(0),
        "status": [status_label(x) for x in groups["status"]],
        "days_late": groups["days_late"],
        "unit": groups["unit"],
    }).sort_values(["days_late", "object"], ascending=[False, True])
    st.dataframe(table, hide_index=True, width="stretch", key="plan-board", column_config={
        "object": tr("ui.code"), "name": tr("ui.name"), "stage": tr("plans.ui_target_stage"),
        "due": st.column_config.DateColumn(tr("plans.ui_planned"), format="YYYY-MM-DD"),
        "original_due": st.column_config.DateColumn(tr("plans.ui_original"), format="YYYY-MM-DD"),
        "reached_on": st.column_config.DateColumn(tr("plans.ui_actual"), format="YYYY-MM-DD"),
        "progress": st.column_config.ProgressColumn(tr("plans.ui_parcels_done"), min_value=0, max_value=100,
                                                    format="%.0f%%"),
        "status": tr("plans.ui_status"), "days_late": st.column_config.NumberColumn(tr("plans.ui_days_late")),
        "unit": tr("ui.unit"),
    })
    by_unit = rollup(t, "unit")
    st.caption(tr("plans.ui_by_unit"))
    st.dataframe(by_unit.rename(columns={"unit": tr("ui.unit"), "total": tr("plans.ui_targets"),
                                         **{k: status_label(k) for k in ("done", "done_late", "on_track", "due_soon",
                                                                         "overdue")},
                                         "max_days_late": tr("plans.ui_max_days_late")}),
                 hide_index=True, width="stretch")


def _editor(baseline: str) -> None:
    s = store()
    st.subheader(tr("plans.ui_editor"))
    villages = s.attributes("villages")
    parks = s.attributes("parks")
    name = (lambda r: r.get("name_en") or r["name"]) if lang() == "en" else (lambda r: r["name"])
    options = sorted(villages) + sorted(parks)
    scope = st.selectbox(tr("plans.ui_scope"), options, key="plan-scope",
                         format_func=lambda c: f"{c} {name(villages.get(c) or parks.get(c))}")
    kind = "village" if scope in villages else "park"
    pipe = s.catalog.pipeline_for(kind)
    parcels = s.parcels(village=scope, geometry=False) if kind == "village" else \
        s.parcels(geometry=False).query("park == @scope")
    objects = [scope] + sorted(parcels["code"])
    targets = s.plan_targets(baseline=baseline)
    targets = targets[targets["object"].isin(objects)]
    labels = {k: pipe.stage(k).label(lang()) for k in pipe.keys}
    rows = pd.DataFrame({
        "object": targets["object"],
        "stage": targets["stage"].map(labels),
        "due": pd.to_datetime(targets["due_date"]).dt.date,
        "unit": targets["unit"].fillna(""),
        "note": targets["note"].fillna(""),
    }).reset_index(drop=True)
    edited = st.data_editor(rows, num_rows="dynamic", hide_index=True, width="stretch", key=f"plan-editor-{scope}",
                            column_config={
                                "object": st.column_config.SelectboxColumn(tr("plans.ui_object"), options=objects,
                                                                           required=True),
                                "stage": st.column_config.SelectboxColumn(tr("plans.ui_target_stage"),
                                                                          options=list(labels.values()), required=True),
                                "due": st.column_config.DateColumn(tr("plans.ui_planned"), format="YYYY-MM-DD",
                                                                   required=True),
                                "unit": st.column_config.TextColumn(tr("ui.unit")),
                                "note": st.column_config.TextColumn(tr("ui.note")),
                            })
    adopted = next((b["adopted_at"] for b in s.plan_baselines() if b["name"] == baseline), None)
    with st.form(f"plan-save-{scope}"):
        reason = st.text_input(tr("plans.ui_reason"), help=tr("plans.ui_reason_help")) if adopted else ""
        by = author_field(f"plan-by-{scope}")
        if st.form_submit_button(tr("plans.ui_save"), type="primary"):
            with shown_errors():
                out = s.set_targets([{"row": i + 1, "object": r["object"], "stage": r["stage"],
                                      "due": r["due"].isoformat() if hasattr(r["due"], "isoformat") else r["due"],
                                      "unit": r["unit"], "note": r["note"]}
                                     for i, r in edited.iterrows() if isinstance(r["object"], str) and r["object"]],
                                    by, baseline=baseline, reason=reason or None)
                st.session_state["flash"] = tr("plans.ui_saved", added=out["added"], changed=out["changed"])
                st.rerun()


def _files(baseline: str) -> None:
    s = store()
    with st.expander(tr("plans.ui_files")):
        st.download_button(tr("plans.ui_template"), template_bytes(s, lang()), file_name=tr("plans.template_file"),
                           mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
        up = st.file_uploader(tr("plans.ui_upload"), type=["xlsx", "csv"], key="plan-upload")
        if up is not None:
            with st.form("plan-import"):
                reason = st.text_input(tr("plans.ui_reason"))
                by = author_field("plan-import-by")
                if st.form_submit_button(tr("plans.ui_import"), type="primary"):
                    with shown_errors():
                        try:
                            out = s.set_targets(read_plan_rows(up.getvalue(), up.name), by, baseline=baseline,
                                                reason=reason or None)
                        except InputError as e:  # show the rejected rows, then let the error edge speak
                            rejected = e.params.get("rejected")
                            if rejected:
                                st.dataframe(pd.DataFrame(rejected).rename(columns={
                                    "row": tr("plans.ui_row"), "object": tr("plans.ui_object"),
                                    "reason": tr("ui.reason")}), hide_index=True, width="stretch")
                            raise
                        skipped = out.get("skipped_examples") or 0  # the template's example rows
                        st.session_state["flash"] = tr("plans.ui_saved", added=out["added"], changed=out["changed"]) \
                            + (("；" if lang() == "zh" else "; ") + tr("plans.skipped_examples", n=skipped) if skipped else "")
                        st.rerun()


def page() -> None:
    s = store()
    st.title(tr("plans.ui_title"))
    st.caption(tr("plans.ui_as_of", date=office_today().isoformat()))
    if "flash" in st.session_state:
        st.success(st.session_state.pop("flash"))
    ev = plan_evaluation()
    _campaigns(ev)
    bases = [b for b in s.plan_baselines() if b["kind"] == "plan"] or [{"name": "annual", "label": "年初目标",
                                                                         "label_en": "", "adopted_at": None}]
    label = {b["name"]: (b.get("label_en") if lang() == "en" else b["label"]) or b["name"] for b in bases}
    baseline = st.radio(tr("plans.ui_baseline"), list(label), format_func=label.get, horizontal=True,
                        key="plan-baseline")
    _board(ev, baseline)
    _editor(baseline)
    _files(baseline)


with shown_errors():
    page()
