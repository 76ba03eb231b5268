"""The parcel panel's gallery of 50 photos (issue 17 performance): what it reads and how long it takes.

Usage: python -m bench.gallery [--n 50] [--size 4000x3000] [--runs 3]

A copy of the demo; ``n`` generated photos (``gis.demo.evidence.sample_photo``, EXIF GPS and direction,
noise so that JPEG does not flatter them) attached to one parcel; then what ``ui.evidence_widgets.gallery``
asks the store for: the metadata of the parcel's attachments and each photo's thumbnail (never the photo).
Budget: thumbnails only, ≤ 300 KB in all. In the same run the naive way, the full photos, for comparison.
On each back end when ``--pg URL`` names an empty PostGIS database (else the GeoPackage only).

Prints one JSON object per back end.
"""
from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from gis.demo.evidence import sample_photo
from gis.devtools.pgtest import TempPostgres
from gis.store.open import open_store_at
from gis.store.pg import PostgisStore, load_store_into

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "data" / "parcels" / "demo.gpkg"


def run(store, n: int, size: tuple[int, int], runs: int, backend: str) -> dict:
    code = store.parcels(kind="village", geometry=False)["code"].iloc[0]
    photos = [sample_photo(121.3 + i * 1e-5, 37.4, direction=7.0 * i, size=size, seed=i, quality=85)
              for i in range(n)]  # made before the clock starts
    t0 = time.perf_counter()
    for i, data in enumerate(photos):
        store.add_attachment(code, data, f"IMG_{i:04d}.jpg", "admin", caption=f"第{i + 1}张")
    add_s = (time.perf_counter() - t0) / n
    best, thumb_bytes, full_bytes = None, 0, 0
    for _ in range(runs):
        t0 = time.perf_counter()
        photos = [a for a in store.attachments(code, viewer="viewer") if a.kind == "photo"]
        thumbs = [store.attachment_thumbnail(a.id, viewer="viewer") for a in photos]
        took = time.perf_counter() - t0
        best = took if best is None else min(best, took)
        thumb_bytes = sum(len(t or b"") for t in thumbs)
    t0 = time.perf_counter()
    full_bytes = sum(len(store.attachment_data(a.id)) for a in photos)
    naive_s = time.perf_counter() - t0
    return {"backend": backend, "photos": len(photos), "photo_px": f"{size[0]}x{size[1]}",
            "add_s_each": round(add_s, 3), "gallery_s": round(best, 3), "thumbnails_kb": round(thumb_bytes / 1024, 1),
            "full_photos_kb": round(full_bytes / 1024), "naive_full_s": round(naive_s, 3)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--size", default="4000x3000")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--pg", default=None, help="an empty PostGIS database to load the demo into, or 'temp' for a "
                                               "throwaway cluster (gis.devtools.pgtest)")
    a = ap.parse_args()
    size = tuple(int(v) for v in a.size.lower().split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "demo.gpkg"
        shutil.copy(DEMO, path)
        print(json.dumps(run(open_store_at(str(path)), a.n, size, a.runs, "gpkg")))
        if a.pg == "temp":
            with TempPostgres(dbname="bench_gallery") as pg:
                print(json.dumps(_on_postgis(pg.url, path, a, size)))
        elif a.pg:
            print(json.dumps(_on_postgis(a.pg, path, a, size)))


def _on_postgis(url: str, path: Path, a, size) -> dict:
    target = PostgisStore(url, create=True)
    load_store_into(open_store_at(str(path)), target)
    return run(target, a.n, size, a.runs, "postgis")


if __name__ == "__main__":
    main()
