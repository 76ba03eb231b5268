"""Writing a 100,000-parcel cadastre into each back end, and one click look-up from each.

Usage: python -m bench.cadastre_write [--n 100000]

GeoPackage: GDAL writes the table and its R-tree; PostGIS (a throwaway
cluster, ``gis.pgtest``): one transaction of DROP, CREATE, COPY and a GiST
index. Prints one JSON line.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    from gis.demo.cadastre import generate_cadastre
    from gis.devtools.pgtest import TempPostgres
    from gis.model.pipelines import load_catalog
    from gis.store.open import cadastre_at, write_cadastre
    from gis.store.pg import PostgisStore, load_store_into
    from gis.store.store import Store

    ap = argparse.ArgumentParser(prog="python -m bench.cadastre_write")
    ap.add_argument("--n", type=int, default=100_000)
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-cadastre-"))
    try:
        shutil.copy(ROOT / "data" / "parcels" / "demo.gpkg", work / "s.gpkg")
        gpkg = Store(work / "s.gpkg")
        gdf = generate_cadastre(args.n)
        probe = gdf.geometry.iloc[len(gdf) // 2].representative_point()
        out = {"n": args.n}
        with TempPostgres(dbname="bench_cadastre") as pg:
            pgs = PostgisStore(pg.url, load_catalog(), create=True)
            load_store_into(gpkg, pgs)
            for name, store in (("gpkg", gpkg), ("postgis", pgs)):
                t = time.perf_counter()
                write_cadastre(store, gdf)
                out[f"{name}_write_s"] = round(time.perf_counter() - t, 2)
                t = time.perf_counter()
                hit = cadastre_at(store, probe.x, probe.y)
                out[f"{name}_lookup_ms"] = round((time.perf_counter() - t) * 1000, 1)
                assert hit and hit["code"] == gdf["code"].iloc[len(gdf) // 2]
        print(json.dumps(out))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
