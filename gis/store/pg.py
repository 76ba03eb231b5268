"""The PostgreSQL/PostGIS back end: the same store, for an office that shares one server.

Every rule (transitions, permissions, audit, versions) lives in ``Store``;
this class supplies the primitives: a psycopg connection whose transaction
locks the parcel row it changes (``SELECT … FOR UPDATE``), geometry read as WKB,
table listing from the catalogue. SQL is written once with ``?`` placeholders.
"""
from __future__ import annotations

import io
import os
import weakref
from contextlib import contextmanager

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import shapely
from psycopg_pool import ConnectionPool, PoolTimeout
from pyarrow import csv as pacsv

from gis.base.errors import InputError
from gis.model.eventlog import EventLog
from gis.model.pipelines import Catalog, load_catalog
from gis.store import schema
from gis.store.base import PARCEL_FIELDS
from gis.store.cadastre import FIELDS as CADASTRE_FIELDS
from gis.store.cadastre import TABLE as CADASTRE
from gis.store.store import Store


class _Row(dict):
    """A dict row that also answers ``row[0]``, like sqlite3.Row."""

    def __getitem__(self, key):
        if isinstance(key, int):
            return list(self.values())[key]
        return super().__getitem__(key)

    def __iter__(self):  # tuple(row) gives values, as for sqlite3.Row
        return iter(self.values())

    def keys(self):
        return super().keys()


def _row_factory(cursor):
    names = [c.name for c in cursor.description] if cursor.description else []
    return lambda values: _Row(zip(names, values))


class _Con:
    """psycopg with sqlite3's ``?`` placeholders and row access."""

    def __init__(self, con: psycopg.Connection):
        self.con = con

    def execute(self, sql: str, params=()):
        cur = self.con.cursor(row_factory=_row_factory)
        if params:
            cur.execute(sql.replace("?", "%s"), tuple(params))
        else:  # no placeholders: leave '%' in the SQL alone (plpgsql RAISE formats)
            cur.execute(sql)
        return cur

    def executemany(self, sql: str, rows):
        cur = self.con.cursor()
        cur.executemany(sql.replace("?", "%s"), list(rows))
        return cur


def _redact(url: str) -> str:
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "?"
    return f"postgresql://{info.get('user', '')}@{info.get('host', '')}:{info.get('port', '')}/{info.get('dbname', '')}"


@contextmanager
def raw_connection(url: str):
    """A connection to the database at ``url`` that does not open it as a store (no check, no migration):
    to read what a damaged store still holds before a restore. Each statement commits on its own.

    Raises:
        InputError: the database cannot be reached.
    """
    try:
        con = psycopg.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.Error as e:
        raise InputError("error.no_database", detail=str(e).strip().splitlines()[0]) from e
    try:
        yield _Con(con)
    finally:
        con.close()


POOL_SIZE = 8  # connections per app process: Streamlit serves each session in its own thread


def _close_pools(pools: dict) -> None:
    """Close the pool this process opened (one inherited through a fork is only dropped:
    closing it would end the parent's connections)."""
    pool = pools.pop(os.getpid(), None)
    pools.clear()
    if pool is not None:
        pool.close()


class PostgisStore(Store):
    backend = "pg"
    shares_tiles = True  # several app servers over one database: a pyramid built by one serves all
    _lock = " FOR UPDATE"

    def __init__(self, url: str, catalog: Catalog | None = None, create: bool = False):
        self.url = url
        self.path = None
        self._pools: dict[int, ConnectionPool] = {}
        # a store nobody holds any more gives its connections back (tests make hundreds of stores)
        weakref.finalize(self, _close_pools, self._pools)
        self.catalog = catalog or load_catalog()
        if create:
            self.init_schema()
        self._prepare()

    def __getstate__(self) -> dict:
        """A store crosses into a child process (an isolated import) without its pool: the child opens its own."""
        state = dict(self.__dict__)
        state["_pools"] = {}
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._pools = {}
        weakref.finalize(self, _close_pools, self._pools)

    @property
    def location(self) -> str:
        return _redact(self.url)

    @property
    def where(self) -> str:
        return self.url

    def _pool(self) -> ConnectionPool:
        """This process's pool of connections to the database (a forked worker opens its own:
        a connection must not cross a fork, and the pool's threads do not).

        Raises:
            InputError: the database cannot be reached (its own words, at once: the pool
                would keep retrying in the background).
        """
        pid = os.getpid()
        pool = self._pools.get(pid)
        if pool is None:
            try:
                psycopg.connect(self.url, connect_timeout=10).close()
            except psycopg.Error as e:
                raise InputError("error.no_database", detail=str(e).strip().splitlines()[0]) from e
            pool = ConnectionPool(self.url, min_size=1, max_size=POOL_SIZE, open=False, timeout=30,
                                  kwargs={"autocommit": True, "connect_timeout": 10},
                                  check=ConnectionPool.check_connection)
            pool.open(wait=False)
            self._pools[pid] = pool
        return pool

    @contextmanager
    def _open(self):
        """A connection checked out of the pool (autocommit; returned at the end)."""
        pool = self._pool()
        try:
            cm = pool.connection()
            con = cm.__enter__()
        except (psycopg.Error, PoolTimeout) as e:
            detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise InputError("error.no_database", detail=detail) from e
        try:
            yield con
        except BaseException as e:
            cm.__exit__(type(e), e, e.__traceback__)
            raise
        else:
            cm.__exit__(None, None, None)

    @contextmanager
    def _use(self, con, write: bool):
        try:
            if write:
                with con.transaction():
                    yield _Con(con)
            else:
                yield _Con(con)
        except psycopg.Error as e:
            raise InputError("error.bad_store", path=self.location, detail=str(e).strip().splitlines()[0]) from e

    def close(self) -> None:
        """Close this process's connections now (else when the store is no longer referenced)."""
        _close_pools(self._pools)

    def _tables(self, con) -> set[str]:
        return {r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()")}

    def init_schema(self) -> None:
        """Create the base layout on an empty database (migration 1 and on run on open)."""
        with self._connect(write=True) as con:
            if "meta" not in self._tables(con):
                con.execute("CREATE EXTENSION IF NOT EXISTS postgis")
                for sql in schema.statements(1, "pg"):
                    con.execute(sql)

    def _prepare(self) -> None:
        with self._connect(write=True) as con:
            missing = {"parcels", "stage_events", "meta"} - self._tables(con)
            if missing:
                raise InputError("error.bad_store", path=self.location,
                                 detail="missing " + ", ".join(sorted(missing)) + " (renewal init-db)")
            self._migrate(con)

    def _columns(self, con, table: str) -> list[str]:
        return [r[0] for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema()"
            " AND table_name = ? ORDER BY ordinal_position", (table,))]

    def _touch(self, con, tables=()) -> None:
        pass

    def layer_names(self) -> list[str]:
        with self._connect() as con:
            return [r[0] for r in con.execute(
                "SELECT f_table_name FROM geometry_columns WHERE f_table_schema = current_schema()"
                " ORDER BY f_table_name")] + ["stage_events", "meta"]

    def _read(self, table: str, geometry: bool = True):
        with self._connect() as con:
            every = self._columns(con, table)
            # as pyogrio reads a GeoPackage: the feature id is not a column
            cols = [c for c in every if c not in ("geom", "fid")]
            sel = ", ".join(f'"{c}"' for c in cols)
            if geometry:
                sel += ", ST_AsBinary(geom) AS _wkb"
            cur = con.execute(f'SELECT {sel} FROM "{table}" ORDER BY {"fid" if "fid" in every else 1}')
            rows = cur.fetchall()
        names = cols + (["_wkb"] if geometry else [])
        df = pd.DataFrame([list(r.values()) for r in rows], columns=names)
        if not geometry:
            return df
        geom = shapely.from_wkb([bytes(b) if b is not None else None for b in df.pop("_wkb")])
        return gpd.GeoDataFrame(df, geometry=geom, crs="EPSG:4490")

    def _log_for(self, moment):
        """A reduced event log that replays to the same state as of ``moment``, made by the database so that
        a row or two per parcel cross the wire instead of every event. One aggregate (a hash aggregate: no sort
        of a million rows) gives each parcel's last stage entry and last block dated by then, packed as text
        "date + id + | + value" so that a text MAX orders them by (date, id); a parcel with entries but none
        dated by then gets a marker dated 9999-12-31 (it has a history: it was not started). A parcel with a
        correction (which voids earlier entries) sends all its stage entries. An as-recorded moment reads all."""
        if moment.as_recorded is not None:
            return self.event_log(recorded=True)
        stage = "('advance', 'correction', 'import')"
        d = "substr(event_date, 1, 10)"
        key = f"{d} || lpad(id::text, 12, '0') || '|' || "
        sql = (f"SELECT parcel, MAX(CASE WHEN action IN {stage} AND {d} <= ? THEN {key}coalesce(to_stage, '')"
               ' END COLLATE "C") AS s,'
               f" SUM(CASE WHEN action IN {stage} THEN 1 ELSE 0 END) AS n_stage,"
               " SUM(CASE WHEN action = 'correction' THEN 1 ELSE 0 END) AS n_corr,"
               f" MAX(CASE WHEN action IN ('block', 'unblock') AND {d} <= ? THEN {key}action || '|' ||"
               " coalesce(reason, '') END COLLATE \"C\") AS b,"
               " SUM(CASE WHEN action IN ('block', 'unblock') THEN 1 ELSE 0 END) AS n_block"
               " FROM stage_events GROUP BY parcel")
        day = moment.business_date().isoformat()
        agg = pd.DataFrame(self._tuples(sql, (day, day)), columns=["parcel", "s", "n_stage", "n_corr", "b", "n_block"])
        parts = []
        plain = agg[(agg["n_corr"].fillna(0) == 0) & (agg["n_stage"].fillna(0) > 0)]
        s = plain["s"].fillna("9999-12-31000000000000|")
        parts.append(pd.DataFrame({"id": s.str.slice(10, 22).astype("int64"), "parcel": plain["parcel"],
                                   "action": "advance", "to_stage": s.str.slice(23), "event_date": s.str.slice(0, 10),
                                   "reason": None}))
        blocks = agg[agg["n_block"].fillna(0) > 0]
        b = blocks["b"].fillna("9999-12-31000000000000|block|")
        what = b.str.slice(23).str.split("|", n=1, expand=True) if len(b) else pd.DataFrame({0: [], 1: []})
        parts.append(pd.DataFrame({"id": b.str.slice(10, 22).astype("int64"), "parcel": blocks["parcel"],
                                   "action": what[0], "to_stage": None, "event_date": b.str.slice(0, 10),
                                   "reason": what[1] if 1 in what else None}))
        corrected = list(agg.loc[agg["n_corr"].fillna(0) > 0, "parcel"])
        if corrected:
            cols = ["id", "parcel", "action", "to_stage", "event_date", "reason"]
            parts.append(pd.DataFrame(self._tuples(
                f"SELECT {', '.join(cols)} FROM stage_events WHERE action IN {stage} AND parcel = ANY(?)",
                (corrected,)), columns=cols))
        log = pd.concat(parts, ignore_index=True)
        for c in ("to_stage", "reason"):
            log[c] = log[c].astype(object).where(log[c].notna() & (log[c] != ""), None)
        return EventLog.from_frame(log)

    def _tuples(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Rows as plain tuples (psycopg's C row maker: a hundred thousand rows without a dict each)."""
        with self._connect() as con:
            cur = con.con.cursor()
            cur.execute(sql.replace("?", "%s"), params)
            return cur.fetchall()

    def _copy_arrow(self, select: str, columns: list[str]):
        """The rows of ``select`` copied out in one stream (COPY … TO STDOUT) and parsed by Arrow's CSV reader."""
        with self._connect() as con:
            buf = io.BytesIO()
            with con.con.cursor().copy(f"COPY ({select}) TO STDOUT WITH (FORMAT csv, HEADER true)") as copy:
                for chunk in copy:
                    buf.write(chunk)
        types = {c: (pa.int64() if c in ("id", "blocked") else pa.string()) for c in columns}
        return pacsv.read_csv(pa.py_buffer(buf.getvalue()),
                              convert_options=pacsv.ConvertOptions(column_types=types, strings_can_be_null=True))

    def _arrow(self, table: str, columns: list[str]):
        """``columns`` of a table copied out in one stream (COPY … TO STDOUT) and parsed by Arrow's CSV reader."""
        # no ORDER BY: the server need not sort a million rows; the event log is put in id order by Arrow
        if table == "stage_events":  # a million rows: one COPY stream parsed by Arrow
            return self._copy_arrow(f"SELECT {', '.join(columns)} FROM {table}", columns)
        rows = self._tuples(f"SELECT {', '.join(columns)} FROM {table}")  # parcels: a hundred thousand tuples
        values = list(zip(*rows)) if rows else [()] * len(columns)
        return pa.table({c: pa.array(v, pa.int64() if c in ("id", "blocked") else pa.string())
                         for c, v in zip(columns, values)})

    def _read_events(self) -> pd.DataFrame:
        """The whole event table, ordered by id, copied out in one stream (COPY … TO STDOUT)."""
        with self._connect() as con:
            cols = [c for c in self._columns(con, "stage_events")]
            buf = io.BytesIO()
            with con.con.cursor().copy(f"COPY (SELECT {', '.join(cols)} FROM stage_events ORDER BY id)"
                                       " TO STDOUT WITH (FORMAT csv, HEADER true)") as copy:
                for chunk in copy:
                    buf.write(chunk)
        buf.seek(0)
        text = [c for c in cols if c not in ("id", "share")]
        return pd.read_csv(buf, dtype={c: object for c in text}, keep_default_na=False, na_values={c: [""] for c in cols})

    @staticmethod
    def _wkb_of(value):
        """PostGIS sends a geometry as hex EWKB, which shapely reads as it is."""
        return value

    # imports: WKB goes in as it comes
    _geom_sql = "ST_Multi(ST_GeomFromWKB(?, 4490))"

    def _geom_values(self, wkbs: list) -> list:
        return [None if w is None else bytes(w) for w in wkbs]

    def _insert_parcels(self, con, cols, inserts) -> None:
        values = ", ".join(self._geom_sql if c == "geom" else "?" for c in cols)
        con.executemany(f"INSERT INTO parcels ({', '.join(cols)}) VALUES ({values})", inserts)

    def _update_extent(self, con) -> None:
        pass

    def _bulk_rows(self, table: str, cols: list[str], rows) -> None:
        """Many rows of a project table through COPY (the benchmark's synthetic ledger)."""
        with self._connect(write=True) as con:
            with con.con.cursor().copy(f'COPY "{table}" ({", ".join(cols)}) FROM STDIN') as copy:
                for row in rows:
                    copy.write_row(row)
            self._bump(con)

    # the cadastre: COPY with a GiST index; look-ups through PostGIS's index
    def _write_cadastre_table(self, gdf: gpd.GeoDataFrame, version: str, audit: tuple) -> None:
        """Drop, create, COPY and index in one transaction: readers see the old cadastre or the new one."""
        geoms = shapely.force_2d(gdf.geometry.values)
        single = shapely.get_type_id(geoms) == 3  # Polygon → MultiPolygon, as GDAL's promote_to_multi
        geoms = np.array([shapely.MultiPolygon([g]) if t else g for g, t in zip(geoms, single)], dtype=object)
        ewkb = shapely.to_wkb(shapely.set_srid(geoms, 4490), hex=True, include_srid=True)
        cols = [gdf[f].tolist() for f in CADASTRE_FIELDS]
        with self._connect(write=True) as con:
            cur = con.con.cursor()
            cur.execute(f'DROP TABLE IF EXISTS "{CADASTRE}"')
            cur.execute(f'CREATE TABLE "{CADASTRE}" (fid serial PRIMARY KEY, code text NOT NULL UNIQUE, land_use text,'
                        " owner_type text, area_m2 double precision, geom geometry(MultiPolygon, 4490))")
            cur.execute(f"""COMMENT ON TABLE "{CADASTRE}" IS '地籍宗地（只读）cadastre, read-only'""")
            with cur.copy(f'COPY "{CADASTRE}" ({", ".join(CADASTRE_FIELDS)}, geom) FROM STDIN') as copy:
                for row in zip(*cols, ewkb):
                    copy.write_row(row)
            cur.execute(f'CREATE INDEX "{CADASTRE}_geom_idx" ON "{CADASTRE}" USING GIST (geom)')
            cur.execute(f'ANALYZE "{CADASTRE}"')
            cur.execute("DELETE FROM meta WHERE key IN ('cadastre_version', 'cadastre_changed')")
            cur.execute("INSERT INTO meta (key, value) VALUES ('cadastre_version', %s)", (version,))
            self._audit(con, audit[0], "cadastre", CADASTRE, "ok", None, audit[1], audit[2])

    # evidence: a bytea stored uncompressed out of line (migration 8), read a slice at a time
    def _blob_chunks(self, con, attachment_id: int, total: int, size: int):
        for start in range(0, total, size):
            row = con.execute("SELECT substring(data FROM ? FOR ?) AS chunk FROM attachments WHERE id = ?",
                              (start + 1, size, attachment_id)).fetchone()
            yield bytes(row["chunk"])

    def _cadastre_exists(self, con) -> bool:
        return con.execute("SELECT 1 FROM geometry_columns WHERE f_table_schema = current_schema()"
                           " AND f_table_name = ?", (CADASTRE,)).fetchone() is not None

    def _cadastre_key_parts(self, con, meta: dict) -> list | None:
        if not self._cadastre_exists(con):
            return None
        return list(con.execute(f'SELECT count(*), max(code) FROM "{CADASTRE}"').fetchone())

    def _cadastre_candidates(self, con, lon: float, lat: float) -> list[tuple[dict, object]]:
        if not self._cadastre_exists(con):
            return []
        sql = (f'SELECT code, land_use, owner_type, area_m2, ST_AsBinary(geom) AS g FROM "{CADASTRE}"'
               " WHERE ST_Intersects(geom, ST_SetSRID(ST_MakePoint(?, ?), 4490))")
        return [(dict(r), shapely.from_wkb(bytes(r["g"]))) for r in con.execute(sql, (lon, lat))]

    def _cadastre_row(self, con, code: str) -> tuple[dict, object] | None:
        if not self._cadastre_exists(con):
            return None
        row = con.execute(f'SELECT code, land_use, owner_type, area_m2, ST_AsBinary(geom) AS g FROM "{CADASTRE}"'
                          " WHERE code = ?", (code,)).fetchone()
        return (dict(row), shapely.from_wkb(bytes(row["g"]))) if row else None


def load_store_into(source: Store, target: PostgisStore) -> dict:
    """Copy every layer, parcel, event and account of ``source`` into an empty PostGIS store."""
    counts = {}
    with source._connect() as scon:
        src_tables = source._tables(scon)
    with target._connect(write=True) as con:
        for layer, fields in schema.LAYER_FIELDS.items():
            if layer not in src_tables:
                continue
            gdf = source._read(layer)
            rows = [(shapely.to_wkb(g) if g is not None else None, *(None if pd.isna(v) else v for v in vals))
                    for g, *vals in zip(gdf.geometry, *(gdf[f] if f in gdf else [None] * len(gdf) for f in fields))]
            con.execute(f'DELETE FROM "{layer}"')
            con.executemany(f'INSERT INTO "{layer}" (geom, {", ".join(fields)}) VALUES '
                            f'(ST_Multi(ST_GeomFromWKB(?, 4490)), {", ".join("?" * len(fields))})'
                            if layer != "points" else
                            f'INSERT INTO "{layer}" (geom, {", ".join(fields)}) VALUES '
                            f'(ST_GeomFromWKB(?, 4490), {", ".join("?" * len(fields))})', rows)
            counts[layer] = len(rows)
        gdf = source._read("parcels")
        rows = [(shapely.to_wkb(g), *(None if not isinstance(v, str) and pd.isna(v) else
                                       (int(v) if f in ("blocked", "version") else v)
                                       for f, v in zip(PARCEL_FIELDS, vals)))
                for g, *vals in zip(gdf.geometry, *(gdf[f] for f in PARCEL_FIELDS))]
        con.execute("DELETE FROM parcels")
        con.executemany(f"INSERT INTO parcels (geom, {', '.join(PARCEL_FIELDS)}) VALUES "
                        f"(ST_Multi(ST_GeomFromWKB(?, 4490)), {', '.join('?' * len(PARCEL_FIELDS))})", rows)
        counts["parcels"] = len(rows)
        ev = source.events()
        cols = [c for c in ev.columns if c != "id"]
        con.executemany(f"INSERT INTO stage_events ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                        [tuple(None if not isinstance(v, str) and pd.isna(v) else v for v in r)
                         for r in ev[cols].itertuples(index=False)])
        counts["stage_events"] = len(ev)
        for key, value in source.meta().items():
            if key == "schema_version":
                continue
            con.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                        (key, value))
        if {"users", "assignments"} <= src_tables:
            with source._connect() as scon:
                users = [tuple(r) for r in scon.execute(
                    "SELECT username, display_name, role, password_hash, created_at, disabled FROM users")]
                assigns = [tuple(r) for r in scon.execute("SELECT username, scope, code FROM assignments")]
            con.executemany("INSERT INTO users (username, display_name, role, password_hash, failed_count, created_at,"
                            " disabled) VALUES (?,?,?,?,0,?,?)", users)
            con.executemany("INSERT INTO assignments (username, scope, code) VALUES (?,?,?)", assigns)
            counts["users"] = len(users)
        counts.update(_copy_plan_tables(source, src_tables, con))
        counts.update(_copy_plan_tables(source, src_tables, con, schema.PROJECT_TABLES))
        counts.update(_copy_attachments(source, src_tables, con))
    return counts


def _copy_plan_tables(source: Store, src_tables: set, con, tables: dict = schema.PLAN_TABLES) -> dict:
    """Plans and follow-up orders (or key projects), ids kept (the orders' events and the corrections
    name them), sequences moved past them."""
    counts = {}
    for table, cols in tables.items():
        if table not in src_tables:
            continue
        names = ["id", *(c for c, _ in cols)]
        with source._connect() as scon:
            rows = [tuple(r) for r in scon.execute(f'SELECT {", ".join(names)} FROM "{table}" ORDER BY id')]
        con.executemany(f'INSERT INTO "{table}" ({", ".join(names)}) VALUES ({", ".join("?" * len(names))})', rows)
        if rows:
            con.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM \"{table}\"))")
        counts[table] = len(rows)
    return counts


def _copy_attachments(source: Store, src_tables: set, con) -> dict:
    """Attachments row by row (SQLite's cursor streams them: a store's photos are never all in memory), ids
    kept (events and the mapping name them); the mapping table made anew from the parcels' codes, whose fids
    differ here."""
    if "attachments" not in src_tables:
        return {}
    cols = ["id", *(c for c, _ in schema.ATTACHMENT_COLUMNS), "thumbnail", "data"]
    insert = f"INSERT INTO attachments ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
    n = 0
    with source._connect() as scon:
        for row in scon.execute(f"SELECT {', '.join(cols)} FROM attachments ORDER BY id"):
            con.execute(insert, tuple(row))
            n += 1
    if n:
        con.execute("SELECT setval(pg_get_serial_sequence('attachments', 'id'), (SELECT max(id) FROM attachments))")
    con.execute("INSERT INTO parcels_attachments (base_id, related_id) SELECT p.fid, a.id FROM attachments a"
                " JOIN parcels p ON p.code = a.target_code WHERE a.target_kind IN ('parcel', 'event') ORDER BY a.id")
    return {"attachments": n}
