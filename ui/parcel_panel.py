"""The side panel of one parcel, in three tabs so that the map stays in view: facts (with the
stage timeline and the briefing buttons), history, and the actions (advance, flag blocked) the
user may take. Writes go to the store; errors are shown."""
from __future__ import annotations

import streamlit as st

from gis.base.clock import office_today
from gis.base.errors import RenewalError
from gis.base.i18n import local_time
from gis.base.units import format_area
from gis.model.history import history_labels, history_table
from gis.model.pipelines import stage_timeline
from gis.model.timeline import Moment
from gis.store.asof import store_at

from . import evidence_widgets as ev
from .common import (
    MAP_VIEWS,
    author_field,
    current_user,
    lang,
    plain,
    rerun_parts,
    shown_errors,
    store,
    tr,
)
from .downloads import parcel_downloads
from .parcel_table import shows_parcel_state
from .plan_panel import plan_section

_REFUSED = "_advance_refused"  # a refused advance's message, for the run after its callback
_BLOCK_REFUSED = "_block_refused"  # the same for the block form

# symbols every CJK font has (no emoji font on many office machines)
_MARK = {"done": ":green[●]", "current": ":orange[◆]", "ahead": ":gray[○]"}


def _zone_roles(code: str | None) -> str:
    if not code:
        return ""
    zones = store().attributes("zones")
    row = zones.get(code)
    if not row:
        return ""
    return f"{row['strategy']}{tr('ux.sep')}{row['roles']}" if lang() == "zh" else row["roles_en"]


def _facts(p: dict) -> None:
    who = store().display_names().get(p["updated_by"] or "", p["updated_by"] or "")
    unknown = set(p.get("unknown_then") or ())  # a past date's facts its record does not tell (gis/store/asof.py)
    then = (lambda field, value: tr("brief.unknown_then") if field in unknown else value)
    rows = [
        (tr("ui.code"), p["code"]),
        (tr("ui.kind"), p["kind_label"]),
        (tr("ui.zone"), p["zone_name"]),
        (tr("ui.zone_roles"), _zone_roles(p["zone"])),
        (tr("ui.village"), p["village_name"] or p["park_name"]),
        (tr("ui.area"), format_area(p["area_m2"], lang())),
        (tr("ui.current_stage"), p["stage_label"] + (tr("ux.paren", text=p["stage_date"]) if p["stage_date"] else "")),
        (tr("ui.next_stage"), p["next_stage_label"] or tr("ui.finished")),
        (tr("ui.unit"), p["unit"]),
        (tr("ui.owner"), then("owner", p.get("owner"))),
        (tr("ui.land_use"), then("land_use", p.get("land_use"))),
        (tr("ui.note"), then("note", p.get("note"))),
        (tr("ui.updated"), then("updated_at", f"{local_time(p['updated_at'])} {who}".strip()
                                 if p.get("updated_at") else None)),
    ]
    st.markdown("  \n".join(f"**{k}**{tr('ux.sep')}{plain(v)}" for k, v in rows if v))


def _timeline(p: dict, history) -> None:
    st.markdown(f"**{tr('ui.timeline')}**")
    lines = []
    for s in stage_timeline(store().catalog, p["kind"], p["stage"], history, lang()):
        date = f" {s['date']}" if s["date"] else ""
        label = plain(s["label"])
        lines.append(f"{_MARK[s['status']]} {'**' + label + '**' if s['status'] == 'current' else label}{date}")
    st.markdown("  \n".join(lines))


def _history(p: dict, history) -> None:
    if not history:
        st.caption(tr("ui.no_history"))
        return
    df = history_table(history, store().catalog, p["kind"], lang(), store().display_names())
    # a static table wraps its cells: every column fits the panel, none hides past its edge
    st.table(df.rename(columns=history_labels(lang())), hide_index=True)


def _rerun_after_write(stage_changed: bool) -> None:
    """After a write from the panel (in its callback): the map's fragment, the form's own, runs next and shows
    the confirmation and the parcel's new state. The part below the map runs with it (``MAP_VIEWS``; each
    reads the filter's result and the flash itself) only when what it shows may have changed: an open
    village's briefing and charts, the list open or a rectangle's form, or the result's count in the list's
    title (a stage filter and a new stage: the other filters, search included, read what a stage update or a
    block leaves as it was). Otherwise one run, not two (the callback's rerun ended the first and started
    another): the confirmation was on screen 35 ms sooner (bench/RESULTS.md, issue 19). Nothing is computed
    here: the filter's result after the write is made after the confirmation is drawn."""
    if (st.session_state.get("f_village") or shows_parcel_state()
            or (stage_changed and st.session_state.get("f_stage"))):
        rerun_parts(MAP_VIEWS)  # on a page without them, the whole page


def _advance(p: dict, target: str, keys: dict, by: str, today, need: str | None = None) -> None:
    """The advance form's submit, as its callback: the write happens before the run that follows, which
    runs the map with this panel (and the part below it where that changes, :func:`_rerun_after_write`),
    not the sidebar and its quick find (issue 19). A refusal is kept for the panel to show in the run of
    its fragment. The stage's evidence (``need``) is asked for here in the planner's words; the store
    refuses without it too."""
    cat = store().catalog
    get = st.session_state.get
    by = get(f"by-{p['code']}", by)  # the name typed in the form (a store without accounts), as submitted
    files = get(keys["files"])
    if need and not files:
        st.session_state[_REFUSED] = tr("field.evidence_missing", stage=plain(cat.stage_label(p["kind"], target, lang())),
                                        evidence=tr(f"field.evidence.{need}"))
        return
    try:
        event = store().advance(p["code"], target, get(keys["date"]), by, note=get(keys["note"]) or "",
                                correction=get(keys["reason"]), share=get(keys["share"]),
                                expected_version=p["version"], today=today, evidence=ev.as_evidence(files))
    except RenewalError as e:
        st.session_state[_REFUSED] = e.message(lang())
        return
    st.session_state["flash"] = tr("ui.advanced", code=p["code"], stage=cat.stage_label(p["kind"], event.to_stage, lang()))
    _rerun_after_write(stage_changed=True)


def _advance_form(p: dict) -> None:
    cat = store().catalog
    pipe = cat.pipeline_for(p["kind"])
    keys = pipe.keys
    default = keys.index(p["next_stage"]) if p["next_stage"] else max(0, pipe.index(p["stage"]))
    st.markdown(f"**{tr('ui.advance')}**")
    # outside the form: the fields below follow the stage chosen (a share, a correction's reason)
    target = st.selectbox(tr("ui.to_stage"), keys, index=default, format_func=lambda k: pipe.stage(k).label(lang()),
                          key=f"to-{p['code']}-{p['version']}")
    needs = cat.move_needs(p["kind"], p["stage"], target, lang())
    need = ev.stage_evidence(p["kind"], target)  # the stage's evidence rule (layers/pipelines.toml)
    if _REFUSED in st.session_state:
        st.error(st.session_state.pop(_REFUSED))
    fields = {f: f"adv-{f}-{p['code']}-{p['version']}" for f in ("date", "note", "share", "reason", "files")}
    with st.form(f"advance-{p['code']}", clear_on_submit=False, border=False):
        today = office_today()
        st.date_input(tr("ui.date"), value=today, max_value=today, key=fields["date"])
        by = author_field(f"by-{p['code']}")
        st.text_area(tr("ui.note"), height=68, key=fields["note"])
        if needs["share"] is not None:
            st.number_input(tr("ui.share"), min_value=0.0, max_value=1.0, value=None, step=0.01,
                            help=needs["gate"] or None, key=fields["share"])
            st.caption(tr("ux.share_needed", share=f"{needs['share']:.0%}"))
        if needs["correction"]:
            st.caption(tr("ux.correction_needed"))
            st.text_input(tr("ui.correction_reason"), key=fields["reason"])
        ev.evidence_uploader(need, fields["files"])
        st.form_submit_button(tr("ui.submit_advance"), type="primary", on_click=_advance,
                              args=(p, target, fields, by, today, need))


def _block(p: dict, keys: dict, by: str) -> None:
    """The block form's submit, as its callback (like :func:`_advance`): flag or clear, then rerun the
    views of the parcel's state only; a refusal is kept for the form to show."""
    get = st.session_state.get
    try:
        store().set_blocked(p["code"], not p["blocked"], get(keys["reason"]) or "", get(keys["by"], by),
                            expected_version=p["version"], today=office_today(),
                            evidence=ev.as_evidence(get(keys["files"])))
    except RenewalError as e:
        st.session_state[_BLOCK_REFUSED] = e.message(lang())
        return
    st.session_state["flash"] = tr("ui.unblocked_saved" if p["blocked"] else "ui.blocked_saved", code=p["code"])
    _rerun_after_write(stage_changed=False)


def _block_form(p: dict) -> None:
    keys = {"reason": f"blk-reason-{p['code']}-{p['version']}", "files": f"blk-files-{p['code']}",
            "by": f"bb-{p['code']}"}
    with st.form(f"block-{p['code']}", border=False):
        st.markdown(f"**{tr('ui.clear_block') if p['blocked'] else tr('ui.flag_block')}**")
        if _BLOCK_REFUSED in st.session_state:
            st.error(st.session_state.pop(_BLOCK_REFUSED))
        if not p["blocked"]:
            st.text_input(tr("ui.block_reason"), key=keys["reason"])
        ev.evidence_uploader(None, keys["files"])
        by = author_field(keys["by"])
        label = tr("ui.submit_unblock") if p["blocked"] else tr("ui.submit_block")
        st.form_submit_button(label, on_click=_block, args=(p, keys, by))


PANEL_TAB = "panel_tab"  # the panel's open tab (its label), kept from parcel to parcel


def _tabs(code: str):
    """The panel's four tabs; only the open one's content runs (a click on a parcel draws its facts, not
    its forms, gallery and history: issue 19), a tab switch reruns the map's fragment. The evidence tab's
    label carries its count: after an upload it is the same tab under its new label."""
    n = ev.attachment_count(code)
    labels = [tr("ux.tab_facts"), tr("ux.tab_history"), tr("ux.tab_actions"),
              tr("field.tab_evidence") + (f" ({n})" if n else "")]
    open_tab = st.session_state.get(PANEL_TAB)
    if open_tab is not None and open_tab not in labels:
        if str(open_tab).startswith(tr("field.tab_evidence")):
            st.session_state[PANEL_TAB] = labels[3]
        else:  # another language's label: the first tab
            del st.session_state[PANEL_TAB]
    return st.tabs(labels, key=PANEL_TAB, on_change="rerun")


def parcel_panel(code: str, day=None) -> None:
    """Everything about one parcel, and the forms to change it (only those the user may use). ``day``: the
    map shows that past date, and so do the facts, the stage timeline, the history and the plan; the
    evidence and the forms stay today's record (an advance acts on the parcel as it is now)."""
    with shown_errors():
        s = store()
        view = store_at(s, Moment(as_of=day))  # the store itself when ``day`` is None (today)
        p = view.parcel(code, lang())
        now = p if view is s else s.parcel(code, lang())
        history = view.history(code)
        st.subheader(plain(p["name"]))
        if day:
            st.info(tr("timeline.panel_as_of", date=day.isoformat()))
        if p["blocked"]:
            st.warning(f"{tr('ui.blocked')}{tr('ux.sep')}{plain(p['blocked_reason'] or '')}")
        facts, past, actions, evidence = _tabs(code)
        if facts.open is not False:
            with facts:
                parcel_downloads(code)
                _facts(p)
                bad = s.catalog.bad_events(p["kind"], history)
                if bad:  # a bad event already stored: the facts stay, the row is named
                    st.warning(tr("ui.bad_events", rows=tr("ux.list_sep").join(
                        tr("ui.bad_event_row", id=i, stage=plain(k)) for i, k in bad)))
                _timeline(p, history)
                plan_section(p, None if view is s else view)
        if past.open is not False:
            with past:
                _history(p, history)
        user = current_user()
        editor = s.may_edit(code, user.username if user else None)
        if evidence.open is not False:
            with evidence:
                ev.page_styles()
                ev.gallery(code, editor=editor)
                if editor:
                    ev.upload_form(code, "panel")
        if actions.open is not False:
            with actions:
                # the store's own rule (the write would be refused): show what the user may do
                if not editor:
                    st.info(tr("ux.read_only_viewer") if user is not None and user.role == "viewer"
                            else tr("ux.read_only"))
                    return
                _advance_form(now)
                _block_form(now)
