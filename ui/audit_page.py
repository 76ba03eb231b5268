"""The audit trail, for admins: who changed what, when, before and after; refusals too."""
from __future__ import annotations

import streamlit as st

from gis.auth.accounts import require_admin
from gis.base.sheets import csv_bytes
from gis.model.history import AUDIT_COLUMNS, audit_labels, audit_table
from ui.common import current_user, lang, shown_errors, store, tr


def page() -> None:
    st.title(tr("ui.page_audit"))
    require_admin(current_user(), "audit")
    c = st.columns(4)
    actor = c[0].text_input(tr("ui.audit_actor"))
    action = c[1].text_input(tr("ui.audit_action"))
    outcome = c[2].selectbox(tr("ui.audit_outcome"), ["", "ok", "refused"],
                             format_func=lambda v: tr(f"ux.outcome.{v}") if v else tr("ui.all"))
    target = c[3].text_input(tr("ui.audit_target"))
    df = store().audit(actor=actor.strip() or None, action=action.strip() or None,
                       outcome=outcome or None, target=target.strip() or None)
    st.caption(tr("ux.audit_results", n=len(df)))
    labels = audit_labels(lang())
    shown = audit_table(df, lang(), store().display_names())  # the CSV keeps the stored values, UTC stamps
    st.dataframe(shown, hide_index=True, width="stretch", column_order=list(AUDIT_COLUMNS), placeholder="",
                 column_config={c: st.column_config.TextColumn(labels[c], width="medium" if c in ("before", "after")
                                                               else None) for c in AUDIT_COLUMNS})
    st.download_button(tr("ui.audit_csv"), csv_bytes(df),  # formula-like text stays text
                       file_name="audit.csv", mime="text/csv")


with shown_errors():
    page()
