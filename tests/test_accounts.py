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
    held = []
    for i in range(4):
        with pytest.raises(PermissionRefused):
            office.authenticate("ed_v01", "wrong", now + dt.timedelta(seconds=i), sleep=held.append)
    # four failures in a row from this client: the right password is held for the delay, then accepted
    later = now + dt.timedelta(seconds=4)
    assert office.authenticate("ed_v01", "editor-secret", later, sleep=held.append).role == "editor"
    assert held and held[-1] <= login_delay(4)
    with pytest.raises(PermissionRefused):
        office.authenticate("nobody", "whatever", now)
    office.close_login_windows(now + dt.timedelta(hours=1))
    refused = office.audit(action="login", outcome="refused")
    assert (refused["actor"] == "ed_v01").sum() == 1 and refused["detail"].str.startswith("4 failed").any()


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


# signed sign-in tokens, sign-out and key rotation: tests/test_sessions.py
