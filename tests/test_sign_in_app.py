"""The app's sign-in and sign-out through Streamlit's AppTest, on each back end: sign-out ends the token."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from gis.store.open import open_store_at

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def app(demo_where, tmp_path, monkeypatch):
    monkeypatch.setenv("RENEWAL_DATA_DIR", str(tmp_path))
    for k in ("RENEWAL_STORE", "RENEWAL_LANG", "RENEWAL_DATABASE_URL", "RENEWAL_CONFIG"):
        monkeypatch.delenv(k, raising=False)
    if demo_where.startswith("postgresql://"):
        monkeypatch.setenv("RENEWAL_DATABASE_URL", demo_where)
    else:
        shutil.copy(demo_where, tmp_path / "renewal.gpkg")
        demo_where = str(tmp_path / "renewal.gpkg")
    st.cache_resource.clear()
    st.cache_data.clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    at.store_where = demo_where
    yield at
    st.cache_resource.clear()
    st.cache_data.clear()


def _by_label(widgets, label):
    return next(w for w in widgets if w.label == label)


def test_signing_out_ends_the_token_for_every_server(app, tmp_path):
    app.run()
    _by_label(app.text_input, "用户名").set_value("viewer")
    _by_label(app.text_input, "密码").set_value("renewal-viewer")
    next(b for b in app.button if b.label == "登录").click().run()
    assert not app.exception
    token = app.session_state["session_token"]
    other_server = open_store_at(app.store_where)  # another app server over the same store
    assert other_server.verify_session(token) == "viewer"
    assert not (tmp_path / "session.key").exists()  # the keys live in the store
    next(b for b in app.sidebar.button if b.label == "退出登录").click().run()
    assert not app.exception
    assert other_server.verify_session(token) is None  # a copied cookie no longer signs in
    assert open_store_at(app.store_where).audit(action="logout")["actor"].tolist() == ["viewer"]


def test_the_login_form_says_the_same_for_an_unknown_name(app):
    app.run()
    answers = []
    for name in ("viewer", "no-such-planner"):
        _by_label(app.text_input, "用户名").set_value(name)
        _by_label(app.text_input, "密码").set_value("wrong-password")
        next(b for b in app.button if b.label == "登录").click().run()
        answers.append([e.value for e in app.error])
    assert answers[0] == answers[1] == ["用户名或密码错误"]
