"""Key projects: the dispatch table and the indicators (issue 18), on both back ends.

Usage: python -m bench.projects [--projects 10000] [--reports 1000000] [--runs 3] [--backend gpkg|postgis|both]

1. The demo (a copy of data/parcels/demo.gpkg: 61 projects, ~11,600 reports): ``dispatch_table``
   and ``indicators`` of its last working day, as the app and ``renewal project dispatch`` /
   ``renewal indicators`` call them. Budget 0.2 s each.
2. Scale: the demo plus N synthetic projects (on the lists, with a 12-month plan) and M reports
   (1 % of them corrections), loaded in bulk; the same two calls. Budget 2 s each. In the same
   run the naive way — one query per project for its sums and its plan, then the same rules —
   timed on 500 projects and scaled to N (it grows with one query pair each), and a check that
   both ways give the same invested-to-date sums for those 500.

Prints one JSON line per back end and scale.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from gis.model import projects as pm
from gis.store.store import Store

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "data" / "parcels" / "demo.gpkg"
DAY = dt.date(2026, 11, 13)
NAIVE_SAMPLE = 500


def best(fn, runs: int):
    """Best wall-clock time of ``runs`` calls, the CPU time of that call, and the result."""
    times, out = [], None
    for _ in range(runs):
        t, c = time.perf_counter(), time.process_time()
        out = fn()
        times.append((time.perf_counter() - t, time.process_time() - c))
    wall, cpu = min(times)
    return wall, cpu, out


def synthesise(store, n: int, m: int, seed: int = 18) -> None:
    """N projects with lists and a 2026 plan, and M reports over 2026 (1 % corrections), loaded in bulk."""
    rng = np.random.default_rng(seed)
    cfg = store.project_config
    kinds, inds, lists = list(cfg.kinds), list(cfg.industries), list(cfg.lists)
    stages = ["signed", "procedures", "started", "construction", "production"]
    codes = [f"S{i:05d}" for i in range(n)]
    total = rng.uniform(600, 200000, n).round(0)
    st = rng.choice(stages, n, p=[0.1, 0.1, 0.2, 0.45, 0.15])
    started = (np.datetime64("2025-01-01") + rng.integers(0, 600, n)).astype(str)
    rows = [(c, f"合成项目{i}", kinds[i % len(kinds)], inds[i % len(inds)], float(total[i]), f"单位{i % 40}",
             str(st[i]), started[i] if st[i] not in ("signed", "procedures") else None, 1)
            for i, c in enumerate(codes)]
    store._bulk_rows("projects", ["code", "name", "kind", "industry", "investment_total_wan", "unit", "stage",
                                  "started_on", "version"], rows)
    store._bulk_rows("project_lists", ["project", "list_name"],
                     [(c, lists[i % len(lists)]) for i, c in enumerate(codes)])
    year_plan = total * rng.uniform(0.2, 0.5, n)
    store._bulk_rows("project_plan", ["project", "year", "month", "planned_wan"],
                     [(c, 2026, mth, float(round(year_plan[i] / 12, 1))) for i, c in enumerate(codes)
                      for mth in range(1, 13)])
    # reports: spread over the projects, dates over 2026 up to the day; amounts well below the totals
    who = rng.integers(0, n, m)
    days = (np.datetime64("2026-01-01") + rng.integers(0, (DAY - dt.date(2026, 1, 1)).days + 1, m)).astype(str)
    per = np.bincount(who, minlength=n)
    amount = (year_plan[who] / np.maximum(per[who], 1) * rng.uniform(0.5, 1.2, m)).round(2)
    base = int(store.project_reports_count())
    ncorr = m // 100
    first = m - ncorr
    reps = [(codes[who[i]], days[i], float(amount[i]), None, None, "2026-11-13T02:00:00+00:00", "bench", None, None)
            for i in range(first)]
    target = rng.choice(first, ncorr, replace=False)
    reps += [(codes[who[j]], days[j], float(round(amount[j] * 0.9, 2)), None, None, "2026-11-13T03:00:00+00:00",
              "bench", base + int(j) + 1, "更正") for j in target]
    store._bulk_rows("project_reports", ["project", "report_date", "invested_wan", "output_wan", "note", "recorded_at",
                                         "recorded_by", "correction_of", "reason"], reps)


def naive(store, codes: list[str], year: int, day: dt.date) -> dict[str, float]:
    """The naive way: per project, one query for its sums and one for its plan; the same rules after."""
    y0, hi = f"{year}-01-01", day.isoformat()
    out = {}
    with store.one_connection(), store._connect() as con:
        for c in codes:
            s = con.execute("SELECT SUM(r.invested_wan) FROM project_reports r WHERE r.project = ? AND"
                            " r.report_date >= ? AND r.report_date <= ? AND NOT EXISTS (SELECT 1 FROM project_reports"
                            " x WHERE x.correction_of = r.id)", (c, y0, hi)).fetchone()[0]
            p = con.execute("SELECT SUM(planned_wan) FROM project_plan WHERE project = ? AND year = ? AND month < ?",
                            (c, year, day.month)).fetchone()[0]
            out[c] = (float(s or 0), float(p or 0))
    return out


def run(store, backend: str, scale: str, runs: int) -> dict:
    d, d_cpu, t = best(lambda: pm.dispatch_table(store, DAY), runs)
    i, i_cpu, _ = best(lambda: pm.indicators(store, 2026, DAY), runs)
    out = {"backend": backend, "scale": scale, "projects": int(store.project_rollup(2026, DAY).shape[0]),
           "reports": int(store.project_reports_count()), "dispatch_s": round(d, 3), "dispatch_cpu_s": round(d_cpu, 3),
           "indicators_s": round(i, 3), "indicators_cpu_s": round(i_cpu, 3),
           "budget_s": 0.2 if scale == "demo" else 2.0, "counts": t["counts"]}
    if scale != "demo":
        roll = store.project_rollup(2026, DAY).set_index("code")
        sample = [c for c in roll.index if c.startswith("S")][:NAIVE_SAMPLE]
        tn = time.perf_counter()
        got = naive(store, sample, 2026, DAY)
        naive_s = time.perf_counter() - tn
        n_all = out["projects"]
        out.update(naive_sample=len(sample), naive_sample_s=round(naive_s, 3),
                   naive_s_est=round(naive_s * n_all / len(sample), 2),
                   agree=bool(all(abs(got[c][0] - roll.at[c, "invested_year"]) < 1e-6
                                  and abs(got[c][1] - roll.at[c, "planned_before"]) < 1e-6 for c in sample)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--projects", type=int, default=10_000)
    ap.add_argument("--reports", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--backend", choices=["gpkg", "postgis", "both"], default="both")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.backend in ("gpkg", "both"):
            for scale in ("demo", "large"):
                copy = Path(tmp) / f"{scale}.gpkg"
                shutil.copy(DEMO, copy)
                store = Store(copy)
                if scale == "large":
                    t = time.perf_counter()
                    synthesise(store, args.projects, args.reports)
                    load = round(time.perf_counter() - t, 1)
                print(json.dumps({**run(store, "gpkg", scale, args.runs),
                                  **({"load_s": load} if scale == "large" else {})}, ensure_ascii=False), flush=True)
        if args.backend in ("postgis", "both"):
            from gis.devtools.pgtest import TempPostgres  # a PostgreSQL server only when asked for
            from gis.store.pg import PostgisStore, load_store_into

            copy = Path(tmp) / "source.gpkg"
            shutil.copy(DEMO, copy)
            with TempPostgres(dbname="bench_projects") as pg:
                for scale in ("demo", "large"):
                    url = pg.url if scale == "demo" else pg.url.rsplit("/", 1)[0] + "/bench_large"
                    if scale == "large":
                        import psycopg

                        with psycopg.connect(pg.url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as c:
                            c.execute('CREATE DATABASE "bench_large" TEMPLATE "bench_projects"')
                    store = PostgisStore(url, create=scale == "demo")
                    if scale == "demo":
                        load_store_into(Store(copy), store)
                    else:
                        t = time.perf_counter()
                        synthesise(store, args.projects, args.reports)
                        load = round(time.perf_counter() - t, 1)
                    with store._connect() as con:
                        con.execute("ANALYZE")
                    print(json.dumps({**run(store, "postgis", scale, args.runs),
                                      **({"load_s": load} if scale == "large" else {})}, ensure_ascii=False), flush=True)
                    store.close()


if __name__ == "__main__":
    main()
