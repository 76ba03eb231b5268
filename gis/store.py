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
import shutil
import sqlite3
import tempfile
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio

from .gpkg import register_functions
from .errors import ConflictError, InputError, NotFoundError, StageTransitionError
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
    """A GeoPackage store. Cheap to construct; opens a connection per operation."""

    def __init__(self, path: Path | str, catalog: Catalog | None = None):
        self.path = Path(path)
        if not self.path.exists():
            raise NotFoundError("error.no_store", path=str(self.path))
        self.catalog = catalog or load_catalog()
        self._ensure_indexes()

    # ----------------------------------------------------------- opening
    @classmethod
    def open(cls, settings) -> "Store":
        """The working store of ``settings``, seeded from the demo on first use."""
        path = settings.store_path
        if not path.exists():
            seed_store(settings.demo_store, path)
        return cls(path, load_catalog(settings.layers_dir / "pipelines.toml"))

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

    def _ensure_indexes(self) -> None:
        with self._connect() as con:
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            missing = {"parcels", "stage_events", "meta"} - tables
            if missing:
                raise InputError("error.bad_store", path=str(self.path), detail="missing " + ", ".join(sorted(missing)))
            con.execute("CREATE UNIQUE INDEX IF NOT EXISTS parcels_code_idx ON parcels(code)")
            con.execute("CREATE INDEX IF NOT EXISTS stage_events_parcel_idx ON stage_events(parcel)")

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
        return pyogrio.read_dataframe(self.path, layer=name)

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
            cols = [r[1] for r in con.execute(f'PRAGMA table_info("{table}")') if r[1] not in ("fid", "geom")]
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
        df = pyogrio.read_dataframe(self.path, layer="parcels", read_geometry=geometry, fid_as_index=False)
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

    def _row(self, con, code: str) -> sqlite3.Row:
        row = con.execute(
            f"SELECT {', '.join(PARCEL_FIELDS)} FROM parcels WHERE code = ?", (code,)
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
            return pd.read_sql_query(sql + " ORDER BY e.id", con, params=params)

    # ----------------------------------------------------------- writing
    def _write_event(self, con, row, action, to_stage, date, by, note, reason, share, changes) -> StageEvent:
        now = _utcnow()
        cur = con.execute(
            "INSERT INTO stage_events (parcel, action, from_stage, to_stage, event_date, recorded_at,"
            " recorded_by, unit, note, reason, share) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (row["code"], action, row["stage"], to_stage, date.isoformat(), now, by, row["unit"], note or None, reason or None, share),
        )
        sets = ", ".join(f"{k} = ?" for k in changes)
        con.execute(
            f"UPDATE parcels SET {sets}, version = version + 1, updated_at = ?, updated_by = ? WHERE code = ?",
            (*changes.values(), now, by, row["code"]),
        )
        con.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'data_version'")
        con.execute(
            "UPDATE gpkg_contents SET last_change = strftime('%Y-%m-%dT%H:%M:%fZ','now')"
            " WHERE table_name IN ('parcels', 'stage_events', 'meta')"
        )
        return StageEvent(
            id=cur.lastrowid, parcel=row["code"], action=action, from_stage=row["stage"], to_stage=to_stage,
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
        with self._connect(write=True) as con:
            row = self._row(con, code)
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
        with self._connect(write=True) as con:
            row = self._row(con, code)
            self._check_version(row, expected_version)
            if bool(row["blocked"]) == blocked:
                raise StageTransitionError("error.already_blocked" if blocked else "error.not_blocked", code=code)
            return self._write_event(
                con, row, "block" if blocked else "unblock", row["stage"], when, by, "", reason, None,
                {"blocked": int(blocked), "blocked_reason": reason if blocked else None},
            )

    # ----------------------------------------------------------- importing
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

        Raises:
            InputError: no author, a new parcel without kind, an unknown kind.
            StageTransitionError: a stage outside the parcel's pipeline.
        """
        by = self._require_author(by)
        today_s = (today or dt.date.today()).isoformat()
        now = _utcnow()
        settable = [f for f in PARCEL_FIELDS if f not in ("code", "version", "updated_at", "updated_by")]
        insert_cols = ["geom", *PARCEL_FIELDS]
        with_history = {str(e["parcel"]) for e in history or ()}
        event_sql = ("INSERT INTO stage_events (parcel, action, from_stage, to_stage, event_date, recorded_at,"
                     " recorded_by, unit, note, reason, share) VALUES (?,?,?,?,?,?,?,?,?,?,?)")
        with self._connect(write=True) as con:
            old = {r[0]: r for r in con.execute("SELECT code, kind, stage, unit FROM parcels")}
            inserts, updates, events, new_codes = [], {}, [], set()
            for p in parcels:
                code = str(p["code"])
                given = {k: p[k] for k in settable if k in p}
                stage = given.get("stage")
                if code in old:
                    _, old_kind, old_stage, old_unit = old[code]
                    kind = given.get("kind") or old_kind
                    if "stage" in given:
                        self.catalog.pipeline_for(kind).index(stage)
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
                    self.catalog.pipeline_for(kind).index(stage)
                    row = {"name": code, "zone": "", "village": "", "park": "", "unit": "", "owner": "",
                           "land_use": "", "blocked": 0, **given, "code": code, "version": 1,
                           "updated_at": now, "updated_by": by}
                    inserts.append((p["geom"], *(row.get(f) for f in PARCEL_FIELDS)))
                    new_codes.add(code)
                    old[code] = (code, kind, stage, row.get("unit"))
                    if stage and code not in with_history:
                        events.append((code, "import", None, stage, given.get("stage_date") or today_s, now, by,
                                       row.get("unit"), note or None, None, None))
            con.executemany(
                f"INSERT INTO parcels ({', '.join(insert_cols)}) VALUES ({', '.join('?' * len(insert_cols))})", inserts)
            for keys, rows in updates.items():
                sets = ", ".join(f"{k} = ?" for k in keys)
                con.executemany(f"UPDATE parcels SET {sets}, version = version + 1, updated_at = ?, updated_by = ?"
                                " WHERE code = ?", rows)
            carried = [tuple(e.get(k) for k in ("parcel", "action", "from_stage", "to_stage", "event_date",
                                                 "recorded_at", "recorded_by", "unit", "note", "reason", "share"))
                       for e in history or () if str(e["parcel"]) in new_codes]
            con.executemany(event_sql, carried + events)
            con.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'data_version'")
            extent = "last_change = strftime('%Y-%m-%dT%H:%M:%fZ','now')"
            if con.execute("SELECT 1 FROM sqlite_master WHERE name = 'rtree_parcels_geom'").fetchone():
                extent += "".join(f", {c} = (SELECT {f}({a}) FROM rtree_parcels_geom)" for c, f, a in (
                    ("min_x", "min", "minx"), ("min_y", "min", "miny"), ("max_x", "max", "maxx"), ("max_y", "max", "maxy")))
            con.execute(f"UPDATE gpkg_contents SET {extent} WHERE table_name = 'parcels'")
            con.execute("UPDATE gpkg_contents SET last_change = strftime('%Y-%m-%dT%H:%M:%fZ','now')"
                        " WHERE table_name IN ('stage_events', 'meta')")
            version = con.execute("SELECT value FROM meta WHERE key = 'data_version'").fetchone()[0]
        return {"inserted": len(inserts), "updated": sum(len(r) for r in updates.values()),
                "events": len(carried) + len(events), "data_version": int(version)}


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
