"""The embedded store: one GeoPackage holding the layers, the tracked parcels
with their current stage, and the append-only stage event log.

Layers are read through pyogrio (GDAL); writes go through SQLite directly, each
in one ``BEGIN IMMEDIATE`` transaction that appends the event, updates the
parcel's current stage beside it and bumps ``meta.data_version`` — so a write
lands whole or not at all, and caches can key on the version. Only attribute
columns are updated, never geometry, so GDAL's R-tree triggers stay untouched
and the file still opens in QGIS (see docs/DATA_MODEL.md).
"""
from __future__ import annotations

import datetime as dt
import os
import sqlite3
import threading
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio

from gis.base import clock
from gis.base.errors import InputError, NotFoundError
from gis.model.pipelines import Catalog, load_catalog
from gis.store import schema
from gis.store.gpkg import register_functions

CONTEXT_LAYERS = ("district", "sea", "zones", "devzone", "parks", "villages", "points")
PARCEL_FIELDS = (
    "code", "name", "kind", "zone", "village", "park", "unit", "owner", "land_use",
    "stage", "stage_date", "blocked", "blocked_reason", "note", "area_m2",
    "version", "updated_at", "updated_by",
)


@dataclass(frozen=True)
class StageEvent:
    """One line of a parcel's history."""

    id: int
    parcel: str
    action: str
    from_stage: str | None
    to_stage: str | None
    event_date: str
    recorded_at: str
    recorded_by: str
    unit: str | None = None
    note: str | None = None
    reason: str | None = None
    share: float | None = None
    claimed_by: str | None = None  # a carried event's author and time as its file claimed them (not believed)
    claimed_at: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def utcnow_iso() -> str:
    """Now, in UTC, as the ISO 8601 text stored in ``recorded_at``, ``at`` and ``updated_at``."""
    return clock.utcnow().isoformat(timespec="seconds")


def parse_date(value: str | dt.date | None, *, today: dt.date | None = None) -> dt.date:
    """A business date from ``YYYY-MM-DD`` (default today).

    Raises:
        InputError: not a valid date.
    """
    if value is None or value == "":
        return today or clock.office_today()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise InputError("error.bad_date", value=str(value)) from None


_HELD = threading.local()  # per thread (a Streamlit session runs in its own): {id(store): (pid, connection, memo)}


def _held(store):
    """The connection ``one_connection`` holds for ``store`` in this thread, if any (never
    one inherited by a forked worker: a connection must not cross a fork)."""
    pid, con, _ = getattr(_HELD, "stores", {}).get(id(store), (None, None, None))
    return con if pid == os.getpid() else None


def _run_memo(store) -> dict | None:
    """What reads inside ``one_connection`` may keep for its length (a page run asks for the data version,
    the signed-in user, the zones' names a dozen times each; on PostGIS every question is a round trip):
    emptied by every write through it; None outside ``one_connection``."""
    pid, _, memo = getattr(_HELD, "stores", {}).get(id(store), (None, None, None))
    return memo if pid == os.getpid() else None


class StoreBase:
    """Opening a store, its migrations, its layers and meta: the primitives every concern builds on.

    This is the GeoPackage back end; ``PostgisStore`` (gis/store/pg.py) overrides
    the primitives (connecting, reading geometry, listing tables) and nothing else.
    """

    backend = "gpkg"

    def __init__(self, path: Path | str, catalog: Catalog | None = None):
        self.path = Path(path)
        if not self.path.exists():
            raise NotFoundError("error.no_store", path=str(self.path))
        self.catalog = catalog or load_catalog()
        self._prepare()

    @property
    def location(self) -> str:
        """Where the data lives, for messages and cache keys."""
        return str(self.path)

    @property
    def where(self) -> str:
        """What ``open_store_at`` opens this store from (a path, or the database URL with its credentials)."""
        return str(self.path)

    @contextmanager
    def _connect(self, write: bool = False):
        """A connection for one read (autocommit) or one write (a transaction: all or nothing).

        Inside ``one_connection()`` every call of this thread shares one connection."""
        held = _held(self)
        if held is not None:
            memo = _run_memo(self)
            if write and memo:
                memo.clear()
            try:
                with self._use(held, write) as con:
                    yield con
            finally:
                if write and memo:
                    memo.clear()  # what was read during the write, too
            return
        with self._open() as raw, self._use(raw, write) as con:
            yield con

    @contextmanager
    def one_connection(self):
        """Everything this thread reads and writes inside uses one connection: a page run
        of the app asks a dozen questions, and opening a connection for each is most of
        their cost (on PostGIS, with a pool, a check-out for each). Re-entrant."""
        if _held(self) is not None:
            yield
            return
        with self._open() as raw:
            _HELD.stores = {**getattr(_HELD, "stores", {}), id(self): (os.getpid(), raw, {})}
            try:
                yield
            finally:
                _HELD.stores.pop(id(self), None)

    @contextmanager
    def _open(self):
        """A new connection to the GeoPackage (closed at the end)."""
        con = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            con.row_factory = sqlite3.Row
            register_functions(con)
            con.execute("PRAGMA busy_timeout = 30000")
            yield con
        except sqlite3.DatabaseError as e:
            raise InputError("error.bad_store", path=str(self.path), detail=str(e)) from e
        finally:
            con.close()

    @contextmanager
    def _use(self, con, write: bool):
        try:
            if write:
                con.execute("BEGIN IMMEDIATE")
                try:
                    yield con
                except BaseException:
                    con.execute("ROLLBACK")
                    raise
                else:
                    con.execute("COMMIT")
            else:
                yield con
        except sqlite3.DatabaseError as e:
            raise InputError("error.bad_store", path=str(self.path), detail=str(e)) from e

    def _tables(self, con) -> set[str]:
        return {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}

    def _prepare(self) -> None:
        """Check the layout and apply pending migrations (one transaction)."""
        with self._connect() as con:
            # WAL: readers (GDAL, other planners) never wait for a writer
            con.execute("PRAGMA journal_mode = WAL")
        with self._connect(write=True) as con:
            missing = {"parcels", "stage_events", "meta"} - self._tables(con)
            if missing:
                raise InputError("error.bad_store", path=self.location, detail="missing " + ", ".join(sorted(missing)))
            con.execute("CREATE UNIQUE INDEX IF NOT EXISTS parcels_code_idx ON parcels(code)")
            con.execute("CREATE INDEX IF NOT EXISTS stage_events_parcel_idx ON stage_events(parcel)")
            self._migrate(con)

    def _migrate(self, con) -> None:
        row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        current = int(row[0]) if row else 1
        todo = schema.pending(current)
        for version in todo:
            for sql in schema.statements(version, self.backend):
                con.execute(sql)
        if todo:
            if row:
                con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(todo[-1]),))
            else:
                con.execute("INSERT INTO meta (key, value) VALUES ('schema_version', ?)", (str(todo[-1]),))

    def _columns(self, con, table: str) -> list[str]:
        return [r[1] for r in con.execute(f'PRAGMA table_info("{table}")')]

    def _touch(self, con, tables=("parcels", "stage_events", "meta")) -> None:
        """Record the change time GeoPackage readers look at (gpkg_contents.last_change)."""
        names = ", ".join(f"'{t}'" for t in tables)
        con.execute("UPDATE gpkg_contents SET last_change = strftime('%Y-%m-%dT%H:%M:%fZ','now')"
                    f" WHERE table_name IN ({names})")

    def _read(self, table: str, geometry: bool = True):
        # dates stay ISO text as the store writes them, also in a GeoPackage whose fields are DATE /
        # DATETIME (an export of ours, opened as a store or loaded into PostGIS)
        return pyogrio.read_dataframe(self.path, layer=table, read_geometry=geometry, fid_as_index=False,
                                      datetime_as_string=True)

    def _read_events(self) -> pd.DataFrame:
        """The whole event table, ordered by id: read through GDAL's Arrow stream (a million rows in a second)."""
        df = pyogrio.read_dataframe(self.path, layer="stage_events", read_geometry=False, fid_as_index=True,
                                    use_arrow=True)
        df.index.name = "id"
        return df.reset_index().sort_values("id", kind="stable").reset_index(drop=True)

    def _memoized(self, key, read):
        """``read()``, kept for the rest of ``one_connection`` (see :func:`_run_memo`); callers get a shared
        answer and must not change it."""
        memo = _run_memo(self)
        if memo is None:
            return read()
        if key not in memo:
            memo[key] = read()
        return memo[key]

    def meta(self) -> dict[str, str]:
        def read():
            with self._connect() as con:
                return {r["key"]: r["value"] for r in con.execute("SELECT key, value FROM meta")}
        return dict(self._memoized("meta", read))

    def data_version(self) -> int:
        """Bumped by every write; what caches key on."""
        def read():
            with self._connect() as con:
                row = con.execute("SELECT value FROM meta WHERE key = 'data_version'").fetchone()
            return int(row[0]) if row else 0
        return self._memoized("data_version", read)

    @property
    def is_demo(self) -> bool:
        return self.meta().get("demo") == "1"

    def layer_names(self) -> list[str]:
        return [name for name, _ in pyogrio.list_layers(self.path)]

    def layer(self, name: str) -> gpd.GeoDataFrame:
        """A spatial layer as a GeoDataFrame (EPSG:4490).

        Raises:
            NotFoundError: no such layer in the store.
        """
        if name not in self.layer_names():
            raise NotFoundError("error.no_layer", layer=name)
        return self._read(name)

    def context(self) -> dict[str, gpd.GeoDataFrame]:
        """Every context layer that the store has (zones, villages, parks, …)."""
        present = set(self.layer_names())  # once: layer() would list the layers again for each
        return {n: self._read(n) for n in CONTEXT_LAYERS if n in present}

    def attributes(self, table: str) -> dict[str, dict]:
        """``{code: {field: value}}`` of zones, villages, parks or points, without reading geometry.

        Raises:
            NotFoundError: not one of those tables.
        """
        if table not in ("zones", "villages", "parks", "points", "devzone"):
            raise NotFoundError("error.no_layer", layer=table)

        def read():
            with self._connect() as con:
                cols = [c for c in self._columns(con, table) if c not in ("fid", "geom")]
                rows = con.execute(f'SELECT {", ".join(cols)} FROM "{table}"').fetchall()
            return {r["code"]: dict(r) for r in rows}
        return {c: dict(r) for c, r in self._memoized(("attributes", table), read).items()}

    def names(self, table: str) -> dict[str, tuple[str, str]]:
        """``{code: (name, name_en)}`` of zones, villages or parks."""
        return {c: (r.get("name"), r.get("name_en")) for c, r in self.attributes(table).items()}

    def _bump(self, con) -> None:
        con.execute("UPDATE meta SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) WHERE key = 'data_version'")
        self._touch(con)
