"""The app's sign-in and sign-out through Streamlit's AppTest, on each back end: sign-out ends the token."""
from __future__ import annotations

from pathlib import Path

import pytest

from gis.store.open import open_store_at

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def app(make_app):
    """The app with nobody signed in."""
    return make_app(None)


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
