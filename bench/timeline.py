"""The district as of a date: the replay against the naive way, on both back ends.

Usage: python -m bench.timeline [--parcels 100000] [--events-per-parcel 10] [--naive-sample 2000]

For each back end (a copy of the demo; then a store grown by PARCELS parcels
with about EVENTS-PER-PARCEL stage entries each, 10 % of them with a correction):
the server time of the state of every parcel as of a date, three ways —
``as_of``: the store reads the few columns a replay needs as arrays and replays
on integers (``Store.stage_state``); ``listing_as_of``: every parcel's fields
with those stages (what ``renewal parcels --as-of`` asks); ``replay_frames``:
the replay from the whole tables as frames (``state_at(store.parcels(),
store.events())``) — and, in the same run, the naive replay: one query per
parcel for its events, then walking them in Python (timed on a sample of
parcels and scaled to all of them: it grows linearly, one query each). Also
the step of the map's time slider (one more month from a prepared replay).
Wall and CPU seconds (medians of 3). Prints one JSON line per back end and scale.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from gis.devtools.pgtest import TempPostgres
from gis.model.pipelines import load_catalog
from gis.model.timeline import Moment, Replay, state_at
from gis.store import PostgisStore, Store
from gis.store.asof import store_at
from gis.store.pg import load_store_into

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "data" / "parcels" / "demo.gpkg"
AS_OF = dt.date(2025, 6, 30)


def _median(fn, repeat=3) -> float:
    return _timed(fn, repeat)[0]


def _timed(fn, repeat=3) -> tuple[float, float]:
    """Median wall time and median CPU time of this process (all its threads) over ``repeat`` runs: on a
    machine shared with other jobs the wall time waits for a core, the CPU time is what the work costs."""
    walls, cpus = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), statistics.median(cpus)


def replay_all(store) -> pd.DataFrame:
    """The replay from the tables as ``Store.parcels``/``Store.events`` give them (every column, as frames)."""
    return state_at(store.parcels(geometry=False), store.events(), store.catalog, Moment(as_of=AS_OF))


def as_of(store) -> pd.DataFrame:
    """The quick way: the columns a replay needs, as arrays (``Store.stage_state``)."""
    return store.stage_state(Moment(as_of=AS_OF))


def listing_as_of(store) -> pd.DataFrame:
    """What ``renewal parcels --as-of`` asks of the store: every parcel's fields with the stages of then."""
    return store_at(store, Moment(as_of=AS_OF)).parcels(geometry=False)


def naive(store, codes) -> int:
    """One query per parcel: its events by date, walked in Python (corrections ignored: the easy half)."""
    n = 0
    with store._connect() as con:  # noqa: SLF001 — the benchmark measures the query pattern itself
        for code in codes:
            stage = None
            for r in con.execute("SELECT action, to_stage, event_date FROM stage_events WHERE parcel = ?"
                                 " ORDER BY event_date, id", (code,)):
                if r[0] in ("advance", "correction", "import") and str(r[2])[:10] <= AS_OF.isoformat():
                    stage = r[1]
            n += stage is not None
    return n


def synthetic(parcels: int, per: int, seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Village parcels (no geometry: the replay does not need it) and their events, as the store holds them."""
    keys = load_catalog().pipeline_for("village").keys
    rng = np.random.default_rng(seed)
    codes = np.array([f"S{i:06d}" for i in range(parcels)], dtype=object)
    # about ``per`` stage entries each on average (between per - 3 and per + 3, within the pipeline)
    steps = rng.integers(max(1, per - 3), min(per + 3, len(keys)) + 1, size=parcels)
    rows = []
    start = dt.date(2023, 1, 1)
    for code, n in zip(codes, steps):
        day = start + dt.timedelta(days=int(rng.integers(0, 300)))
        prev = None
        for k in range(int(n)):
            day += dt.timedelta(days=int(rng.integers(8, 60)))
            rows.append((code, "advance", prev, keys[k], day.isoformat(), day.isoformat() + "T09:00:00+00:00"))
            prev = keys[k]
        if rng.random() < 0.1 and n > 2:  # a correction back two stages, recorded later
            day += dt.timedelta(days=5)
            rows.append((code, "correction", prev, keys[int(n) - 3], day.isoformat(), day.isoformat() + "T10:00:00+00:00"))
    ev = pd.DataFrame(rows, columns=["parcel", "action", "from_stage", "to_stage", "event_date", "recorded_at"])
    last = ev.drop_duplicates("parcel", keep="last").set_index("parcel")
    par = pd.DataFrame({"code": codes, "name": codes, "kind": "village", "zone": "central", "village": "V01",
                        "stage": pd.Series(codes).map(last["to_stage"]).to_numpy(),
                        "stage_date": pd.Series(codes).map(last["event_date"]).to_numpy(),
                        "blocked": 0, "area_m2": 1000.0, "version": 1})
    return par, ev


def grow_gpkg(path: Path, par: pd.DataFrame, ev: pd.DataFrame) -> None:
    from gis.store.gpkg import register_functions

    con = sqlite3.connect(path)
    register_functions(con)
    cols = list(par.columns)
    con.executemany(f"INSERT INTO parcels ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                    par.itertuples(index=False, name=None))
    ecols = list(ev.columns) + ["recorded_by"]
    con.executemany(f"INSERT INTO stage_events ({', '.join(ecols)}) VALUES ({', '.join('?' * len(ecols))})",
                    ((*r, "bench") for r in ev.itertuples(index=False, name=None)))
    con.commit()
    con.close()


def grow_pg(store: PostgisStore, par: pd.DataFrame, ev: pd.DataFrame) -> None:
    with store._connect(write=True) as con:  # noqa: SLF001 — bulk load for the benchmark
        cur = con.con.cursor()
        with cur.copy(f"COPY parcels ({', '.join(par.columns)}) FROM STDIN") as copy:
            for r in par.itertuples(index=False, name=None):
                copy.write_row(r)
        ecols = list(ev.columns) + ["recorded_by"]
        with cur.copy(f"COPY stage_events ({', '.join(ecols)}) FROM STDIN") as copy:
            for r in ev.itertuples(index=False, name=None):
                copy.write_row((*r, "bench"))


def measure(store, label: str, backend: str, naive_sample: int) -> dict:
    n_events = len(store.events())
    codes = list(store.parcels(geometry=False)["code"])
    as_of_s, as_of_cpu = _timed(lambda: as_of(store))
    listing_s, listing_cpu = _timed(lambda: listing_as_of(store))
    replay_s, replay_cpu = _timed(lambda: replay_all(store))
    sample = codes[:naive_sample]
    naive_s = _median(lambda: naive(store, sample), repeat=1) * len(codes) / max(len(sample), 1)
    parcels = store.parcels(geometry=False)
    replay = Replay(parcels, store.event_log(), store.catalog)
    step_s = _median(lambda: replay.at(AS_OF), repeat=5)
    return {"backend": backend, "scale": label, "parcels": len(codes), "events": n_events,
            "as_of_s": round(as_of_s, 3), "as_of_cpu_s": round(as_of_cpu, 3),
            "listing_as_of_s": round(listing_s, 3), "listing_as_of_cpu_s": round(listing_cpu, 3),
            "replay_frames_s": round(replay_s, 3), "replay_frames_cpu_s": round(replay_cpu, 3),
            "naive_s_est": round(naive_s, 2), "naive_sample": len(sample),
            "naive_over_as_of": round(naive_s / as_of_s, 1), "slider_step_s": round(step_s, 3)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--parcels", type=int, default=100_000)
    ap.add_argument("--events-per-parcel", type=int, default=10)
    ap.add_argument("--naive-sample", type=int, default=2000)
    args = ap.parse_args(argv)
    catalog = load_catalog()
    par, ev = synthetic(args.parcels, args.events_per_parcel)
    with tempfile.TemporaryDirectory() as tmp, TempPostgres() as pg:
        demo = Path(tmp) / "demo.gpkg"
        shutil.copy(DEMO, demo)
        gpkg = Store(demo, catalog)
        print(json.dumps(measure(gpkg, "demo", "gpkg", args.naive_sample)), flush=True)
        pgs = PostgisStore(pg.url, catalog, create=True)
        load_store_into(gpkg, pgs)
        print(json.dumps(measure(pgs, "demo", "postgis", args.naive_sample)), flush=True)
        big = Path(tmp) / "big.gpkg"
        shutil.copy(DEMO, big)
        grow_gpkg(big, par, ev)
        print(json.dumps(measure(Store(big, catalog), "large", "gpkg", args.naive_sample)), flush=True)
        grow_pg(pgs, par, ev)
        print(json.dumps(measure(pgs, "large", "postgis", args.naive_sample)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
