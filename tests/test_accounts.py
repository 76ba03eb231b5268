"""Accounts, roles, the audit trail and backups, on both back ends."""
from __future__ import annotations

import datetime as dt

import pytest

from gis.auth.accounts import login_delay
from gis.base.errors import InputError, PermissionRefused
from gis.store.backup import backup, restore

TODAY = dt.date(2026, 11, 28)


@pytest.fixture
def office(any_store):
    """The tiny store with an admin, a viewer, an editor of village V01 and an editor of the north zone."""
    s = any_store
    s.add_user("admin", "admin-secret", "admin", "bootstrap", display_name="管理员")
    s.add_user("viewer", "viewer-secret", "viewer", "admin")
    s.add_user("ed_v01", "editor-secret", "editor", "admin", display_name="东岙村专班")
    s.add_user("ed_north", "editor-secret", "editor", "admin")
    s.assign("ed_v01", "village", "V01", "admin")
    s.assign("ed_north", "zone", "北部", "admin")
    return s


def test_first_account_bootstraps_then_only_admins_add(any_store):
    assert not any_store.accounts_enabled()
    any_store.add_user("boss", "long-enough", "admin", "whoever")
    assert any_store.accounts_enabled()
    with pytest.raises(PermissionRefused):
        any_store.add_user("x", "long-enough", "admin", "nobody")
    with pytest.raises(InputError):
        any_store.add_user("y", "short", "viewer", "boss")
    with pytest.raises(InputError):
        any_store.add_user("boss", "long-enough", "viewer", "boss")


def test_editor_writes_only_in_assigned_area(office):
    ev = office.advance("V01-002", "listed", "2024-04-01", "ed_v01", today=TODAY)
    assert ev.recorded_by == "ed_v01"
    office.advance("MIN-01", "tenure_check", "2024-04-01", "ed_north", today=TODAY)  # north zone
    for who, code in (("ed_v01", "MIN-01"), ("ed_north", "V01-001"), ("viewer", "V01-001"), ("ghost", "V01-001")):
        with pytest.raises(PermissionRefused) as exc:
            office.advance(code, "survey" if code == "V01-001" else "negotiation", "2024-05-01", who, today=TODAY)
        assert exc.value.exit_code == 3
    with pytest.raises(PermissionRefused):
        office.set_blocked("V01-001", True, "权属争议", "viewer", today=TODAY)
    with pytest.raises(PermissionRefused):
        office.set_note("V01-001", "x", "ed_north")
    refused = office.audit(outcome="refused")
    assert len(refused) == 6
    assert set(refused["actor"]) == {"ed_v01", "ed_north", "viewer", "ghost"}
    # refused writes left the parcels untouched
    assert office.parcel("V01-001")["stage"] is None and office.parcel("V01-001")["version"] == 1


def test_every_write_is_audited_with_before_and_after(office):
    office.advance("V01-002", "listed", "2024-04-01", "admin", note="公示期满", today=TODAY)
    office.set_note("V01-002", "已入库", "ed_v01")
    rows = office.audit(target="V01-002")
    assert list(rows["action"]) == ["note", "advance"]
    import json

    adv = rows.iloc[1]
    assert json.loads(adv["before"])["stage"] == "survey" and json.loads(adv["after"])["stage"] == "listed"
    assert set(office.audit(actor="admin")["action"]) >= {"user_add", "user_assign", "advance"}


def test_event_and_audit_tables_are_append_only(office):
    office.advance("V01-002", "listed", "2024-04-01", "admin", today=TODAY)
    for sql in ("UPDATE stage_events SET note = 'x'", "DELETE FROM stage_events", "DELETE FROM audit",
                "UPDATE audit SET actor = 'x'"):
        with pytest.raises(InputError, match="append-only"):
            with office._connect(write=True) as con:
                con.execute(sql)
    assert len(office.history("V01-002")) == 2


def test_login_and_throttling(office):
    now = dt.datetime(2026, 11, 28, 9, 0, tzinfo=dt.timezone.utc)
    assert office.authenticate("ed_v01", "editor-secret", now).username == "ed_v01"
    for i in range(4):
        with pytest.raises(PermissionRefused):
            office.authenticate("ed_v01", "wrong", now + dt.timedelta(seconds=60 * i))
    # four failures in a row: even the right password waits
    later = now + dt.timedelta(seconds=180)
    with pytest.raises(PermissionRefused) as exc:
        office.authenticate("ed_v01", "editor-secret", later)
    assert exc.value.key == "error.login_wait"
    wait = login_delay(4)
    assert wait == 4
    assert office.authenticate("ed_v01", "editor-secret", later + dt.timedelta(seconds=wait)).role == "editor"
    with pytest.raises(PermissionRefused):
        office.authenticate("nobody", "whatever", now)
    assert (office.audit(action="login", outcome="refused")["actor"] == "ed_v01").sum() == 5


def test_passwords_are_hashed_and_changeable(office):
    with office._connect() as con:
        h = con.execute("SELECT password_hash FROM users WHERE username = 'viewer'").fetchone()[0]
    assert h.startswith("$argon2id$") and "viewer-secret" not in h
    office.set_password("viewer", "new-viewer-secret", "viewer")
    assert office.authenticate("viewer", "new-viewer-secret").role == "viewer"
    with pytest.raises(PermissionRefused):
        office.set_password("admin", "hijacked-pass", "viewer")


def test_backup_and_restore_round_trip(office, tmp_path):
    office.advance("V01-002", "listed", "2024-04-01", "admin", today=TODAY)
    before = (office.parcels(geometry=False).to_dict("records"), len(office.events()), office.users())
    if office.backend == "gpkg":
        with pytest.raises(InputError):  # never over the live file
            backup(office, office.path, "admin")
    out = backup(office, tmp_path / ("backup.dump" if office.backend == "pg" else "backup.gpkg"), "admin")
    assert out.exists() and out.stat().st_size > 0
    office.advance("V01-002", "baseline", "2024-04-02", "admin", today=TODAY)
    assert len(office.events()) == before[1] + 1
    restore(office, out, "admin")
    after = (office.parcels(geometry=False).to_dict("records"), len(office.events()), office.users())
    assert after == before


def test_restore_refuses_a_bad_file_and_changes_nothing(office, tmp_path):
    bad = tmp_path / "bad.gpkg"
    bad.write_bytes(b"not a backup" * 50)
    v = office.data_version()
    with pytest.raises(InputError):
        restore(office, bad, "admin")
    with pytest.raises(InputError):
        restore(office, tmp_path / "missing.gpkg", "admin")
    assert office.data_version() == v


def test_import_lands_on_both_back_ends(office, tmp_path):
    """The importer writes through the store, so a PostGIS office imports like a GeoPackage one."""
    import geopandas as gpd
    import shapely

    from gis.io.importer import ImportOptions, import_file

    src = tmp_path / "new.geojson"
    gpd.GeoDataFrame({"code": ["V01-101", "V01-001"], "name": ["新地块", "东岙村1号地块（更新）"], "kind": ["village"] * 2},
                     geometry=[shapely.box(121.306, 37.4, 121.307, 37.401), shapely.box(121.30, 37.40, 121.3011, 37.401)],
                     crs=4490).to_file(src, driver="GeoJSON")
    report = import_file(office, src, ImportOptions(), by="admin", today=TODAY)
    assert report["features_imported"] == 2, report
    p = office.parcel("V01-101")
    assert p["name"] == "新地块" and p["area_m2"] > 5000
    assert office.parcel("V01-001")["name"] == "东岙村1号地块（更新）"
    assert any(e.action == "import" for e in office.history("V01-001"))
    gdf = gpd.read_file(src)
    gdf["name"] = ["改名", "再改名"]
    gdf.to_file(src, driver="GeoJSON")
    with pytest.raises(PermissionRefused):
        import_file(office, src, ImportOptions(), by="viewer", today=TODAY)
    assert office.parcel("V01-101")["name"] == "新地块"


# ------------------------------------------------------------------ signed sign-in tokens (a reload keeps you in)
def test_sign_in_tokens_are_signed_expire_and_end_with_the_account(tmp_path, any_store):
    from gis.auth import sessions

    key = sessions.session_key(tmp_path)
    assert len(key) == 32 and sessions.session_key(tmp_path) == key  # made once, then read
    assert (tmp_path / "session.key").stat().st_mode & 0o777 == 0o600
    any_store.add_user("zhou", "zhou-password-1", "editor", by="bootstrap")  # the tiny store's first account
    stamp = any_store.session_stamp("zhou")
    token = sessions.issue(key, "zhou", stamp, now=1_000_000)
    assert sessions.verify(key, token, any_store.session_stamp, now=1_000_000 + 3600) == "zhou"
    assert sessions.verify(key, token, any_store.session_stamp, now=1_000_000 + sessions.TTL_S + 1) is None
    assert sessions.verify(sessions.session_key(tmp_path / "other"), token, any_store.session_stamp,
                           now=1_000_001) is None  # another server's key
    body, sig = token.split(".")
    forged = sessions._b64(sessions._unb64(body).replace(b"zhou", b"root")) + "." + sig
    assert sessions.verify(key, forged, lambda u: stamp, now=1_000_001) is None
    for bad in (None, "", "abc", "a.b.c", body + ".", "." + sig):
        assert sessions.verify(key, bad, any_store.session_stamp, now=1_000_001) is None
    # a new password ends the session
    any_store.set_password("zhou", "zhou-password-2", by="zhou")
    assert sessions.verify(key, token, any_store.session_stamp, now=1_000_001) is None
    assert any_store.session_stamp("nobody") is None
    assert "Max-Age=0" in sessions.cookie_script(None) and token in sessions.cookie_script(token)
