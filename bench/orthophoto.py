"""Benchmark: a big orthophoto (DOM) on the web map.

    python3 -m bench.orthophoto            # 20,000 × 20,000 px (built once into var/bench/, ≈ 1 min)
    python3 -m bench.orthophoto --size 8000

Figures printed (issue 7 budgets: open ≤ 2 s, each pan/zoom redraw ≤ 0.5 s
of server time):

- ``prepare``: ``renewal raster prepare`` (overviews) on the file, once;
- ``open``: what the map page does when the orthophoto is chosen — read the
  file's description and render the whole-image underlay from an overview
  (cold: nothing cached on disk);
- ``redraw``: one view-sized image for a pan or zoom (``gis.rasterview.render_view``)
  at zoom levels from the whole district to single buildings, cold;
- for comparison, the same view as 256-px Web-Mercator tiles rendered one by
  one (what a tile layer over ``static/`` would cost) and the naive way
  (reading the whole file at full resolution, only estimated from one strip).

The test image is synthetic but shaped like a real DOM: RGB, 8-bit, 512-px
JPEG (YCbCr) tiles, in a CGCS2000 Gauss-Krüger zone with the zone prefix
(EPSG:4528), 0.5 m pixels over the centre of the demo district; its content is
the demo basemap resampled, with field texture and a 50 m grid of tracks so
that zooming in shows detail.
"""
from __future__ import annotations

import argparse
import math
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEMO_RASTER = ROOT / "data" / "raster" / "demo_basemap.tif"
CACHE = ROOT / "var" / "bench"
# centre of the demo district (lon, lat); EPSG:4528 is CGCS2000 GK zone 40 with the zone prefix
CENTRE = (121.345, 37.41)


def make_orthophoto(path, size: int = 20000, pixel_m: float = 0.5, epsg: int = 4528,
                    centre=CENTRE, block: int = 512, overviews: bool = False) -> Path:
    """Write a synthetic RGB orthophoto of ``size`` × ``size`` pixels centred on ``centre``.

    Written block by block (memory stays small); JPEG-compressed tiles as
    DOMs are usually delivered. ``overviews`` also builds them (else the file
    has none, as delivered files often do).
    """
    import rasterio
    from pyproj import Transformer
    from rasterio.enums import Resampling
    from rasterio.transform import from_origin
    from rasterio.warp import reproject
    from rasterio.windows import Window

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cx, cy = Transformer.from_crs("EPSG:4490", f"EPSG:{epsg}", always_xy=True).transform(*centre)
    half = size * pixel_m / 2
    transform = from_origin(cx - half, cy + half, pixel_m, pixel_m)
    with rasterio.open(DEMO_RASTER) as demo:
        src, src_t, src_crs = demo.read(), demo.transform, demo.crs
    profile = dict(driver="GTiff", width=size, height=size, count=3, dtype="uint8", crs=f"EPSG:{epsg}",
                   transform=transform, tiled=True, blockxsize=block, blockysize=block,
                   compress="JPEG", photometric="YCBCR", jpeg_quality=85, BIGTIFF="IF_SAFER")
    rng = np.random.default_rng(7)
    texture = rng.normal(0.0, 9.0, size=(block, block)).astype(np.float32)
    tmp = path.with_suffix(".part.tif")
    with rasterio.open(tmp, "w", **profile) as dst:
        for row in range(0, size, block):
            for col in range(0, size, block):
                h, w = min(block, size - row), min(block, size - col)
                bt = transform @ rasterio.Affine.translation(col, row)
                out = np.zeros((3, h, w), np.uint8)
                reproject(src, out, src_transform=src_t, src_crs=src_crs, dst_transform=bt,
                          dst_crs=f"EPSG:{epsg}", resampling=Resampling.bilinear)
                img = out.astype(np.float32) + texture[:h, :w]
                # a 50 m grid of light tracks: detail that only full resolution shows
                ys = (row + np.arange(h)) * pixel_m
                xs = (col + np.arange(w)) * pixel_m
                track = (np.mod(ys, 50.0) < 1.5)[:, None] | (np.mod(xs, 50.0) < 1.5)[None, :]
                img[:, track] = img[:, track] * 0.5 + 120
                dst.write(np.clip(img, 0, 255).astype(np.uint8), window=Window(col, row, w, h))
    tmp.replace(path)
    if overviews:
        from gis.maps.rasterview import build_overviews

        build_overviews(path)
    return path


CPU = []  # CPU seconds of the last _timed call (load from other processes hardly moves it)


def _timed(fn, *a, **kw):
    t, c = time.perf_counter(), time.process_time()
    out = fn(*a, **kw)
    CPU[:] = [time.process_time() - c]
    return time.perf_counter() - t, out


def _view(centre, zoom, width=1200, height=680):
    """Leaflet-style view bounds [[s, w], [n, e]] of a map ``width`` × ``height`` px at ``zoom``."""
    from pyproj import Transformer

    to_m = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)
    to_ll = Transformer.from_crs("EPSG:3857", "EPSG:4326", always_xy=True)
    x, y = to_m.transform(*centre)
    mpp = 2 * math.pi * 6378137 / (256 * 2 ** zoom)
    w, s = to_ll.transform(x - width / 2 * mpp, y - height / 2 * mpp)
    e, n = to_ll.transform(x + width / 2 * mpp, y + height / 2 * mpp)
    return [[s, w], [n, e]]


def _tiles_cost(path, view, zoom, out_dir) -> tuple[float, int]:
    """Render the view as 256-px XYZ tiles with the same reader and warp, one call each: (seconds, tiles)."""
    from gis.maps import rasterview

    info = rasterview.raster_info(path)
    (s, w), (n, e) = view
    z = int(math.floor(zoom))

    def tile_xy(lon, lat):
        k = 2 ** z
        x = (lon + 180) / 360 * k
        y = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * k
        return int(x), int(y)

    x0, y0 = tile_xy(w, n)
    x1, y1 = tile_xy(e, s)
    size = 2 * math.pi * 6378137 / 2 ** z
    t = time.perf_counter()
    n_tiles = 0
    for tx in range(x0, x1 + 1):
        for ty in range(y0, y1 + 1):
            minx = -math.pi * 6378137 + tx * size
            maxy = math.pi * 6378137 - ty * size
            img = rasterview.render_image(info, (minx, maxy - size, minx + size, maxy), 256, 256)
            if img is not None:
                img.convert("RGB").save(out_dir / f"{z}_{tx}_{ty}.jpg", quality=85)
                n_tiles += 1
    return time.perf_counter() - t, n_tiles


def _page_cost(tif, work: Path) -> None:
    """Server time of the map page's rerun after a pan (Streamlit's AppTest runs the page script in-process)."""
    import os

    from streamlit.testing.v1 import AppTest

    data = work / "app"
    data.mkdir()
    shutil.copy(ROOT / "data" / "parcels" / "demo.gpkg", data / "renewal.gpkg")
    env = {"RENEWAL_DATA_DIR": str(data), "RENEWAL_ORTHOPHOTO": str(tif), "RENEWAL_BASEMAP": "orthophoto"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
        at.session_state["user"] = "viewer"  # the demo store has accounts
        at.run()
        at.run()
        base = []
        for _ in range(3):
            t = time.perf_counter()
            at.run()
            base.append(time.perf_counter() - t)
        cold, pan = [], []
        for i in range(5):
            (s, w), (n, e) = _view((CENTRE[0] + 0.006 * i, CENTRE[1] - 0.004 * i), 17)
            for bucket, dx in ((cold, 0.0), (pan, (e - w) / 8)):
                at.session_state["district-map"] = {
                    "bounds": {"_southWest": {"lat": s, "lng": w + dx}, "_northEast": {"lat": n, "lng": e + dx}},
                    "zoom": 17}
                t = time.perf_counter()
                at.run()
                bucket.append(time.perf_counter() - t)
                assert not at.exception, at.exception
        print(f"page rerun (the whole map page, server side): no view change {statistics.median(base):.3f} s; "
              f"a pan to a new place at zoom 17 median {statistics.median(cold):.3f} s (max {max(cold):.3f}); "
              f"a small pan within the image {statistics.median(pan):.3f} s")
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def main(argv=None) -> int:
    from gis.maps import rasterview

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=20000, help="pixels per side (default 20000)")
    ap.add_argument("--keep", action="store_true", help="keep the rendered views")
    args = ap.parse_args(argv)

    import os

    print(f"load average (1 min) at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    CACHE.mkdir(parents=True, exist_ok=True)
    src = CACHE / f"ortho_{args.size}.tif"
    if not src.exists():
        secs, _ = _timed(make_orthophoto, src, size=args.size)
        print(f"made {src.name}: {args.size} x {args.size} px, {src.stat().st_size / 1e6:.0f} MB, {secs:.1f} s")
    work = Path(tempfile.mkdtemp(prefix="ortho_bench_"))
    try:
        tif = work / src.name
        shutil.copy(src, tif)  # a fresh copy without overviews each run
        mb = tif.stat().st_size / 1e6
        print(f"orthophoto: {args.size} x {args.size} px RGB, JPEG tiles, {mb:.0f} MB, EPSG:4528, 0.5 m")

        secs, info = _timed(rasterview.raster_info, tif)
        print(f"without overviews: raster_info {secs:.3f} s, needs_overviews={info.needs_overviews}")
        for zoom in (16, 18):
            secs, out = _timed(rasterview.render_view, tif, _view(CENTRE, zoom), zoom, work / "raw", "/x")
            what = "refused: needs overviews" if out is None else f"{out['width']} x {out['height']} px"
            print(f"without overviews: a zoom-{zoom} view {secs:.3f} s ({what})")

        last = [0.0]

        def progress(done, total, label):
            last[0] = done / total

        secs, levels = _timed(rasterview.build_overviews, tif, progress=progress)
        print(f"prepare (overviews {levels}): {secs:.1f} s")

        out_dir = work / "generated"
        t0 = time.perf_counter()
        info = rasterview.raster_info(tif)
        t_info = time.perf_counter() - t0
        secs, under = _timed(rasterview.render_underlay, tif, out_dir, "/x")
        print(f"open: raster_info {t_info:.3f} s + underlay {secs:.3f} s (CPU {CPU[0]:.3f} s) "
              f"({under['width']} x {under['height']} px) = {t_info + secs:.3f} s  [budget 2 s]")
        secs2, _ = _timed(rasterview.render_underlay, tif, out_dir, "/x")
        print(f"open again (underlay cached on disk): {t_info + secs2:.3f} s")

        rows = []
        for zoom in (13, 14, 15, 16, 17, 18, 19):
            times, cpu, shown = [], [], None
            for dx, dy in [(0, 0), (0.004, 0.002), (-0.006, 0.003), (0.008, -0.004), (-0.003, -0.005)]:
                c = (CENTRE[0] + dx * 2 ** (15 - zoom), CENTRE[1] + dy * 2 ** (15 - zoom))
                v = _view(c, zoom)
                secs, out = _timed(rasterview.render_view, tif, v, zoom, out_dir, "/x", underlay=under)
                if out is not None:
                    shown = out
                    times.append(secs)
                    cpu.append(CPU[0])
            rows.append((zoom, times, cpu, shown))
        v0 = _view(CENTRE, 17)
        first = rasterview.render_view(tif, v0, 17, out_dir, "/x", underlay=under)
        (s, w), (n, e) = v0
        dx = (e - w) / 8
        secs, again = _timed(rasterview.render_view, tif, [[s, w + dx], [n, e + dx]], 17, out_dir, "/x",
                             underlay=under, previous=first)
        print(f"a small pan (1/8 of the view) keeps the image: {secs * 1000:.1f} ms (same image: {again is first})")
        print("redraw (one view-sized image per pan/zoom of a 1200 x 680 px map, cold, 5 places per zoom):")
        for zoom, times, cpu, out in rows:
            if not times:
                print(f"  zoom {zoom:>2}: no view image (the underlay shows as much)")
                continue
            print(f"  zoom {zoom:>2}: median {statistics.median(times):.3f} s, max {max(times):.3f} s, "
                  f"CPU median {statistics.median(cpu):.3f} s  "
                  f"({out['width']} x {out['height']} px {out['format']}, {len(times)} drawn)  [budget 0.5 s]")

        tiles_dir = work / "tiles"
        tiles_dir.mkdir()
        per_tile = []
        for zoom in (15, 17):
            secs, n = _tiles_cost(tif, _view(CENTRE, zoom), zoom, tiles_dir)
            per_tile.append(secs / max(n, 1))
            print(f"tiles instead: zoom {zoom} view = {n} tiles of 256 px, {secs:.3f} s ({secs / max(n, 1) * 1000:.0f} ms/tile)")
        l, b, r, t = info.bounds_3857
        total = 0
        for z in range(10, 20):
            size = 2 * math.pi * 6378137 / 2 ** z
            total += (math.ceil(r / size) - math.floor(l / size)) * (math.ceil(t / size) - math.floor(b / size))
        print(f"tiles pre-rendered for zooms 10-19 (static/ serves only files): {total:,} tiles, "
              f"≈ {total * statistics.mean(per_tile):.0f} s")

        _page_cost(tif, work)

        import rasterio
        from rasterio.windows import Window

        with rasterio.open(tif) as ds:
            secs, _ = _timed(ds.read, window=Window(0, 0, ds.width, 512))
        print(f"naive: reading the whole file at full resolution ≈ {secs * ds.height / 512:.0f} s "
              f"(one 512-row strip: {secs:.2f} s), {3 * args.size ** 2 / 1e9:.1f} GB in memory")
        print(f"load average (1 min) at end: {os.getloadavg()[0]:.1f}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
