"""Evidence at scale: adding a 5 MB photo, a gallery of 50, and a store of many photos that opens and backs up.

Usage: python3 -m bench.evidence [--photos 10000] [--mb 1.0] [--backend gpkg|postgis|both] [--pg-photos 1000]

For each back end (a copy of the demo GeoPackage; a throwaway PostGIS cluster loaded with the demo):

1. **add**: ``Store.add_attachment`` of five distinct ~5 MB 12-megapixel JPEGs (checks, EXIF, thumbnail, one
   transaction): the server time of each, against writing the same bytes to a file (the floor);
2. **gallery**: 50 photos on one parcel; what the panel's gallery loads — its 50 thumbnails — in bytes and time,
   against the 50 photos at full size;
3. **many**: the store filled with PHOTOS generated photos of MB megabytes each (distinct bytes: a JPEG with its
   own comment segment; filled through the store's own insert, in transactions of 100, with one prepared
   thumbnail — decoding 10,000 photos would only measure Pillow); then, in a fresh process each, the store
   opened (a parcel's gallery listed and its thumbnails read, the photo points), and backed up — the time and the
   peak memory of the process (and of pg_dump) against the total bytes, and the time against a plain copy of
   the same bytes (the GeoPackage file copied; for PostGIS the photos' bytes written to a file).

Prints one JSON line per measurement, then the ratios. Big files are removed at the end (the disk must have
room for the store and its backup: the script refuses to start without 2.2 × PHOTOS × MB free).
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import hashlib
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from gis.demo.evidence import sample_photo
from gis.model.pipelines import load_catalog
from gis.store.attachments import prepare_upload
from gis.store.store import Store

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "data" / "parcels" / "demo.gpkg"
BUDGET_ADD_S = 0.5
BUDGET_GALLERY_BYTES = 300_000


def scene(rng, size) -> np.ndarray:
    """RGB pixels with the spectrum of a natural photo (1/f noise: edges, texture at every scale), so that
    thumbnails and JPEG sizes come out as a site photo's do — a flat test card would flatter both."""
    w, h = size[0] // 4, size[1] // 4
    fy, fx = np.fft.fftfreq(h)[:, None], np.fft.rfftfreq(w)[None, :]
    f = np.hypot(fx, fy)
    f[0, 0] = 1.0
    chans = []
    for _ in range(3):
        spec = (rng.normal(size=f.shape) + 1j * rng.normal(size=f.shape)) / f
        c = np.fft.irfft2(spec, s=(h, w))
        chans.append(128 + 40 * (c - c.mean()) / c.std())
    small = Image.fromarray(np.stack(chans, axis=2).clip(0, 255).astype(np.uint8))
    return np.asarray(small.resize(size, Image.Resampling.BICUBIC)).astype(np.int16)


def big_photo(seed: int, mb: float = 5.0, size=(4000, 3000)) -> bytes:
    """A 12-megapixel JPEG of about ``mb`` megabytes with the EXIF a phone writes (time, GPS, direction):
    a natural-looking scene with the sensor grain that brings it to the size asked for."""
    exif = Image.open(io.BytesIO(sample_photo(121.30, 37.41, dt.datetime(2026, 5, 1, 10, 30), 120.0,
                                              size=(64, 48), seed=seed))).getexif()
    rng = np.random.default_rng(seed)
    a = scene(rng, size)
    sigma = 3.0
    for _ in range(8):  # a few tries at the grain that gives the size asked for
        noisy = np.clip(a + rng.normal(0, sigma, a.shape), 0, 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(noisy).save(buf, "JPEG", quality=92, exif=exif)
        got = len(buf.getvalue()) / 1e6
        if abs(got - mb) / mb < 0.05:
            break
        sigma *= (mb / got) ** 1.6
    return buf.getvalue()


def unique(data: bytes, n: int) -> bytes:
    """The same JPEG with a comment segment of its own (other bytes, other sha256, the same picture)."""
    text = f"renewal bench photo {n:08d}".encode()
    return data[:2] + b"\xff\xfe" + (len(text) + 2).to_bytes(2, "big") + text + data[2:]


def write_floor(data: bytes, folder: Path) -> float:
    """Seconds to write ``data`` to a file and fsync it: what storing the bytes costs at least."""
    t = time.perf_counter()
    with open(folder / "floor.bin", "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    s = time.perf_counter() - t
    (folder / "floor.bin").unlink()
    return s


# ------------------------------------------------------------------ 1 and 2
def measure_add(store, folder: Path) -> dict:
    photos = [big_photo(seed) for seed in range(5)]
    codes = list(store.parcels(kind="village", geometry=False)["code"][:5])
    times, prep = [], []
    for code, data in zip(codes, photos):
        t = time.perf_counter()
        prepare_upload(data, "IMG.jpg")
        prep.append(time.perf_counter() - t)
        t = time.perf_counter()
        a = store.add_attachment(code, data, "IMG_5MB.jpg", "admin", caption="5 MB")
        times.append(time.perf_counter() - t)
        assert store.attachment_thumbnail(a.id)
    floor = statistics.median(write_floor(d, folder) for d in photos)
    return {"photo_mb": round(statistics.mean(len(d) for d in photos) / 1e6, 2), "pixels": "4000x3000",
            "add_median_s": round(statistics.median(times), 3), "add_max_s": round(max(times), 3),
            "of_which_checks_and_thumbnail_s": round(statistics.median(prep), 3),
            "write_floor_s": round(floor, 4), "budget_s": BUDGET_ADD_S}


def measure_gallery(store) -> dict:
    code = store.parcels(kind="village", geometry=False)["code"].iloc[10]
    bases = [big_photo(100 + s, mb=3.0) for s in range(5)]
    for i in range(50):
        store.add_attachment(code, unique(bases[i % 5], i), f"IMG_{i:03d}.jpg", "admin")
    t = time.perf_counter()
    listed = store.attachments(code, kind="photo")
    thumbs = [store.attachment_thumbnail(a.id) for a in listed]
    thumb_s = time.perf_counter() - t
    t = time.perf_counter()
    full = sum(len(store.attachment_data(a.id)) for a in listed)
    full_s = time.perf_counter() - t
    total = sum(len(b) for b in thumbs)
    return {"gallery_photos": len(listed), "thumbnails_kb": round(total / 1e3, 1),
            "largest_thumbnail_kb": round(max(len(b) for b in thumbs) / 1e3, 1),
            "thumbnails_s": round(thumb_s, 3), "full_size_mb": round(full / 1e6, 1), "full_size_s": round(full_s, 3),
            "ratio_full_to_thumbnails": round(full / total, 1), "budget_kb": BUDGET_GALLERY_BYTES / 1e3}


# ------------------------------------------------------------------ 3
def fill(store, n: int, mb: float, batch: int = 100) -> dict:
    """``n`` photos of about ``mb`` MB through the store's own insert (``_attach_in``), one thumbnail prepared."""
    base = big_photo(7, mb=mb, size=(2000, 1500) if mb < 2.5 else (4000, 3000))
    template = prepare_upload(base, "IMG.jpg")
    codes = list(store.parcels(geometry=False)["code"])
    t = time.perf_counter()
    total = 0
    for start in range(0, n, batch):
        with store._connect(write=True) as con:  # noqa: SLF001 — the bench fills through the store's own insert
            for i in range(start, min(n, start + batch)):
                data = unique(base, i)
                up = dataclasses.replace(template, data=data, sha256=hashlib.sha256(data).hexdigest(),
                                         info=dataclasses.replace(template.info, size=len(data)))
                store._attach_in(con, codes[i % len(codes)], up, "admin")  # noqa: SLF001
                total += len(data)
        if start and start % (batch * 20) == 0:
            print(json.dumps({"filled": start, "s": round(time.perf_counter() - t, 1)}), file=sys.stderr, flush=True)
    return {"photos": n, "many_photo_mb": round(len(base) / 1e6, 2), "total_gb": round(total / 1e9, 2),
            "fill_s": round(time.perf_counter() - t, 1)}


PROBE = r"""
import json, os, shutil, sys, threading, time, tracemalloc
from gis.model.pipelines import load_catalog

def status(key, pid="self"):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0

what, where, out = sys.argv[1:4]
from gis.store.open import open_store_at
from gis.store.backup import backup
laps, t = {}, time.perf_counter()
def lap(name):
    global t
    now = time.perf_counter()
    laps[name] = round(now - t, 3)
    t = now
store = open_store_at(where, load_catalog())
lap("open_s")
n_parcels = len(store.parcels(geometry=False))
lap("parcels_s")
code = max(store.attachment_counts().items(), key=lambda kv: kv[1])[0]
lap("counts_s")
gallery = store.attachments(code, kind="photo")
thumbs = sum(len(store.attachment_thumbnail(a.id) or b"") for a in gallery)
lap("gallery_s")
points = len(store.photo_points(bbox=(121.0, 37.0, 122.0, 38.0)))
lap("photo_points_s")
if what == "open":
    print(json.dumps({"open_and_gallery_s": round(sum(laps.values()), 3), **laps, "parcels": n_parcels,
                      "gallery": len(gallery), "gallery_thumbnails_kb": round(thumbs / 1e3, 1),
                      "photo_points": points}))
    sys.exit(0)
peak, done = [0], threading.Event()
def watch():
    me = str(os.getpid())
    while not done.is_set():
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                ppid = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1]
                comm = open(f"/proc/{pid}/comm").read().strip()
            except OSError:
                continue
            if ppid == me and comm == "pg_dump":
                peak[0] = max(peak[0], status("VmHWM:", pid))
        time.sleep(0.05)
open("/proc/self/clear_refs", "w").write("5")
before = status("VmRSS:")
threading.Thread(target=watch, daemon=True).start()
tracemalloc.start()
t = time.perf_counter()
if what == "backup":
    backup(store, out, by="admin")
else:  # the floor: a plain copy of the same bytes
    if store.path:
        shutil.copyfile(store.path, out)
    else:
        with open(out, "wb") as f:
            for a in store.attachments(None):
                for chunk in store.attachment_chunks(a.id):
                    f.write(chunk)
    with open(out, "rb+") as f:
        os.fsync(f.fileno())
s = time.perf_counter() - t
done.set()
print(json.dumps({what + "_s": round(s, 1), what + "_rss_growth_mb": round((status("VmHWM:") - before) / 1e6, 1),
                  what + "_python_peak_mb": round(tracemalloc.get_traced_memory()[1] / 1e6, 2),
                  what + "_pg_dump_peak_mb": round(peak[0] / 1e6, 1) if peak[0] else None,
                  what + "_file_gb": round(os.path.getsize(out) / 1e9, 2)}))
"""


def probe(what: str, where: str, out: Path) -> dict:
    res = subprocess.run([sys.executable, "-c", PROBE, what, where, str(out)], capture_output=True, text=True,
                         cwd=ROOT)
    if res.returncode:
        raise SystemExit(res.stderr[-2000:])
    return json.loads(res.stdout.strip().splitlines()[-1])


def measure_many(store, where: str, folder: Path, n: int, mb: float) -> dict:
    out = {**fill(store, n, mb)}
    out.update(probe("open", where, folder / "none"))
    for what in ("copy", "backup"):
        target = folder / f"{what}.out"
        out.update(probe(what, where, target))
        target.unlink()
    out["ratio_backup_to_copy"] = round(out["backup_s"] / max(out["copy_s"], 0.01), 2)
    out["backup_peak_share_of_bytes"] = round(max(out["backup_rss_growth_mb"], out["backup_pg_dump_peak_mb"] or 0)
                                              / (out["total_gb"] * 1e3), 4)
    return out


def run_backend(backend: str, n: int, mb: float, folder: Path) -> dict:
    catalog = load_catalog()
    if backend == "gpkg":
        path = folder / "demo.gpkg"
        shutil.copy(DEMO, path)
        store = Store(path, catalog)
        where = str(path)
        return {"backend": backend, **measure_add(store, folder), **measure_gallery(store),
                **measure_many(store, where, folder, n, mb)}
    from gis.devtools.pgtest import TempPostgres
    from gis.store.pg import PostgisStore, load_store_into

    with TempPostgres() as pg:
        src = folder / "src.gpkg"
        shutil.copy(DEMO, src)
        store = PostgisStore(pg.url, catalog, create=True)
        load_store_into(Store(src, catalog), store)
        return {"backend": backend, **measure_add(store, folder), **measure_gallery(store),
                **measure_many(store, pg.url, folder, n, mb)}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--photos", type=int, default=10_000, help="photos in the big store (GeoPackage)")
    ap.add_argument("--mb", type=float, default=1.0, help="megabytes per photo in the big store (full size: 3)")
    ap.add_argument("--pg-photos", type=int, default=1000, help="photos in the big PostGIS store")
    ap.add_argument("--backend", choices=("gpkg", "postgis", "both"), default="both")
    ap.add_argument("--dir", default=tempfile.gettempdir(), help="where the big files go (removed at the end)")
    args = ap.parse_args(argv)
    backends = ("gpkg", "postgis") if args.backend == "both" else (args.backend,)
    need = 2.2 * max(args.photos if "gpkg" in backends else 0, args.pg_photos if "postgis" in backends else 0) \
        * args.mb * 1e6
    free = shutil.disk_usage(args.dir).free
    if free < need:
        raise SystemExit(f"{free / 1e9:.0f} GB free in {args.dir}, {need / 1e9:.0f} GB needed: fewer --photos")
    results = []
    for backend in backends:
        with tempfile.TemporaryDirectory(prefix=f"bench-evidence-{backend}-", dir=args.dir) as tmp:
            n = args.photos if backend == "gpkg" else args.pg_photos
            r = run_backend(backend, n, args.mb, Path(tmp))
            print(json.dumps(r, ensure_ascii=False), flush=True)
            results.append(r)
    for r in results:
        print(json.dumps({"backend": r["backend"],
                          "add_5mb_s_vs_budget": f"{r['add_median_s']} / {BUDGET_ADD_S}",
                          "gallery_kb_vs_budget": f"{r['thumbnails_kb']} / {BUDGET_GALLERY_BYTES / 1e3:.0f}",
                          "ratio_full_to_thumbnails": r["ratio_full_to_thumbnails"],
                          "ratio_backup_to_copy": r["ratio_backup_to_copy"],
                          "backup_peak_share_of_bytes": r["backup_peak_share_of_bytes"]}), flush=True)


if __name__ == "__main__":
    main()
