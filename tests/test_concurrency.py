"""Many planners at once, on both back ends: no lost update, no duplicate event,
no 'database is locked' reaching anyone, and a killed process leaves nothing half-done."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gis.devtools.loadtest import open_store, run_planners

ROOT = Path(__file__).resolve().parent.parent
WORKERS = 8

pytestmark = pytest.mark.slow


def _open(where: str):
    return open_store(where)


@pytest.fixture
def demo_store(demo_where):
    return demo_where


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
    from gis.devtools.loadtest import open_store
    from gis.store.base import parse_date
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


CRASH_IMPORT = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {root!r})
    import shapely
    from gis.devtools.loadtest import open_store
    store = open_store({where!r})
    real = store._audit
    def audit(*a, **k):
        real(*a, **k)  # parcels, events, extent and the audit line written: all but the commit
        print("inside", flush=True)
        time.sleep(60)  # killed here
    store._audit = audit
    blobs = [shapely.to_wkb(shapely.MultiPolygon([shapely.box(121.30 + i * 1e-4, 37.40, 121.30005 + i * 1e-4, 37.40005)]))
             for i in range(500)]
    records = [{{"code": f"CRASH-{{i}}", "kind": "village", "stage": "survey", "geom": b}}
               for i, b in enumerate(blobs)]
    records.append({{"code": {code!r}, "unit": "崩溃测试", "geom": blobs[0]}})
    store.upsert_parcels(records, by="admin", note="crash test")
""")


def _state(store, code):
    return (len(store.parcels(geometry=False)), len(store.events()), store.parcel(code), store.data_version(),
            len(store.audit()))


def test_a_killed_import_leaves_nothing_half_done(demo_store):
    store = _open(demo_store)
    code = store.parcels(kind="village", geometry=False)["code"].iloc[0]
    before = _state(store, code)
    proc = subprocess.Popen([sys.executable, "-c", CRASH_IMPORT.format(root=str(ROOT), where=demo_store, code=code)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "inside"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    assert _state(store, code) == before
    assert not store.parcels(search="CRASH-", geometry=False).shape[0]
    if store.backend == "gpkg":
        import sqlite3

        con = sqlite3.connect(store.path)
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        # GDAL's R-tree agrees with the table: no entry for a parcel that never landed
        assert con.execute("SELECT count(*) FROM rtree_parcels_geom").fetchone()[0] == before[0]
        con.close()
    # the same import, not killed, lands whole
    proc = subprocess.run([sys.executable, "-c", CRASH_IMPORT.replace("time.sleep(60)", "pass").format(
        root=str(ROOT), where=demo_store, code=code)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert len(store.parcels(geometry=False)) == before[0] + 500
    assert store.parcel(code)["unit"] == "崩溃测试"
