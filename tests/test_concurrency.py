"""Many planners at once, on both back ends: no lost update, no duplicate event,
no 'database is locked' reaching anyone, and a killed process leaves nothing half-done."""
from __future__ import annotations

import multiprocessing as mp
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gis.errors import ConflictError, RenewalError
from gis.pipelines import load_catalog
from gis.store import Store

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "data" / "parcels" / "demo.gpkg"
WORKERS = 8
STEPS = (("survey", "2025-01-01"), ("listed", "2025-01-15"), ("baseline", "2025-02-01"), ("plan", "2025-02-15"))

pytestmark = pytest.mark.slow


def _open(where: str):
    if where.startswith("postgresql://"):
        from gis.store_pg import PostgisStore

        return PostgisStore(where)
    return Store(where)


def _advance_many(where: str, codes: list[str]) -> tuple[int, list[str]]:
    """One planner: every parcel through four stages. Returns successes and error messages."""
    store = _open(where)
    ok, errors = 0, []
    for code in codes:
        for stage, date in STEPS:
            try:
                store.advance(code, stage, date, "admin", note="并发测试", today=None)
                ok += 1
            except RenewalError as e:
                errors.append(e.message("en"))
            except Exception as e:  # anything else (e.g. "database is locked") is a failure to report
                errors.append(f"{type(e).__name__}: {e}")
    return ok, errors


def _race(where: str, code: str, version: int, barrier) -> str:
    store = _open(where)
    barrier.wait()
    try:
        store.advance(code, "survey", "2025-01-01", "admin", expected_version=version)
        return "ok"
    except ConflictError:
        return "conflict"
    except Exception as e:
        return f"{type(e).__name__}: {e}"


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


def test_eight_planners_two_hundred_updates_each(demo_store):
    store = _open(demo_store)
    codes = list(store.parcels(kind="village", stage="not_started", geometry=False)["code"][: WORKERS * 50])
    assert len(codes) == WORKERS * 50
    events_before = len(store.events())
    ctx = mp.get_context("spawn")
    with ctx.Pool(WORKERS) as pool:
        results = pool.starmap(_advance_many, [(demo_store, codes[i::WORKERS]) for i in range(WORKERS)])
    ok = sum(r[0] for r in results)
    errors = [e for r in results for e in r[1]]
    assert errors == []
    assert ok == WORKERS * 200
    events = store.events()
    assert len(events) == events_before + ok
    mine = events[events["note"] == "并发测试"]
    assert not mine.duplicated(["parcel", "to_stage"]).any()
    assert set(store.parcels(geometry=False).set_index("code").loc[codes, "stage"]) == {"plan"}


def test_eight_planners_racing_on_one_parcel(demo_store):
    store = _open(demo_store)
    row = store.parcels(kind="village", stage="not_started", geometry=False).iloc[0]
    version = int(row["version"])
    events_before = len(store.events())
    ctx = mp.get_context("spawn")
    barrier = ctx.Manager().Barrier(WORKERS)
    with ctx.Pool(WORKERS) as pool:
        outcomes = pool.starmap(_race, [(demo_store, row["code"], version, barrier)] * WORKERS)
    assert sorted(outcomes) == ["conflict"] * (WORKERS - 1) + ["ok"]
    assert len(store.events()) == events_before + 1
    assert store.parcel(row["code"])["version"] == version + 1


CRASH = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {root!r})
    from tests.test_concurrency import _open
    from gis.store import parse_date
    store = _open({where!r})
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
