"""A big orthophoto (DOM) on the web map, without reading it whole.

An orthophoto of a district is a GeoTIFF of tens of thousands of pixels a
side, in a Gauss-Krüger zone or any other CRS. The map shows it in two
layers, both Web-Mercator images that Streamlit serves from
``static/generated`` (no tile server: Streamlit serves files, not routes):

- the **underlay**: the whole image at ≤ ``UNDERLAY_PX`` pixels, rendered
  once per file (from an overview) and cached on disk; it is on screen the
  moment the map opens, and stays under every pan;
- the **view**: the part of the image in the map's view (plus a margin), at
  the screen's resolution, re-rendered when the planner pans or zooms past
  what the underlay resolves (``render_view``). Reads go through
  ``gis.raster.read_background`` (the window, at the matching overview, then
  one warp), so a redraw costs about what the screen shows.

The view's bounds are snapped outwards to a grid of 256 screen pixels at the
zoom level, so small pans hit the same file (and the browser's cache).

A GeoTIFF without overviews would make every zoomed-out view read the full
resolution: ``build_overviews`` (``renewal raster prepare FILE``) adds them,
as an external ``.ovr`` next to the file (the original is not modified).

Paths may come from a planner typing them: only a local, regular ``.tif``
file opened by GDAL's GTiff driver is accepted (no ``/vsicurl/``, no VRT that
would make GDAL read other files or URLs).
"""
from __future__ import annotations

# Lazy imports, on purpose: rasterio and Pillow are imported inside the functions that read or write images,
# so that the command line and the app start without those heavy libraries.
import hashlib
import math
import shutil
import subprocess
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
from pyproj import Transformer

from gis.base.errors import InputError
from gis.base.fileio import atomic_write

UNDERLAY_PX = 2048          # longest side of the whole-image underlay of a big raster
FULL_UNDERLAY_PX = 4096     # a raster up to this size is its own underlay, at full resolution
VIEW_MARGIN = 0.2           # the view image reaches this share of the view beyond each edge
VIEW_SNAP_PX = 128          # view bounds snap to this many screen pixels
MAX_VIEW_PX = 3072          # longest side of a view image (very wide screens get a coarser one)
BIG_PX = 4096 * 4096        # a raster with more pixels than this needs overviews to be shown whole
DIRECT_READ_PX = 12_000_000  # without overviews, a view may read at most this many source pixels
KEEP_VIEWS = 300            # view images kept on disk (the oldest go)
WEB_MERCATOR_HALF = math.pi * 6378137.0
OVERVIEW_MIN_PX = 256       # build overview levels until the smallest is about this big
SUFFIXES = (".tif", ".tiff")


# --------------------------------------------------------------------------- opening safely

def check_raster_path(path) -> Path:
    """A planner-given orthophoto path → a resolved local GeoTIFF path.

    Raises:
        InputError: empty, a URL or GDAL virtual path, not ``.tif``/``.tiff``,
            missing, or not a regular file.
    """
    text = str(path or "").strip()
    if not text:
        raise InputError("basemap.no_raster")
    if "://" in text or text.startswith("/vsi") or text.startswith("\\\\"):
        raise InputError("basemap.raster_not_local", path=text)
    p = Path(text).expanduser()
    if p.suffix.lower() not in SUFFIXES:
        raise InputError("basemap.raster_not_tif", path=text)
    try:
        p = p.resolve(strict=True)
    except (OSError, RuntimeError):
        raise InputError("basemap.raster_missing", path=text) from None
    if not p.is_file():
        raise InputError("basemap.raster_missing", path=text)
    return p


def _open(path):
    """Open with the GTiff driver only (content, not the name, decides what GDAL reads).

    Raises:
        InputError: unreadable, not a GeoTIFF, or without CRS.
    """
    import rasterio
    from rasterio.errors import RasterioError

    try:
        ds = rasterio.open(path, driver="GTiff")
    except (RasterioError, OSError) as e:
        raise InputError("basemap.raster_unreadable", path=str(path),
                         detail=str(e).splitlines()[0][:200] if str(e) else type(e).__name__) from e
    if ds.crs is None:
        ds.close()
        raise InputError("basemap.raster_no_crs", path=str(path))
    return ds


# --------------------------------------------------------------------------- description

@dataclass(frozen=True)
class RasterInfo:
    """What the map needs to know about a GeoTIFF."""

    path: str
    width: int
    height: int
    crs: str                       # e.g. "EPSG:4528" or the CRS name
    bounds: list                   # [[s, w], [n, e]] in EPSG:4326
    bounds_3857: tuple             # left, bottom, right, top in Web Mercator metres
    overviews: tuple = ()          # decimation factors of band 1
    stamp: str = ""                # path, mtime and size: changes when the file does
    bands: tuple = (1,)            # the 1 or 3 bands shown
    stretch: tuple | None = None   # (lo, hi) per band for data that are not 8-bit
    colormap: tuple | None = field(default=None, repr=False)  # 256 × RGBA for a palette band

    @property
    def needs_overviews(self) -> bool:
        """Too big to show whole without overviews (``renewal raster prepare``)."""
        return not self.overviews and self.width * self.height > BIG_PX

    @property
    def mpp(self) -> float:
        """Web-Mercator metres per source pixel (along x)."""
        return (self.bounds_3857[2] - self.bounds_3857[0]) / self.width


def _stamp(p: Path) -> str:
    st = p.stat()
    ovr = p.with_name(p.name + ".ovr")
    o = ovr.stat().st_mtime_ns if ovr.exists() else 0
    return f"{p}|{st.st_mtime_ns}|{st.st_size}|{o}"


def raster_info(path) -> RasterInfo:
    """Size, CRS, bounds, bands and overviews of a GeoTIFF (cached until the file or its ``.ovr`` changes).

    Raises:
        InputError: see :func:`check_raster_path`; the file cannot be read or has no CRS.
    """
    p = check_raster_path(path)
    return _raster_info(str(p), _stamp(p))


def _shown_bands(ds) -> tuple:
    """Red, green, blue by colour interpretation, else the first three bands, else band 1 (alpha never)."""
    from rasterio.enums import ColorInterp

    ci = list(ds.colorinterp)
    want = [ColorInterp.red, ColorInterp.green, ColorInterp.blue]
    if all(c in ci for c in want):
        return tuple(ci.index(c) + 1 for c in want)
    colour = [i + 1 for i, c in enumerate(ci) if c != ColorInterp.alpha]
    return tuple(colour[:3]) if len(colour) >= 3 else tuple(colour[:1] or [1])


@lru_cache(maxsize=16)
def _raster_info(path: str, stamp: str) -> RasterInfo:
    from rasterio.enums import ColorInterp, Resampling
    from rasterio.warp import transform_bounds

    with _open(path) as ds:
        epsg = ds.crs.to_epsg()
        crs = f"EPSG:{epsg}" if epsg else (ds.crs.to_string() or "?")
        try:
            w, s, e, n = transform_bounds(ds.crs, "EPSG:4326", *ds.bounds, densify_pts=21)
            b3857 = transform_bounds(ds.crs, "EPSG:3857", *ds.bounds, densify_pts=21)
        except Exception as exc:  # noqa: BLE001 -- PROJ raises several types for impossible transforms
            raise InputError("basemap.raster_unreadable", path=path, detail=str(exc)[:200]) from exc
        bands = _shown_bands(ds)
        colormap = stretch = None
        if len(bands) == 1 and ds.colorinterp[bands[0] - 1] == ColorInterp.palette:
            try:
                cmap = ds.colormap(bands[0])
                lut = np.zeros((256, 4), np.uint8)
                for k, rgba in cmap.items():
                    if 0 <= k < 256:
                        lut[k] = rgba
                colormap = tuple(map(tuple, lut))
            except ValueError:
                colormap = None
        if ds.dtypes[bands[0] - 1] != "uint8" and colormap is None:
            # one 2–98 % stretch for the whole file (from a small read, at an overview if any),
            # so that neighbouring views match
            k = max(1.0, max(ds.width, ds.height) / 512)
            shape = (max(1, int(ds.height / k)), max(1, int(ds.width / k)))
            small = ds.read(list(bands), out_shape=(len(bands), *shape), resampling=Resampling.nearest, masked=True)
            stretch = []
            for band in small:
                vals = band.compressed()
                lo, hi = (np.percentile(vals, [2, 98]) if vals.size else (0.0, 1.0))
                stretch.append((float(lo), float(hi if hi > lo else lo + 1)))
            stretch = tuple(stretch)
        return RasterInfo(path=path, width=ds.width, height=ds.height, crs=crs,
                          bounds=[[round(s, 7), round(w, 7)], [round(n, 7), round(e, 7)]],
                          bounds_3857=tuple(float(v) for v in b3857),
                          overviews=tuple(ds.overviews(1)), stamp=stamp, bands=bands,
                          stretch=stretch, colormap=colormap)


# --------------------------------------------------------------------------- rendering

@lru_cache(maxsize=16)
def _from_3857(crs_wkt: str):
    return Transformer.from_crs("EPSG:3857", crs_wkt, always_xy=True)


def render_image(info: RasterInfo, box, width: int, height: int, mesh: int = 8):
    """The raster under a Web-Mercator box as a ``width`` × ``height`` PIL image, or None if none of it is there.

    RGB when the raster covers the whole box with valid pixels, else RGBA
    (transparent where it has none).

    Reads the window once, at about the output resolution (GDAL takes the
    matching overview), then maps it onto the output grid with Pillow's mesh
    transform: the output is cut into ``mesh`` × ``mesh`` cells and each is
    mapped bilinearly from where its corners fall in the source (PROJ). Over
    a screen of a few kilometres the error is below a pixel (a test checks);
    a 2048 × 1280 view costs 0.09–0.17 s of CPU, where GDAL's warper took
    0.6–0.9 s (bench/RESULTS.md).
    """
    import rasterio
    from PIL import Image
    from rasterio.enums import MaskFlags, Resampling
    from rasterio.errors import RasterioError
    from rasterio.windows import Window

    left, bottom, right, top = box
    gx = np.linspace(0, width, mesh + 1)
    gy = np.linspace(0, height, mesh + 1)
    px, py = np.meshgrid(gx, gy)
    mx = left + px * (right - left) / width
    my = top - py * (top - bottom) / height
    try:
        with rasterio.Env(GDAL_OVERVIEW_OVERSAMPLING_THRESHOLD="1.5"), _open(info.path) as ds:
            sx, sy = _from_3857(ds.crs.to_wkt()).transform(mx, my)
            inv = ~ds.transform
            cols, rows = inv @ (sx, sy)
            c0, r0 = max(0, math.floor(cols.min()) - 1), max(0, math.floor(rows.min()) - 1)
            c1, r1 = min(ds.width, math.ceil(cols.max()) + 1), min(ds.height, math.ceil(rows.max()) + 1)
            if c1 <= c0 or r1 <= r0:
                return None
            win = Window(c0, r0, c1 - c0, r1 - r0)
            # never read more pixels than the output shows (GDAL then reads the matching overview)
            scale = min(1.0, 1.15 * width / win.width, 1.15 * height / win.height,
                        1.15 * math.hypot(width, height) / math.hypot(win.width, win.height))
            ow, oh = max(1, round(win.width * scale)), max(1, round(win.height * scale))
            data = ds.read(list(info.bands), window=win, out_shape=(len(info.bands), oh, ow),
                           resampling=Resampling.bilinear)
            all_valid = all(MaskFlags.all_valid in f for f in ds.mask_flag_enums)
            alpha = None if all_valid else ds.dataset_mask(window=win, out_shape=(oh, ow), resampling=Resampling.nearest)
    except RasterioError as e:
        raise InputError("basemap.raster_unreadable", path=info.path, detail=str(e).splitlines()[0][:200]) from e
    if info.colormap is not None:
        lut = np.asarray(info.colormap, np.uint8)
        rgb = lut[np.clip(data[0], 0, 255).astype(np.uint8)][..., :3]
    else:
        if info.stretch is not None:
            data = np.stack([np.clip((b.astype(np.float32) - lo) * (255.0 / (hi - lo)), 0, 255)
                             for b, (lo, hi) in zip(data, info.stretch)]).astype(np.uint8)
        rgb = np.moveaxis(data if len(data) == 3 else np.repeat(data[:1], 3, axis=0), 0, -1)
    # source image pixel of each mesh node
    ix = (cols - c0) * (ow / win.width)
    iy = (rows - r0) * (oh / win.height)
    inside = ix.min() >= 0 and iy.min() >= 0 and ix.max() <= ow and iy.max() <= oh
    cells = []
    for j in range(mesh):
        for i in range(mesh):
            box_px = (int(gx[i]), int(gy[j]), int(gx[i + 1]), int(gy[j + 1]))
            if box_px[2] <= box_px[0] or box_px[3] <= box_px[1]:
                continue
            quad = (ix[j, i], iy[j, i], ix[j + 1, i], iy[j + 1, i],
                    ix[j + 1, i + 1], iy[j + 1, i + 1], ix[j, i + 1], iy[j, i + 1])
            cells.append((box_px, tuple(float(v) for v in quad)))

    def warp(img):
        return img.transform((width, height), Image.Transform.MESH, cells, resample=Image.Resampling.BILINEAR)

    # RGB and alpha apart: Pillow's bilinear transform of RGBA is 2.5x slower than RGB + L
    out = warp(Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8), "RGB"))
    if alpha is None and inside:
        return out
    if alpha is None:
        alpha = np.full((oh, ow), 255, np.uint8)
    a = warp(Image.fromarray(np.ascontiguousarray(alpha, dtype=np.uint8), "L"))
    return Image.merge("RGBA", (*out.split(), a))


def _save_image(img, stem: Path) -> Path:
    """Opaque → JPEG (small, encoded in ms); with transparency → WebP (a PNG of a photo is 15× bigger)."""
    if img.mode == "RGBA" and np.asarray(img.getchannel("A")).min() == 255:
        img = img.convert("RGB")
    if img.mode == "RGB":
        path, save = stem.with_suffix(".jpg"), lambda f: img.save(f, format="JPEG", quality=85)
    else:
        path, save = stem.with_suffix(".webp"), lambda f: img.save(f, format="WEBP", quality=82, method=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, save)
    return path


def _cached(stem: Path) -> Path | None:
    for suffix in (".jpg", ".webp"):
        p = stem.with_suffix(suffix)
        if p.exists():
            return p
    return None


def _latlng(left, bottom, right, top) -> list:
    lon0, lat0 = _to_4326(left, bottom)
    lon1, lat1 = _to_4326(right, top)
    return [[round(float(lat0), 7), round(float(lon0), 7)], [round(float(lat1), 7), round(float(lon1), 7)]]


# --------------------------------------------------------------------------- the underlay

def render_underlay(path, out_dir, url_prefix: str) -> dict | None:
    """The whole raster as one Web-Mercator image, cached on disk.

    At full resolution for a raster of up to ``FULL_UNDERLAY_PX`` pixels a
    side (then no view images are needed), else at ``UNDERLAY_PX``.

    Returns ``{"url", "bounds": [[s, w], [n, e]], "width", "height", "mpp", "path"}``
    (``mpp``: Web-Mercator metres per image pixel), or None when the raster
    is too big to read whole without overviews.

    Raises:
        InputError: unreadable raster or one without CRS.
    """
    info = raster_info(path)
    if info.needs_overviews:
        return None
    left, bottom, right, top = info.bounds_3857
    if max(info.width, info.height) <= FULL_UNDERLAY_PX:  # small (the demo): whole, at its own resolution
        k = max(right - left, top - bottom) / max(info.width, info.height)
    else:
        k = max(right - left, top - bottom) / UNDERLAY_PX
    w, h = max(1, round((right - left) / k)), max(1, round((top - bottom) / k))
    key = hashlib.sha256(f"{info.stamp}|{w}|{h}|underlay-v1".encode()).hexdigest()[:24]
    stem = Path(out_dir) / f"underlay_{key}"
    done = _cached(stem)
    if done is None:
        img = render_image(info, (left, bottom, right, top), w, h)
        if img is None:
            return None
        done = _save_image(img, stem)
    return {"url": f"{url_prefix.rstrip('/')}/{done.name}", "bounds": _latlng(left, bottom, right, top),
            "width": w, "height": h, "mpp": (right - left) / w, "path": str(done)}


# --------------------------------------------------------------------------- the view

def mpp_at_zoom(zoom: float) -> float:
    """Web-Mercator metres per screen pixel at a Leaflet zoom level (256-px tiles)."""
    return 2 * WEB_MERCATOR_HALF / (256 * 2 ** float(zoom))


def _to_3857(lon, lat):
    x = np.radians(lon) * 6378137.0
    y = np.log(np.tan(np.pi / 4 + np.radians(np.clip(lat, -85.06, 85.06)) / 2)) * 6378137.0
    return x, y


def _to_4326(x, y):
    lon = np.degrees(x / 6378137.0)
    lat = np.degrees(2 * np.arctan(np.exp(y / 6378137.0)) - np.pi / 2)
    return lon, lat


def view_grid(view_bounds, zoom: float, info: RasterInfo) -> tuple | None:
    """The snapped Web-Mercator box and pixel size of the image for a view, or None when the raster is not in it.

    Returns ``(left, bottom, right, top, width_px, height_px)``.
    """
    (s, w), (n, e) = view_bounds
    x0, y0 = _to_3857(w, s)
    x1, y1 = _to_3857(e, n)
    mpp = mpp_at_zoom(zoom)
    mx, my = (x1 - x0) * VIEW_MARGIN, (y1 - y0) * VIEW_MARGIN
    step = VIEW_SNAP_PX * mpp
    left = math.floor((x0 - mx) / step) * step
    right = math.ceil((x1 + mx) / step) * step
    bottom = math.floor((y0 - my) / step) * step
    top = math.ceil((y1 + my) / step) * step
    rl, rb, rr, rt = info.bounds_3857
    left, bottom = max(left, math.floor(rl / step) * step), max(bottom, math.floor(rb / step) * step)
    right, top = min(right, math.ceil(rr / step) * step), min(top, math.ceil(rt / step) * step)
    if right <= left or top <= bottom:
        return None
    wpx, hpx = round((right - left) / mpp), round((top - bottom) / mpp)
    k = max(wpx, hpx) / MAX_VIEW_PX
    if k > 1:
        wpx, hpx = max(1, round(wpx / k)), max(1, round(hpx / k))
    return left, bottom, right, top, int(wpx), int(hpx)


def wants_view(info: RasterInfo, zoom: float, underlay: dict | None) -> bool:
    """True when a view image would show more than the underlay does at this zoom.

    Not when the underlay's pixels are already about screen-sized (zoomed
    out), nor when the underlay holds the raster at full resolution (a small
    raster such as the demo basemap).
    """
    if underlay is None:
        return True
    screen = mpp_at_zoom(zoom)
    return underlay["mpp"] > 1.25 * screen and underlay["mpp"] > 1.2 * info.mpp


def _prune(folder: Path, keep: int = KEEP_VIEWS) -> None:
    try:
        files = sorted(folder.glob("view_*.*"), key=lambda f: f.stat().st_mtime)
    except OSError:
        return
    for f in files[:-keep] if len(files) > keep else []:
        f.unlink(missing_ok=True)


def covers(image: dict | None, view_bounds, zoom: float, raster_bounds=None) -> bool:
    """True when a view image made at this zoom still covers the view (a small pan): no new image needed.

    With ``raster_bounds`` (``[[s, w], [n, e]]``), only the part of the view
    the raster covers needs to be in the image.
    """
    if not image or abs(float(image.get("zoom", -1)) - float(zoom)) > 1e-9:
        return False
    (s, w), (n, e) = view_bounds
    if raster_bounds is not None:
        (rs, rw), (rn, re_) = raster_bounds
        s, w, n, e = max(s, rs), max(w, rw), min(n, rn), min(e, re_)
        if s >= n or w >= e:
            return False
    (is_, iw), (in_, ie) = image["bounds"]
    tol = 1e-7  # the image's bounds are rounded to 7 decimals
    return is_ <= s + tol and iw <= w + tol and in_ >= n - tol and ie >= e - tol


def render_view(path, view_bounds, zoom: float, out_dir, url_prefix: str, underlay: dict | None = None,
                previous: dict | None = None) -> dict | None:
    """The part of the raster in a map view, as an image for an overlay (cached on disk).

    Args:
        view_bounds: the map's view ``[[s, w], [n, e]]`` in EPSG:4326
            (streamlit-folium's returned ``bounds``).
        zoom: the map's zoom level.
        out_dir: folder served to the browser (``static/generated``); images
            go to ``out_dir/views``.
        url_prefix: the URL of ``out_dir``.
        underlay: :func:`render_underlay`'s result: no image is made when it
            already shows as much (see :func:`wants_view`).
        previous: the image shown now: returned as is while it still covers
            the view at the same zoom (a pan within the margin costs nothing).

    Returns ``{"url", "bounds": [[s, w], [n, e]], "width", "height",
    "format", "path", "zoom", "stamp"}``, or None when the raster is not in the view, the
    underlay suffices, or (raster without overviews) the view would need a
    full-resolution read of more than ``DIRECT_READ_PX`` pixels.

    Raises:
        InputError: unreadable raster or one without CRS.
    """
    info = raster_info(path)
    if not wants_view(info, zoom, underlay):
        return None
    if covers(previous, view_bounds, zoom, info.bounds) and previous.get("stamp") == info.stamp:
        return previous
    grid = view_grid(view_bounds, zoom, info)
    if grid is None:
        return None
    left, bottom, right, top, wpx, hpx = grid
    if not info.overviews:
        rl, rb, rr, rt = info.bounds_3857
        share = min(1.0, (right - left) * (top - bottom) / max(1.0, (rr - rl) * (rt - rb)))
        if share * info.width * info.height > DIRECT_READ_PX and (right - left) / wpx > 1.5 * info.mpp:
            return None
    key = hashlib.sha256(f"{info.stamp}|{left:.3f}|{bottom:.3f}|{right:.3f}|{top:.3f}|{wpx}|{hpx}|v1"
                         .encode()).hexdigest()[:24]
    stem = Path(out_dir) / "views" / f"view_{key}"
    done = _cached(stem)
    if done is None:
        img = render_image(info, (left, bottom, right, top), wpx, hpx)
        if img is None:
            return None
        done = _save_image(img, stem)
        _prune(done.parent)
    return {"url": f"{url_prefix.rstrip('/')}/views/{done.name}", "bounds": _latlng(left, bottom, right, top),
            "width": wpx, "height": hpx, "format": done.suffix[1:], "path": str(done), "zoom": float(zoom),
            "stamp": info.stamp}


# --------------------------------------------------------------------------- overviews

def overview_factors(width: int, height: int, min_px: int = OVERVIEW_MIN_PX) -> list[int]:
    """2, 4, 8, … until the smallest level is at most ``min_px`` on its longest side."""
    factors, f = [], 2
    while max(width, height) / (f // 2) > min_px:
        factors.append(f)
        f *= 2
    return factors


def _overview_options(info) -> dict:
    """GDAL config for the ``.ovr``: RGB bytes JPEG-compressed (YCbCr) like a delivered DOM, else DEFLATE."""
    with _open(info.path) as ds:
        rgb = ds.count == 3 and all(dt == "uint8" for dt in ds.dtypes)
    opts = {"GDAL_TIFF_OVR_BLOCKSIZE": "512", "INTERLEAVE_OVERVIEW": "PIXEL"}
    if rgb:
        opts.update(COMPRESS_OVERVIEW="JPEG", PHOTOMETRIC_OVERVIEW="YCBCR", JPEG_QUALITY_OVERVIEW="85")
    else:
        opts.update(COMPRESS_OVERVIEW="DEFLATE")
    return opts


def build_overviews(path, progress=None, resampling: str = "average") -> list[int]:
    """Add overviews to a GeoTIFF that has none, as an external ``FILE.ovr`` (the file itself is untouched).

    All levels are built in one pass (GDAL computes each level from the one
    before; one level at a time would read the full resolution once per
    level: 66 s instead of 16 s for 20,000² pixels). GDAL's ``gdaladdo -ro``
    is used when installed (it reports progress, and Debian's build was 3×
    faster here); otherwise rasterio, which reports only start and end.
    ``progress(done, total, label)`` gets percentages. Returns the factors
    built (empty when the file had overviews already).

    Raises:
        InputError: see :func:`raster_info`; the overviews cannot be written
            (e.g. a read-only folder).
    """
    info = raster_info(path)
    if info.overviews:
        return []
    factors = overview_factors(info.width, info.height)
    if not factors:
        return []
    opts = _overview_options(info)
    report = progress or (lambda done, total, label: None)
    report(0, 100, "")
    gdaladdo = shutil.which("gdaladdo")
    if gdaladdo:
        _gdaladdo(gdaladdo, info.path, factors, opts, resampling, report)
    else:
        _rasterio_overviews(info.path, factors, opts, resampling)
    report(100, 100, "")
    _raster_info.cache_clear()
    return factors


def _gdaladdo(exe: str, path: str, factors, opts: dict, resampling: str, report) -> None:
    """Run ``gdaladdo -ro`` and turn its "0...10...20" output into progress calls."""

    cmd = [exe, "-ro", "-r", resampling]
    for k, v in opts.items():
        cmd += ["--config", k, v]
    cmd += [path, *map(str, factors)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    digits = b""
    while True:
        ch = proc.stdout.read(1)
        if not ch:
            break
        if ch.isdigit():
            digits += ch
        else:
            if digits and int(digits) < 100:
                report(int(digits), 100, "")
            digits = b""
    err = proc.stderr.read().decode("utf-8", "replace")
    if proc.wait() != 0:
        detail = next((ln for ln in err.splitlines() if "ERROR" in ln), err.strip()[:200]) or "gdaladdo"
        raise InputError("basemap.overviews_failed", path=path, detail=detail[:200])


def _rasterio_overviews(path: str, factors, opts: dict, resampling: str) -> None:
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.errors import RasterioError

    try:
        # update mode, but TIFF_USE_OVR writes FILE.ovr and leaves the file itself as it was
        with rasterio.Env(TIFF_USE_OVR="TRUE", **opts):
            with rasterio.open(path, "r+", driver="GTiff") as ds:
                ds.build_overviews(list(factors), getattr(Resampling, resampling))
    except (RasterioError, OSError) as e:
        raise InputError("basemap.overviews_failed", path=path, detail=str(e).splitlines()[0][:200]) from e
