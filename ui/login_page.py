"""The login page, shown when the store has accounts and nobody is signed in."""
from __future__ import annotations

import streamlit as st

from ui.common import login_client, settings, shown_errors, sign_in, store, tr


def _oidc() -> None:
    """Single sign-on: the provider vouches for the person, the store's account says what they may do."""
    if not st.user.get("is_logged_in"):  # absent when no provider is configured
        if st.button(tr("ui.login_sso"), type="primary"):
            st.login()
        return
    email = st.user.get("email") or ""
    user = store().user(email)
    if user is None:
        st.error(tr("ui.sso_no_account", email=email))
        if st.button(tr("ui.logout")):
            st.logout()
        return
    st.session_state["user"] = user.username
    st.rerun()


def page() -> None:
    st.title(tr("app.title"))
    st.subheader(tr("ui.login"))
    if settings().auth == "oidc":
        _oidc()
        return
    with st.form("login"):
        username = st.text_input(tr("ui.username"))
        password = st.text_input(tr("ui.password"), type="password")
        if st.form_submit_button(tr("ui.login"), type="primary"):
            with shown_errors():
                user = store().authenticate(username.strip(), password, client=login_client())
                sign_in(user.username)
                st.rerun()
    if store().is_demo:
        st.caption(tr("ui.demo_accounts"))


page()
