"""Another planner's click while a large import is checked: in the server's process, or in a child.

Usage: python3 -m bench.import_isolation [N] [--clicks-idle 40]

Writes a GeoJSON of N small square parcels (default 200,000, about 45 MB)
over the demo district, stages it, and on a copy of the demo store measures
one planner's click (``Store.parcel``, what opening a parcel's panel reads)
three ways, each for as long as the import's check runs:

- idle: no import running (the floor);
- isolated: ``gis.io.isolation.plan_import`` — the check in a child process
  (a fresh interpreter, RLIMIT_AS cap, nice 10), this process only waits on a pipe and unpickles the plan;
- in-process: ``prepare_import`` in a thread of this process, as the app did
  before (the check holds the interpreter lock between GDAL/NumPy calls).

Prints one JSON line per way (median and 95th percentile of the click, number
of clicks, the import's time, this process's peak memory and the child's) and
one with the ratios against idle.
"""
from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gis.io.importer import ImportOptions, prepare_import  # noqa: E402
from gis.io.isolation import plan_import  # noqa: E402
from gis.io.uploads import stage_path  # noqa: E402
from gis.store import Store  # noqa: E402

DEMO = ROOT / "data" / "parcels" / "demo.gpkg"


def write_geojson(path: Path, n: int, lon0: float = 121.30, lat0: float = 37.36, step: float = 0.0004) -> None:
    """n squares of about 30 m on a grid over the demo district, in lon/lat (CGCS2000 is guessed)."""
    side = int(n ** 0.5) + 1
    d = step * 0.75
    with open(path, "w", encoding="utf-8") as f:
        f.write('{"type": "FeatureCollection", "features": [\n')
        for k in range(n):
            i, j = divmod(k, side)
            x, y = lon0 + j * step, lat0 + i * step
            ring = f"[[{x:.6f},{y:.6f}],[{x + d:.6f},{y:.6f}],[{x + d:.6f},{y + d:.6f}],[{x:.6f},{y + d:.6f}],[{x:.6f},{y:.6f}]]"
            f.write(('' if k == 0 else ',\n') + '{"type": "Feature", "properties": {"code": "B%07d", "name": "地块%d"},'
                    ' "geometry": {"type": "Polygon", "coordinates": [%s]}}' % (k, k, ring))
        f.write("\n]}\n")


def clicks_while(store, code: str, busy: threading.Thread | None, minimum: int) -> list[float]:
    """Time ``store.parcel(code)`` repeatedly: while ``busy`` runs, or ``minimum`` times."""
    times = []
    while (busy is not None and busy.is_alive()) or (busy is None and len(times) < minimum):
        t0 = time.perf_counter()
        store.parcel(code)
        times.append(time.perf_counter() - t0)
        time.sleep(0.05)  # a planner clicks, reads, clicks again
    return times


def summary(way: str, times: list[float], import_s: float | None) -> dict:
    q = sorted(times)
    return {"way": way, "clicks": len(q), "click_p50_s": round(statistics.median(q), 4),
            "click_p95_s": round(q[min(len(q) - 1, int(0.95 * len(q)))], 4),
            "import_s": None if import_s is None else round(import_s, 1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n", nargs="?", type=int, default=200_000)
    ap.add_argument("--clicks-idle", type=int, default=40)
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-isolation-"))
    try:
        shutil.copy(DEMO, work / "store.gpkg")
        store = Store(work / "store.gpkg")
        code = str(store.parcels(geometry=False)["code"].iloc[0])
        src = work / "big.geojson"
        t0 = time.perf_counter()
        write_geojson(src, args.n)
        print(f"wrote {args.n:,} polygons, {src.stat().st_size / 1e6:.0f} MB in {time.perf_counter() - t0:.1f} s",
              file=sys.stderr)
        opts = ImportOptions(kind="landmark")
        rows = [summary("idle", clicks_while(store, code, None, args.clicks_idle), None)]
        with stage_path(src) as upload:
            # isolated first: the server's peak memory (ru_maxrss only grows) is then measured before the
            # in-process check adds its own
            for way, work_fn in (("isolated", lambda: plan_import(store, upload, opts, isolate=True)),
                                 ("in_process", lambda: prepare_import(store, upload, opts))):
                done = {}

                def run(fn=work_fn, done=done):
                    t = time.perf_counter()
                    plan = fn()
                    done["s"] = time.perf_counter() - t
                    done["parcels"] = len(plan.parcels)

                busy = threading.Thread(target=run)
                busy.start()
                times = clicks_while(store, code, busy, 0)
                busy.join()
                rows.append(summary(way, times, done.get("s")))
                rows[-1]["parcels"] = done.get("parcels")
                rows[-1]["server_peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
                if way == "isolated":
                    rows[-1]["child_peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
        for r in rows:
            print(json.dumps(r))
        idle, iso, inp = rows[0], rows[1], rows[2]
        print(json.dumps({"n": args.n, "in_process_x": round(inp["click_p50_s"] / idle["click_p50_s"], 1),
                          "isolated_x": round(iso["click_p50_s"] / idle["click_p50_s"], 1),
                          "in_process_p95_x": round(inp["click_p95_s"] / idle["click_p95_s"], 1),
                          "isolated_p95_x": round(iso["click_p95_s"] / idle["click_p95_s"], 1)}))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
