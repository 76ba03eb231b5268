"""The login page, shown when the store has accounts and nobody is signed in."""
from __future__ import annotations

import streamlit as st

from ui.common import shown_errors, store, tr


def page() -> None:
    st.title(tr("app.title"))
    st.subheader(tr("ui.login"))
    with st.form("login"):
        username = st.text_input(tr("ui.username"))
        password = st.text_input(tr("ui.password"), type="password")
        if st.form_submit_button(tr("ui.login"), type="primary"):
            with shown_errors():
                user = store().authenticate(username.strip(), password)
                st.session_state["user"] = user.username
                st.rerun()
    if store().is_demo:
        st.caption(tr("ui.demo_accounts"))


page()
