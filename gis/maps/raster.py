"""Raster backgrounds for printed maps: just the window a page shows.

A page shows a few hundred metres to a few kilometres; an orthophoto may be
20,000 pixels square. ``read_background`` reads only the page's window, and at
the overview level that matches the page's resolution (GDAL picks the
overview when ``out_shape`` is smaller than the window), then warps that small
array to the page's coordinate system. A multi-gigabyte GeoTIFF with
overviews costs about what the window shows. A GeoTIFF without overviews still
works, but reads the full-resolution window (``gdaladdo`` adds overviews).
"""
from __future__ import annotations

# Lazy imports, on purpose: rasterio is imported inside the functions that read rasters,
# so that the command line and the app start without those heavy libraries.
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gis.base.errors import InputError


@dataclass(frozen=True)
class Background:
    """An RGBA image (uint8, rows top to bottom) and its extent in the page CRS."""

    image: np.ndarray
    extent: tuple[float, float, float, float]  # left, right, bottom, top


def _open(path):
    import rasterio
    from rasterio.errors import RasterioError

    p = Path(path)
    if not p.is_file():
        raise InputError("brief.bad_raster", path=str(path), detail={"zh": "文件不存在", "en": "no such file"})
    try:
        ds = rasterio.open(p)
    except (RasterioError, OSError) as e:
        raise InputError("brief.bad_raster", path=str(path), detail=_detail(e)) from e
    if ds.count == 0 or ds.width == 0 or ds.height == 0:
        ds.close()
        raise InputError("brief.bad_raster", path=str(path), detail={"zh": "没有栅格波段", "en": "no raster bands"})
    if ds.crs is None:
        ds.close()
        raise InputError("brief.raster_no_crs", path=str(path))
    return ds


def _detail(e: Exception) -> str:
    """GDAL's own words: rasterio's "Read failed" points at the error it chained."""
    text = str(e.__cause__ or e) or str(e)
    return text.splitlines()[0][:200]


def raster_bounds(path, epsg: int) -> tuple[float, float, float, float]:
    """Bounds of a raster in ``EPSG:epsg``.

    Raises:
        InputError: the file is missing, unreadable, not a raster, or has no CRS.
    """
    from rasterio.warp import transform_bounds

    with _open(path) as ds:
        try:
            return tuple(transform_bounds(ds.crs, f"EPSG:{epsg}", *ds.bounds, densify_pts=21))
        except Exception as e:  # noqa: BLE001 -- PROJ raises several types for impossible transforms
            raise InputError("brief.bad_raster", path=str(path), detail=str(e)[:200]) from e


def _to_uint8(data: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Stretch each band of a non-byte raster (e.g. a 16-bit orthophoto) to 0–255 (2–98 %)."""
    out = np.zeros(data.shape, dtype=np.uint8)
    for i, band in enumerate(data):
        v = band[valid]
        if v.size == 0:
            continue
        lo, hi = np.percentile(v, (2, 98))
        if hi <= lo:
            hi = lo + 1
        out[i] = np.clip((band.astype(np.float32) - lo) * (255.0 / (hi - lo)), 0, 255).astype(np.uint8)
    return out


def _bands(ds):
    """Colour bands (RGB, or one grey/palette band) and the alpha band if any."""
    from rasterio.enums import ColorInterp

    interp = ds.colorinterp
    alpha = next((i + 1 for i, c in enumerate(interp) if c == ColorInterp.alpha), None)
    colour = [i + 1 for i in range(ds.count) if i + 1 != alpha]
    return (colour[:3] if len(colour) >= 3 else colour[:1]), alpha


def _valid(ds, alpha, window, shape):
    from rasterio.enums import MaskFlags, Resampling

    if alpha:
        return ds.read(alpha, window=window, out_shape=shape, resampling=Resampling.nearest) > 0
    if all(MaskFlags.all_valid in f for f in ds.mask_flag_enums):
        return np.ones(shape, dtype=bool)
    return ds.dataset_mask(window=window, out_shape=shape, resampling=Resampling.nearest) > 0


def _rgb(ds, bands, data, valid) -> np.ndarray:
    """Bands as 3 × H × W uint8: palettes applied, grey repeated, other types stretched."""
    from rasterio.enums import ColorInterp

    if len(bands) == 1 and ds.colorinterp[bands[0] - 1] == ColorInterp.palette:
        try:
            cmap = ds.colormap(bands[0])
        except ValueError:
            cmap = None
        if cmap:
            lut = np.zeros((256, 4), dtype=np.uint8)
            for k, rgba in cmap.items():
                if 0 <= k < 256:
                    lut[k] = rgba
            return np.moveaxis(lut[data[0].astype(np.uint8)][..., :3], -1, 0)
    if data.dtype != np.uint8:
        data = _to_uint8(data, valid)
    return data if len(bands) == 3 else np.repeat(data, 3, axis=0)


def _read_direct(ds, bounds, width_px: int, height_px: int) -> Background | None:
    """Same CRS, north up: GDAL reads the (fractional) window straight onto the page grid,
    resampling from the overview that matches; no warp."""
    from rasterio.enums import Resampling
    from rasterio.windows import Window, from_bounds

    minx, miny, maxx, maxy = bounds
    win = from_bounds(minx, miny, maxx, maxy, transform=ds.transform)
    c0, r0 = max(win.col_off, 0.0), max(win.row_off, 0.0)
    c1, r1 = min(win.col_off + win.width, ds.width), min(win.row_off + win.height, ds.height)
    if c1 <= c0 or r1 <= r0:
        return None
    sx, sy = width_px / win.width, height_px / win.height  # output pixels per raster pixel
    x0, x1 = round((c0 - win.col_off) * sx), round((c1 - win.col_off) * sx)
    y0, y1 = round((r0 - win.row_off) * sy), round((r1 - win.row_off) * sy)
    if x1 <= x0 or y1 <= y0:
        return None
    part = Window(c0, r0, c1 - c0, r1 - r0)
    bands, alpha = _bands(ds)
    shape = (y1 - y0, x1 - x0)
    data = ds.read(bands, window=part, out_shape=(len(bands), *shape), resampling=Resampling.bilinear)
    valid = _valid(ds, alpha, part, shape)
    rgb = _rgb(ds, bands, data, valid)
    full = (x0, y0, x1, y1) == (0, 0, width_px, height_px)
    if full and valid.all():
        return Background(np.ascontiguousarray(np.moveaxis(rgb, 0, -1)), (minx, maxx, miny, maxy))
    out = np.zeros((height_px, width_px, 4), dtype=np.uint8)
    out[y0:y1, x0:x1, :3] = np.moveaxis(rgb, 0, -1)
    out[y0:y1, x0:x1, 3] = np.where(valid, 255, 0)
    return Background(out, (minx, maxx, miny, maxy))


def read_background(path, bounds, epsg: int, width_px: int, height_px: int) -> Background | None:
    """The part of a raster under ``bounds`` (page CRS ``EPSG:epsg``) as a ``width_px`` × ``height_px`` image.

    The window is read at (about) the output resolution, from the matching
    overview, then resampled onto the page grid. Pixels the raster does not
    cover are transparent; an image with none of those is RGB. Returns None
    when the raster does not cover any of ``bounds``.

    Raises:
        InputError: the file is missing, unreadable or corrupt, or has no CRS.
    """
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.errors import RasterioError, WindowError
    from rasterio.transform import from_bounds as transform_from_bounds
    from rasterio.warp import reproject, transform_bounds
    from rasterio.windows import Window, from_bounds

    page_crs = rasterio.crs.CRS.from_epsg(epsg)
    minx, miny, maxx, maxy = bounds
    width_px, height_px = max(1, int(width_px)), max(1, int(height_px))
    try:
        with _open(path) as ds:
            same = ds.crs == page_crs
            t = ds.transform
            if same and t.b == 0 and t.d == 0 and t.a > 0 and t.e < 0:
                return _read_direct(ds, bounds, width_px, height_px)
            rb = bounds if same else transform_bounds(page_crs, ds.crs, *bounds, densify_pts=21)
            win = from_bounds(*rb, transform=ds.transform)
            try:
                win = win.intersection(Window(0, 0, ds.width, ds.height))
            except WindowError:
                return None
            col0, row0 = math.floor(win.col_off), math.floor(win.row_off)
            col1 = min(ds.width, math.ceil(win.col_off + win.width))
            row1 = min(ds.height, math.ceil(win.row_off + win.height))
            win = Window(col0, row0, col1 - col0, row1 - row0)
            if win.width < 1 or win.height < 1:
                return None
            # never read more pixels than the page can show (GDAL then uses the matching overview)
            scale = min(1.0, 1.15 * width_px / win.width, 1.15 * height_px / win.height)
            ow, oh = max(1, round(win.width * scale)), max(1, round(win.height * scale))
            bands, alpha = _bands(ds)
            data = ds.read(bands, window=win, out_shape=(len(bands), oh, ow), resampling=Resampling.bilinear)
            valid = _valid(ds, alpha, win, (oh, ow))
            rgb = _rgb(ds, bands, data, valid)
            src_transform = ds.window_transform(win) @ rasterio.Affine.scale(win.width / ow, win.height / oh)
            src_crs = ds.crs
    except RasterioError as e:
        raise InputError("brief.bad_raster", path=str(path), detail=_detail(e)) from e

    rgba = np.concatenate([rgb, (valid * np.uint8(255))[None]], axis=0)

    # resample the small array onto the page's own pixel grid (north-up, page CRS):
    # bilinear up- or down-sampling by GDAL, so the page embeds the image as is
    dw, dh = width_px, height_px
    dst_transform = transform_from_bounds(minx, miny, maxx, maxy, dw, dh)
    out = np.zeros((4, dh, dw), dtype=np.uint8)
    try:  # one call for the four bands: GDAL computes the pixel mapping once
        reproject(rgba, out, src_transform=src_transform, src_crs=src_crs,
                  dst_transform=dst_transform, dst_crs=page_crs, resampling=Resampling.bilinear)
    except RasterioError as e:
        raise InputError("brief.bad_raster", path=str(path), detail=_detail(e)) from e
    out[3] = np.where(out[3] > 127, 255, 0)
    if not out[3].any():
        return None
    if out[3].all():
        out = out[:3]  # opaque: no soft mask to store in the PDF
    return Background(np.ascontiguousarray(np.moveaxis(out, 0, -1)), (minx, maxx, miny, maxy))
