"""Parcels and their stage events: reading, describing, advancing, blocking.

Every write is one transaction that appends the event, updates the parcel's
current stage beside it, bumps ``meta.data_version`` and writes its audit line.
"""
from __future__ import annotations

import datetime as dt

import geopandas as gpd
import pandas as pd
import shapely

from gis.base import clock
from gis.base.errors import ConflictError, InputError, NotFoundError, StageTransitionError
from gis.base.units import M2_PER_HA, M2_PER_MU
from gis.model.search import matches as search_matches
from gis.store.attachments import prepare_uploads
from gis.store.base import PARCEL_FIELDS, StageEvent, parse_date, utcnow_iso
from gis.store.gpkg import parse_blob


class ParcelsMixin:
    """Parcels and their stage events: reading, describing, advancing, blocking."""

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
        code, name, village or responsible unit, case-insensitively.
        """
        df = self._read("parcels", geometry)
        df = df[[c for c in PARCEL_FIELDS if c in df.columns] + (["geometry"] if geometry else [])]
        return self.filter(df, kind=kind, zone=zone, village=village, stage=stage, search=search, blocked=blocked)

    def parcels_updated_since(self, stamp: str) -> gpd.GeoDataFrame:
        """The parcels (with geometry) whose ``updated_at`` is ``stamp`` or later: what a cached
        copy of the table reads again after a write (``gis.store.live``). One SQL query: a
        handful of rows, where a GDAL read of the layer costs ~50 ms however few it returns."""
        with self._connect() as con:
            cols = [c for c in PARCEL_FIELDS if c in self._columns(con, "parcels")]
            sel = ", ".join(f'"{c}"' for c in cols)
            rows = con.execute(f'SELECT {sel}, geom AS _geom FROM parcels WHERE updated_at >= ? ORDER BY code',
                               (stamp,)).fetchall()
        df = pd.DataFrame([tuple(r)[:-1] for r in rows], columns=cols)
        geoms = shapely.from_wkb([self._wkb_of(tuple(r)[-1]) for r in rows]) if rows else []
        return gpd.GeoDataFrame(df, geometry=list(geoms), crs="EPSG:4490")

    @staticmethod
    def _wkb_of(value) -> bytes | None:
        """WKB of a geometry as the database returns it (a GeoPackage blob here)."""
        if value is None:
            return None
        empty, _, offset = parse_blob(bytes(value))
        return None if empty else bytes(value)[offset:]

    def parcel_count(self) -> int:
        with self._connect() as con:
            return int(con.execute("SELECT COUNT(*) FROM parcels").fetchone()[0])

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
            df = df[df["zone"] == self.zone_code(zone)]
        if village:
            df = df[df["village"] == self.village_code(village)]
        if stage:
            stage = self.catalog.stage_key(stage, kind or None)  # a key, or a stage's Chinese or English label
            if stage == "not_started":
                df = df[df["stage"].isna()]
            else:
                df = df[df["stage"] == stage]
        if blocked is not None:
            df = df[df["blocked"].astype(bool) == blocked]
        if search and search.strip():  # code, name, village (either language) or responsible unit
            villages = {c: f"{n or ''} {e or ''}" for c, (n, e) in self.names("villages").items()}
            df = df[search_matches(df, search, villages)]
        return df.reset_index(drop=True)

    def code_of(self, table: str, text: str) -> str | None:
        """The code of a zone, village or park given its code, Chinese or English name; None if none matches."""
        return next((c for c, (n, e) in self.names(table).items() if text in (c, n, e)), None)

    def village_code(self, village: str) -> str:
        """Code of a village given its code, Chinese or English name.

        Raises:
            NotFoundError: no such village.
        """
        code = self.code_of("villages", village)
        if code is None:
            raise NotFoundError("error.no_village", village=village)
        return code

    def zone_code(self, zone: str) -> str:
        """Code of a zone given its code, Chinese or English name.

        Raises:
            NotFoundError: no such zone (the message lists the zones).
        """
        code = self.code_of("zones", zone)
        if code is None:
            raise NotFoundError("error.no_zone", zone=zone, known=", ".join(n for n, _ in self.names("zones").values()))
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
                " unit, note, reason, share, claimed_by, claimed_at FROM stage_events WHERE parcel = ?"
                " ORDER BY event_date, id",
                (code,),
            ).fetchall()
        return [StageEvent(**dict(r)) for r in rows]

    def events(self, village: str | None = None) -> pd.DataFrame:
        """All events (optionally of one village's parcels) as a table, in the order recorded."""
        if not village:
            return self._read_events()
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

    def _write_event(self, con, row, action, to_stage, date, by, note, reason, share, changes) -> StageEvent:
        now = utcnow_iso()
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
        evidence=None,
    ) -> StageEvent:
        """Move a parcel to ``to_stage`` on business date ``date``.

        A correction (any other stage, backwards included) needs a reason. ``evidence``: uploads
        ``(filename, bytes[, caption[, idempotency key]])`` attached to the new event in the same
        transaction; a stage whose pipeline says ``evidence = "document"`` (or ``"photo"``) needs one.

        Raises:
            NotFoundError: unknown parcel.
            StageTransitionError: the move is not allowed (nothing is written).
            ConflictError: the parcel changed since ``expected_version``.
            InputError: bad date or no author; a bad upload; the stage's evidence missing
                (``evidence.required``).
        """
        by = self._require_author(by)
        when = parse_date(date, today=today)
        uploads = prepare_uploads(evidence)  # checked before the transaction: a bad file writes nothing
        with self._refusals_logged(by, "advance", code), self._connect(write=True) as con:
            row = self._row(con, code, lock=True)
            by = self._may_edit(con, by, row)
            self._check_version(row, expected_version)
            current_date = parse_date(row["stage_date"]) if row["stage_date"] else None
            to_stage = self.catalog.stage_key(to_stage, row["kind"])  # a label (签约) names its stage too
            action = self.catalog.check_transition(
                row["kind"], row["stage"], to_stage, when,
                current_date=current_date, correction=correction, share=share, today=today,
                evidence=[u.info.kind for u, _, _ in uploads],
            )
            target = None if to_stage == "not_started" else to_stage
            event = self._write_event(
                con, row, action, target, when, by, note, correction, share,
                {"stage": target, "stage_date": when.isoformat() if target else None, "note": note or row["note"]},
            )
            self._attach_evidence(con, code, event, uploads, by)
            return event

    def _attach_evidence(self, con, code: str, event: StageEvent, uploads, by: str) -> None:
        """Attach the prepared uploads to ``event`` inside its transaction (the permission was checked)."""
        for upload, caption, key in uploads:
            self._attach_in(con, code, upload, by, target_kind="event", event_id=event.id, caption=caption,
                            idempotency_key=key, checked_by=by)

    def set_blocked(
        self,
        code: str,
        blocked: bool,
        reason: str,
        by: str,
        date: str | dt.date | None = None,
        expected_version: int | None = None,
        today: dt.date | None = None,
        evidence=None,
    ) -> StageEvent:
        """Flag a parcel as stuck (卡点) with a reason, or clear the flag. ``evidence``: as for
        ``advance``, attached to the new event in the same transaction.

        Raises:
            NotFoundError, ConflictError, InputError: as for ``advance``;
            StageTransitionError: blocking without a reason, or a future date.
        """
        by = self._require_author(by)
        when = parse_date(date, today=today)
        if when > (today or clock.office_today()):
            raise StageTransitionError("error.future_date", date=when.isoformat())
        reason = (reason or "").strip()
        if blocked and not reason:
            raise StageTransitionError("error.block_reason")
        uploads = prepare_uploads(evidence)
        with self._refusals_logged(by, "block" if blocked else "unblock", code), self._connect(write=True) as con:
            row = self._row(con, code, lock=True)
            by = self._may_edit(con, by, row)
            self._check_version(row, expected_version)
            if bool(row["blocked"]) == blocked:
                raise StageTransitionError("error.already_blocked" if blocked else "error.not_blocked", code=code)
            event = self._write_event(
                con, row, "block" if blocked else "unblock", row["stage"], when, by, "", reason, None,
                {"blocked": int(blocked), "blocked_reason": reason if blocked else None},
            )
            self._attach_evidence(con, code, event, uploads, by)
            return event

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
                        " WHERE code = ?", (note or None, utcnow_iso(), by, code))
            self._bump(con)
            # the whole record before: a view of an earlier date reads the parcel's facts of then from it
            self._audit(con, by, "note", code, "ok", dict(row), {"note": note or None})
