"""Many planners at once, on both back ends: no lost update, no duplicate event,
no 'database is locked' reaching anyone, and a killed process leaves nothing half-done."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gis.loadtest import open_store, run_planners
from gis.pipelines import load_catalog
from gis.store import Store

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "data" / "parcels" / "demo.gpkg"
WORKERS = 8

pytestmark = pytest.mark.slow


def _open(where: str):
    return open_store(where)


@pytest.fixture(params=["gpkg", "postgis"])
def demo_store(request, tmp_path):
    if request.param == "gpkg":
        path = tmp_path / "demo.gpkg"
        shutil.copy(DEMO, path)
        return str(path)
    from gis.store_pg import PostgisStore, load_store_into
    from tests.conftest import pg_database

    url = pg_database(request.getfixturevalue("pg_server"), f"load_{os.getpid()}_{id(tmp_path)}")
    copy = tmp_path / "source.gpkg"
    shutil.copy(DEMO, copy)
    load_store_into(Store(copy), PostgisStore(url, load_catalog(), create=True))
    return url


def test_eight_planners_two_hundred_updates_each(demo_store, tmp_path):
    store = _open(demo_store)
    codes = list(store.parcels(kind="village", stage="not_started", geometry=False)["code"][: WORKERS * 50])
    assert len(codes) == WORKERS * 50
    events_before = len(store.events())
    results = run_planners(demo_store, [["advance", ",".join(codes[i::WORKERS])] for i in range(WORKERS)], tmp_path)
    ok = sum(r["ok"] for r in results)
    errors = [e for r in results for e in r["errors"]]
    assert errors == []
    assert ok == WORKERS * 200
    events = store.events()
    assert len(events) == events_before + ok
    mine = events[events["note"] == "并发测试"]
    assert not mine.duplicated(["parcel", "to_stage"]).any()
    assert set(store.parcels(geometry=False).set_index("code").loc[codes, "stage"]) == {"plan"}


def test_eight_planners_racing_on_one_parcel(demo_store, tmp_path):
    store = _open(demo_store)
    row = store.parcels(kind="village", stage="not_started", geometry=False).iloc[0]
    version = int(row["version"])
    events_before = len(store.events())
    outcomes = run_planners(demo_store, [["race", row["code"], str(version)]] * WORKERS, tmp_path)
    assert sorted(outcomes) == ["conflict"] * (WORKERS - 1) + ["ok"]
    assert len(store.events()) == events_before + 1
    assert store.parcel(row["code"])["version"] == version + 1


CRASH = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {root!r})
    from gis.loadtest import open_store
    from gis.store import parse_date
    store = open_store({where!r})
    with store._connect(write=True) as con:
        row = store._row(con, {code!r}, lock=True)
        store._write_event(con, row, "advance", "survey", parse_date("2025-01-01"), "admin", "", None, None,
                           {{"stage": "survey", "stage_date": "2025-01-01"}})
        print("inside", flush=True)
        time.sleep(60)   # killed here, between the writes and the commit
""")


def test_a_killed_update_leaves_nothing_half_done(demo_store):
    store = _open(demo_store)
    row = store.parcels(kind="village", stage="not_started", geometry=False).iloc[0]
    before = (len(store.events()), store.parcel(row["code"]), store.data_version(), len(store.audit()))
    proc = subprocess.Popen([sys.executable, "-c", CRASH.format(root=str(ROOT), where=demo_store, code=row["code"])],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "inside"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    after = (len(store.events()), store.parcel(row["code"]), store.data_version(), len(store.audit()))
    assert after == before
    if store.backend == "gpkg":
        import sqlite3

        con = sqlite3.connect(store.path)
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        con.close()
    # and the store takes the next write as usual
    store.advance(row["code"], "survey", "2025-01-01", "admin")
    assert store.parcel(row["code"])["stage"] == "survey"
