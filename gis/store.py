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
import hashlib
import json
import shutil
import sqlite3
import tempfile
from contextlib import contextmanager
from operator import itemgetter
from dataclasses import asdict, dataclass
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio

from . import accounts, schema
from .accounts import User
from .errors import ConflictError, InputError, NotFoundError, PermissionRefused, StageTransitionError
from .gpkg import _bounds as gpkg_bounds
from .gpkg import register_functions
from .pipelines import Catalog, load_catalog
from .units import M2_PER_HA, M2_PER_MU

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

    def as_dict(self) -> dict:
        return asdict(self)


def _utcnow() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def parse_date(value: str | dt.date | None, *, today: dt.date | None = None) -> dt.date:
    """A business date from ``YYYY-MM-DD`` (default today).

    Raises:
        InputError: not a valid date.
    """
    if value is None or value == "":
        return today or dt.date.today()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise InputError("error.bad_date", value=str(value)) from None


class Store:
    """A GeoPackage store (the embedded back end). Cheap to construct; a connection per operation.

    ``PostgisStore`` (gis/store_pg.py) shares every rule and overrides only the
    primitives: connecting, reading geometry, listing tables.
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

    # ----------------------------------------------------------- opening
    @classmethod
    def open(cls, settings) -> "Store":
        """The store of ``settings``: PostGIS when ``database_url`` is set, else the
        working GeoPackage, seeded from the demo on first use."""
        catalog = load_catalog(settings.layers_dir / "pipelines.toml")
        if settings.database_url:
            from .store_pg import PostgisStore

            return PostgisStore(settings.database_url, catalog)
        path = settings.store_path
        if not path.exists():
            seed_store(settings.demo_store, path)
        return cls(path, catalog)

    @contextmanager
    def _connect(self, write: bool = False):
        con = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            con.row_factory = sqlite3.Row
            register_functions(con)
            con.execute("PRAGMA busy_timeout = 30000")
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
        finally:
            con.close()

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
        return pyogrio.read_dataframe(self.path, layer=table, read_geometry=geometry, fid_as_index=False)

    # ----------------------------------------------------------- reading
    def meta(self) -> dict[str, str]:
        with self._connect() as con:
            return {r["key"]: r["value"] for r in con.execute("SELECT key, value FROM meta")}

    def data_version(self) -> int:
        """Bumped by every write; what caches key on."""
        with self._connect() as con:
            row = con.execute("SELECT value FROM meta WHERE key = 'data_version'").fetchone()
        return int(row[0]) if row else 0

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
        present = set(self.layer_names())
        return {n: self.layer(n) for n in CONTEXT_LAYERS if n in present}

    def attributes(self, table: str) -> dict[str, dict]:
        """``{code: {field: value}}`` of zones, villages, parks or points, without reading geometry.

        Raises:
            NotFoundError: not one of those tables.
        """
        if table not in ("zones", "villages", "parks", "points", "devzone"):
            raise NotFoundError("error.no_layer", layer=table)
        with self._connect() as con:
            cols = [c for c in self._columns(con, table) if c not in ("fid", "geom")]
            rows = con.execute(f'SELECT {", ".join(cols)} FROM "{table}"').fetchall()
        return {r["code"]: dict(r) for r in rows}

    def names(self, table: str) -> dict[str, tuple[str, str]]:
        """``{code: (name, name_en)}`` of zones, villages or parks."""
        return {c: (r.get("name"), r.get("name_en")) for c, r in self.attributes(table).items()}

    def parcels(
        self,
        kind: str | None = None,
        zone: str | None = None,
        village: str | None = None,
        stage: str | None = None,
        search: str | None = None,
        blocked: bool | None = None,
        geometry: bool = True,
    ) -> gpd.GeoDataFrame | pd.DataFrame:
        """Tracked parcels, filtered. ``stage="not_started"`` selects parcels with no stage.

        ``village`` and ``zone`` accept a code or a name; ``search`` matches
        code or name, case-insensitively.
        """
        df = self._read("parcels", geometry)
        df = df[[c for c in PARCEL_FIELDS if c in df.columns] + (["geometry"] if geometry else [])]
        return self.filter(df, kind=kind, zone=zone, village=village, stage=stage, search=search, blocked=blocked)

    def filter(self, df, kind=None, zone=None, village=None, stage=None, search=None, blocked=None):
        """Filter a parcel table already in memory (the app filters its cached copy).

        Raises:
            NotFoundError: unknown zone or village; InputError: unknown kind;
            StageTransitionError: unknown stage.
        """
        if kind:
            self.catalog.kind(kind)
            df = df[df["kind"] == kind]
        if zone:
            zones = self.names("zones")
            code = next((c for c, (n, e) in zones.items() if zone in (c, n, e)), None)
            if code is None:
                raise NotFoundError("error.no_zone", zone=zone, known=", ".join(n for n, _ in zones.values()))
            df = df[df["zone"] == code]
        if village:
            df = df[df["village"] == self.village_code(village)]
        if stage:
            if stage == "not_started":
                df = df[df["stage"].isna()]
            elif not self.catalog.is_stage(stage):
                raise StageTransitionError("error.unknown_stage", stage=stage)
            else:
                df = df[df["stage"] == stage]
        if blocked is not None:
            df = df[df["blocked"].astype(bool) == blocked]
        if search and search.strip():
            s = search.strip().lower()
            df = df[df["code"].str.lower().str.contains(s, regex=False) | df["name"].str.lower().str.contains(s, regex=False)]
        return df.reset_index(drop=True)

    def village_code(self, village: str) -> str:
        """Code of a village given its code, Chinese or English name.

        Raises:
            NotFoundError: no such village.
        """
        villages = self.names("villages")
        code = next((c for c, (n, e) in villages.items() if village in (c, n, e)), None)
        if code is None:
            raise NotFoundError("error.no_village", village=village)
        return code

    _lock = ""  # PostGIS: " FOR UPDATE" (SQLite's BEGIN IMMEDIATE already serialises writers)

    def _row(self, con, code: str, lock: bool = False):
        row = con.execute(
            f"SELECT {', '.join(PARCEL_FIELDS)} FROM parcels WHERE code = ?" + (self._lock if lock else ""), (code,)
        ).fetchone()
        if row is None:
            raise NotFoundError("error.no_parcel", code=code)
        return row

    def parcel(self, code: str, lang: str = "zh") -> dict:
        """Everything known about one parcel, with labels and areas in m², 亩 and 公顷.

        Raises:
            NotFoundError: unknown code.
        """
        with self._connect() as con:
            row = dict(self._row(con, code))
        return self.describe(row, lang)

    def describe_many(self, rows, lang: str = "zh") -> list[dict]:
        """``describe`` for many records, looking the zone, village and park names up once."""
        names = {t: self.names(t) for t in ("zones", "villages", "parks")}
        return [self.describe(r, lang, names) for r in rows]

    def describe(self, row: dict, lang: str = "zh", names: dict | None = None) -> dict:
        """A parcel record (from ``parcels()`` or SQL) with labels, next stage and areas added."""
        cat = self.catalog
        row = {k: (None if not isinstance(v, str) and k != "geometry" and pd.isna(v) else v) for k, v in row.items()}
        kind = row["kind"]
        stage = row.get("stage") or None
        pipe = cat.pipeline_for(kind)
        nxt = pipe.next_stage(stage)
        area = float(row.get("area_m2") or 0.0)
        names = names or {t: self.names(t) for t in ("zones", "villages", "parks")}
        zones, villages, parks = names["zones"], names["villages"], names["parks"]
        pick = (lambda d, c: (d.get(c) or ("", ""))[1 if lang == "en" else 0] if c else "")
        out = {k: v for k, v in row.items() if k != "geometry"}
        out.update(
            stage=stage,
            stage_label=cat.stage_label(kind, stage, lang),
            next_stage=nxt,
            next_stage_label=cat.stage_label(kind, nxt, lang) if nxt else None,
            kind_label=cat.kind(kind).label(lang),
            phase=cat.phase_of(kind, stage).key,
            progress=round(pipe.progress(stage), 4),
            blocked=bool(row.get("blocked")),
            area_m2=round(area, 1),
            area_mu=round(area / M2_PER_MU, 2),
            area_ha=round(area / M2_PER_HA, 4),
            zone_name=pick(zones, row.get("zone")),
            village_name=pick(villages, row.get("village")),
            park_name=pick(parks, row.get("park")),
        )
        return out

    def history(self, code: str) -> list[StageEvent]:
        """A parcel's events, oldest first.

        Raises:
            NotFoundError: unknown code.
        """
        with self._connect() as con:
            self._row(con, code)
            rows = con.execute(
                "SELECT id, parcel, action, from_stage, to_stage, event_date, recorded_at, recorded_by,"
                " unit, note, reason, share FROM stage_events WHERE parcel = ? ORDER BY event_date, id",
                (code,),
            ).fetchall()
        return [StageEvent(**dict(r)) for r in rows]

    def events(self, village: str | None = None) -> pd.DataFrame:
        """All events (optionally of one village's parcels) as a table."""
        sql = "SELECT e.* FROM stage_events e"
        params: tuple = ()
        if village:
            sql += " JOIN parcels p ON p.code = e.parcel WHERE p.village = ?"
            params = (self.village_code(village),)
        with self._connect() as con:
            cur = con.execute(sql + " ORDER BY e.id", params)
            names = [d[0] for d in cur.description]
            return pd.DataFrame([tuple(r) if not isinstance(r, dict) else tuple(r.values()) for r in cur.fetchall()],
                                columns=names)

    # ----------------------------------------------------------- writing
    def _write_event(self, con, row, action, to_stage, date, by, note, reason, share, changes) -> StageEvent:
        now = _utcnow()
        event_id = con.execute(
            "INSERT INTO stage_events (parcel, action, from_stage, to_stage, event_date, recorded_at,"
            " recorded_by, unit, note, reason, share) VALUES (?,?,?,?,?,?,?,?,?,?,?) RETURNING id",
            (row["code"], action, row["stage"], to_stage, date.isoformat(), now, by, row["unit"], note or None, reason or None, share),
        ).fetchone()[0]
        sets = ", ".join(f"{k} = ?" for k in changes)
        con.execute(
            f"UPDATE parcels SET {sets}, version = version + 1, updated_at = ?, updated_by = ? WHERE code = ?",
            (*changes.values(), now, by, row["code"]),
        )
        self._bump(con)
        after = dict(self._row(con, row["code"]))
        self._audit(con, by, action, row["code"], "ok", dict(row), after, note or reason or "")
        return StageEvent(
            id=event_id, parcel=row["code"], action=action, from_stage=row["stage"], to_stage=to_stage,
            event_date=date.isoformat(), recorded_at=now, recorded_by=by, unit=row["unit"],
            note=note or None, reason=reason or None, share=share,
        )

    @staticmethod
    def _check_version(row, expected_version: int | None) -> None:
        if expected_version is not None and row["version"] != expected_version:
            raise ConflictError("error.conflict", code=row["code"], by=row["updated_by"] or "?", at=row["updated_at"] or "?")

    @staticmethod
    def _require_author(by: str) -> str:
        by = (by or "").strip()
        if not by:
            raise InputError("error.no_author")
        return by

    def _bump(self, con) -> None:
        con.execute("UPDATE meta SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) WHERE key = 'data_version'")
        self._touch(con)

    def _audit(self, con, actor, action, target, outcome, before=None, after=None, detail="") -> None:
        """One line of the audit trail (append-only): who, when, what, before and after."""
        dump = (lambda d: None if d is None else json.dumps(d, ensure_ascii=False, default=str, sort_keys=True))
        con.execute("INSERT INTO audit (at, actor, action, target, outcome, before, after, detail)"
                    " VALUES (?,?,?,?,?,?,?,?)",
                    (_utcnow(), actor, action, target, outcome, dump(before), dump(after), detail or None))

    @contextmanager
    def _refusals_logged(self, actor: str, action: str, target: str):
        """A refused write leaves nothing but its line in the audit trail (written after the rollback)."""
        try:
            yield
        except PermissionRefused as e:
            with self._connect(write=True) as con:
                self._audit(con, actor, action, target, "refused", detail=e.message("en"))
            raise

    # ----------------------------------------------------------- accounts
    def _user(self, con, username: str) -> User | None:
        row = con.execute("SELECT username, display_name, role, disabled FROM users WHERE username = ?",
                          (username,)).fetchone()
        if row is None or row["disabled"]:
            return None
        scopes = con.execute("SELECT scope, code FROM assignments WHERE username = ?", (username,)).fetchall()
        return User(row["username"], row["display_name"] or "", row["role"],
                    frozenset(r["code"] for r in scopes if r["scope"] == "zone"),
                    frozenset(r["code"] for r in scopes if r["scope"] == "village"))

    def _accounts_on(self, con) -> bool:
        return con.execute("SELECT 1 FROM users LIMIT 1").fetchone() is not None

    def _may_edit(self, con, by: str, row) -> str:
        """The name to record for ``by`` changing ``row``.

        A store without accounts (a planner's own file) records ``by`` as given;
        a store with accounts needs a known user allowed to edit the parcel.
        """
        if not self._accounts_on(con):
            return by
        user = self._user(con, by)
        if user is None:
            raise PermissionRefused("error.unknown_user", user=by)
        accounts.require_edit(user, dict(row))
        return user.username

    def accounts_enabled(self) -> bool:
        with self._connect() as con:
            return self._accounts_on(con)

    def user(self, username: str) -> User | None:
        with self._connect() as con:
            return self._user(con, username)

    def users(self) -> list[dict]:
        with self._connect() as con:
            rows = [dict(r) for r in con.execute(
                "SELECT username, display_name, role, disabled, created_at FROM users ORDER BY username")]
            for r in rows:
                r["assignments"] = [f"{a['scope']}:{a['code']}" for a in con.execute(
                    "SELECT scope, code FROM assignments WHERE username = ? ORDER BY scope, code", (r["username"],))]
        return rows

    def _admin(self, con, by: str, action: str) -> None:
        if self._accounts_on(con):
            accounts.require_admin(self._user(con, by), action)

    def add_user(self, username: str, password: str, role: str, by: str, display_name: str = "",
                 password_hash: str | None = None) -> None:
        """Create an account. The first account may be created by anyone (bootstrap); then admins only.

        Raises:
            InputError: bad name, role or weak password; the name exists.
            PermissionRefused: ``by`` is not an admin.
        """
        username = (username or "").strip()
        if not username or any(c.isspace() for c in username):
            raise InputError("error.bad_username", user=username)
        accounts.check_role(role)
        hashed = password_hash or accounts.hash_password(password)
        with self._refusals_logged(by, "user_add", username):
            with self._connect(write=True) as con:
                self._admin(con, by, "user add")
                if con.execute("SELECT 1 FROM users WHERE username = ?", (username,)).fetchone():
                    raise InputError("error.user_exists", user=username)
                con.execute("INSERT INTO users (username, display_name, role, password_hash, failed_count, created_at,"
                            " disabled) VALUES (?,?,?,?,0,?,0)", (username, display_name, role, hashed, _utcnow()))
                self._audit(con, by, "user_add", username, "ok", None,
                            {"username": username, "role": role, "display_name": display_name})

    def set_password(self, username: str, password: str, by: str) -> None:
        """Change a password: an admin for anyone, a user for themself."""
        hashed = accounts.hash_password(password)
        with self._refusals_logged(by, "user_passwd", username):
            with self._connect(write=True) as con:
                if by != username:
                    self._admin(con, by, "user passwd")
                if not con.execute("SELECT 1 FROM users WHERE username = ?", (username,)).fetchone():
                    raise NotFoundError("error.no_user", user=username)
                con.execute("UPDATE users SET password_hash = ?, failed_count = 0 WHERE username = ?",
                            (hashed, username))
                self._audit(con, by, "user_passwd", username, "ok")

    def assign(self, username: str, scope: str, code: str, by: str, remove: bool = False) -> None:
        """Give (or take back) an editor's zone or village."""
        if scope not in accounts.SCOPES:
            raise InputError("error.bad_scope", scope=scope)
        code = self.village_code(code) if scope == "village" else self._zone_code(code)
        with self._refusals_logged(by, "user_assign", username):
            with self._connect(write=True) as con:
                self._admin(con, by, "user assign")
                if not con.execute("SELECT 1 FROM users WHERE username = ?", (username,)).fetchone():
                    raise NotFoundError("error.no_user", user=username)
                if remove:
                    con.execute("DELETE FROM assignments WHERE username = ? AND scope = ? AND code = ?",
                                (username, scope, code))
                elif not con.execute("SELECT 1 FROM assignments WHERE username = ? AND scope = ? AND code = ?",
                                     (username, scope, code)).fetchone():
                    con.execute("INSERT INTO assignments (username, scope, code) VALUES (?,?,?)", (username, scope, code))
                self._audit(con, by, "user_unassign" if remove else "user_assign", username, "ok",
                            None, {"scope": scope, "code": code})

    def authenticate(self, username: str, password: str, now: dt.datetime | None = None) -> User:
        """The user if the password is right; failures are counted and slow further attempts down.

        Raises:
            PermissionRefused: wrong name or password, a disabled account, or too soon after failures.
        """
        now = now or dt.datetime.now(dt.timezone.utc)
        with self._connect(write=True) as con:
            row = con.execute("SELECT username, password_hash, failed_count, last_failed_at, disabled FROM users"
                              " WHERE username = ?", (username,)).fetchone()
            wait = accounts.seconds_to_wait(row["failed_count"], row["last_failed_at"], now) if row else 0
            if wait:
                self._audit(con, username, "login", username, "refused", detail=f"throttled {wait}s")
                refusal = PermissionRefused("error.login_wait", seconds=wait)
            elif row and not row["disabled"] and accounts.verify_password(row["password_hash"], password):
                con.execute("UPDATE users SET failed_count = 0, last_failed_at = NULL WHERE username = ?", (username,))
                self._audit(con, username, "login", username, "ok")
                refusal = None
            else:
                if row:
                    con.execute("UPDATE users SET failed_count = failed_count + 1, last_failed_at = ? WHERE username = ?",
                                (now.isoformat(), username))
                self._audit(con, username, "login", username, "refused", detail="bad credentials")
                refusal = PermissionRefused("error.bad_login")
        if refusal:
            raise refusal
        return self.user(username)

    def session_stamp(self, username: str) -> str | None:
        """A short digest of what a sign-in rests on (password hash, role, state), for ``gis.sessions``;
        None for an unknown or disabled account."""
        with self._connect() as con:
            row = con.execute("SELECT password_hash, role, disabled FROM users WHERE username = ?",
                              (username,)).fetchone()
        if row is None or row["disabled"]:
            return None
        return hashlib.sha256(f"{row['password_hash']}|{row['role']}".encode()).hexdigest()[:16]

    def audit(self, actor: str | None = None, action: str | None = None, outcome: str | None = None,
              target: str | None = None, limit: int = 5000) -> pd.DataFrame:
        """The audit trail, newest first, filtered."""
        where, params = [], []
        for col, val in (("actor", actor), ("action", action), ("outcome", outcome), ("target", target)):
            if val:
                where.append(f"{col} = ?")
                params.append(val)
        sql = "SELECT id, at, actor, action, target, outcome, before, after, detail FROM audit"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY id DESC LIMIT {int(limit)}"
        with self._connect() as con:
            cur = con.execute(sql, tuple(params))
            cols = [d[0] for d in cur.description]
            return pd.DataFrame([tuple(r) if not isinstance(r, dict) else tuple(r.values()) for r in cur.fetchall()],
                                columns=cols)

    def _zone_code(self, zone: str) -> str:
        zones = self.names("zones")
        code = next((c for c, (n, e) in zones.items() if zone in (c, n, e)), None)
        if code is None:
            raise NotFoundError("error.no_zone", zone=zone, known=", ".join(n for n, _ in zones.values()))
        return code

    def advance(
        self,
        code: str,
        to_stage: str,
        date: str | dt.date | None,
        by: str,
        note: str = "",
        correction: str | None = None,
        share: float | None = None,
        expected_version: int | None = None,
        today: dt.date | None = None,
    ) -> StageEvent:
        """Move a parcel to ``to_stage`` on business date ``date``.

        A correction (any other stage, backwards included) needs a reason.

        Raises:
            NotFoundError: unknown parcel.
            StageTransitionError: the move is not allowed (nothing is written).
            ConflictError: the parcel changed since ``expected_version``.
            InputError: bad date or no author.
        """
        by = self._require_author(by)
        when = parse_date(date, today=today)
        with self._refusals_logged(by, "advance", code), self._connect(write=True) as con:
            row = self._row(con, code, lock=True)
            by = self._may_edit(con, by, row)
            self._check_version(row, expected_version)
            current_date = parse_date(row["stage_date"]) if row["stage_date"] else None
            action = self.catalog.check_transition(
                row["kind"], row["stage"], to_stage, when,
                current_date=current_date, correction=correction, share=share, today=today,
            )
            target = None if to_stage == "not_started" else to_stage
            return self._write_event(
                con, row, action, target, when, by, note, correction, share,
                {"stage": target, "stage_date": when.isoformat() if target else None, "note": note or row["note"]},
            )

    def set_blocked(
        self,
        code: str,
        blocked: bool,
        reason: str,
        by: str,
        date: str | dt.date | None = None,
        expected_version: int | None = None,
        today: dt.date | None = None,
    ) -> StageEvent:
        """Flag a parcel as stuck (卡点) with a reason, or clear the flag.

        Raises:
            NotFoundError, ConflictError, InputError: as for ``advance``;
            StageTransitionError: blocking without a reason, or a future date.
        """
        by = self._require_author(by)
        when = parse_date(date, today=today)
        if when > (today or dt.date.today()):
            raise StageTransitionError("error.future_date", date=when.isoformat())
        reason = (reason or "").strip()
        if blocked and not reason:
            raise StageTransitionError("error.block_reason")
        with self._refusals_logged(by, "block" if blocked else "unblock", code), self._connect(write=True) as con:
            row = self._row(con, code, lock=True)
            by = self._may_edit(con, by, row)
            self._check_version(row, expected_version)
            if bool(row["blocked"]) == blocked:
                raise StageTransitionError("error.already_blocked" if blocked else "error.not_blocked", code=code)
            return self._write_event(
                con, row, "block" if blocked else "unblock", row["stage"], when, by, "", reason, None,
                {"blocked": int(blocked), "blocked_reason": reason if blocked else None},
            )

    def set_note(self, code: str, note: str, by: str, expected_version: int | None = None) -> None:
        """Replace a parcel's note (audited; no stage event).

        Raises:
            NotFoundError, ConflictError, PermissionRefused, InputError.
        """
        by = self._require_author(by)
        with self._refusals_logged(by, "note", code), self._connect(write=True) as con:
            row = self._row(con, code, lock=True)
            by = self._may_edit(con, by, row)
            self._check_version(row, expected_version)
            con.execute("UPDATE parcels SET note = ?, version = version + 1, updated_at = ?, updated_by = ?"
                        " WHERE code = ?", (note or None, _utcnow(), by, code))
            self._bump(con)
            self._audit(con, by, "note", code, "ok", {"note": row["note"]}, {"note": note or None})

    # ----------------------------------------------------------- importing
    # Geometry of an import arrives as GeoPackage binary; these hooks write it on each back end.
    _geom_sql = "?"

    def _geom_value(self, blob):
        return blob

    def _insert_parcels(self, con, cols, inserts) -> None:
        # GDAL's per-row triggers (R-tree, feature count) cost ~30 µs a row through the Python
        # ST_* callbacks: as GDAL does for its own bulk loads, suspend them inside this
        # transaction, fill the R-tree from the geometries' envelopes, recount, and put them back.
        suspended = [tuple(r) for r in con.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name IN (?, ?)",
            ("rtree_parcels_geom_insert", "trigger_insert_feature_count_parcels"))] if inserts else []
        for name, _ in suspended:
            con.execute(f'DROP TRIGGER "{name}"')
        start = con.execute("SELECT coalesce(max(fid), 0) FROM parcels").fetchone()[0]
        con.executemany(
            f"INSERT INTO parcels ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})", inserts)
        names = {name for name, _ in suspended}
        if "rtree_parcels_geom_insert" in names:
            fids = [r[0] for r in con.execute("SELECT fid FROM parcels WHERE fid > ? ORDER BY fid", (start,))]
            boxes = ((fid, b[0], b[2], b[1], b[3]) for fid, b in zip(fids, (gpkg_bounds(r[0]) for r in inserts))
                     if b is not None)
            con.executemany("INSERT INTO rtree_parcels_geom (id, minx, maxx, miny, maxy) VALUES (?,?,?,?,?)", boxes)
        if "trigger_insert_feature_count_parcels" in names:
            con.execute("UPDATE gpkg_ogr_contents SET feature_count = (SELECT count(*) FROM parcels)"
                        " WHERE lower(table_name) = 'parcels'")
        for _, sql in suspended:
            con.execute(sql)

    def _update_extent(self, con) -> None:
        if con.execute("SELECT 1 FROM sqlite_master WHERE name = 'rtree_parcels_geom'").fetchone():
            extent = ", ".join(f"{c} = (SELECT {f}({a}) FROM rtree_parcels_geom)" for c, f, a in (
                ("min_x", "min", "minx"), ("min_y", "min", "miny"), ("max_x", "max", "maxx"), ("max_y", "max", "maxy")))
            con.execute(f"UPDATE gpkg_contents SET {extent} WHERE table_name = 'parcels'")

    def upsert_parcels(
        self,
        parcels: list[dict],
        by: str,
        note: str = "",
        history: list[dict] | None = None,
        today: dt.date | None = None,
    ) -> dict:
        """Insert or update parcels by code in one transaction (an import): all land, or none.

        Each dict holds ``code``, ``geom`` (GeoPackage binary geometry, EPSG:4490)
        and the parcel fields its source sets. A new code is inserted (version 1,
        defaults for fields not given, ``kind`` required); an existing code gets
        the given fields and its version bumped, and keeps its history. Every
        updated parcel, and every new one arriving at a stage without events of
        its own in ``history``, gets an ``import`` event. ``history`` (events
        carried by the file, e.g. an exported GeoPackage) is appended for the
        new codes. Geometry is written through SQLite, so GDAL's R-tree triggers
        (whose ST_* functions ``_connect`` registers) keep the spatial index right.

        Returns ``{"inserted", "updated", "events", "data_version"}``.

        With accounts on, ``by`` must be a user allowed to edit every parcel
        written (its zone or village); the import is one line of the audit trail.

        Raises:
            InputError: no author, a new parcel without kind, an unknown kind.
            StageTransitionError: a stage outside the parcel's pipeline.
            PermissionRefused: ``by`` may not edit one of the parcels.
        """
        by = self._require_author(by)
        today_s = (today or dt.date.today()).isoformat()
        now = _utcnow()
        settable = frozenset(PARCEL_FIELDS) - {"code", "version", "updated_at", "updated_by"}
        insert_cols = ["geom", *PARCEL_FIELDS]
        as_row = itemgetter(*PARCEL_FIELDS)
        base = dict.fromkeys(PARCEL_FIELDS)
        base.update(zone="", village="", park="", unit="", owner="", land_use="", blocked=0, version=1,
                    updated_at=now, updated_by=by)
        pipelines = {k: self.catalog.pipeline_for(k) for k in self.catalog.kinds}
        with_history = {str(e["parcel"]) for e in history or ()}
        event_sql = ("INSERT INTO stage_events (parcel, action, from_stage, to_stage, event_date, recorded_at,"
                     " recorded_by, unit, note, reason, share) VALUES (?,?,?,?,?,?,?,?,?,?,?)")
        with self._refusals_logged(by, "import", note or "import"), self._connect(write=True) as con:
            user = None
            if self._accounts_on(con):
                user = self._user(con, by)
                if user is None:
                    raise PermissionRefused("error.unknown_user", user=by)
                by = user.username
                base["updated_by"] = by
            check_edit = user is not None and user.role != "admin"  # an admin may edit every parcel
            old = {r["code"]: dict(r) for r in con.execute(
                "SELECT code, kind, stage, unit, zone, village, park FROM parcels")}
            inserts, updates, events, new_codes = [], {}, [], set()
            for p in parcels:
                code = str(p["code"])
                given = {k: v for k, v in p.items() if k in settable}
                stage = given.get("stage")
                if check_edit:  # allowed to edit the parcel as it is, and as it will be
                    if code in old:
                        accounts.require_edit(user, old[code])
                    accounts.require_edit(user, {**old.get(code, {}), **given, "code": code})
                if code in old:
                    old_kind, old_stage, old_unit = old[code]["kind"], old[code]["stage"], old[code]["unit"]
                    kind = given.get("kind") or old_kind
                    if "stage" in given:
                        self.catalog.kind(kind)
                        pipelines[kind].index(stage)
                    new_stage = stage if "stage" in given else old_stage
                    changed = "stage" in given and new_stage != old_stage
                    keys = ("geom", *sorted(given))
                    updates.setdefault(keys, []).append((p["geom"], *(given[k] for k in keys[1:]), now, by, code))
                    events.append((code, "import", old_stage, new_stage,
                                   (given.get("stage_date") if changed else None) or today_s, now, by,
                                   given.get("unit", old_unit), note or None, None, None))
                else:
                    kind = given.get("kind")
                    if not kind:
                        raise InputError("import.row_no_kind", code=code)
                    if stage:
                        self.catalog.kind(kind)
                        pipelines[kind].index(stage)
                    elif kind not in pipelines:
                        self.catalog.kind(kind)  # raises: unknown kind
                    row = {**base, "name": code, **given, "code": code}
                    inserts.append((p["geom"], *as_row(row)))
                    new_codes.add(code)
                    old[code] = row
                    if stage and code not in with_history:
                        events.append((code, "import", None, stage, given.get("stage_date") or today_s, now, by,
                                       row.get("unit"), note or None, None, None))
            self._insert_parcels(con, insert_cols, inserts)
            for keys, rows in updates.items():
                sets = ", ".join(f"{k} = {self._geom_sql if k == 'geom' else '?'}" for k in keys)
                con.executemany(f"UPDATE parcels SET {sets}, version = version + 1, updated_at = ?, updated_by = ?"
                                " WHERE code = ?", [(self._geom_value(r[0]), *r[1:]) for r in rows])
            carried = [tuple(e.get(k) for k in ("parcel", "action", "from_stage", "to_stage", "event_date",
                                                 "recorded_at", "recorded_by", "unit", "note", "reason", "share"))
                       for e in history or () if str(e["parcel"]) in new_codes]
            con.executemany(event_sql, carried + events)
            self._bump(con)
            self._update_extent(con)
            version = con.execute("SELECT value FROM meta WHERE key = 'data_version'").fetchone()[0]
            self._audit(con, by, "import", note or "import", "ok", None,
                        {"inserted": len(inserts), "updated": sum(len(r) for r in updates.values())}, note)
        return {"inserted": len(inserts), "updated": sum(len(r) for r in updates.values()),
                "events": len(carried) + len(events), "data_version": int(version)}


def open_store_at(where: str, catalog: Catalog | None = None) -> "Store":
    """The store at a GeoPackage path or a ``postgresql://`` URL."""
    if str(where).startswith(("postgresql://", "postgres://")):
        from .store_pg import PostgisStore

        return PostgisStore(str(where), catalog)
    return Store(where, catalog)


def seed_store(demo: Path, target: Path) -> Path:
    """Copy the committed demo GeoPackage to ``target`` (atomically: a copy then a rename).

    Raises:
        NotFoundError: the demo file is missing.
    """
    demo, target = Path(demo), Path(target)
    if not demo.exists():
        raise NotFoundError("error.no_store", path=str(demo))
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".gpkg.part")
    try:
        with open(fd, "wb") as out, open(demo, "rb") as src:
            shutil.copyfileobj(src, out)
        Path(tmp).replace(target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
