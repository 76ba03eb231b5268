"""Large layers as a pre-built pyramid of Mapbox Vector Tiles, drawn on canvas.

Why: one folium GeoJSON of 100,000 parcels is 70 MB of HTML that takes 45 s to
build and 20 s to draw (bench/RESULTS.md). A pyramid of vector tiles is built
once per content of the layer (its key), written under ``static/generated/``
(which Streamlit serves at ``/app/static/generated/``), and the browser fetches
only the tiles in view, at the detail the zoom needs, and draws them on one
canvas per tile. The map HTML carries only the tile URL and a small index of
which tiles exist. A rerun (click, filter, stage update) does no tile work.

Format: MVT 2.1 (``{z}/{x}/{y}.pbf``, one layer, extent 4096, Web Mercator
XYZ), so GDAL, QGIS and any MVT client read the pyramid, and a PostGIS
back end could make the same tiles with ``ST_AsMVT``. Tiles are encoded here
with numpy, all features of a zoom level at once (no per-feature Python) —
or, for a layer too large for that (a million parcels), a block of tiles at
a time from batches (:func:`build_tileset_in_blocks`, the same bytes):
geometry is projected once, simplified below half a pixel under the deepest
level, clipped to the tile plus a 4-pixel buffer where it crosses tile edges
(so that clip edges fall outside what a tile draws), quantised, oriented as
the spec asks (exterior rings clockwise in tile coordinates) and
varint-encoded. Tiles of the deepest level also carry the tooltip fields;
the others only the class field that sets the fill colour.

Drawing: a small Leaflet ``GridLayer`` (``static/js/vector-tiles.js``, no plugin needed) decodes
the tiles into typed arrays and fills one path per colour per tile; beyond the
deepest level it redraws the parent tile's vectors scaled, so lines stay sharp
at street zoom. It shows a tooltip for the feature under the mouse from the
tile data. Which parcel a click picked is answered on the server (the store's
spatial index), as for every other layer.
"""
from __future__ import annotations

import base64
import hashlib
import json
import math
import os
import shutil
import struct
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

from gis.base.units import STORE_CRS

FORMAT = "mvt-1"
EXTENT = 4096
TILE_PX = 256
BUFFER = 64  # extent units (4 px): clip edges fall outside the drawn tile
#: zoom levels built; a view between two levels draws the lower one scaled (vectors stay sharp)
LEVELS = (12, 14, 16)
SIMPLIFY_PX = 0.35  # below the deepest level, detail under a third of a pixel goes
_DOUBLE = struct.Struct("<d")


# --------------------------------------------------------------------------- protobuf pieces
def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field_bytes(field: int, payload: bytes) -> bytes:
    """A length-delimited field."""
    return _varint((field << 3) | 2) + _varint(len(payload)) + payload


def _value(v) -> bytes:
    """A ``Tile.Value`` message: string, double, or sint for integers."""
    if isinstance(v, (bool, np.bool_)):
        return _varint((7 << 3) | 0) + _varint(int(v))
    if isinstance(v, (int, np.integer)):
        z = (int(v) << 1) ^ (int(v) >> 63)
        return _varint((6 << 3) | 0) + _varint(z)
    if isinstance(v, (float, np.floating)):
        return _varint((3 << 3) | 1) + np.float64(v).tobytes()
    return _field_bytes(1, str(v).encode("utf-8"))


def _value_fields(values: np.ndarray) -> np.ndarray:
    """Each value as a whole ``values`` field of a layer (tag 4, length, Value message), as bytes.

    Done once per feature (not per tile it lands in), with the common cases
    (short strings, doubles) spelt out rather than built by helper calls.
    """
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values.tolist()):
        if isinstance(v, str):
            b = v.encode("utf-8")
            n = len(b)
            out[i] = bytes((0x22, n + 2, 0x0A, n)) + b if n < 126 else _field_bytes(4, _value(v))
        elif isinstance(v, float):
            out[i] = b"\x22\x09\x19" + _DOUBLE.pack(v)
        else:
            out[i] = _field_bytes(4, _value(v))
    return out


def _varint_lengths(v: np.ndarray) -> np.ndarray:
    return (1 + (v >= 1 << 7) + (v >= 1 << 14) + (v >= 1 << 21) + (v >= 1 << 28)
            + (v >= 1 << 35)).astype(np.int64)


def _encode_varints(v: np.ndarray, lens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All of ``v`` (non-negative, < 2**42) as varints in one byte array; and where each starts."""
    starts = np.cumsum(lens) - lens
    out = np.empty(int(lens.sum()), np.uint8)
    for k in range(int(lens.max()) if len(lens) else 0):
        m = lens > k
        byte = (v[m] >> (7 * k)) & 0x7F
        cont = (lens[m] > k + 1).astype(np.int64) << 7
        out[starts[m] + k] = (byte | cont).astype(np.uint8)
    return out, starts


def _zigzag(n: np.ndarray) -> np.ndarray:
    n = n.astype(np.int64)
    return (n << 1) ^ (n >> 63)


# --------------------------------------------------------------------------- geometry → commands
def _polygon_parts(geoms: np.ndarray) -> np.ndarray:
    """Polygons and MultiPolygons kept, polygon parts of collections pulled out, the rest empty."""
    tid = shapely.get_type_id(geoms)
    odd = ~np.isin(tid, (3, 6))
    if odd.any():
        fixed = []
        for g in geoms[odd]:
            parts = [p for p in shapely.get_parts(g) if shapely.get_type_id(p) in (3, 6) and not p.is_empty]
            fixed.append(shapely.multipolygons(parts) if parts else shapely.Polygon())
        geoms = geoms.copy()
        geoms[odd] = np.asarray(fixed, dtype=object)
    return geoms


def _commands(geoms: np.ndarray, tile_x: np.ndarray, tile_y: np.ndarray):
    """Geometry command integers of each feature (coordinates already in extent units of its zoom).

    Returns ``(values, per_feature_count, kept)``: the command stream of all
    kept features, concatenated; how many integers each kept feature has; and
    which input features are kept (those that still have a ring after
    quantisation).
    """
    geoms = _polygon_parts(geoms)
    nonempty = ~shapely.is_empty(geoms)
    idx_in = np.flatnonzero(nonempty)
    if len(idx_in) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(len(geoms), bool)
    _, coords, offsets = shapely.to_ragged_array(geoms[idx_in])
    if len(offsets) == 2:  # all Polygons: one part per feature
        ring_off, part_off = offsets
        geom_off = np.arange(len(part_off), dtype=np.int64)
    else:
        ring_off, part_off, geom_off = offsets
    n_rings = len(ring_off) - 1
    ring_len = np.diff(ring_off)
    ring_part = np.repeat(np.arange(len(part_off) - 1), np.diff(part_off))
    part_geom = np.repeat(np.arange(len(geom_off) - 1), np.diff(geom_off))
    ring_geom = part_geom[ring_part]
    first_ring_of_part = np.zeros(n_rings, bool)
    first_ring_of_part[part_off[:-1][np.diff(part_off) > 0]] = True

    # tile-local, y down, quantised
    pt_ring = np.repeat(np.arange(n_rings), ring_len)
    g = idx_in[ring_geom[pt_ring]]
    qx = np.rint(coords[:, 0] - tile_x[g] * EXTENT).astype(np.int64)
    qy = np.rint(tile_y[g] * EXTENT - coords[:, 1]).astype(np.int64)  # coords[:,1] grows north

    # drop repeated points and the closing point
    pos = np.arange(len(qx))
    ring_start = np.repeat(ring_off[:-1], ring_len)
    same_prev = np.r_[False, (qx[1:] == qx[:-1]) & (qy[1:] == qy[:-1])]
    keep = ~same_prev | (pos == ring_start)
    closing = np.zeros(len(qx), bool)
    closing[ring_off[1:] - 1] = True
    keep &= ~(closing & (qx == qx[ring_start]) & (qy == qy[ring_start]))
    # (a dropped run can leave the last kept point equal to the first: drop it too)
    kept_pos = np.flatnonzero(keep)
    kr = pt_ring[kept_pos]
    last_of_ring = np.r_[kr[1:] != kr[:-1], True]
    first_idx = np.searchsorted(kr, kr)  # index (in kept) of each ring's first point
    dup_last = last_of_ring & (qx[kept_pos] == qx[kept_pos[first_idx]]) & (qy[kept_pos] == qy[kept_pos[first_idx]]) \
        & (np.arange(len(kept_pos)) != first_idx)
    kept_pos = kept_pos[~dup_last]
    kr = pt_ring[kept_pos]
    m = np.bincount(kr, minlength=n_rings)

    # signed area (shoelace, y down: exterior > 0 is clockwise on screen); degenerate rings go
    x, y = qx[kept_pos], qy[kept_pos]
    nxt = np.arange(len(kept_pos)) + 1
    starts_k = np.cumsum(m) - m
    wrap = np.r_[kr[1:] != kr[:-1], True] if len(kr) else np.zeros(0, bool)
    nxt[wrap] = starts_k[kr[wrap]]
    cross = x * y[nxt] - x[nxt] * y
    area2 = np.bincount(kr, weights=cross, minlength=n_rings)
    ok_ring = (m >= 3) & (area2 != 0)
    # a part whose exterior ring went loses its holes too
    ext_ok = np.zeros(len(part_off) - 1, bool)
    ext_ok[ring_part[first_ring_of_part]] = ok_ring[first_ring_of_part]
    ok_ring &= ext_ok[ring_part]
    want_pos = first_ring_of_part  # exterior: area > 0 (clockwise, y down); holes: area < 0
    flip = ok_ring & ((area2 > 0) != want_pos)

    sel = ok_ring[kr]
    kp = kept_pos[sel]
    kr = kr[sel]
    rings = np.flatnonzero(ok_ring)
    m_ok = m[rings]
    # reverse flipped rings in place (positions within each ring mirrored)
    local = np.arange(len(kp)) - np.repeat(np.cumsum(m_ok) - m_ok, m_ok)
    mm = np.repeat(m_ok, m_ok)
    fl = np.repeat(flip[rings], m_ok)
    order = np.arange(len(kp))
    order[fl] = (order - local + (mm - 1 - local))[fl]
    kp = kp[order]
    px, py = qx[kp], qy[kp]

    ring_feat = idx_in[ring_geom[rings]]
    feat_of_pt = np.repeat(ring_feat, m_ok)
    first_of_feat = np.r_[True, feat_of_pt[1:] != feat_of_pt[:-1]] if len(kp) else np.zeros(0, bool)
    dx = np.diff(px, prepend=0)
    dy = np.diff(py, prepend=0)
    dx[first_of_feat] = px[first_of_feat]  # the cursor starts at (0, 0) for each feature
    dy[first_of_feat] = py[first_of_feat]

    # [MoveTo(1) dx dy] [LineTo(m-1) dx dy …] [ClosePath]: 2m + 3 integers per ring
    per_ring = 2 * m_ok + 3
    r_start = np.cumsum(per_ring) - per_ring
    out = np.empty(int(per_ring.sum()), np.int64)
    out[r_start] = 9
    out[r_start + 3] = 2 | ((m_ok - 1) << 3)
    out[r_start + per_ring - 1] = 15
    j = np.arange(len(kp)) - np.repeat(np.cumsum(m_ok) - m_ok, m_ok)
    p_at = np.repeat(r_start, m_ok) + 2 * j + 1 + (j > 0)
    out[p_at] = _zigzag(dx)
    out[p_at + 1] = _zigzag(dy)

    kept = np.zeros(len(geoms), bool)
    kept[ring_feat] = True
    per_feat = np.bincount(ring_feat, weights=per_ring, minlength=len(geoms)).astype(np.int64)[kept]
    return out, per_feat, kept


# --------------------------------------------------------------------------- one zoom level
def _tile_ranges(b: np.ndarray, z: int):
    """The tile columns and rows ``(tx0, tx1, ty0, ty1)`` that boxes ``b`` (extent units of ``z``, with
    the buffer) touch."""
    pad = BUFFER
    tx0 = np.floor((b[:, 0] - pad) / EXTENT).astype(np.int64)
    tx1 = np.floor((b[:, 2] + pad) / EXTENT).astype(np.int64)
    # y grows north in these units; tile rows grow south: row = floor((2^z*E - y) / E)
    size = (1 << z) * EXTENT
    ty0 = np.floor((size - b[:, 3] - pad) / EXTENT).astype(np.int64)
    ty1 = np.floor((size - b[:, 1] + pad) / EXTENT).astype(np.int64)
    return tx0, tx1, ty0, ty1


def _assign(geoms: np.ndarray, z: int, block: tuple[int, int, int, int] | None = None):
    """(feature index, tile x, tile y, geometry) for each feature × tile it touches, in extent units.

    A feature inside one tile (with its buffer) is used as is; one that
    crosses tile edges is clipped to each tile plus the buffer. ``block``
    ``(x0, x1, y0, y1)`` keeps only the tiles of those columns and rows.
    """
    pad = BUFFER
    size = (1 << z) * EXTENT
    tx0, tx1, ty0, ty1 = _tile_ranges(shapely.bounds(geoms), z)
    single = (tx1 == tx0) & (ty1 == ty0)  # of the whole level: a feature cut by the block is still clipped
    if block is not None:
        bx0, bx1, by0, by1 = block
        tx0, tx1 = np.maximum(tx0, bx0), np.minimum(tx1, bx1)
        ty0, ty1 = np.maximum(ty0, by0), np.minimum(ty1, by1)
        out = (tx1 < tx0) | (ty1 < ty0)  # not in the block: no tile
        tx1, ty1 = np.where(out, tx0 - 1, tx1), np.where(out, ty0, ty1)
        single &= ~out
    nx, ny = tx1 - tx0 + 1, ty1 - ty0 + 1
    idx = [np.flatnonzero(single)]
    txs, tys, gs = [tx0[single]], [ty0[single]], [geoms[single]]
    multi = np.flatnonzero(~single)
    if len(multi):
        count = (nx * ny)[multi]
        f = np.repeat(multi, count)
        k = np.arange(len(f)) - np.repeat(np.cumsum(count) - count, count)
        tx = tx0[f] + k % nx[f]
        ty = ty0[f] + k // nx[f]
        clipped = np.empty(len(f), dtype=object)
        keys = tx * (1 << 31) + ty
        order = np.argsort(keys, kind="stable")
        bounds = np.flatnonzero(np.r_[True, keys[order][1:] != keys[order][:-1], True])
        for s, e in zip(bounds[:-1], bounds[1:]):
            sel = order[s:e]
            x, y = int(tx[sel[0]]), int(ty[sel[0]])
            clipped[sel] = shapely.clip_by_rect(geoms[f[sel]], x * EXTENT - pad, size - (y + 1) * EXTENT - pad,
                                                (x + 1) * EXTENT + pad, size - y * EXTENT + pad)
        idx.append(f)
        txs.append(tx)
        tys.append(ty)
        gs.append(clipped)
    idx, tx, ty, g = (np.concatenate(a) for a in (idx, txs, tys, gs))
    # tile-local y is measured down from the tile's top edge: top = size - ty*E (in y-up units)
    top = size - ty * EXTENT
    return idx, tx, ty, g, top


def _encode_level(geoms_units: np.ndarray, z: int, maxzoom: int, layer: str, class_key: str,
                  class_values: np.ndarray, detail: dict[str, np.ndarray] | None,
                  ids: np.ndarray | None, block: tuple[int, int, int, int] | None = None,
                  class_order: dict | None = None) -> dict[tuple[int, int], bytes]:
    """All tiles of zoom ``z``: ``{(x, y): tile bytes}``.

    ``geoms_units`` are in extent units of ``maxzoom`` (y up); ``class_values``
    is one string per feature; ``detail`` (field → values) and ``ids`` go into
    the tiles too when given. ``block`` ``(x0, x1, y0, y1)``: only the tiles
    of those columns and rows (inclusive). ``class_order``: the order of the
    classes met so far in the level (value → rank), extended here; blocks
    encoded column by column, top to bottom, with one such dict give the
    bytes the whole level gives at once (a tile lists its classes in the
    order the level first met them).
    """
    scale = 1 << (maxzoom - z)
    geoms = geoms_units if scale == 1 else shapely.transform(geoms_units, lambda c: c / scale)
    if z < maxzoom:
        geoms = shapely.simplify(geoms, SIMPLIFY_PX * EXTENT / TILE_PX, preserve_topology=True)
    feat, tx, ty, g, top = _assign(geoms, z, block)
    # commands need tile-local coordinates: pass the tile's left edge and top edge (in tiles)
    values, n_geom, kept = _commands(g, tx.astype(np.float64), top / EXTENT)
    feat, tx, ty = feat[kept], tx[kept], ty[kept]
    order = np.lexsort((feat, ty, tx))
    # _commands returns streams in input order: reorder feature by feature
    g_start = np.cumsum(n_geom) - n_geom
    n_geom_o = n_geom[order]
    gather = np.repeat(g_start[order], n_geom_o) + (np.arange(int(n_geom_o.sum()))
                                                   - np.repeat(np.cumsum(n_geom_o) - n_geom_o, n_geom_o))
    values = values[gather]
    feat, tx, ty, n_geom = feat[order], tx[order], ty[order], n_geom_o
    nf = len(feat)
    if nf == 0:
        return {}

    # per tile: the table of values; each feature's tags index into it
    tile_key = tx * (1 << 31) + ty
    t_first = np.flatnonzero(np.r_[True, tile_key[1:] != tile_key[:-1]])
    t_of_f = np.cumsum(np.r_[True, tile_key[1:] != tile_key[:-1]]) - 1
    cls_codes, cls_uniques = pd.factorize(pd.Series(class_values[feat], dtype=object))
    if class_order is not None:  # ranks over the whole level, not this block
        for c in cls_uniques:
            class_order.setdefault(c, len(class_order))
        cls_codes = np.asarray([class_order[c] for c in cls_uniques], np.int64)[cls_codes]
        cls_uniques = list(class_order)
    pair = t_of_f * (len(cls_uniques) + 1) + cls_codes
    # value index of the class within its tile: rank of the class among the tile's classes
    upair, inv = np.unique(pair, return_inverse=True)
    up_tile = upair // (len(cls_uniques) + 1)
    up_rank = np.arange(len(upair)) - np.searchsorted(up_tile, up_tile)
    cls_idx = up_rank[inv]
    n_cls_in_tile = np.bincount(up_tile, minlength=len(t_first))
    tags = [np.zeros(nf, np.int64), cls_idx.astype(np.int64)]
    keys = [class_key]
    if detail:
        # each feature's own values follow the tile's class values, field after field
        pos_in_tile = np.arange(nf) - t_first[t_of_f]
        n_in_tile = np.diff(np.r_[t_first, nf])
        for i, name in enumerate(detail):
            tags.append(np.full(nf, i + 1, np.int64))
            tags.append(n_cls_in_tile[t_of_f] + i * n_in_tile[t_of_f] + pos_in_tile)
            keys.append(name)
    n_tags = len(tags)
    tag_vals = np.stack(tags, axis=1).ravel()  # per feature: key, value, key, value…

    # feature message as varints: [0x12 FL] [0x08 id]? [0x12 TL tags…] [0x18 3] [0x22 GL geometry…]
    with_id = ids is not None
    head = 2 + (2 if with_id else 0)
    per_f = head + 2 + n_tags + 2 + 2 + n_geom
    f_start = np.cumsum(per_f) - per_f
    v = np.zeros(int(per_f.sum()), np.int64)
    v[f_start] = 0x12
    if with_id:
        v[f_start + 2] = 0x08
        v[f_start + 3] = ids[feat]
    t0 = f_start + head
    v[t0] = 0x12
    tag_pos = np.repeat(t0 + 2, n_tags) + np.tile(np.arange(n_tags), nf)
    v[tag_pos] = tag_vals
    g0 = t0 + 2 + n_tags
    v[g0] = 0x18
    v[g0 + 1] = 3
    v[g0 + 2] = 0x22
    geo_pos = np.repeat(g0 + 4, n_geom) + (np.arange(len(values)) - np.repeat(np.cumsum(n_geom) - n_geom, n_geom))
    v[geo_pos] = values
    lens = _varint_lengths(v)
    # lengths of the packed fields, then of the feature (placeholders are 1 byte until set)
    csum = np.r_[0, np.cumsum(lens)]
    tl = csum[t0 + 2 + n_tags] - csum[t0 + 2]
    gl = csum[g0 + 4 + n_geom] - csum[g0 + 4]
    v[t0 + 1], v[g0 + 3] = tl, gl
    lens[t0 + 1], lens[g0 + 3] = _varint_lengths(tl), _varint_lengths(gl)
    csum = np.r_[0, np.cumsum(lens)]
    fl = csum[f_start + per_f] - csum[f_start + 2]
    v[f_start + 1] = fl
    lens[f_start + 1] = _varint_lengths(fl)
    data, starts = _encode_varints(v, lens)
    fbyte = np.r_[starts[f_start], len(data)]

    # the values of each tile: its classes, then each detail field's values in feature order
    ucls_vals = [_value(c) for c in cls_uniques]
    detail_cols = [_value_fields(detail[name])[feat] for name in detail] if detail else []
    key_bytes = b"".join(_field_bytes(3, k.encode()) for k in keys)
    head_bytes = _varint((15 << 3) | 0) + _varint(2) + _field_bytes(1, layer.encode())
    tail_extent = _varint((5 << 3) | 0) + _varint(EXTENT)
    tiles = {}
    up_start = np.r_[np.flatnonzero(np.r_[True, up_tile[1:] != up_tile[:-1]]), len(up_tile)]
    for t, s in enumerate(t_first):
        e = t_first[t + 1] if t + 1 < len(t_first) else nf
        cls_here = upair[up_start[t]:up_start[t + 1]] % (len(cls_uniques) + 1)
        vals = [_field_bytes(4, ucls_vals[c]) for c in cls_here]
        body = b"".join([head_bytes, data[fbyte[s]:fbyte[e]].tobytes(), key_bytes, *vals,
                         *(b"".join(col[s:e]) for col in detail_cols), tail_extent])
        tiles[(int(tx[s]), int(ty[s]))] = _field_bytes(3, body)
    return tiles


# --------------------------------------------------------------------------- the pyramid
def _units(gdf, maxzoom: int) -> np.ndarray:
    """Geometries in extent units of ``maxzoom``: Web Mercator scaled so the world is
    ``2**maxzoom * EXTENT`` wide, origin at its south-west corner, y up.

    CGCS2000 (EPSG:4490) is taken as WGS84 (they differ by centimetres; DESIGN.md
    section 5), so the projection is the spherical Mercator formula, applied
    to all coordinates in one pass.
    """
    g = gdf if gdf.crs is not None else gdf.set_crs(STORE_CRS)
    if not (g.crs.equals(STORE_CRS) or g.crs.equals("EPSG:4326")):
        g = g.to_crs(STORE_CRS)
    size = float((1 << maxzoom) * EXTENT)

    def project(c):
        lon, lat = c[:, 0], np.clip(c[:, 1], -85.0511, 85.0511)
        x = (lon + 180.0) / 360.0 * size
        y = (0.5 + np.log(np.tan(np.pi / 4 + np.radians(lat) / 2)) / (2 * np.pi)) * size
        return np.column_stack([x, y])

    return shapely.transform(np.asarray(g.geometry.values, dtype=object), project)


def _bitset(tiles: list[tuple[int, int]]) -> dict:
    xs = np.array([t[0] for t in tiles])
    ys = np.array([t[1] for t in tiles])
    x0, y0 = int(xs.min()), int(ys.min())
    w, h = int(xs.max()) - x0 + 1, int(ys.max()) - y0 + 1
    bits = np.zeros(w * h, np.uint8)
    bits[(ys - y0) * w + (xs - x0)] = 1
    return {"x0": x0, "y0": y0, "w": w, "h": h,
            "bits": base64.b64encode(np.packbits(bits, bitorder="little").tobytes()).decode()}


def tileset_key(content_key: str, class_field: str, detail_fields, levels=LEVELS) -> str:
    """The name of a pyramid: content, what the tiles carry, and the encoder's version."""
    text = "|".join([FORMAT, content_key, class_field, ",".join(detail_fields), ",".join(map(str, levels))])
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def find_tileset(out_dir, name: str) -> dict | None:
    """The manifest of an already built pyramid ``out_dir/name``, or None."""
    manifest = Path(out_dir) / name / "manifest.json"
    try:
        return json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def tileset_files(out_dir, name: str):
    """Every tile of the pyramid ``out_dir/name`` on disk: ``(z, x, y, bytes)`` (to store it elsewhere)."""
    root = Path(out_dir) / name
    for path in sorted(root.glob("*/*/*.pbf")):
        z, x = path.parent.parent.name, path.parent.name
        yield int(z), int(x), int(path.stem), path.read_bytes()


def write_tileset(out_dir, name: str, manifest: dict, tiles) -> dict:
    """Put a pyramid read from elsewhere (the store: another server built it) on disk as ``out_dir/name``,
    as :func:`build_tileset` leaves one: in a temporary folder renamed whole; its manifest returned."""
    out_dir = Path(out_dir)
    found = find_tileset(out_dir, name)
    if found:
        return found
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=out_dir))
    try:
        for z, x, y, data in tiles:
            d = tmp / str(int(z)) / str(int(x))
            d.mkdir(parents=True, exist_ok=True)
            (d / f"{int(y)}.pbf").write_bytes(data)
        (tmp / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
        try:
            os.replace(tmp, out_dir / name)
        except OSError:  # another process put the same pyramid there first
            pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return find_tileset(out_dir, name) or manifest


def build_tileset(
    gdf,
    out_dir,
    name: str,
    *,
    class_field: str,
    detail_fields=(),
    levels=LEVELS,
    layer: str = "layer",
    url_prefix: str = "/app/static/generated",
    keep: int = 4,
    value_labels: dict | None = None,
) -> dict:
    """Write the tile pyramid of a polygon layer to ``out_dir/name/{z}/{x}/{y}.pbf``; return its manifest.

    Skips the work when that pyramid exists already (``name`` should come
    from :func:`tileset_key`). Written to a temporary folder and renamed, so a
    half-written pyramid is never served; older pyramids with the same prefix
    (``name`` up to its last ``_``) beyond the ``keep`` newest are removed.

    The manifest: ``{"name", "url", "levels", "extent", "layer",
    "class_field", "detail_fields", "bounds": [[s, w], [n, e]], "tiles": {z:
    bitset}, "features", "bytes", "build_s", "value_labels": {lang: {value: label}}}``
    (``value_labels`` as given: how tooltips show coded values per language).
    """
    out_dir = Path(out_dir)
    found = find_tileset(out_dir, name)
    if found:
        return found
    t0 = time.perf_counter()
    levels = sorted(int(z) for z in levels)
    maxzoom = levels[-1]
    units = _units(gdf, maxzoom)
    classes = gdf[class_field].astype(object).where(gdf[class_field].notna(), "").to_numpy(dtype=object)
    detail = {f: _plain(gdf[f]) for f in detail_fields if f in gdf.columns and f != class_field} or None
    ids = np.arange(1, len(gdf) + 1, dtype=np.int64)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=out_dir))
    index, total = {}, 0
    try:
        for z in levels:
            deepest = z == maxzoom
            tiles = _encode_level(units, z, maxzoom, layer, class_field, classes, detail if deepest else None,
                                  ids if deepest else None)
            for (x, y), data in tiles.items():
                d = tmp / str(z) / str(x)
                d.mkdir(parents=True, exist_ok=True)
                (d / f"{y}.pbf").write_bytes(data)
                total += len(data)
            if tiles:
                index[str(z)] = _bitset(list(tiles))
        bounds = gdf.to_crs("EPSG:4326").total_bounds if len(gdf) else (0, 0, 0, 0)
        manifest = _manifest(name, url_prefix, levels, layer, class_field, detail, bounds, index,
                             len(gdf), total, t0, value_labels)
        _publish(tmp, out_dir / name, manifest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _prune(out_dir, name, keep)
    return find_tileset(out_dir, name) or manifest


def _manifest(name, url_prefix, levels, layer, class_field, detail, bounds, index, features, total, t0,
              value_labels) -> dict:
    """A pyramid's ``manifest.json``: where its tiles are, which exist, what they carry."""
    w, s, e, n = bounds
    return {
        "name": name, "url": f"{url_prefix.rstrip('/')}/{name}/{{z}}/{{x}}/{{y}}.pbf",
        "levels": levels, "extent": EXTENT, "layer": layer,
        "class_field": class_field, "detail_fields": list(detail or {}),
        "bounds": [[float(s), float(w)], [float(n), float(e)]], "tiles": index,
        "features": int(features), "bytes": int(total), "build_s": round(time.perf_counter() - t0, 3),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{time.time_ns() % 10**9:09d}Z",
        "value_labels": value_labels or {},
    }


def _publish(tmp: Path, final: Path, manifest: dict) -> None:
    """Write the manifest into the built folder ``tmp`` and rename it into place in one step."""
    (tmp / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    try:
        os.replace(tmp, final)
    except OSError:  # another process finished the same pyramid first
        pass


class _Column:
    """The values of one field over every batch, kept small: codes into the distinct values when a
    batch repeats them (land use, owner), the values themselves when it does not (parcel codes)."""

    def __init__(self):
        self.parts, self.rank = [], {}

    def add(self, values: np.ndarray) -> None:
        kind = pd.api.types.infer_dtype(values, skipna=False)
        if kind not in ("string", "floating", "integer", "boolean"):  # mixed: 1 and 1.0 are not one value
            self.parts.append(values)
            return
        codes, uniques = pd.factorize(values)
        if len(uniques) > len(values) // 2:
            self.parts.append(values)
            return
        rank = np.asarray([self.rank.setdefault((kind, u), len(self.rank)) for u in uniques.tolist()], np.int64)
        self.parts.append(rank[codes])

    def finish(self) -> np.ndarray:
        """All values, one per feature (object array)."""
        table = np.empty(len(self.rank), dtype=object)
        for (_, u), i in self.rank.items():
            table[i] = u
        out = [table[p] if p.dtype != object else p for p in self.parts]
        self.parts = []
        return np.concatenate(out) if out else np.zeros(0, dtype=object)


def _blocks(tx0: np.ndarray, tx1: np.ndarray, ty0: np.ndarray, ty1: np.ndarray, target: int):
    """Blocks of tiles of one level, column by column and top to bottom, each touched by about
    ``target`` features at most (one tile at least): ``(x, y0, y1, features)``, features ascending."""
    cnt = np.maximum(tx1 - tx0 + 1, 0)
    f = np.repeat(np.arange(len(cnt)), cnt)
    col = tx0[f] + (np.arange(len(f)) - np.repeat(np.cumsum(cnt) - cnt, cnt))
    order = np.argsort(col, kind="stable")
    f, col = f[order], col[order]
    cuts = np.flatnonzero(np.r_[True, col[1:] != col[:-1], True]) if len(col) else np.zeros(1, np.int64)
    for s, e in zip(cuts[:-1], cuts[1:]):
        fc = f[s:e]
        lo, hi = ty0[fc], ty1[fc]
        r_min = int(lo.min())
        span = int(hi.max()) - r_min + 1
        per_row = np.cumsum(np.bincount(lo - r_min, minlength=span + 1)
                            - np.bincount(hi + 1 - r_min, minlength=span + 1))[:span]
        r0, acc = 0, 0
        for r in range(span):
            if acc and acc + per_row[r] > target:
                yield int(col[s]), r_min + r0, r_min + r - 1, fc[(lo <= r_min + r - 1) & (hi >= r_min + r0)]
                r0, acc = r, 0
            acc += int(per_row[r])
        yield int(col[s]), r_min + r0, r_min + span - 1, fc[hi >= r_min + r0]


def build_tileset_in_blocks(
    batches,
    out_dir,
    name: str,
    *,
    class_field: str,
    detail_fields=(),
    levels=LEVELS,
    layer: str = "layer",
    url_prefix: str = "/app/static/generated",
    keep: int = 4,
    value_labels: dict | None = None,
    block_features: int = 40_000,
) -> dict:
    """:func:`build_tileset` for a layer read in batches (GeoDataFrames, in feature order), in bounded memory.

    The same pyramid, byte for byte, and the same manifest (bar ``build_s``
    and ``built_at``): the batches are read once and kept compact (each
    geometry as WKB in extent units, repeated values as codes); then each
    level is encoded a block of tiles at a time (one tile column, as many
    rows as about ``block_features`` features touch) and its tiles written
    out at once. Memory grows with the layer's compact copy (≈ 300 bytes a
    parcel) plus one block's work, not with a whole level's.
    """
    out_dir = Path(out_dir)
    found = find_tileset(out_dir, name)
    if found:
        return found
    t0 = time.perf_counter()
    levels = sorted(int(z) for z in levels)
    maxzoom = levels[-1]
    wkb, boxes, classes, detail = [], [], _Column(), None
    w = s = float("inf")
    e = n = float("-inf")
    for gdf in batches:
        if detail is None:
            detail = {f: _Column() for f in detail_fields if f in gdf.columns and f != class_field}
        if not len(gdf):
            continue
        units = _units(gdf, maxzoom)
        wkb.append(shapely.to_wkb(units))
        boxes.append(shapely.bounds(units))
        classes.add(gdf[class_field].astype(object).where(gdf[class_field].notna(), "").to_numpy(dtype=object))
        for f, col in detail.items():
            col.add(_plain(gdf[f]))
        bw, bs, be, bn = gdf.to_crs("EPSG:4326").total_bounds
        w, s, e, n = min(w, bw), min(s, bs), max(e, be), max(n, bn)
        del units, gdf
    wkb = np.concatenate(wkb) if wkb else np.zeros(0, dtype=object)
    boxes = np.concatenate(boxes) if boxes else np.zeros((0, 4))
    classes = classes.finish()
    detail = {f: col.finish() for f, col in (detail or {}).items()} or None
    count = len(wkb)
    ids = np.arange(1, count + 1, dtype=np.int64)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=out_dir))
    index, total = {}, 0
    try:
        for z in levels:
            deepest = z == maxzoom
            b = np.nan_to_num(boxes / (1 << (maxzoom - z)), nan=-1.0)  # an empty geometry: no tile
            ranges = _tile_ranges(b, z)
            empty = np.isnan(boxes[:, 0])
            ranges = (ranges[0], np.where(empty, ranges[0] - 1, ranges[1]), ranges[2], ranges[3])
            order, written = {}, []
            for x, y0, y1, sub in _blocks(*ranges, block_features):
                tiles = _encode_level(shapely.from_wkb(wkb[sub]), z, maxzoom, layer, class_field, classes[sub],
                                      {f: v[sub] for f, v in detail.items()} if deepest and detail else None,
                                      ids[sub] if deepest else None, block=(x, x, y0, y1), class_order=order)
                for (tx, ty), data in tiles.items():
                    d = tmp / str(z) / str(tx)
                    d.mkdir(parents=True, exist_ok=True)
                    (d / f"{ty}.pbf").write_bytes(data)
                    total += len(data)
                    written.append((tx, ty))
                del tiles
            if written:
                index[str(z)] = _bitset(written)
        manifest = _manifest(name, url_prefix, levels, layer, class_field, detail,
                             (w, s, e, n) if count else (0, 0, 0, 0), index, count, total, t0, value_labels)
        _publish(tmp, out_dir / name, manifest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _prune(out_dir, name, keep)
    return find_tileset(out_dir, name) or manifest


def _plain(series) -> np.ndarray:
    """Column values as Python scalars for tile values (NaN → empty string)."""
    out = []
    for v in series.tolist():
        if v is None or (isinstance(v, float) and math.isnan(v)):
            out.append("")
        elif isinstance(v, float):
            out.append(round(v, 2))
        else:
            out.append(v)
    return np.asarray(out, dtype=object)


def _prune(out_dir: Path, name: str, keep: int, min_age_s: float = 3600.0) -> None:
    """Remove pyramids with ``name``'s prefix beyond the ``keep`` newest, if older than ``min_age_s``
    (a page loaded a moment ago may still fetch tiles of the one it was built with)."""
    prefix = name.rsplit("_", 1)[0] + "_" if "_" in name else None
    if not prefix:
        return
    sets = sorted((p for p in out_dir.glob(prefix + "*") if p.is_dir() and p.name != name),
                  key=lambda p: p.stat().st_mtime, reverse=True)
    now = time.time()
    for old in sets[max(0, keep - 1):]:
        if now - old.stat().st_mtime > min_age_s:
            shutil.rmtree(old, ignore_errors=True)


# --------------------------------------------------------------------------- drawing (Leaflet)
# A GridLayer that fetches the pyramid's tiles, decodes them into typed arrays
# and fills one path per colour per tile. No curly-brace pairs that Jinja
# would read: this text goes through a Jinja template once.
def tile_layer_options(manifest: dict, spec, lang: str = "zh", *, value_labels: dict | None = None,
                       field_labels: dict | None = None, sep: str = "：", mu: str = "亩",
                       legend_title: str | None = None, gcj02: bool = False) -> dict:
    """The drawing options of a pyramid for a catalogue layer (``render = "tiles"``).

    Colours come from the catalogue (``classes``: value → ``{color, label_en}``),
    so restyling needs no rebuild; ``value_labels`` translates other values
    in the tooltip.
    """
    style = spec.style or {}
    classes = spec.classes or {}
    colors = {k: (v.get("color") if isinstance(v, dict) else str(v)) for k, v in classes.items()}
    labels = {k: ((v.get("label_en") if isinstance(v, dict) else None) or k) if lang == "en" else k
              for k, v in classes.items()}
    levels = sorted(int(z) for z in manifest["tiles"])
    tooltip = []
    for f in spec.tooltip:
        label = (field_labels or {}).get(f, f)
        tooltip.append([label, f, "area" if f == "area_m2" else ""])
    return {
        "url": manifest["url"], "tiles": manifest["tiles"], "levels": levels, "layer": manifest["layer"],
        "pane": "ratlasTiles", "minZoom": max(0, levels[0] - 1) if levels else 0,
        "classField": spec.class_field or manifest.get("class_field"),
        "colors": colors, "defaultColor": style.get("fill_color", "#cccccc"), "labels": labels,
        "valueLabels": value_labels if value_labels is not None else manifest.get("value_labels", {}).get(lang, {}),
        "fillOpacity": float(style.get("fill_opacity", 0.45)),
        "strokeColor": style.get("color", "#666666"), "strokeWidth": float(style.get("weight", 0.6)),
        "strokeOpacity": float(style.get("opacity", 0.8)), "strokeMinZoom": int(style.get("stroke_min_zoom", 15)),
        "tooltip": tooltip, "tooltipMinZoom": int(style.get("tooltip_min_zoom", 14)),
        "title": spec.label(lang), "sep": sep, "mu": mu,
        "legend": {"title": legend_title or spec.label(lang),
                   "items": [{"fill": colors[k], "label": labels[k]} for k in classes]} if classes else None,
    }
