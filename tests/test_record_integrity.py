"""Nothing rewinds or forges the record (issue 11, items 1–4 and 8), on both back ends.

Restore and backup need an admin (or the operator), keep every audit row and
refuse a damaged backup; the operator restores onto a store too damaged to
open; ``--as NAME`` is proved by a password or a personal token; events a file
carries are checked like live ones and never take a non-admin's word for who
recorded them; a bad event already stored does not blank its parcel.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import sqlite3
import sys

import psycopg
import pytest

from gis.base.errors import InputError
from gis.cli.main import main
from gis.io.exporter import export_gpkg
from gis.io.importer import ImportOptions, import_file
from gis.printing.briefing import render_parcel_page
from gis.store.backup import backup
from gis.store.gpkg import register_functions
from gis.store.open import open_store_at
from tests.test_app import app  # noqa: F401 — the app on the demo, for the panel's test

TODAY = dt.date(2026, 11, 28)
PASSWORDS = {"admin": "admin-secret", "viewer": "viewer-secret", "ed_v01": "editor-secret"}
BOGUS = ("INSERT INTO stage_events (parcel, action, from_stage, to_stage, event_date, recorded_at, recorded_by)"
         " VALUES (?, 'advance', ?, 'bogus', '2024-05-01', '2024-05-01T00:00:00+00:00', 'someone')")


@pytest.fixture
def office(tiny_store):
    """The tiny store with an admin, a viewer and an editor of village V01."""
    s = tiny_store
    s.add_user("admin", PASSWORDS["admin"], "admin", "bootstrap")
    s.add_user("viewer", PASSWORDS["viewer"], "viewer", "admin")
    s.add_user("ed_v01", PASSWORDS["ed_v01"], "editor", "admin")
    s.assign("ed_v01", "village", "V01", "admin")
    return s


@pytest.fixture
def cli(capsys, monkeypatch):
    """``renewal --store <store> [--as who] ARGS`` in this process: (exit code, stdout, stderr).
    ``password``: RENEWAL_PASSWORD (default: the account's own); ``token``: RENEWAL_TOKEN; ``stdin``."""

    def run(store, *args, who=None, password=..., token=None, stdin=""):
        for k in ("RENEWAL_PASSWORD", "RENEWAL_TOKEN", "RENEWAL_USER", "RENEWAL_LANG"):
            monkeypatch.delenv(k, raising=False)
        password = PASSWORDS.get(who) if password is ... else password
        if password:
            monkeypatch.setenv("RENEWAL_PASSWORD", password)
        if token:
            monkeypatch.setenv("RENEWAL_TOKEN", token)
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        code = main(["--store", store.where] + (["--as", who] if who else []) + list(args))
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def _suffix(store) -> str:
    return ".dump" if store.backend == "pg" else ".gpkg"


def _content(store):
    parcels = store.parcels(geometry=False).sort_values("code").to_csv()
    return parcels, store.events().to_csv(), store.users()


def _trail(store) -> list[tuple]:
    df = store.audit().sort_values("id")
    return [tuple(r) for r in df[["at", "actor", "action", "target", "outcome", "before", "after", "detail"]]
            .itertuples(index=False)]


# ------------------------------------------------------------------ 1. restore and backup need an admin
def test_a_viewer_may_not_back_up_restore_or_list_users_and_each_refusal_is_audited(office, cli, tmp_path):
    out = tmp_path / f"b{_suffix(office)}"
    for args in (["backup", "-o", str(out)], ["user", "list", "--json"], ["audit"]):
        assert cli(office, *args, who="viewer")[0] == 3, args
        assert cli(office, *args)[0] == 3, args  # nobody named: no proof at all
    assert not out.exists()
    code, _, err = cli(office, "backup", "-o", str(out), who="admin")
    assert code == 0, err
    office.set_blocked("V01-002", True, "权属争议", "ed_v01", today=TODAY)
    before = _content(office)
    for who in ("viewer", None):
        code, _, err = cli(office, "restore", str(out), who=who)
        assert code == 3 and "Traceback" not in err
    assert _content(office) == before
    refused = office.audit(actor="viewer", outcome="refused")
    assert set(refused["action"]) == {"backup", "user_list", "audit", "restore"}


def test_an_admin_restore_keeps_every_audit_row_and_adds_one_restore_line(office, cli, tmp_path):
    out = tmp_path / f"b{_suffix(office)}"
    assert cli(office, "backup", "-o", str(out), who="admin")[0] == 0
    events_then = len(office.events())
    office.set_blocked("V01-002", True, "权属争议", "ed_v01", today=TODAY)  # after the backup: an event
    office.set_note("V01-001", "补充调查", "ed_v01")                         # and a change without one
    trail = _trail(office)
    code, stdout, err = cli(office, "restore", str(out), who="admin")
    assert code == 0, err
    after = _trail(office)
    assert after[:len(trail)] == trail  # every row, in its order, with its own time
    assert [r[2] for r in after[len(trail):]] == ["login", "restore"]  # the admin's sign-in, then the restore
    line = after[-1]
    assert line[1] == "admin" and line[4] == "ok"
    summary = json.loads(line[6])
    assert summary["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest() == json.loads(stdout)["sha256"]
    assert summary["taken_at"] and summary["taken_at"] <= line[0]
    assert (summary["events_rolled_back"], summary["parcels_rolled_back"]) == (1, 2)
    assert summary["audit_rows_carried"] >= 3
    assert len(office.events()) == events_then and not office.parcel("V01-002")["blocked"]
    assert office.parcel("V01-001")["note"] is None


# ------------------------------------------------------------------ 2. a damaged backup is refused
def _damage(path, backend: str) -> None:
    """Overwrite 20 pages from the event table on (GeoPackage), or three stretches of a pg_dump archive."""
    data = bytearray(path.read_bytes())
    if backend == "gpkg":
        con = sqlite3.connect(path)
        root = con.execute("SELECT rootpage FROM sqlite_master WHERE name = 'stage_events'").fetchone()[0]
        size = con.execute("PRAGMA page_size").fetchone()[0]
        con.close()
        for page in range(root, root + 20):
            start = (page - 1) * size
            if start < len(data):
                data[start:start + size] = os.urandom(min(size, len(data) - start))
    else:
        for frac in (0.4, 0.6, 0.8):
            at = int(len(data) * frac)
            data[at:at + 300] = os.urandom(300)
    path.write_bytes(bytes(data))


def test_a_damaged_backup_is_refused_in_both_languages_and_the_store_is_untouched(office, cli, tmp_path):
    out = backup(office, tmp_path / f"b{_suffix(office)}", "admin")
    _damage(out, office.backend)
    office.set_blocked("V01-002", True, "权属争议", "ed_v01", today=TODAY)
    before = _content(office)
    for extra, who in (([], "admin"), (["--operator"], None)):
        code, _, err = cli(office, *extra, "restore", str(out), who=who)
        assert code == 2 and "不是可用的备份" in err and "not a usable backup" in err and "Traceback" not in err, err
        assert _content(office) == before


# ------------------------------------------------------------------ 3. the operator restores onto a broken store
def test_the_operator_restores_onto_a_store_too_damaged_to_open(office, cli, tmp_path):
    out = backup(office, tmp_path / f"b{_suffix(office)}", "admin")
    office.set_blocked("V01-002", True, "权属争议", "ed_v01", today=TODAY)
    if office.backend == "gpkg":
        with open(office.path, "r+b") as f:
            f.truncate(office.path.stat().st_size // 3)
    else:
        with psycopg.connect(office.url, autocommit=True) as con:
            con.execute("DROP TABLE stage_events")
    code, _, err = cli(office, "restore", str(out), who="admin")  # an admin cannot be checked on it
    assert code == 2 and "--operator" in err
    code, stdout, err = cli(office, "--operator", "restore", str(out))
    assert code == 0, err
    s = open_store_at(office.where)
    assert len(s.parcels(geometry=False)) == 5 and not s.parcel("V01-002")["blocked"]
    last = s.audit().iloc[0]
    assert last["action"] == "restore" and last["actor"].startswith("operator:")
    if office.backend == "gpkg":  # the damaged file is kept aside, never overwritten
        kept = json.loads(stdout)["damaged_store_kept_as"]
        assert os.path.getsize(kept) == office.path.stat().st_size // 3 or os.path.exists(kept)
    else:  # what the damaged database still held is carried: the editor's block
        assert "block" in set(s.audit(actor="ed_v01")["action"])


# ------------------------------------------------------------------ 8. --as NAME is proved
def test_acting_as_an_account_needs_its_password(office, cli):
    args = ("block", "V01-002", "--reason", "权属争议")
    assert cli(office, *args, who="ed_v01", password=None)[0] == 3            # no proof
    assert cli(office, *args, who="ed_v01", password="wrong-password")[0] == 3
    assert cli(office, *args, "--by", "ed_v01")[0] == 3                         # a name proves nothing
    assert cli(office, *args, "--by", "admin", who="ed_v01")[0] == 3            # nor another name beside one's own
    assert cli(office, "--operator", *args)[0] == 3                             # the operator is no account
    assert not office.parcel("V01-002")["blocked"]
    code, _, err = cli(office, "--password-stdin", *args, who="ed_v01", password=None, stdin="editor-secret\n")
    assert code == 0, err
    assert office.history("V01-002")[-1].recorded_by == "ed_v01"
    details = set(office.audit(action="login", outcome="refused")["detail"])
    # a missing proof is a line of its own; failed passwords are counted per account and client (issue 11, item 7)
    assert "no credential" in details and any("failed login" in d and "command line" in d for d in details), details


def test_a_personal_token_proves_its_own_account_only_until_revoked(office, cli):
    assert cli(office, "token", "issue", "ed_v01", who="viewer")[0] == 3
    code, out, err = cli(office, "token", "issue", "ed_v01", who="admin")
    assert code == 0, err
    token = json.loads(out)["token"]
    with office._connect() as con:
        kept = [tuple(r) for r in con.execute("SELECT * FROM cli_tokens")]
    assert len(kept) == 1 and token not in str(kept)  # only its hash
    args = ("block", "V01-002", "--reason", "权属争议")
    assert cli(office, *args, who="admin", password=None, token=token)[0] == 3  # not the admin's token
    code, _, err = cli(office, *args, token=token)
    assert code == 0, err
    assert office.history("V01-002")[-1].recorded_by == "ed_v01"
    assert cli(office, "token", "revoke", "ed_v01", who="admin")[0] == 0
    assert cli(office, "block", "V01-002", "--clear", token=token)[0] == 3
    assert office.parcel("V01-002")["blocked"]


# ------------------------------------------------------------------ 4. carried history
def _export_as_new(office, tmp_path, name: str, forge: bool = True):
    """An export of V01-002 (two events) and V01-003 (one), renamed to codes new to the store, its events
    claiming to be the admin's from 2019 when ``forge``."""
    if office.parcel("V01-002")["stage"] == "survey":
        office.advance("V01-002", "listed", "2024-04-01", "ed_v01", today=TODAY)
    path = tmp_path / f"{name}.gpkg"
    export_gpkg(office, path, codes=["V01-002", "V01-003"])
    con = sqlite3.connect(path)
    register_functions(con)  # GDAL's R-tree triggers call ST_* functions
    con.execute("UPDATE parcels SET code = code || ?", (name,))
    con.execute("UPDATE stage_events SET parcel = parcel || ?", (name,))
    if forge:
        con.execute("UPDATE stage_events SET recorded_by = 'admin', recorded_at = '2019-05-01T08:00:00+00:00'")
    con.commit()
    con.close()
    return path


def test_an_editors_file_cannot_write_history_in_someone_elses_name(office, tmp_path):
    path = _export_as_new(office, tmp_path, "N")
    rep = import_file(office, path, ImportOptions(), by="ed_v01", today=TODAY)
    assert (rep["new"], rep["history_events"]) == (2, 3)
    events = office.history("V01-002N") + office.history("V01-003N")
    assert len(events) == 3
    assert {e.recorded_by for e in events} == {"ed_v01"} and {e.claimed_by for e in events} == {"admin"}
    assert all(e.claimed_at.startswith("2019") and not e.recorded_at.startswith("2019") for e in events)
    assert json.loads(office.audit(action="import").iloc[0]["after"])["carried"] == 3
    # an admin's file is believed
    import_file(office, _export_as_new(office, tmp_path, "A"), ImportOptions(), by="admin", today=TODAY)
    assert {(e.recorded_by, e.claimed_by) for e in office.history("V01-002A")} == {("admin", None)}


@pytest.mark.parametrize("event,fragment", [
    (("advance", "listed", "bogus", "2024-05-01", None), "bogus"),                # not a stage of its pipeline
    (("advance", "listed", "baseline", "2099-01-01", None), "2099-01-01"),        # in the future
    (("advance", "listed", "plan", "2024-05-01", None), "plan"),                  # a skip, not a correction
    (("correction", "listed", "survey", "2024-05-01", None), "原因"),              # a correction without a reason
])
def test_bad_carried_events_are_refused_with_their_rows_and_nothing_is_written(office, tmp_path, cli, event,
                                                                              fragment):
    path = _export_as_new(office, tmp_path, "N")
    con = sqlite3.connect(path)
    con.execute("INSERT INTO stage_events (parcel, action, from_stage, to_stage, event_date, recorded_at,"
                " recorded_by, reason) VALUES ('V01-002N', ?, ?, ?, ?, '2024-05-01T00:00:00+00:00', 'admin', ?)",
                event)
    row = con.execute("SELECT count(*) FROM stage_events").fetchone()[0]
    con.commit()
    con.close()
    version = office.data_version()
    with pytest.raises(InputError) as exc:
        import_file(office, path, ImportOptions(), by="ed_v01", today=TODAY)
    assert str(row) in exc.value.params["rows"].split(", ") and fragment in exc.value.bilingual()
    assert office.data_version() == version
    code, _, err = cli(office, "import", str(path), who="ed_v01")
    assert code == 2 and f"第 {row} 行" in err and f"row {row}" in err and "Traceback" not in err
    assert office.data_version() == version
    assert not office.parcels(search="V01-002N", geometry=False).shape[0]


def test_a_bad_event_already_stored_leaves_the_history_and_the_briefing_page(office, cli, tmp_path):
    with office._connect(write=True) as con:
        con.execute(BOGUS, ("V01-002", "survey"))
    history = office.history("V01-002")
    assert office.catalog.bad_events("village", history) == [(history[-1].id, "bogus")]
    code, out, err = cli(office, "history", "V01-002", "--json")
    assert code == 0, err
    last = json.loads(out)[-1]
    assert last["to_label"] == "bogus（?）" and "bogus" in last["problem"] and "bogus" in err
    assert office.parcel("V01-002")["stage"] == "survey"
    page = render_parcel_page(office, "V01-002", tmp_path / "p.pdf")
    assert page.stat().st_size > 10_000


def test_the_panel_shows_the_facts_and_names_a_bad_stored_event(app):  # noqa: F811
    s = open_store_at(app.store_where)
    code = s.parcels(kind="village", stage="signing", blocked=False, geometry=False)["code"].iloc[0]
    with s._connect(write=True) as con:
        con.execute(BOGUS, (code, "signing"))
        con.execute("INSERT INTO stage_events (parcel, action, from_stage, to_stage, event_date, recorded_at,"
                    " recorded_by, reason, claimed_by, claimed_at) VALUES (?, 'block', 'signing', 'signing',"
                    " '2024-05-02', '2026-11-28T01:00:00+00:00', 'editor_north', '权属争议', 'admin', '2019-05-01')",
                    (code,))
    app.session_state["selected"] = code
    app.run()
    assert not app.exception, app.exception
    assert not app.error, [e.value for e in app.error]
    assert any("bogus" in w.value for w in app.warning)
    assert any(code.replace("-", "\\-") in m.value for m in app.markdown)  # the facts are there
    app.session_state["panel_tab"] = "变更记录"
    app.run()
    history = next(tb.value for tb in app.table if "文件所称记录人及时间" in tb.value.columns)  # the panel's history
    assert "admin 2019-05-01" in history["文件所称记录人及时间"].tolist()  # what the file claimed, beside the record
