"""Cadastre tiles for several app servers over one PostGIS: a stored pyramid against ST_AsMVT on request.

Usage: python -m bench.cadastre_tiles_pg [--n 100000 1000000] [--sample 200]

Each size's cadastre (``gis.demo.cadastre.generate_cadastre(n)``, cached as
GeoParquet under /tmp between runs: 1,000,000 parcels take ≈ 30 s and 3 GB to
generate) is written in turn into one throwaway PostGIS
(``gis.devtools.pgtest``, the demo loaded). Then, on the same database:

- **pyramid in the database** (what the app does, gis/store/tiles.py): the
  first server reads the table and builds the whole pyramid (levels
  ``LEVELS`` of ``gis.maps.vectortiles``) in a child process, into its
  ``static/``, and stores it in ``tile_pyramid_tiles``; a second server with an
  empty disk copies it from the database. ``pyramid_build_s`` (the child's
  build), its peak memory, the whole step with storing it, the size on disk
  and in the table, ``pyramid_copy_s``; a tile is then a static file for
  either server.
- **tiles made on request** with ``ST_AsMVT``/``ST_AsMVTGeom`` (what a tile
  route would do; Streamlit serves files, not routes), simplified as the
  pyramid is (``ST_SimplifyPreserveTopology`` at ``SIMPLIFY_PX`` of the tile's
  pixel below the deepest level, whose tiles carry the tooltip fields and an
  id): for a sample of the pyramid's own tiles per level, from one connection
  of its own, the query's median and p95, the tile's size, the cost of keeping
  it in a cache table (``INSERT``) and of reading it back from there (a hit);
  the first view of the whole district (every tile of the lowest level, one
  after another, cache cold) and the whole pyramid (mean × tiles).

Prints one JSON line per size.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WORLD_M = 2 * 20037508.342789244  # Web Mercator's width
MVT_SQL = (
    "SELECT ST_AsMVT(q, 'cadastre', 4096, 'g'{id_arg}) FROM ("
    " SELECT ST_AsMVTGeom({geom}, ST_TileEnvelope(%(z)s, %(x)s, %(y)s), 4096, 64, true) AS g,"
    " c.land_use{extra}"
    " FROM cadastre c"
    " WHERE c.geom && ST_Transform(ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => 64.0 / 4096), 4490)) q"
)
CACHE_SQL = ("CREATE TABLE IF NOT EXISTS bench_mvt_cache (z integer, x integer, y integer, data bytea NOT NULL,"
             " PRIMARY KEY (z, x, y))")


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


def _cadastre(n: int, seed: int = 2026):
    """The generated cadastre of ``n`` parcels, from a GeoParquet cache under /tmp (keyed by the generator's
    code) when a run made it before; and the seconds it took (0 from the cache)."""
    import geopandas as gpd

    from gis.demo.cadastre import generate_cadastre

    code = b"".join((ROOT / "gis" / "demo" / f).read_bytes() for f in ("cadastre.py", "district.py"))
    cache = Path(tempfile.gettempdir()) / f"renewal-cadastre-{n}-{seed}-{hashlib.sha256(code).hexdigest()[:12]}.parquet"
    if cache.exists():
        return gpd.read_parquet(cache), 0.0
    t = time.perf_counter()
    gdf = generate_cadastre(n, seed=seed)
    took = time.perf_counter() - t
    tmp = cache.with_suffix(f".{os.getpid()}.tmp")
    gdf.to_parquet(tmp)
    os.replace(tmp, cache)
    return gdf, took


def _p95(times: list[float]) -> float:
    return sorted(times)[int(0.95 * (len(times) - 1))]


def _ms(s: float) -> float:
    return round(s * 1000, 1)


def _on_request(url: str, tiles: dict, sample: int, rng: random.Random) -> dict:
    """ST_AsMVT per tile for a sample of each level, and a cache table in front of it."""
    import psycopg

    from gis.maps.vectortiles import SIMPLIFY_PX, TILE_PX

    out, est = {}, 0.0
    deepest = max(tiles)
    with psycopg.connect(url, autocommit=True) as con:  # a tile route's own connection
        con.execute(CACHE_SQL)
        con.execute("TRUNCATE bench_mvt_cache")
        for z, xy in sorted(tiles.items()):
            if z == deepest:
                sql = MVT_SQL.format(id_arg=", 'fid'", geom="ST_Transform(c.geom, 3857)",
                                     extra=", c.fid, c.code, c.owner_type, c.area_m2")
            else:  # as the pyramid: detail under SIMPLIFY_PX of this level's pixel goes
                sql = MVT_SQL.format(id_arg="", geom="ST_SimplifyPreserveTopology(ST_Transform(c.geom, 3857), %(tol)s)",
                                     extra="")
            tol = SIMPLIFY_PX * WORLD_M / (1 << z) / TILE_PX
            picked = rng.sample(xy, min(sample, len(xy)))
            made, stored, hits, sizes = [], [], [], []
            for x, y in picked:
                t = time.perf_counter()
                data = con.execute(sql, {"z": z, "x": x, "y": y, "tol": tol}).fetchone()[0] or b""
                made.append(time.perf_counter() - t)
                sizes.append(len(data))
                t = time.perf_counter()
                con.execute("INSERT INTO bench_mvt_cache (z, x, y, data) VALUES (%s, %s, %s, %s)"
                            " ON CONFLICT DO NOTHING", (z, x, y, data))
                stored.append(time.perf_counter() - t)
            for x, y in picked:
                t = time.perf_counter()
                con.execute("SELECT data FROM bench_mvt_cache WHERE z = %s AND x = %s AND y = %s", (z, x, y)).fetchone()
                hits.append(time.perf_counter() - t)
            out[z] = {"tiles": len(xy), "timed": len(picked), "ms_median": _ms(statistics.median(made)),
                      "ms_p95": _ms(_p95(made)), "ms_max": _ms(max(made)),
                      "kb_mean": round(statistics.mean(sizes) / 1024, 1),
                      "cache_insert_ms": round(statistics.median(stored) * 1000, 2),
                      "cache_hit_ms": round(statistics.median(hits) * 1000, 2)}
            if len(picked) == len(xy) and z == min(tiles):
                out["first_view_cold_s"] = round(sum(made), 2)  # the whole district at the lowest level
            est += statistics.mean(made) * len(xy)
        out["whole_pyramid_est_s"] = round(est, 1)
    return out


def _one_size(store, url: str, spec, n: int, work: Path, sample: int, rng: random.Random) -> dict:
    from gis.maps.cadastre_tiles import cadastre_tiles
    from gis.store.open import write_cadastre

    out: dict = {"n": n, "load_before": round(os.getloadavg()[0], 1)}
    gdf, out["generate_s"] = _cadastre(n)
    out["generate_s"] = round(out["generate_s"], 1)
    t = time.perf_counter()
    write_cadastre(store, gdf)
    out["write_s"] = round(time.perf_counter() - t, 2)
    del gdf

    # the pyramid: built by server a (in a child, and stored), copied by server b
    t = time.perf_counter()
    built = cadastre_tiles(store, spec, work / f"a{n}", isolate=True)
    out["pyramid_build_and_save_s"] = round(time.perf_counter() - t, 2)
    out["pyramid_build_s"] = built["build_s"]
    out["pyramid_build_peak_rss_mb"] = built.get("build_peak_rss_mb")
    tiles = _tiles_of(built)
    out["pyramid_tiles"] = sum(len(v) for v in tiles.values())
    out["pyramid_mb"] = round(built["bytes"] / 1e6, 1)
    out["pyramid_tile_kb"] = {z: round(sum(p.stat().st_size for p in (work / f"a{n}" / built["name"] / str(z)).glob("*/*.pbf"))
                                       / len(v) / 1024, 1) for z, v in tiles.items()}
    with store._connect() as con:
        out["pyramid_db_mb"] = round(con.execute("SELECT sum(octet_length(data)) FROM tile_pyramid_tiles WHERE name = ?",
                                                 (built["name"],)).fetchone()[0] / 1e6, 1)
    t = time.perf_counter()
    copied = cadastre_tiles(store, spec, work / f"b{n}")
    out["pyramid_copy_s"] = round(time.perf_counter() - t, 2)
    assert copied["built_at"] == built["built_at"]
    shutil.rmtree(work / f"a{n}", ignore_errors=True)
    shutil.rmtree(work / f"b{n}", ignore_errors=True)

    out["mvt"] = _on_request(url, tiles, sample, rng)
    out["load_after"] = round(os.getloadavg()[0], 1)
    return out


def main(argv=None) -> int:
    from gis.devtools.pgtest import TempPostgres
    from gis.model.catalog import load_layer_catalog
    from gis.model.pipelines import load_catalog
    from gis.store.pg import PostgisStore, load_store_into
    from gis.store.store import Store

    ap = argparse.ArgumentParser(prog="python -m bench.cadastre_tiles_pg")
    ap.add_argument("--n", type=int, nargs="+", default=[100_000], help="cadastre sizes, one after another")
    ap.add_argument("--sample", type=int, default=200, help="tiles per level timed with ST_AsMVT")
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-tiles-pg-"))
    spec = load_layer_catalog().get("cadastre")
    rng = random.Random(7)
    try:
        shutil.copy(ROOT / "data" / "parcels" / "demo.gpkg", work / "s.gpkg")
        with TempPostgres(dbname="bench_tiles") as pg:
            store = PostgisStore(pg.url, load_catalog(), create=True)
            load_store_into(Store(work / "s.gpkg"), store)
            for n in args.n:
                print(json.dumps(_one_size(store, pg.url, spec, n, work, args.sample, rng)), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
