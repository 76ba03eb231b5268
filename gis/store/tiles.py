"""Tile pyramids kept in the store, for app servers that do not share a disk.

The cadastre's vector tiles are built into each server's ``static/`` folder
(Streamlit serves files there, not routes). When several servers run over one
PostGIS (README: several app servers), the first one to build a pyramid also
puts it here — its manifest and every tile — and the others copy it onto their
own disk instead of building it again (≈4 s and ≈370 MB of memory for 100,000
parcels, ≈45 s and ≈1.1 GB for 1,000,000; copying takes ≈0.6 s and ≈1.5 s): a
tile built by one server is served by the others. Pyramids go in and out
:data:`ROWS` tiles at a time, and the build reads the cadastre in slices
(:meth:`TilesMixin.cadastre_batches`), so neither holds a large one whole. A GeoPackage
store has one server; ``shares_tiles`` is False there and nothing is stored.

``tile_pyramids`` holds one row per complete pyramid (its manifest, written
last, in the same transaction as its tiles); ``tile_pyramid_tiles`` the tiles.
"""
from __future__ import annotations

import json

import geopandas as gpd
import pandas as pd
import shapely

from gis.base.units import STORE_CRS
from gis.store.base import utcnow_iso
from gis.store.cadastre import TABLE

KEEP = 4  # pyramids of one layer kept (older contents of the cadastre are dropped)
ROWS = 500  # tiles per round trip when storing or copying a pyramid (≈ 5 MB at most)


class TilesMixin:
    """Store, find and read whole tile pyramids (``{(z, x, y): bytes}`` plus a manifest)."""

    #: whether servers of this store share pyramids through it (PostGIS: True)
    shares_tiles = False

    def tile_pyramid(self, name: str) -> dict | None:
        """The manifest of the stored pyramid ``name``, or None (not stored, or not a sharing store)."""
        if not self.shares_tiles:
            return None
        with self._connect() as con:
            row = con.execute("SELECT manifest FROM tile_pyramids WHERE name = ?", (name,)).fetchone()
        return json.loads(row[0]) if row else None

    def tile_pyramid_tiles(self, name: str):
        """Every tile of the stored pyramid ``name``: ``(z, x, y, bytes)``, read :data:`ROWS` at a time
        (a pyramid of a million parcels is ≈ 200 MB: never all in memory)."""
        last = (-1, -1, -1)
        while True:
            with self._connect() as con:
                rows = con.execute("SELECT z, x, y, data FROM tile_pyramid_tiles WHERE name = ?"
                                   " AND (z, x, y) > (?, ?, ?) ORDER BY z, x, y LIMIT ?",  # its UNIQUE index
                                   (name, *last, ROWS)).fetchall()
            for z, x, y, data in rows:
                yield int(z), int(x), int(y), bytes(data)
            if len(rows) < ROWS:
                return
            last = tuple(int(v) for v in tuple(rows[-1])[:3])

    def cadastre_batches(self, rows: int = 50_000):
        """The cadastre as GeoDataFrames (EPSG:4490) of at most ``rows`` parcels, in feature order
        (``fid``), every column but the id: what ``layer("cadastre")`` gives, a slice at a time, so that
        a tile build never holds a million parcels' rows at once. Nothing without a cadastre."""
        if not self.has_cadastre():
            return
        last = 0
        while True:
            with self._connect() as con:
                cols = [c for c in self._columns(con, TABLE) if c != "fid"]
                geom = "geom" if "geom" in cols else self._cadastre_geometry_column(con)
                cols = [c for c in cols if c != geom]
                sel = ", ".join(f'"{c}"' for c in cols)
                got = [tuple(r) for r in con.execute(f'SELECT fid, {sel}, "{geom}" FROM "{TABLE}" WHERE fid > ?'
                                                     " ORDER BY fid LIMIT ?", (last, rows)).fetchall()]
            if not got:
                return
            last = int(got[-1][0])
            df = pd.DataFrame([r[1:-1] for r in got], columns=cols)
            geoms = shapely.from_wkb([self._wkb_of(r[-1]) for r in got])
            del got
            yield gpd.GeoDataFrame(df, geometry=geoms, crs=STORE_CRS)

    def save_tile_pyramid(self, name: str, manifest: dict, tiles) -> bool:
        """Store a complete pyramid (``tiles``: ``(z, x, y, bytes)``) in one transaction; False when
        this store does not share pyramids or another server stored the same one first. Older
        pyramids of the same layer (``name`` up to its last ``_``) beyond the newest :data:`KEEP` go."""
        if not self.shares_tiles:
            return False
        prefix = name.rsplit("_", 1)[0] + "_"
        with self._connect(write=True) as con:
            if con.execute("SELECT 1 FROM tile_pyramids WHERE name = ?", (name,)).fetchone():
                return False
            con.execute("DELETE FROM tile_pyramid_tiles WHERE name = ?", (name,))  # a half-stored one, if any
            batch = []
            for z, x, y, data in tiles:  # streamed: a pyramid is read from disk a few hundred tiles at a time
                batch.append((name, int(z), int(x), int(y), bytes(data)))
                if len(batch) >= ROWS:
                    con.executemany("INSERT INTO tile_pyramid_tiles (name, z, x, y, data) VALUES (?, ?, ?, ?, ?)", batch)
                    batch = []
            if batch:
                con.executemany("INSERT INTO tile_pyramid_tiles (name, z, x, y, data) VALUES (?, ?, ?, ?, ?)", batch)
            con.execute("INSERT INTO tile_pyramids (name, manifest, created_at) VALUES (?, ?, ?)",
                        (name, json.dumps(manifest, ensure_ascii=False), utcnow_iso()))
            old = [r[0] for r in con.execute("SELECT name FROM tile_pyramids WHERE name LIKE ? ESCAPE '\\' ORDER BY id DESC",
                                             (prefix.replace("_", r"\_") + "%",)).fetchall()][KEEP:]
            for gone in old:
                con.execute("DELETE FROM tile_pyramid_tiles WHERE name = ?", (gone,))
                con.execute("DELETE FROM tile_pyramids WHERE name = ?", (gone,))
        return True
