"""The daily round's interactive actions on the demo district, on each back end.

Usage: python -m bench.bulk_updates

Times (best of 3, each on a fresh copy of the demo, 2,470 parcels, accounts on):
the overview's figures (``dashboard_of``), a quick-find look-up (``suggest`` over
the index of 2,500 entries), and one bulk advance of the 46 parcels of V08 at
拆除 (``advance_many``: 46 parcels checked, 46 events, one transaction) against
46 single advances one after another. PostGIS: a throwaway cluster
(``gis.devtools.pgtest``). Prints one JSON line.
"""
from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _best(fn, setup=None, runs: int = 3) -> float:
    best = float("inf")
    for _ in range(runs):
        arg = setup() if setup else None
        t = time.perf_counter()
        fn(arg)
        best = min(best, time.perf_counter() - t)
    return round(best, 4)


def _measure(open_copy) -> dict:
    from gis.model.dashboard import dashboard_of
    from gis.model.search import build_index, rank, village_names

    s = open_copy()
    codes = list(s.parcels(village="V08", stage="demolition", geometry=False)["code"])
    index = build_index(s.parcels(geometry=False), village_names(s))
    out = {
        "dashboard_s": _best(lambda _: dashboard_of(s)),
        "index_entries": len(index),
        "suggest_ms": round(1000 * _best(lambda _: rank(index, "东岙", 10)), 2),
        "bulk_parcels": len(codes),
        "advance_many_s": _best(lambda st: st.advance_many(codes, "clearance", "2026-11-25", "editor_central"),
                                setup=open_copy),
        "single_advances_s": _best(lambda st: [st.advance(c, "clearance", "2026-11-25", "editor_central")
                                               for c in codes], setup=open_copy),
    }
    return out


def main(argv=None) -> int:
    from gis.devtools.pgtest import TempPostgres
    from gis.store.pg import PostgisStore, load_store_into
    from gis.store.store import Store

    work = Path(tempfile.mkdtemp(prefix="bench-bulk-"))
    out = {"bench": "bulk_updates"}
    try:
        demo = ROOT / "data" / "parcels" / "demo.gpkg"
        counter = iter(range(10**6))

        def gpkg_copy():
            path = work / f"s{next(counter)}.gpkg"
            shutil.copy(demo, path)
            return Store(path)

        out["gpkg"] = _measure(gpkg_copy)
        with TempPostgres(dbname="bench_bulk") as pg:
            base = pg.url.rsplit("/", 1)[0]
            import psycopg

            shutil.copy(demo, work / "template.gpkg")
            load_store_into(Store(work / "template.gpkg"), PostgisStore(pg.url, create=True))

            def pg_copy():
                name = f"b{next(counter)}"
                with psycopg.connect(base + "/postgres", autocommit=True) as con:
                    con.execute(f'CREATE DATABASE "{name}" TEMPLATE "bench_bulk"')
                return PostgisStore(f"{base}/{name}")

            out["postgis"] = _measure(pg_copy)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(out, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
