"""Bulk writes of parcels (an import): all land in one transaction, or none.
"""
from __future__ import annotations

import datetime as dt
from operator import itemgetter

from gis.auth import accounts
from gis.base import clock
from gis.base.errors import InputError, PermissionRefused
from gis.store.attachments import prepare_upload
from gis.store.base import PARCEL_FIELDS, utcnow_iso
from gis.store.gpkg import blob_bounds, blobs_from_wkb


class BulkMixin:
    """Bulk writes of parcels (an import): all land in one transaction, or none."""

    _geom_sql = "?"

    def _geom_values(self, wkbs: list) -> list:
        """Geometry as this back end writes it: WKB in, GeoPackage binary out (with its envelope)."""
        return blobs_from_wkb(wkbs)

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
            boxes = ((fid, b[0], b[2], b[1], b[3]) for fid, b in zip(fids, (blob_bounds(r[0]) for r in inserts))
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
        attachments: list[dict] | None = None,
    ) -> dict:
        """Insert or update parcels by code in one transaction (an import): all land, or none.

        Each dict holds ``code``, ``geom`` (WKB, EPSG:4490)
        and the parcel fields its source sets. A new code is inserted (version 1,
        defaults for fields not given, ``kind`` required); an existing code gets
        the given fields and its version bumped, and keeps its history. Every
        updated parcel, and every new one arriving at a stage without events of
        its own in ``history``, gets an ``import`` event. ``history`` (events
        carried by the file, e.g. an exported GeoPackage) is appended for the
        new codes. Geometry is written through SQLite, so GDAL's R-tree triggers
        (whose ST_* functions ``_connect`` registers) keep the spatial index right.

        ``attachments`` (the photos and documents a file carries, ``gis.io.importer.check_attachments``:
        ``code``, ``filename``, ``caption``, ``restricted``, ``event`` (action, to_stage, event_date of the
        stage event it documents), ``known_sha256``, ``data()``) land in the same transaction, through the
        checks of an upload, one at a time (never all in memory); one the parcel already has (by either
        sha256) is skipped.

        Returns ``{"inserted", "updated", "events", "attachments", "data_version"}``.

        With accounts on, ``by`` must be a user allowed to edit every parcel
        written (its zone or village); the import is one line of the audit trail.

        Raises:
            InputError: no author, a new parcel without kind, an unknown kind.
            StageTransitionError: a stage outside the parcel's pipeline.
            PermissionRefused: ``by`` may not edit one of the parcels.
        """
        by = self._require_author(by)
        today_s = (today or clock.office_today()).isoformat()
        now = utcnow_iso()
        settable = frozenset(PARCEL_FIELDS) - {"code", "version", "updated_at", "updated_by"}
        insert_cols = ["geom", *PARCEL_FIELDS]
        as_row = itemgetter(*PARCEL_FIELDS)
        base = dict.fromkeys(PARCEL_FIELDS)
        base.update(zone="", village="", park="", unit="", owner="", land_use="", blocked=0, version=1,
                    updated_at=now, updated_by=by)
        pipelines = {k: self.catalog.pipeline_for(k) for k in self.catalog.kinds}
        with_history = {str(e["parcel"]) for e in history or ()}
        event_sql = ("INSERT INTO stage_events (parcel, action, from_stage, to_stage, event_date, recorded_at,"
                     " recorded_by, unit, note, reason, share, claimed_by, claimed_at)"
                     " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)")
        geoms = dict(zip((str(p["code"]) for p in parcels), self._geom_values([p["geom"] for p in parcels])))
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
            # a parcel already stored whose history is where the file's begins takes the file's later events
            tails = self._history_tails(con, history, {str(p["code"]) for p in parcels if str(p["code"]) in old}, old)
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
                    updates.setdefault(keys, []).append((geoms[code], *(given[k] for k in keys[1:]), now, by, code))
                    if code in tails and (tails[code][-1].get("to_stage") or None) == (new_stage or None):
                        continue  # the carried events say how it got there: they stand instead of an import event
                    tails.pop(code, None)
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
                    inserts.append((geoms[code], *as_row(row)))
                    new_codes.add(code)
                    old[code] = row
                    if stage and code not in with_history:
                        events.append((code, "import", None, stage, given.get("stage_date") or today_s, now, by,
                                       row.get("unit"), note or None, None, None))
            self._insert_parcels(con, insert_cols, inserts)
            for keys, rows in updates.items():
                sets = ", ".join(f"{k} = {self._geom_sql if k == 'geom' else '?'}" for k in keys)
                con.executemany(f"UPDATE parcels SET {sets}, version = version + 1, updated_at = ?, updated_by = ?"
                                " WHERE code = ?", rows)
            carry = [e for e in history or () if str(e["parcel"]) in new_codes]
            carried = self._carried_events(carry + [e for tail in tails.values() for e in tail], old, user, by, now)
            con.executemany(event_sql, carried + [(*e, None, None) for e in events])
            n_attached, n_present = self._import_attachments(con, attachments or (), by,
                                                             trusted=user is None or user.role == "admin")
            if not (inserts or updates or carried or events or n_attached):
                return {"inserted": 0, "updated": 0, "events": 0, "attachments": 0, "attachments_present": n_present,
                        "data_version": int(con.execute(
                            "SELECT value FROM meta WHERE key = 'data_version'").fetchone()[0])}  # nothing new
            self._bump(con)
            self._update_extent(con)
            version = con.execute("SELECT value FROM meta WHERE key = 'data_version'").fetchone()[0]
            self._audit(con, by, "import", note or "import", "ok", None,
                        {"inserted": len(inserts), "updated": sum(len(r) for r in updates.values()),
                         "carried": len(carried)}, note)
        return {"inserted": len(inserts), "updated": sum(len(r) for r in updates.values()),
                "events": len(carried) + len(events), "attachments": n_attached, "attachments_present": n_present,
                "data_version": int(version)}

    def _history_tails(self, con, history, codes: set[str], parcels: dict) -> dict[str, list[dict]]:
        """The events a file carries for parcels already stored (``codes``) that come after the stored
        history: only where the stored history is where the file's begins (an export of this store or of a
        copy of it, moved on since) and the first of them starts at the parcel's stage. A parcel whose
        histories part ways takes none (its ``import`` event says what changed)."""
        mine: dict[str, list[dict]] = {}
        for e in history or ():
            if str(e["parcel"]) in codes:
                mine.setdefault(str(e["parcel"]), []).append(e)
        if not mine:
            return {}
        stored: dict[str, list[tuple]] = {}
        wanted = sorted(mine)
        for i in range(0, len(wanted), 500):  # bounded IN lists, on both back ends
            part = wanted[i:i + 500]
            for r in con.execute("SELECT parcel, action, from_stage, to_stage, event_date FROM stage_events"
                                 f" WHERE parcel IN ({', '.join('?' * len(part))}) ORDER BY parcel, event_date, id",
                                 tuple(part)):
                stored.setdefault(r[0], []).append((r[1], r[2] or None, r[3] or None, str(r[4])))
        tails = {}
        for code, evs in mine.items():
            evs = sorted(evs, key=lambda e: str(e["event_date"]))  # the order of history(); a day keeps file order
            keys = [(e["action"], e.get("from_stage") or None, e.get("to_stage") or None, str(e["event_date"]))
                    for e in evs]
            have = stored.get(code, [])
            if len(keys) > len(have) and keys[:len(have)] == have \
                    and (evs[len(have)].get("from_stage") or None) == (parcels[code]["stage"] or None):
                tails[code] = evs[len(have):]
        return tails

    def _import_attachments(self, con, items, by: str, trusted: bool = False) -> tuple[int, int]:
        """Attach what an import carries, inside its transaction; ``(written, already present)``.

        Each item is checked as an upload is (``prepare_upload``: real type, caps, thumbnail) when its turn
        comes, so one file's bytes at a time are held; permission as for any attachment (``_attach_in``).
        A document of a stage event is linked to the parcel's event of the same action, stage and date.
        Who added it and when is the file's where its carried events are believed (``trusted``: an admin's
        import, or a store without accounts), else the importer's at the import's time.
        """
        written = present = 0
        for item in items:
            code = str(item["code"])
            known = sorted(item.get("known_sha256") or ())
            if known and con.execute(
                    "SELECT 1 FROM attachments WHERE target_code = ? AND target_kind IN ('parcel', 'event')"
                    f" AND withdrawn_at IS NULL AND sha256 IN ({', '.join('?' * len(known))})",
                    (code, *known)).fetchone():
                present += 1
                continue
            event_id = None
            ev = item.get("event")
            if ev and ev.get("event_date"):
                stage_sql = "to_stage IS NULL" if not ev.get("to_stage") else "to_stage = ?"
                row = con.execute(
                    f"SELECT id FROM stage_events WHERE parcel = ? AND action = ? AND event_date = ? AND {stage_sql}"
                    " ORDER BY id DESC", (code, ev.get("action"), ev["event_date"],
                                          *([ev["to_stage"]] if ev.get("to_stage") else []))).fetchone()
                event_id = None if row is None else int(row[0])
            upload = prepare_upload(item["data"](), item.get("filename") or "")
            added = (item.get("added_by"), item.get("added_at")) if trusted and item.get("added_by") \
                and item.get("added_at") else None
            self._attach_in(con, code, upload, by, target_kind="event" if event_id is not None else "parcel",
                            event_id=event_id, caption=item.get("caption") or "",
                            restricted=bool(item.get("restricted")), added=added)
            written += 1
        return written, present

    def _carried_events(self, history, parcels, user, by: str, now: str) -> list[tuple]:
        """Rows of the events a file carries that the import keeps (``gis.io.importer`` has checked them):
        those of its new parcels, and those after the stored history of parcels already stored.

        Their stages must be of the parcel's pipeline, whoever imports. Who recorded
        them and when is believed only from an admin, or on a store without accounts
        (the planner's own file); anyone else's are recorded as the importer's, at the
        import's time, with the file's claim kept in ``claimed_by``/``claimed_at``.

        Raises:
            StageTransitionError: a stage outside the parcel's pipeline.
        """
        trusted = user is None or user.role == "admin"
        rows = []
        for e in history or ():
            code = str(e["parcel"])
            frm, to = e.get("from_stage") or None, e.get("to_stage") or None
            pipe = self.catalog.pipeline_for(parcels[code]["kind"])
            pipe.index(frm), pipe.index(to)
            said = (e.get("recorded_by"), e.get("recorded_at"))
            rec_by, rec_at, claimed = (*said, (None, None)) if trusted else (by, now, said)
            rows.append((code, e.get("action"), frm, to, e.get("event_date"), rec_at, rec_by, e.get("unit"),
                         e.get("note"), e.get("reason"), e.get("share"), *claimed))
        return rows
