"""The side panel of one parcel: facts, stage timeline, history, and the forms
that advance it or flag it blocked. Writes go to the store; errors are shown."""
from __future__ import annotations

import datetime as dt

import pandas as pd
import streamlit as st

from gis.auth.accounts import may_edit
from gis.base.i18n import local_time
from gis.base.units import format_area
from gis.model.pipelines import stage_timeline

from .common import author_field, current_user, lang, plain, shown_errors, store, tr
from .downloads import parcel_downloads

# symbols every CJK font has (no emoji font on many office machines)
_MARK = {"done": ":green[●]", "current": ":orange[◆]", "ahead": ":gray[○]"}


def _zone_roles(code: str | None) -> str:
    if not code:
        return ""
    zones = store().attributes("zones")
    row = zones.get(code)
    if not row:
        return ""
    return f"{row['strategy']}：{row['roles']}" if lang() == "zh" else row["roles_en"]


def _facts(p: dict) -> None:
    rows = [
        (tr("ui.code"), p["code"]),
        (tr("ui.kind"), p["kind_label"]),
        (tr("ui.zone"), p["zone_name"]),
        (tr("ui.zone_roles"), _zone_roles(p["zone"])),
        (tr("ui.village"), p["village_name"] or p["park_name"]),
        (tr("ui.area"), format_area(p["area_m2"], lang())),
        (tr("ui.current_stage"), p["stage_label"] + (f"（{p['stage_date']}）" if p["stage_date"] else "")),
        (tr("ui.next_stage"), p["next_stage_label"] or tr("ui.finished")),
        (tr("ui.unit"), p["unit"]),
        (tr("ui.owner"), p.get("owner")),
        (tr("ui.land_use"), p.get("land_use")),
        (tr("ui.note"), p.get("note")),
        (tr("ui.updated"), f"{local_time(p['updated_at'])} {p['updated_by'] or ''}".strip()),
    ]
    st.markdown("  \n".join(f"**{k}**：{plain(v)}" for k, v in rows if v))


def _timeline(p: dict, history) -> None:
    st.markdown(f"**{tr('ui.timeline')}**")
    lines = []
    for s in stage_timeline(store().catalog, p["kind"], p["stage"], history, lang()):
        date = f" {s['date']}" if s["date"] else ""
        label = plain(s["label"])
        lines.append(f"{_MARK[s['status']]} {'**' + label + '**' if s['status'] == 'current' else label}{date}")
    st.markdown("  \n".join(lines))


def _history(p: dict, history) -> None:
    with st.expander(f"{tr('ui.history')}（{len(history)}）", expanded=False):
        if not history:
            st.caption(tr("ui.no_history"))
            return
        cat = store().catalog
        claimed = any(e.claimed_by or e.claimed_at for e in history)
        df = pd.DataFrame([{
            tr("ui.event_date"): e.event_date,
            tr("ui.action"): tr(f"ui.actions.{e.action}"),
            tr("ui.from_stage"): cat.stage_label_or_key(p["kind"], e.from_stage, lang()),
            tr("ui.stage"): cat.stage_label_or_key(p["kind"], e.to_stage, lang()),
            tr("ui.recorded_by"): e.recorded_by,
            tr("ui.note"): e.note or "",
            tr("ui.reason"): e.reason or "",
            tr("ui.recorded_at"): local_time(e.recorded_at),
            # what an imported file claimed about who recorded it and when (not believed: see README, Import)
            **({tr("ui.claimed"): f"{e.claimed_by or ''} {e.claimed_at or ''}".strip()} if claimed else {}),
        } for e in reversed(history)])
        st.dataframe(df, hide_index=True, width="stretch")


def _advance_form(p: dict) -> None:
    cat = store().catalog
    pipe = cat.pipeline_for(p["kind"])
    keys = pipe.keys
    default = keys.index(p["next_stage"]) if p["next_stage"] else max(0, pipe.index(p["stage"]))
    with st.form(f"advance-{p['code']}", clear_on_submit=False):
        st.markdown(f"**{tr('ui.advance')}**")
        target = st.selectbox(tr("ui.to_stage"), keys, index=default,
                              format_func=lambda k: pipe.stage(k).label(lang()))
        gate = pipe.stage(target).gate(lang()) if target else ""
        date = st.date_input(tr("ui.date"), value=dt.date.today(), max_value=dt.date.today())
        by = author_field(f"by-{p['code']}")
        note = st.text_area(tr("ui.note"), height=68)
        share = st.number_input(tr("ui.share"), min_value=0.0, max_value=1.0, value=None, step=0.01,
                                help=gate or None)
        correction = st.checkbox(tr("ui.correction"))
        reason = st.text_input(tr("ui.correction_reason"))
        if st.form_submit_button(tr("ui.submit_advance"), type="primary"):
            with shown_errors():
                ev = store().advance(p["code"], target, date, by, note=note,
                                     correction=reason if correction else None, share=share,
                                     expected_version=p["version"])
                st.session_state["flash"] = tr("ui.advanced", code=p["code"],
                                               stage=cat.stage_label(p["kind"], ev.to_stage, lang()))
                st.rerun()


def _block_form(p: dict) -> None:
    with st.form(f"block-{p['code']}"):
        st.markdown(f"**{tr('ui.clear_block') if p['blocked'] else tr('ui.flag_block')}**")
        reason = "" if p["blocked"] else st.text_input(tr("ui.block_reason"))
        by = author_field(f"bb-{p['code']}")
        label = tr("ui.submit_unblock") if p["blocked"] else tr("ui.submit_block")
        if st.form_submit_button(label):
            with shown_errors():
                store().set_blocked(p["code"], not p["blocked"], reason, by, expected_version=p["version"])
                key = "ui.unblocked_saved" if p["blocked"] else "ui.blocked_saved"
                st.session_state["flash"] = tr(key, code=p["code"])
                st.rerun()


def parcel_panel(code: str) -> None:
    """Everything about one parcel, and the forms to change it."""
    with shown_errors():
        s = store()
        p = s.parcel(code, lang())
        history = s.history(code)
        st.subheader(plain(p["name"]))
        if p["blocked"]:
            st.warning(f"{tr('ui.blocked')}：{plain(p['blocked_reason'] or '')}")
        parcel_downloads(code)
        _facts(p)
        bad = s.catalog.bad_events(p["kind"], history)
        if bad:  # a bad event already stored: the facts stay, the row is named
            st.warning(tr("ui.bad_events", rows="；".join(tr("ui.bad_event_row", id=i, stage=plain(k)) for i, k in bad)))
        _timeline(p, history)
        _history(p, history)
        if s.accounts_enabled() and not may_edit(current_user(), p):
            # the store refuses such a write anyway; this only says so before one tries
            st.info(tr("ui.no_edit_right"))
        _advance_form(p)
        _block_form(p)
