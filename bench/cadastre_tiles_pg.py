"""Cadastre tiles for several app servers over one PostGIS: a stored pyramid against ST_AsMVT on request.

Usage: python -m bench.cadastre_tiles_pg [--n 100000] [--sample 200]

The cadastre (``gis.demo.cadastre.generate_cadastre(n)``) is written into a
throwaway PostGIS (``gis.devtools.pgtest``, the demo loaded). Then, on the same
database:

- **pyramid in the database** (what the app does, gis/store/tiles.py): the
  first server reads the table and builds the whole pyramid (levels
  ``LEVELS`` of ``gis.maps.vectortiles``) into its ``static/`` and stores it
  in ``tile_pyramid_tiles``; a second server with an empty disk copies it from
  the database. ``build_s``, ``save_s``, ``copy_s``; a tile is then a static
  file for either server.
- **tiles made on request** with ``ST_AsMVT``/``ST_AsMVTGeom`` (what a tile
  route would do, since Streamlit serves files and not routes): the time of
  one tile query for a sample of the pyramid's own tiles per level (median,
  p95), the estimate for the whole pyramid (the sum over all its tiles), and
  reading one cached tile back from a table (``cached_read_ms``).

Prints one JSON line.
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MVT_SQL = (
    "SELECT ST_AsMVT(q, 'cadastre', 4096, 'g') FROM ("
    " SELECT ST_AsMVTGeom(ST_Transform(c.geom, 3857), ST_TileEnvelope(%(z)s, %(x)s, %(y)s), 4096, 64, true) AS g,"
    " c.land_use{extra}"
    " FROM cadastre c"
    " WHERE c.geom && ST_Transform(ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => 64.0 / 4096), 4490)) q"
)


def _tiles_of(manifest: dict) -> dict[int, list[tuple[int, int]]]:
    """The (x, y) of every tile of each level, from the manifest's bitsets."""
    import base64

    import numpy as np

    out = {}
    for z, spec in manifest["tiles"].items():
        bits = np.unpackbits(np.frombuffer(base64.b64decode(spec["bits"]), dtype=np.uint8), bitorder="little")
        idx = np.flatnonzero(bits[: spec["w"] * spec["h"]])
        out[int(z)] = [(int(spec["x0"] + i % spec["w"]), int(spec["y0"] + i // spec["w"])) for i in idx]
    return out


def main(argv=None) -> int:
    from gis.demo.cadastre import generate_cadastre
    from gis.devtools.pgtest import TempPostgres
    from gis.maps.cadastre_tiles import cadastre_tiles
    from gis.model.catalog import load_layer_catalog
    from gis.model.pipelines import load_catalog
    from gis.store.open import write_cadastre
    from gis.store.pg import PostgisStore, load_store_into
    from gis.store.store import Store

    ap = argparse.ArgumentParser(prog="python -m bench.cadastre_tiles_pg")
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--sample", type=int, default=200, help="tiles per level timed with ST_AsMVT")
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-tiles-pg-"))
    spec = load_layer_catalog().get("cadastre")
    out: dict = {"n": args.n}
    try:
        shutil.copy(ROOT / "data" / "parcels" / "demo.gpkg", work / "s.gpkg")
        t = time.perf_counter()
        gdf = generate_cadastre(args.n)
        out["generate_s"] = round(time.perf_counter() - t, 1)
        with TempPostgres(dbname="bench_tiles") as pg:
            store = PostgisStore(pg.url, load_catalog(), create=True)
            load_store_into(Store(work / "s.gpkg"), store)
            t = time.perf_counter()
            write_cadastre(store, gdf)
            out["write_s"] = round(time.perf_counter() - t, 2)
            del gdf

            # the pyramid: built by server a (and stored), copied by server b
            t = time.perf_counter()
            built = cadastre_tiles(store, spec, work / "a", isolate=True)
            out["pyramid_build_and_save_s"] = round(time.perf_counter() - t, 2)
            out["pyramid_build_s"] = built["build_s"]
            out["pyramid_tiles"] = sum(len(v) for v in _tiles_of(built).values())
            out["pyramid_mb"] = round(built["bytes"] / 1e6, 1)
            out["pyramid_build_peak_rss_mb"] = built.get("build_peak_rss_mb")
            t = time.perf_counter()
            copied = cadastre_tiles(store, spec, work / "b")
            out["pyramid_copy_s"] = round(time.perf_counter() - t, 2)
            assert copied["built_at"] == built["built_at"]

            # on request: ST_AsMVT per tile, the pyramid's own tiles
            tiles = _tiles_of(built)
            deepest = max(tiles)
            rng = random.Random(7)
            est, per_level = 0.0, {}
            with store._connect() as con:  # one connection, as a tile route would hold
                raw = con.con
                for z, xy in sorted(tiles.items()):
                    extra = ", c.code, c.owner_type, c.area_m2" if z == deepest else ""
                    sql = MVT_SQL.format(extra=extra)
                    sample = rng.sample(xy, min(args.sample, len(xy)))
                    times, sizes = [], []
                    for x, y in sample:
                        t = time.perf_counter()
                        data = raw.execute(sql, {"z": z, "x": x, "y": y}).fetchone()[0]
                        times.append(time.perf_counter() - t)
                        sizes.append(len(data or b""))
                    med = statistics.median(times)
                    per_level[z] = {"tiles": len(xy), "ms_median": round(med * 1000, 1),
                                    "ms_p95": round(sorted(times)[int(0.95 * (len(times) - 1))] * 1000, 1),
                                    "kb_mean": round(statistics.mean(sizes) / 1024, 1)}
                    est += statistics.mean(times) * len(xy)
                out["mvt_levels"] = per_level
                out["mvt_whole_pyramid_est_s"] = round(est, 1)
                # a tile cached in a table: the read a tile route would do on a hit
                name = built["name"]
                z = deepest
                sample = rng.sample(tiles[z], min(args.sample, len(tiles[z])))
                times = []
                for x, y in sample:
                    t = time.perf_counter()
                    raw.execute("SELECT data FROM tile_pyramid_tiles WHERE name = %s AND z = %s AND x = %s AND y = %s",
                                (name, z, x, y)).fetchone()
                    times.append(time.perf_counter() - t)
                out["cached_read_ms"] = round(statistics.median(times) * 1000, 2)
        print(json.dumps(out))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
