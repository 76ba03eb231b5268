"""Sign-in tokens (itsdangerous), keys and revocations in the store: both back ends, two app servers."""
from __future__ import annotations

import pytest

from gis.auth import sessions
from gis.base.errors import NotFoundError, PermissionRefused


@pytest.fixture
def office(any_store):
    any_store.add_user("admin", "admin-secret", "admin", "bootstrap")
    any_store.add_user("zhou", "zhou-password-1", "editor", "admin")
    return any_store


def second_server(store):
    """Another app server over the same store: a new Store object on the same file or database."""
    return type(store)(store.url if store.path is None else store.path, store.catalog)


def test_tokens_are_signed_expire_and_end_with_the_account(office):
    token = office.issue_session("zhou", now=1_000_000)
    assert office.verify_session(token, now=1_000_000 + 3600) == "zhou"
    assert office.verify_session(token, now=1_000_000 + sessions.TTL_S + 1) is None  # expired
    body = token.split(".")[0]
    forged = sessions.issue([sessions.new_secret()], "zhou", office.session_stamp("zhou"), now=1_000_000)[0]
    assert office.verify_session(forged, now=1_000_001) is None  # another key
    for bad in (None, "", "abc", "a.b.c", body + ".", "." + token.split(".")[-1], token[:-2] + "xx"):
        assert office.verify_session(bad, now=1_000_001) is None
    assert office.issue_session("nobody") is None
    office.set_password("zhou", "zhou-password-2", by="zhou")  # a new password ends the session
    assert office.verify_session(token, now=1_000_001) is None
    assert "Max-Age=0" in sessions.cookie_script(None) and token in sessions.cookie_script(token)


def test_sign_out_revokes_the_token_on_the_server(office):
    token = office.issue_session("zhou")
    other = office.issue_session("zhou")
    assert office.verify_session(token) == "zhou"
    assert office.end_session(token) is True
    assert office.verify_session(token) is None  # the copied cookie no longer signs in
    assert office.verify_session(other) == "zhou"  # another browser of the same planner stays in
    assert office.end_session("forged.token") is False
    assert office.audit(action="logout")["actor"].tolist() == ["zhou"]


def test_admin_ends_every_session_of_a_user(office):
    a, b = office.issue_session("zhou"), office.issue_session("zhou")
    admin = office.issue_session("admin")
    with pytest.raises(PermissionRefused):
        office.end_sessions("admin", by="zhou")
    with pytest.raises(NotFoundError):
        office.end_sessions("nobody", by="admin")
    office.end_sessions("zhou", by="admin")
    assert office.verify_session(a) is None and office.verify_session(b) is None
    assert office.verify_session(admin) == "admin"
    assert office.verify_session(office.issue_session("zhou")) == "zhou"  # signing in again works
    assert office.audit(action="sessions_end", outcome="ok")["target"].tolist() == ["zhou"]


def test_keys_rotate_previous_still_accepted(office):
    t1 = office.issue_session("zhou")
    assert len(office.session_keys()) == 1
    with pytest.raises(PermissionRefused):
        office.rotate_session_key(by="zhou")
    office.rotate_session_key(by="admin")
    t2 = office.issue_session("zhou")
    assert office.verify_session(t1) == "zhou" and office.verify_session(t2) == "zhou"
    office.rotate_session_key(by="admin")
    assert office.verify_session(t1) is None  # two rotations: its key is retired
    assert office.verify_session(t2) == "zhou"
    assert len(office.session_keys()) == 2


def test_two_app_servers_share_keys_and_revocations(office):
    """Two Store objects over one store (as two app servers): a token signed via one verifies via the other,
    and a sign-out via one is refused by the other."""
    one, two = office, second_server(office)
    token = one.issue_session("zhou")
    assert two.verify_session(token) == "zhou"
    assert one.session_keys() == two.session_keys()
    assert two.end_session(token)
    assert one.verify_session(token) is None
    back = two.issue_session("zhou")
    assert one.verify_session(back) == "zhou"
    one.end_sessions("zhou", by="admin")
    assert two.verify_session(back) is None


def test_no_key_file_in_the_data_folder(office, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    office.verify_session(office.issue_session("zhou"))
    assert not list(tmp_path.rglob("session.key"))
