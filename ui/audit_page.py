"""The audit trail, for admins: who changed what, when, before and after; refusals too."""
from __future__ import annotations

import streamlit as st

from gis.auth.accounts import require_admin
from gis.base.i18n import local_time
from gis.base.sheets import csv_bytes
from ui.common import current_user, shown_errors, store, tr


def page() -> None:
    st.title(tr("ui.page_audit"))
    require_admin(current_user(), "audit")
    c = st.columns(4)
    actor = c[0].text_input(tr("ui.audit_actor"))
    action = c[1].text_input(tr("ui.audit_action"))
    outcome = c[2].selectbox(tr("ui.audit_outcome"), ["", "ok", "refused"],
                             format_func=lambda v: tr("ui.all") if not v else v)
    target = c[3].text_input(tr("ui.audit_target"))
    df = store().audit(actor=actor.strip() or None, action=action.strip() or None,
                       outcome=outcome or None, target=target.strip() or None)
    st.caption(tr("ui.results", n=len(df)))
    shown = df.assign(at=df["at"].map(local_time)) if len(df) else df  # the CSV keeps the stored UTC stamps
    st.dataframe(shown, hide_index=True, width="stretch")
    st.download_button(tr("ui.audit_csv"), csv_bytes(df),  # formula-like text stays text
                       file_name="audit.csv", mime="text/csv")


with shown_errors():
    page()
