"""Tile pyramids kept in the store, for app servers that do not share a disk.

The cadastre's vector tiles are built into each server's ``static/`` folder
(Streamlit serves files there, not routes). When several servers run over one
PostGIS (README: several app servers), the first one to build a pyramid also
puts it here — its manifest and every tile — and the others copy it onto their
own disk instead of building it again (≈6 s and ≈800 MB of memory for 100,000
parcels): a tile built by one server is served by the others. A GeoPackage
store has one server; ``shares_tiles`` is False there and nothing is stored.

``tile_pyramids`` holds one row per complete pyramid (its manifest, written
last, in the same transaction as its tiles); ``tile_pyramid_tiles`` the tiles.
"""
from __future__ import annotations

import json

from gis.store.base import utcnow_iso

KEEP = 4  # pyramids of one layer kept (older contents of the cadastre are dropped)


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
        """Every tile of the stored pyramid ``name``: ``(z, x, y, bytes)``, one row at a time."""
        with self._connect() as con:
            for z, x, y, data in con.execute("SELECT z, x, y, data FROM tile_pyramid_tiles WHERE name = ?",
                                             (name,)).fetchall():
                yield int(z), int(x), int(y), bytes(data)

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
            con.executemany("INSERT INTO tile_pyramid_tiles (name, z, x, y, data) VALUES (?, ?, ?, ?, ?)",
                            [(name, int(z), int(x), int(y), bytes(data)) for z, x, y, data in tiles])
            con.execute("INSERT INTO tile_pyramids (name, manifest, created_at) VALUES (?, ?, ?)",
                        (name, json.dumps(manifest, ensure_ascii=False), utcnow_iso()))
            old = [r[0] for r in con.execute("SELECT name FROM tile_pyramids WHERE name LIKE ? ESCAPE '\\' ORDER BY id DESC",
                                             (prefix.replace("_", r"\_") + "%",)).fetchall()][KEEP:]
            for gone in old:
                con.execute("DELETE FROM tile_pyramid_tiles WHERE name = ?", (gone,))
                con.execute("DELETE FROM tile_pyramids WHERE name = ?", (gone,))
        return True
