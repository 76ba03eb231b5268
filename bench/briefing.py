"""Benchmark: briefing pages and the 30-village atlas (issue 3), against QGIS and the naive way.

    python3 -m bench.briefing                 # everything (~3 min; the 20k raster is built once into var/bench/)
    python3 -m bench.briefing --no-qgis --runs 1

Each measurement runs in its own process, so that its peak memory (RSS, from
``wait4``; for the atlas, the sum over the process tree, sampled) is its own:

- ``page_s``: one parcel page (PDF, A4, the demo raster as background),
  median over 15 parcels in a warm process (``page_cold_s``: the first one,
  which builds the shared sheet); also a village page and a PNG page;
- ``naive_page_s``: the same page drawn the naive way: the whole raster read
  and shown, every parcel of the district drawn and labelled, then the map
  cropped to the page (``ratio_naive``: naive ÷ ours);
- ``big_raster_page_s``: a parcel page over a generated 20,000 × 20,000-pixel
  GeoTIFF (JPEG tiles with overviews, in EPSG:4528 — another CRS than the
  page's, so the window is warped), with that process's peak memory;
  ``naive_big_read_s``/``naive_big_rss_mb``: just reading that raster whole;
- ``atlas30_s``: the whole command ``renewal atlas --villages -o FILE.pdf``
  (start-up included), median of ``--runs`` (``atlas30_best_s`` the best; the
  1-minute load average before each run is printed, as other work on the
  machine slows the two processes of the command; ``atlas30_cpu_s`` is the
  CPU time of the command and its workers, which that load hardly changes);
- ``atlas30_png_s``: the same command with ``--png-zip`` (the PDF, then its pages as PNGs at 150 dpi, QGIS's
  resolution), median of ``--runs`` - 1 (``atlas30_png_cpu_s``: its CPU time);
- ``qgis_atlas30_s``: QGIS's print-layout Atlas (../shared/anchors/) exporting
  the same number of village pages to one PDF, start-up included (start-up +
  the median PDF export), when /usr/bin/python3 can import qgis; the anchor runs
  ``--qgis-runs`` times (default 2: once before our runs, once after, so that the
  two tools meet the same spell of load from other work on the machine);
  ``ratio_qgis``: ours ÷ QGIS's; ``ratio_qgis_png``: the PNG atlas against QGIS's start-up + PNG export.

The last line printed is one JSON object with all figures.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "data" / "parcels" / "demo.gpkg"
DEMO_RASTER = ROOT / "data" / "raster" / "demo_basemap.tif"
# ../shared/anchors beside the checkout (a worktree sits one level deeper: look up the parents)
ANCHORS = next((p / "shared" / "anchors" for p in ROOT.parents if (p / "shared" / "anchors").is_dir()),
               ROOT.parent / "shared" / "anchors")
CACHE = ROOT / "var" / "bench"
BIG = 20000


# ------------------------------------------------------------------ the big raster
def make_big_raster(path: Path, size: int = BIG, epsg: int = 4528) -> Path:
    """A ``size``² RGB GeoTIFF over the demo district: JPEG tiles, overviews, in ``epsg``.

    The demo basemap resampled, plus texture; written strip by strip, so that
    making it needs little memory.
    """
    import numpy as np
    import rasterio
    from pyproj import Transformer
    from rasterio.enums import Resampling
    from rasterio.transform import from_origin
    from rasterio.warp import reproject
    from rasterio.windows import Window

    with rasterio.open(DEMO_RASTER) as demo:
        src, src_t, src_crs = demo.read(), demo.transform, demo.crs
        l, b, r, t = demo.bounds
        to = Transformer.from_crs(demo.crs, f"EPSG:{epsg}", always_xy=True)
        (x0, x1), (y0, y1) = zip(*[to.transform(x, y) for x, y in ((l, b), (r, t))])
    pixel = max(x1 - x0, y1 - y0) / size
    transform = from_origin(x0, y0 + size * pixel, pixel, pixel)
    profile = dict(driver="GTiff", width=size, height=size, count=3, dtype="uint8", crs=f"EPSG:{epsg}",
                   transform=transform, tiled=True, blockxsize=512, blockysize=512, compress="JPEG",
                   photometric="YCBCR", jpeg_quality=80, BIGTIFF="YES")
    rng = np.random.default_rng(3)
    texture = rng.normal(0.0, 7.0, size=(512, size)).astype(np.float32)
    tmp = path.with_suffix(".part.tif")
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(tmp, "w", **profile) as dst:
        for row in range(0, size, 512):
            h = min(512, size - row)
            out = np.zeros((3, h, size), np.uint8)
            reproject(src, out, src_transform=src_t, src_crs=src_crs,
                      dst_transform=transform @ rasterio.Affine.translation(0, row), dst_crs=f"EPSG:{epsg}",
                      resampling=Resampling.bilinear)
            img = np.clip(out.astype(np.float32) + texture[:h], 0, 255).astype(np.uint8)
            dst.write(img, window=Window(0, row, size, h))
        dst.build_overviews([2, 4, 8, 16, 32, 64], Resampling.average)
    tmp.replace(path)
    return path


# ------------------------------------------------------------------ the naive page
def naive_draw_map(page, rect, extent, *, raster=None, focus_rows=(), **_):
    """The map drawn naively: the whole raster read and embedded at full resolution, every
    parcel and every label of the district drawn, then clipped to the page's extent."""
    import numpy as np
    import rasterio
    import shapely

    from gis.printing import briefing

    sh = page.sheet
    view = page.map_view(rect, extent)
    cv = view.canvas
    if raster is not None:
        with rasterio.open(raster) as ds:
            data = ds.read()  # everything, at full resolution
            left, bottom, right, top = ds.bounds
        (x0, y0), (x1, y1) = view.pt(left, bottom), view.pt(right, top)
        cv.image(np.ascontiguousarray(np.moveaxis(data[:3], 0, -1)), float(x0), float(y0), float(x1 - x0),
                 float(y1 - y0))
    rows = np.arange(len(sh.parcels))
    cv.shapes(view.rings(sh.parcel_rings(rows)), list(sh.col["color"]), stroke="#ffffff", lw=0.35, alpha=0.62)
    for name in ("zones", "villages", "parks"):
        if name in sh.layers:
            cv.rings(briefing.flat_rings(view.rings(sh.layer_rings(name))), stroke="#333333", lw=0.8)
    pts = shapely.point_on_surface(sh.parcels.geometry.values)
    briefing.map_labels(view, shapely.get_x(pts), shapely.get_y(pts), list(sh.col["code"]), 5, "#222222", 0)
    for r in focus_rows:
        cv.rings(briefing.flat_rings(view.rings(sh.parcel_rings([r]))), stroke=briefing.HIGHLIGHT, lw=2)
    briefing.north_arrow(page, view, sh.convergence)
    briefing.scale_bar(page, view, extent, rect[2])
    view.close()
    return view


# ------------------------------------------------------------------ phases (child processes)
def _sample_codes(store, n: int) -> list[str]:
    codes = sorted(store.parcels(geometry=False)["code"])
    step = max(1, len(codes) // n)
    return codes[::step][:n]


def phase_pages(store_path: str, out: str, raster: str, n: int) -> dict:
    from gis.base.settings import Settings
    from gis.printing import briefing
    from gis.store.store import Store

    store = Store(store_path)
    settings = Settings.load()
    codes = _sample_codes(store, n + 1)
    t = time.perf_counter()
    briefing.render_parcel_page(store, codes[0], Path(out) / "cold.pdf", raster=raster, settings=settings)
    cold = time.perf_counter() - t
    times = []
    for c in codes[1:]:
        t = time.perf_counter()
        briefing.render_parcel_page(store, c, Path(out) / "p.pdf", raster=raster, settings=settings)
        times.append(time.perf_counter() - t)
    png, village = [], []
    for c in codes[1:6]:
        t = time.perf_counter()
        briefing.render_parcel_page(store, c, Path(out) / "p.png", raster=raster, settings=settings)
        png.append(time.perf_counter() - t)
    for v in sorted(store.attributes("villages"))[:5]:
        t = time.perf_counter()
        briefing.render_village_page(store, v, Path(out) / "v.pdf", raster=raster, settings=settings)
        village.append(time.perf_counter() - t)
    return {"page_s": statistics.median(times), "page_max_s": max(times), "page_cold_s": cold,
            "png_page_s": statistics.median(png), "village_page_s": statistics.median(village), "pages": len(times)}


def phase_big(store_path: str, out: str, raster: str, n: int) -> dict:
    from gis.base.settings import Settings
    from gis.printing import briefing
    from gis.store.store import Store

    store = Store(store_path)
    settings = Settings.load()
    times = _warm_page_times(briefing, store, n, Path(out) / "big", raster, settings)
    t = time.perf_counter()
    briefing.render_village_page(store, "V01", Path(out) / "big_village.pdf", raster=raster, settings=settings)
    return {"big_raster_page_s": statistics.median(times), "big_raster_village_page_s": time.perf_counter() - t}


def _warm_page_times(briefing, store, n: int, stem: Path, raster, settings) -> list[float]:
    """Seconds of ``n`` parcel pages after a first (cold) one, written to ``stem``.pdf."""
    codes = _sample_codes(store, n + 1)
    briefing.render_parcel_page(store, codes[0], stem.with_name(stem.name + "_cold.pdf"), raster=raster,
                                settings=settings)
    times = []
    for c in codes[1:]:
        t = time.perf_counter()
        briefing.render_parcel_page(store, c, stem.with_suffix(".pdf"), raster=raster, settings=settings)
        times.append(time.perf_counter() - t)
    return times


def phase_naive(store_path: str, out: str, raster: str, n: int) -> dict:
    from gis.base.settings import Settings
    from gis.printing import briefing
    from gis.store.store import Store

    store = Store(store_path)
    settings = Settings.load()
    briefing.draw_map = naive_draw_map
    times = _warm_page_times(briefing, store, n, Path(out) / "naive", raster, settings)
    return {"naive_page_s": statistics.median(times), "naive_page_bytes": (Path(out) / "naive.pdf").stat().st_size}


def phase_naive_big_read(store_path: str, out: str, raster: str, n: int) -> dict:
    import rasterio

    t = time.perf_counter()
    with rasterio.open(raster) as ds:
        data = ds.read()
    return {"naive_big_read_s": time.perf_counter() - t, "naive_big_array_mb": data.nbytes / 2**20}


PHASES = {"pages": phase_pages, "big": phase_big, "naive": phase_naive, "naive_big_read": phase_naive_big_read}


# ------------------------------------------------------------------ measuring processes
def _tree_rss_kb(root_pid: int) -> int:
    """RSS of a process and its descendants (Linux /proc), in kB."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                parts = f.read().rsplit(")", 1)[1].split()
            children.setdefault(int(parts[1]), []).append(int(d))
            rss[int(d)] = int(parts[21]) * os.sysconf("SC_PAGE_SIZE") // 1024
        except (OSError, IndexError, ValueError):
            continue
    total, stack = 0, [root_pid]
    while stack:
        p = stack.pop()
        total += rss.get(p, 0)
        stack.extend(children.get(p, []))
    return total


LAST_CPU = [0.0]  # CPU seconds (user + system) of the last measured command and the children it waited for


def run_measured(cmd: list[str], env=None, cwd=ROOT) -> tuple[float, float, float, str, str]:
    """Run a command: (wall seconds, its own peak RSS MB, peak RSS MB of its process tree, stdout, stderr)."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=cwd)
    peak = [0]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _tree_rss_kb(proc.pid))
            done.wait(0.05)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    out, err = [], []
    readers = [threading.Thread(target=lambda s, b: b.append(s.read()), args=(proc.stdout, out)),
               threading.Thread(target=lambda s, b: b.append(s.read()), args=(proc.stderr, err))]
    for r in readers:
        r.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    LAST_CPU[0] = usage.ru_utime + usage.ru_stime
    done.set()
    for r in readers:
        r.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n{''.join(err)[-2000:]}")
    return wall, usage.ru_maxrss / 1024, peak[0] / 1024, "".join(out), "".join(err)


def run_phase(name: str, store: Path, out: Path, raster, n: int) -> tuple[dict, float]:
    cmd = [sys.executable, "-m", "bench.briefing", "--phase", name, "--store", str(store), "--out", str(out),
           "--raster", str(raster or ""), "--n", str(n)]
    _, rss, tree, stdout, _ = run_measured(cmd)
    return json.loads(stdout.strip().splitlines()[-1]), max(rss, tree)


def qgis_available() -> bool:
    if not Path("/usr/bin/python3").exists():
        return False
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    r = subprocess.run(["/usr/bin/python3", "-c", "import qgis.core"], capture_output=True, env=env)
    return r.returncode == 0


def qgis_anchor_once(tmp: Path) -> dict:
    """One run of the anchor as shipped in shared/anchors, on its own 30-village data: start-up, three PDF
    exports, two PNG exports (150 dpi) in one QGIS process."""
    out = tmp / "qgis"
    if not (out / "demo.gpkg").exists():
        subprocess.run([sys.executable, str(ANCHORS / "qgis_atlas_data.py"), str(out)], check=True,
                       capture_output=True)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    wall, rss, tree, stdout, _ = run_measured(["/usr/bin/python3", str(ANCHORS / "qgis_atlas.py"), str(out)], env=env)
    m = re.search(r"QGIS (\S+) startup_s=([\d.]+) atlas30_pdf_s median=([\d.]+) runs=(\[[^\]]*\])", stdout)
    png = re.search(r"atlas30_png150_s median=([\d.]+)", stdout)
    if not m or not png:
        raise RuntimeError("unexpected QGIS anchor output: " + stdout)
    return {"version": m.group(1), "startup": float(m.group(2)), "pdf_runs": json.loads(m.group(4)),
            "png": float(png.group(1)), "rss": max(rss, tree), "load_before": round(os.getloadavg()[0], 2)}


def run_qgis(runs: list[dict]) -> dict:
    """QGIS's figures over anchor runs (taken before and after ours, so that both tools meet the same
    spell of load from other work on the machine): medians of the start-ups, of every PDF export and of
    the PNG exports."""
    startup = statistics.median(r["startup"] for r in runs)
    pdf = statistics.median(x for r in runs for x in r["pdf_runs"])
    png = statistics.median(r["png"] for r in runs)
    return {"qgis_version": runs[0]["version"], "qgis_startup_s": startup, "qgis_atlas30_pdf_s": pdf,
            "qgis_atlas30_pdf_runs": [x for r in runs for x in r["pdf_runs"]],
            "qgis_startup_runs": [r["startup"] for r in runs], "qgis_png_runs": [r["png"] for r in runs],
            "qgis_atlas30_s": round(startup + pdf, 3), "qgis_atlas30_png_s": round(startup + png, 3),
            "qgis_peak_rss_mb": round(max(r["rss"] for r in runs), 1)}


# ------------------------------------------------------------------ main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.briefing", description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3, help="runs of the atlas command (median)")
    ap.add_argument("--n", type=int, default=15, help="parcel pages per page measurement")
    ap.add_argument("--no-qgis", action="store_true", help="skip the QGIS anchor")
    ap.add_argument("--qgis-runs", type=int, default=2,
                    help="runs of the QGIS anchor: the first before ours, the others after (default 2)")
    ap.add_argument("--atlas-only", action="store_true",
                    help="only the atlas commands (PDF, PDF + PNGs) and QGIS's Atlas: the ratios, in a minute")
    ap.add_argument("--big-size", type=int, default=BIG, help="side of the big GeoTIFF in pixels")
    ap.add_argument("--phase", choices=sorted(PHASES), help=argparse.SUPPRESS)
    ap.add_argument("--store", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--raster", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.phase:
        res = PHASES[args.phase](args.store, args.out, args.raster or None, args.n)
        print(json.dumps(res))
        return 0

    res: dict = {"cpus": len(os.sched_getaffinity(0)), "load_before": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="bench-briefing-") as tmpdir:
        tmp = Path(tmpdir)
        store = tmp / "demo.gpkg"
        shutil.copy(DEMO, store)  # the committed demo is never touched
        big = CACHE / f"brief_big_{args.big_size}.tif"
        peaks = {}
        if not args.atlas_only:
            _page_phases(args, res, tmp, store, big, peaks)
        _atlas_phases(args, res, tmp, store, peaks)
    for k, v in list(res.items()):
        if isinstance(v, float):
            res[k] = round(v, 3)
    res["load_after"] = round(os.getloadavg()[0], 2)
    print(json.dumps(res, ensure_ascii=False))
    return 0


def _page_phases(args, res: dict, tmp: Path, store: Path, big: Path, peaks: dict) -> None:
    if not big.exists():
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", f"from bench.briefing import make_big_raster; from pathlib import Path;"
                        f" make_big_raster(Path({str(big)!r}), {args.big_size})"], check=True, cwd=ROOT)
        res["big_raster_made_s"] = round(time.perf_counter() - t, 1)
        print(f"made {big} in {res['big_raster_made_s']} s", file=sys.stderr)
    res["big_raster_mb"] = round(big.stat().st_size / 2**20, 1)

    r, peaks["pages"] = run_phase("pages", store, tmp, DEMO_RASTER, args.n)
    res.update(r)
    print(f"page {r['page_s']:.3f} s (cold {r['page_cold_s']:.2f} s)", file=sys.stderr)
    r, peaks["big"] = run_phase("big", store, tmp, big, args.n)
    res.update(r)
    res["big_raster_rss_mb"] = round(peaks["big"], 1)
    print(f"big raster page {r['big_raster_page_s']:.3f} s, {peaks['big']:.0f} MB", file=sys.stderr)
    r, naive_rss = run_phase("naive", store, tmp, DEMO_RASTER, max(3, args.n // 3))
    res.update(r)
    res["ratio_naive"] = round(res["naive_page_s"] / res["page_s"], 1)
    print(f"naive page {r['naive_page_s']:.3f} s", file=sys.stderr)
    r, res["naive_big_rss_mb"] = run_phase("naive_big_read", store, tmp, big, 1)
    res.update(r)
    print(f"naive whole read of the big raster {r['naive_big_read_s']:.1f} s, "
          f"{res['naive_big_rss_mb']:.0f} MB", file=sys.stderr)


def _atlas_phases(args, res: dict, tmp: Path, store: Path, peaks: dict) -> None:
    env = dict(os.environ, RENEWAL_RASTER=str(DEMO_RASTER))
    # The checkout byte-compiled first, as its first run (or pip, for a regular install) does: with
    # PYTHONDONTWRITEBYTECODE set (it is, in these agents' shells) every run would compile gis/'s ~90
    # modules from source again, ~0.1 s of start-up that an installed `renewal` pays once (QGIS's Python
    # modules come compiled in its Debian package).
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "gis")], check=True, cwd=ROOT)
    use_qgis = not args.no_qgis and qgis_available()
    # QGIS's anchor runs: one before ours (with --qgis-runs 2 or more), the rest after
    qgis = [qgis_anchor_once(tmp)] if use_qgis and args.qgis_runs > 1 else []
    cmd = [sys.executable, "-m", "gis.cli", "--store", str(store), "atlas", "--villages",
           "-o", str(tmp / "atlas.pdf"), "--quiet"]
    runs, loads, cpus, atlas_peak = [], [], [], 0.0
    for _ in range(args.runs):
        loads.append(round(os.getloadavg()[0], 2))
        wall, rss, tree, stdout, _ = run_measured(cmd, env=env)
        runs.append(round(wall, 3))
        cpus.append(round(LAST_CPU[0], 2))
        atlas_peak = max(atlas_peak, rss, tree)
    res["atlas30_cpu_s"] = statistics.median(cpus)
    res["atlas30_s"] = statistics.median(runs)
    res["atlas30_best_s"] = min(runs)
    res["atlas30_runs"] = runs
    res["atlas30_load_before_runs"] = loads
    res["atlas30_pages"] = json.loads(stdout)["pages"]
    res["atlas30_rss_mb"] = round(atlas_peak, 1)
    res["atlas30_command"] = "renewal --store COPY_OF_DEMO atlas --villages -o atlas.pdf (demo raster)"
    print(f"atlas {res['atlas30_s']:.2f} s {runs}", file=sys.stderr)
    peaks["atlas"] = atlas_peak
    png_cmd = cmd[:-1] + ["--png-zip", str(tmp / "atlas.zip"), "--quiet"]
    png_runs, png_cpus = [], []
    for _ in range(max(1, args.runs - 1)):
        png_runs.append(round(run_measured(png_cmd, env=env)[0], 3))
        png_cpus.append(round(LAST_CPU[0], 2))
    res["atlas30_png_s"] = statistics.median(png_runs)
    res["atlas30_png_cpu_s"] = statistics.median(png_cpus)
    res["atlas30_png_runs"] = png_runs
    res["atlas30_png_command"] = "renewal atlas --villages -o atlas.pdf --png-zip atlas.zip (PDF and 150 dpi PNGs)"
    print(f"atlas with PNGs {res['atlas30_png_s']:.2f} s {png_runs}", file=sys.stderr)
    res["peak_rss_mb"] = round(max(peaks.values()), 1)

    if use_qgis:
        qgis += [qgis_anchor_once(tmp) for _ in range(max(1, args.qgis_runs - len(qgis)))]
        res.update(run_qgis(qgis))
        res["ratio_qgis"] = round(res["atlas30_s"] / res["qgis_atlas30_s"], 2)
        res["ratio_qgis_best"] = round(res["atlas30_best_s"] / res["qgis_atlas30_s"], 2)
        res["ratio_qgis_png"] = round(res["atlas30_png_s"] / res["qgis_atlas30_png_s"], 2)
        print(f"QGIS {res['qgis_atlas30_s']:.2f} s (PNG {res['qgis_atlas30_png_s']:.2f} s); ours / QGIS = "
              f"{res['ratio_qgis']} (PNG {res['ratio_qgis_png']})", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
