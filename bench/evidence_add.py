"""Adding a photo to the store, with its checks and thumbnail (issue 17; budget 0.5 s for 5 MB).

Usage: python -m bench.evidence_add [--runs 5] [--gallery 50]

On a copy of the demo store (data/parcels/demo.gpkg), as its admin: ``Store.add_attachment`` of a 5 MB JPEG
(12 MP, EXIF GPS; generated), best and median of ``--runs`` (each a different photo, so none is
the stored one returned again), split into the upload checks + thumbnail (``prepare_upload``) and
the rest (the transaction). Then the gallery of ``--gallery`` photos: their thumbnails' bytes in
all (budget 300 KB) and the time to read them. Prints one JSON object, last.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from gis.demo.evidence import sample_photo
from gis.store.attachments import prepare_upload
from gis.store.store import Store

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "data" / "parcels" / "demo.gpkg"
FIVE_MB = 5 * 1024 * 1024


def five_mb_photo(seed: int) -> bytes:
    data = sample_photo(121.24, 37.43, dt.datetime(2026, 11, 20, 10), 90.0, size=(4000, 3000), quality=97,
                        seed=seed)
    return data + bytes(max(0, FIVE_MB - len(data)))  # padding after the image, as phones append data


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--gallery", type=int, default=50)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "demo.gpkg"
        shutil.copy(DEMO, path)
        store = Store(path)
        code = "V07-023"
        photos = [five_mb_photo(i) for i in range(args.runs)]
        adds, checks = [], []
        for i, data in enumerate(photos):
            t = time.perf_counter()
            prepare_upload(data, f"p{i}.jpg")
            checks.append(time.perf_counter() - t)
            t = time.perf_counter()
            store.add_attachment(code, data, f"p{i}.jpg", "admin")
            adds.append(time.perf_counter() - t)
        for i in range(args.gallery - args.runs):
            store.add_attachment(code, sample_photo(121.24, 37.43, size=(1600, 1200), seed=100 + i), f"g{i}.jpg",
                                 "admin")
        t = time.perf_counter()
        shown = store.attachments(code, kind="photo")[:args.gallery]
        thumbs = [store.attachment_thumbnail(a.id) for a in shown]
        gallery_s = time.perf_counter() - t
    out = {"photo_mb": round(len(photos[0]) / 1048576, 2), "add_best_s": round(min(adds), 3),
           "add_median_s": round(statistics.median(adds), 3), "checks_and_thumbnail_median_s":
           round(statistics.median(checks), 3), "gallery_photos": len(thumbs),
           "gallery_thumbnail_kb": round(sum(len(b) for b in thumbs) / 1024, 1), "gallery_read_s": round(gallery_s, 3)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
