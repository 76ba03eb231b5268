"""Stage-update latency and throughput of the store, on both back ends.

Usage: python -m bench.store_updates [--n 400] [--workers 8]

For each back end (a copy of the demo GeoPackage; a throwaway PostGIS cluster
loaded with the demo): the latency of single stage updates made one after the
other by one planner (median, p95, max), and the throughput of WORKERS
processes updating distinct parcels at once. Prints one JSON object per back
end, then the PostGIS ÷ GeoPackage ratios (throughput, single-update latency) of the same run.
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from gis.devtools.loadtest import STEPS, advance_many, open_store, run_planners
from gis.model.pipelines import load_catalog
from gis.store.store import Store

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "data" / "parcels" / "demo.gpkg"


def measure(where, n, workers):
    store = open_store(where)
    codes = list(store.parcels(kind="village", stage="not_started", geometry=False)["code"])
    single = codes[: n // len(STEPS)]
    rest = codes[len(single):][: workers * 40]
    lat = advance_many(store, single, note="bench")["latencies"]
    with tempfile.TemporaryDirectory() as go:
        t = time.perf_counter()
        results = run_planners(where, [["advance", ",".join(rest[i::workers])] for i in range(workers)], Path(go))
        wall = time.perf_counter() - t  # includes the processes' start-up: a lower bound on throughput
    parts = [r["latencies"] for r in results]
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
        "parallel_p50_ms": round(statistics.median([x for p in parts for x in p]) * 1000, 1),
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
        from gis.devtools.pgtest import TempPostgres
        from gis.store.pg import PostgisStore, load_store_into

        with TempPostgres() as pg:
            src = Path(tmp) / "src.gpkg"
            shutil.copy(DEMO, src)
            load_store_into(Store(src), PostgisStore(pg.url, load_catalog(), create=True))
            results.append({"backend": "postgis", **measure(pg.url, args.n, args.workers)})
    for r in results:
        print(json.dumps(r), flush=True)
    gp, pg_ = results
    print(json.dumps({"ratio_postgis_gpkg_throughput": round(pg_["throughput_per_s"] / gp["throughput_per_s"], 2),
                      "ratio_postgis_gpkg_latency_median": round(pg_["latency_median_ms"] / gp["latency_median_ms"], 2)}),
          flush=True)


if __name__ == "__main__":
    main()
