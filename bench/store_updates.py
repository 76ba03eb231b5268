"""Stage-update latency and throughput of the store, on both back ends.

Usage: python -m bench.store_updates [--n 400] [--workers 8]

For each back end (a copy of the demo GeoPackage; a throwaway PostGIS cluster
loaded with the demo): the latency of single stage updates made one after the
other by one planner (median, p95, max), and the throughput of WORKERS
processes updating distinct parcels at once. Prints one JSON object per back
end, last.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from gis.pipelines import load_catalog
from gis.store import Store

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "data" / "parcels" / "demo.gpkg"
STEPS = (("survey", "2025-01-01"), ("listed", "2025-01-15"), ("baseline", "2025-02-01"), ("plan", "2025-02-15"))


def _open(where):
    if where.startswith("postgresql://"):
        from gis.store_pg import PostgisStore

        return PostgisStore(where)
    return Store(where)


def _work(where, codes):
    store = _open(where)
    lat = []
    for code in codes:
        for stage, date in STEPS:
            t = time.perf_counter()
            store.advance(code, stage, date, "admin", note="bench")
            lat.append(time.perf_counter() - t)
    return lat


def measure(where, n, workers):
    store = _open(where)
    codes = list(store.parcels(kind="village", stage="not_started", geometry=False)["code"])
    single = codes[: n // len(STEPS)]
    rest = codes[len(single):][: workers * 40]
    lat = _work(where, single)
    ctx = mp.get_context("spawn")
    with ctx.Pool(workers) as pool:
        t = time.perf_counter()
        parts = pool.starmap(_work, [(where, rest[i::workers]) for i in range(workers)])
        wall = time.perf_counter() - t
    total = sum(len(p) for p in parts)
    q = statistics.quantiles(lat, n=20)
    return {
        "updates_single": len(lat),
        "latency_median_ms": round(statistics.median(lat) * 1000, 1),
        "latency_p95_ms": round(q[18] * 1000, 1),
        "latency_max_ms": round(max(lat) * 1000, 1),
        "workers": workers,
        "updates_parallel": total,
        "throughput_per_s": round(total / wall, 1),
        "parallel_p95_ms": round(statistics.quantiles([x for p in parts for x in p], n=20)[18] * 1000, 1),
    }


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=400, help="sequential updates (one planner)")
    ap.add_argument("--workers", type=int, default=8)
    args = ap.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "demo.gpkg"
        shutil.copy(DEMO, path)
        results.append({"backend": "gpkg", **measure(str(path), args.n, args.workers)})
        from gis.pgtest import TempPostgres
        from gis.store_pg import PostgisStore, load_store_into

        with TempPostgres() as pg:
            src = Path(tmp) / "src.gpkg"
            shutil.copy(DEMO, src)
            load_store_into(Store(src), PostgisStore(pg.url, load_catalog(), create=True))
            results.append({"backend": "postgis", **measure(pg.url, args.n, args.workers)})
    for r in results:
        print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
