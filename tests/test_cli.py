"""The `renewal` command line, run as a user would (a subprocess)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gis.demo.district import DEMO_USERS
from gis.store.open import open_store_at
from gis.store.schema import LATEST

ROOT = Path(__file__).resolve().parent.parent


#: the demo's published passwords (README): on a store with accounts ``--as NAME`` must be proved
DEMO_PASSWORDS = {username: password for username, _, _, password, _ in DEMO_USERS}


def login(who: str, password: str | None = None) -> dict:
    """The environment that proves ``--as who`` (README, *Trust model of the command line*)."""
    return {"RENEWAL_PASSWORD": password or DEMO_PASSWORDS[who]}


def run(*args, store=None, env=None, input=None):
    e = dict(os.environ)
    for k in ("RENEWAL_LANG", "RENEWAL_PASSWORD", "RENEWAL_TOKEN", "RENEWAL_USER"):
        e.pop(k, None)
    if env:
        e.update(env)
    cmd = [sys.executable, "-m", "gis.cli"] + (["--store", str(store)] if store else []) + list(args)
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=e, timeout=120, input=input)


def run_as(who, *args, store=None, env=None, input=None):
    """``renewal --as who …`` with the demo account's password."""
    return run("--as", who, *args, store=store, env={**login(who), **(env or {})}, input=input)


@pytest.fixture
def store_file(tiny_store):
    """The tiny store for the command line on each back end: its path, or its URL."""
    return tiny_store.path or tiny_store.url


@pytest.fixture
def demo_copy(demo_where):
    return demo_where


def _dump(where):
    s = open_store_at(str(where))
    return s.parcels().to_wkb().to_csv(), s.events().to_csv(), s.data_version()


def test_advance_then_history_shows_the_event(store_file):
    out = run("advance", "V01-002", "--to", "listed", "--date", "2024-04-01", "--by", "王芳", "--note", "公示期满",
              store=store_file)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert res["parcel"]["stage"] == "listed" and res["event"]["to_stage"] == "listed"
    out = run("history", "V01-002", "--json", store=store_file)
    hist = json.loads(out.stdout)
    assert [e["to_stage"] for e in hist] == ["survey", "listed"]
    assert hist[-1]["recorded_by"] == "王芳" and hist[-1]["note"] == "公示期满" and hist[-1]["to_label"] == "入库（标图建库）"


@pytest.mark.parametrize("args,fragment_zh,fragment_en", [
    (["advance", "V01-002", "--to", "plan", "--date", "2024-04-01", "--by", "甲"], "下一阶段", "next stage"),
    (["advance", "V01-002", "--to", "listed", "--date", "2099-01-01", "--by", "甲"], "晚于今天", "future"),
    (["advance", "V01-002", "--to", "nonsense", "--date", "2024-04-01", "--by", "甲"], "未知阶段", "Unknown stage"),
    (["advance", "NOPE", "--to", "survey", "--by", "甲"], "没有编号", "No parcel"),
    (["advance", "V01-003", "--to", "survey", "--date", "2025-07-01", "--by", "甲"], "更正", "correction"),
    (["advance", "V01-002", "--to", "listed", "--date", "01/04/2024", "--by", "甲"], "日期", "date"),
    (["advance", "V01-002", "--to", "listed", "--date", "2024-04-01"], "经办人", "recording"),
    (["advance", "V01-002"], "参数", "invalid arguments"),
    (["block", "V01-001", "--by", "甲"], "原因", "reason"),
])
def test_bad_input_exits_2_bilingual_and_changes_nothing(store_file, args, fragment_zh, fragment_en):
    before = _dump(store_file)
    out = run(*args, store=store_file)
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert fragment_zh in out.stderr and fragment_en in out.stderr
    assert "Traceback" not in out.stderr
    assert out.stdout == ""
    assert _dump(store_file) == before


def test_missing_store_file_is_a_clear_error(tmp_path):
    out = run("parcels", "--json", store=tmp_path / "none.gpkg",
              env={"RENEWAL_DEMO_STORE": str(tmp_path / "no-demo.gpkg")})
    assert out.returncode == 2 and "不存在" in out.stderr and "not found" in out.stderr


def test_block_and_clear(store_file):
    assert run("block", "V01-002", "--reason", "权属争议", "--by", "甲", store=store_file).returncode == 0
    assert json.loads(run("parcels", "--search", "V01-002", "--json", store=store_file).stdout)[0]["blocked"]
    assert run("block", "V01-002", "--clear", "--by", "甲", store=store_file).returncode == 0
    assert not json.loads(run("parcels", "--search", "V01-002", "--json", store=store_file).stdout)[0]["blocked"]


def test_working_store_is_seeded_from_the_demo_without_touching_it(tmp_path):
    demo = tmp_path / "demo.gpkg"
    from tests.conftest import write_tiny_store

    write_tiny_store(demo)
    before = demo.read_bytes()
    env = {"RENEWAL_DATA_DIR": str(tmp_path / "work"), "RENEWAL_DEMO_STORE": str(demo)}
    out = run("advance", "V01-002", "--to", "listed", "--date", "2024-04-01", "--by", "甲", env=env)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "work" / "renewal.gpkg").exists()
    assert demo.read_bytes() == before


# ------------------------------------------------------------- on the demo district
def test_demo_lists_2000_village_parcels_in_30_villages(demo_copy):
    out = run("parcels", "--kind", "village", "--json", store=demo_copy)
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert len(rows) >= 2000
    assert len({r["village"] for r in rows}) == 30
    for key in ("code", "name", "kind", "zone", "village", "area_m2", "area_mu", "stage", "next_stage"):
        assert key in rows[0]
    done = [r for r in rows if r["stage"] == "completed"]
    assert done and all(r["next_stage"] is None for r in done)
    assert all(abs(r["area_mu"] - r["area_m2"] / (10000 / 15)) < 0.01 for r in rows)


def test_demo_layers_show_every_layer_of_the_plan(demo_copy):
    out = run("layers", "--json", store=demo_copy)
    assert out.returncode == 0, out.stderr
    layers = {r["id"]: r for r in json.loads(out.stdout)}
    for lid in ("zones", "devzone", "parks", "park_parcels", "low_efficiency", "villages", "village_parcels",
                "ministry", "landmarks", "points", "basemap"):
        assert layers[lid]["available"] and layers[lid]["features"] > 0, lid
    assert layers["zones"]["features"] == 3 and layers["villages"]["features"] == 30
    assert layers["ministry"]["features"] >= 3 and layers["parks"]["features"] == 3


def test_demo_advance_then_history(demo_copy):
    rows = json.loads(run("parcels", "--kind", "village", "--stage", "signing", "--json", store=demo_copy).stdout)
    p = next(r for r in rows if not r["blocked"])
    out = run_as("admin", "advance", p["code"], "--to", p["next_stage"], "--date", "2026-11-20",
                 "--note", "拆除完成", store=demo_copy)
    assert out.returncode == 0, out.stderr
    hist = json.loads(run("history", p["code"], "--json", store=demo_copy).stdout)
    assert hist[-1]["to_stage"] == "demolition" and hist[-1]["recorded_by"] == "admin"


def test_demo_refused_write_exits_3_and_is_audited(demo_copy):
    rows = json.loads(run("parcels", "--kind", "village", "--zone", "south", "--stage", "signing", "--json",
                          store=demo_copy).stdout)
    code = next(r for r in rows if not r["blocked"])["code"]
    for who in ("viewer", "editor_north"):
        out = run_as(who, "advance", code, "--to", "demolition", "--date", "2026-11-20", store=demo_copy)
        assert out.returncode == 3, (who, out.stderr)
        assert "无权" in out.stderr
    out = run("--as", "nobody", "advance", code, "--to", "demolition", "--date", "2026-11-20", store=demo_copy,
              env=login("nobody", "whatever-1"))
    assert out.returncode == 3 and "Traceback" not in out.stderr
    out = run_as("editor_south", "advance", code, "--to", "demolition", "--date", "2026-11-20", store=demo_copy)
    assert out.returncode == 0, out.stderr
    audit = json.loads(run_as("admin", "audit", "--target", code, store=demo_copy).stdout)
    assert [a["outcome"] for a in audit] == ["ok", "refused", "refused"]
    assert run_as("viewer", "audit", store=demo_copy).returncode == 3


def test_demo_villages_board(demo_copy):
    board = json.loads(run("villages", "--json", store=demo_copy).stdout)
    assert len(board) == 30
    statuses = {b["status"] for b in board}
    assert statuses == {"done", "in_progress", "not_started"}
    assert all(0 <= b["cleared_share"] <= 1 for b in board)


@pytest.mark.slow  # an office set up on PostGIS through a dozen CLI subprocesses (≈10 s); CI runs it
def test_postgis_office_from_scratch(pg_server, tmp_path):
    """init-db, load-demo, then the same commands against the server; backup and restore; exit 4 on a lost race."""
    from tests.conftest import pg_database

    url = pg_database(pg_server, "cli_office")
    out = run("init-db", url)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["schema_version"] == LATEST
    out = run("load-demo", url)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["parcels"] >= 2400
    assert run("load-demo", url).returncode == 2  # not over existing data without --replace
    rows = json.loads(run("parcels", "--kind", "village", "--zone", "north", "--stage", "signing", "--json",
                          store=url).stdout)
    p = next(r for r in rows if not r["blocked"])
    users = json.loads(run_as("admin", "user", "list", "--json", store=url).stdout)
    assert {u["username"] for u in users} >= {"admin", "viewer", "editor_north"}
    assert run_as("editor_south", "advance", p["code"], "--to", "demolition", "--date", "2026-11-20",
                  store=url).returncode == 3
    stale = p["version"]
    out = run_as("editor_north", "advance", p["code"], "--to", "demolition", "--date", "2026-11-20",
                 "--expect-version", str(stale), store=url)
    assert out.returncode == 0, out.stderr
    out = run_as("admin", "advance", p["code"], "--to", "clearance", "--date", "2026-11-21",
                 "--expect-version", str(stale), store=url)
    assert out.returncode == 4 and "editor_north" in out.stderr
    backup = tmp_path / "office.dump"
    assert run_as("admin", "backup", "-o", str(backup), store=url).returncode == 0
    assert run_as("admin", "advance", p["code"], "--to", "clearance", "--date", "2026-11-21", store=url).returncode == 0
    out = run_as("admin", "restore", str(backup), store=url)
    assert out.returncode == 0, out.stderr
    hist = json.loads(run("history", p["code"], "--json", store=url).stdout)
    assert hist[-1]["to_stage"] == "demolition"
