"""Bulk updates of the parcels selected in the table: advance them all, or flag / clear 卡点.

One store call each (``advance_many`` / ``set_blocked_many``): every parcel is
checked by the rules of a single update and nothing is written unless all pass;
a refusal names the parcels. Only what the user may do is offered.
"""
from __future__ import annotations

from collections import Counter

import pandas as pd
import streamlit as st

from gis.auth.accounts import may_edit
from gis.base.clock import office_today
from ui.common import accounts_on, author_field, current_user, lang, plain, shown_errors, store, tr

SHOWN_CODES = 12


def _codes_text(codes) -> str:
    codes = list(codes)
    return "、".join(codes[:SHOWN_CODES]) + (" …" if len(codes) > SHOWN_CODES else "")


def _advance(rows, versions: dict, key: str) -> None:
    cat = store().catalog
    pipes = {cat.kinds[k].pipeline for k in rows["kind"] if k in cat.kinds}
    st.markdown(f"**{tr('bulk.advance')}**")
    if len(pipes) != 1:
        st.info(tr("bulk.mixed"))
        return
    kind = rows["kind"].iloc[0]
    pipe = cat.pipeline_for(kind)
    nexts = Counter(pipe.next_stage(s if isinstance(s, str) and s else None) for s in rows["stage"])
    common = next((s for s, _ in nexts.most_common() if s), pipe.keys[-1])
    target = st.selectbox(tr("ui.to_stage"), pipe.keys, index=pipe.keys.index(common), key=f"{key}-target",
                          format_func=lambda k: pipe.stage(k).label(lang()))
    stage = pipe.stage(target)
    date = st.date_input(tr("ui.date"), value=office_today(), max_value=office_today(), key=f"{key}-date")
    note = st.text_input(tr("ui.note"), key=f"{key}-note")
    share = None
    if stage.min_share is not None:  # only a gated stage asks for its share
        share = st.number_input(tr("ui.share"), min_value=0.0, max_value=1.0, value=None, step=0.01,
                                key=f"{key}-share", help=stage.gate(lang()) or None)
    by = author_field(f"{key}-by")
    if st.button(tr("bulk.submit_advance", n=len(rows)), type="primary", key=f"{key}-advance"):
        with shown_errors():
            store().advance_many(list(rows["code"]), target, date, by, note=note, share=share,
                                 expected_versions=versions)
            st.session_state["flash"] = tr("bulk.advanced", n=len(rows), stage=stage.label(lang()))
            st.rerun()


def _block(rows, versions: dict, key: str) -> None:
    blocked = rows[rows["blocked"].fillna(0).astype(bool)]
    free = rows[~rows["code"].isin(blocked["code"])]
    st.markdown(f"**{tr('bulk.block')}**")
    by = None
    if len(free):
        reason = st.text_input(tr("ui.block_reason"), key=f"{key}-reason")
        by = author_field(f"{key}-block-by")
        if st.button(tr("bulk.submit_block", n=len(free)), key=f"{key}-block"):
            with shown_errors():
                store().set_blocked_many(list(free["code"]), True, reason, by, expected_versions=versions)
                st.session_state["flash"] = tr("bulk.blocked", n=len(free))
                st.rerun()
    if len(blocked):
        by = by or author_field(f"{key}-unblock-by")
        if st.button(tr("bulk.submit_unblock", n=len(blocked)), key=f"{key}-unblock"):
            with shown_errors():
                store().set_blocked_many(list(blocked["code"]), False, "", by, expected_versions=versions)
                st.session_state["flash"] = tr("bulk.unblocked", n=len(blocked))
                st.rerun()


def bulk_form(rows, key: str = "bulk") -> None:
    """Forms for the selected parcels (``rows``: their parcel records, with version); ``key`` prefixes the widgets' keys."""
    st.markdown(f"##### {tr('bulk.title', n=len(rows))}")
    st.caption(plain(_codes_text(rows["code"])))
    if accounts_on():
        user = current_user()
        denied = [r["code"] for r in rows.to_dict("records") if not may_edit(user, r)]
        if len(denied) == len(rows):
            st.info(tr("bulk.no_right_all"))
            return
        if denied:  # the store would refuse the whole update: say which before one tries
            st.warning(tr("bulk.no_right_some", n=len(denied), codes=_codes_text(denied)))
            return
    versions = {r["code"]: int(r["version"]) for r in rows.to_dict("records") if pd.notna(r.get("version"))}
    left, right = st.columns(2)
    with left:
        _advance(rows, versions, key)
    with right:
        _block(rows, versions, key)
