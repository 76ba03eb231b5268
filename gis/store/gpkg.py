"""The few GeoPackage SQL functions that GDAL's R-tree triggers call.

GDAL creates triggers on every feature table that call ``ST_IsEmpty``,
``ST_MinX`` and friends; plain SQLite has no such functions, so even an
UPDATE of an attribute column fails to prepare. Registering them on our
connections lets the store write with the standard library's sqlite3 while the
file stays a valid GeoPackage that GDAL and QGIS read.
"""
from __future__ import annotations

import sqlite3
import struct

import numpy as np
import shapely

_ENVELOPE_DOUBLES = {0: 0, 1: 4, 2: 6, 3: 6, 4: 8}
_GPB_HEADER = struct.Struct("<2sBBi4d")
STORE_SRS_ID = 4490


def gpkg_blobs(geoms, srs_id: int = STORE_SRS_ID) -> list[bytes]:
    """GeoPackage binary geometries: 'GP', version 0, flags (little-endian, xy envelope), srs id, envelope, WKB."""
    geoms = np.asarray(geoms, dtype=object)
    wkb = shapely.to_wkb(geoms, byte_order=1, output_dimension=2)
    bounds = shapely.bounds(geoms).tolist()
    pack = _GPB_HEADER.pack
    return [pack(b"GP", 0, 0b011, srs_id, b[0], b[2], b[1], b[3]) + w for b, w in zip(bounds, wkb)]


def blobs_from_wkb(wkbs, srs_id: int = STORE_SRS_ID) -> list[bytes]:
    """GeoPackage binary geometries of WKB geometries."""
    return gpkg_blobs(shapely.from_wkb(np.asarray([bytes(w) for w in wkbs], dtype=object)), srs_id)


def parse_blob(blob: bytes | None):
    """(is_empty, envelope or None, wkb offset) of a GeoPackage binary geometry."""
    if blob is None or len(blob) < 8 or blob[:2] != b"GP":
        return True, None, 0
    flags = blob[3]
    order = "<" if flags & 1 else ">"
    n = _ENVELOPE_DOUBLES.get((flags >> 1) & 7, 0)
    empty = bool(flags & 0x10)
    env = struct.unpack_from(order + "d" * n, blob, 8) if n else None
    return empty, env, 8 + 8 * n


def blob_bounds(blob):
    empty, env, offset = parse_blob(blob)
    if empty or blob is None:
        return None
    if env:
        return env[0], env[2], env[1], env[3]  # minx, miny, maxx, maxy
    geom = shapely.from_wkb(bytes(blob[offset:]))
    return None if geom.is_empty else geom.bounds


def _is_empty(blob):
    return 1 if parse_blob(blob)[0] else 0


def _bound(i):
    def f(blob):
        b = blob_bounds(blob)
        return None if b is None else b[i]
    return f


def register_functions(con: sqlite3.Connection) -> None:
    con.create_function("ST_IsEmpty", 1, _is_empty, deterministic=True)
    con.create_function("ST_MinX", 1, _bound(0), deterministic=True)
    con.create_function("ST_MinY", 1, _bound(1), deterministic=True)
    con.create_function("ST_MaxX", 1, _bound(2), deterministic=True)
    con.create_function("ST_MaxY", 1, _bound(3), deterministic=True)
