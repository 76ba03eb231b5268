"""The tracked parcels kept in memory by an app process, refreshed by what changed.

The app draws every parcel on each run; reading them (2,470 on the demo, with
geometry) and building their spatial index costs ~70 ms, and every write bumps
the store's data version. ``LiveParcels`` reads the table once, then, when the
version moves on, reads again only the parcels whose ``updated_at`` is recent
(every write to a parcel sets it: a stage update, a block, a note, an import)
and puts them in place; the spatial index is rebuilt only when a geometry did
change. A write made by another app server over the same PostGIS shows at the
next refresh the same way.
"""
from __future__ import annotations

import datetime as dt
import threading

import geopandas as gpd
import pandas as pd
import shapely

from gis.model.spatial import ParcelIndex

# How far back from the newest ``updated_at`` held a refresh looks: app servers'
# clocks may differ by that much and a write still be seen.
CLOCK_SLACK = dt.timedelta(minutes=10)
MAX_CHANGED = 500  # more changed parcels than this (an import): read the whole table again


class LiveParcels:
    """The store's parcels (a GeoDataFrame) and their ``ParcelIndex``, at the store's latest version.

    Thread-safe; the frames it hands out are never modified afterwards (a refresh
    makes a new one), so callers may keep them.
    """

    def __init__(self, store):
        self.store = store
        self._lock = threading.Lock()
        self.version = -1
        self.table = None
        self.index = None
        self.full_reads = 0  # how often the whole table was read (tests and benchmarks look)
        self.refreshes = 0

    def current(self, version: int | None = None):
        """``(table, index)`` at the store's current version (``version``: one the caller already knows)."""
        with self._lock:
            v = self.store.data_version() if version is None else version
            if self.table is None:
                self._read_all(v)
            elif v != self.version:
                self._refresh(v)
            return self.table, self.index

    def _read_all(self, version: int) -> None:
        table = self.store.parcels()
        self.table, self.index, self.version = table, ParcelIndex(table), version
        self.full_reads += 1

    def _refresh(self, version: int) -> None:
        stamp = self._stamp()
        changed = self.store.parcels_updated_since(stamp) if stamp else None
        if changed is None or len(changed) > MAX_CHANGED or self.store.parcel_count() != len(self.table):
            self._read_all(version)
            return
        table = self.table
        pos = pd.Series(range(len(table)), index=table["code"].to_numpy())
        rows = pos.reindex(changed["code"].to_numpy())
        if rows.isna().any():  # a parcel we do not hold (renamed, replaced): start again
            self._read_all(version)
            return
        rows = rows.astype(int).to_numpy()
        geoms = table.geometry.values
        moved = not all(shapely.equals_exact(geoms[rows], changed.geometry.values, tolerance=0))
        columns = {}
        for col in table.columns:
            values = table[col].to_numpy()
            if col in changed.columns:
                values = values.copy()
                values[rows] = changed[col].to_numpy()
            columns[col] = values
        self.table = gpd.GeoDataFrame(columns, geometry=table.geometry.name, crs=table.crs)
        self.version = version
        if moved:
            self.index = ParcelIndex(self.table)
        self.refreshes += 1

    def _stamp(self) -> str | None:
        """The oldest ``updated_at`` a refresh must look at: the newest held, less the clock slack."""
        if "updated_at" not in self.table.columns:
            return None
        held = [v for v in self.table["updated_at"].to_numpy() if isinstance(v, str) and v]
        if not held:
            return None
        newest = max(held)
        try:
            t = dt.datetime.fromisoformat(newest)
        except ValueError:
            return None
        return (t - CLOCK_SLACK).isoformat(timespec="seconds")
