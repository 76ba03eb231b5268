"""Evidence in the store: photos and documents on parcels, sites, villages and stage events.

Tables (migration 8 in gis/store/schema.py, both back ends):
    attachments          the GeoPackage Related Tables Extension's media table: id, data, content_type,
                         our metadata, and a thumbnail of each photo
    parcels_attachments  its mapping table (base_id → parcels.fid, related_id → attachments.id), declared in
                         gpkgext_relations (relation 'media'), so QGIS shows a parcel's photos

Rules, decided here and not by the UI:
  * every upload goes through ``gis.model.media.inspect`` (real type sniffed, size and pixel caps read
    from the header without decoding) before anything is written; a photo's thumbnail is made on add;
  * nothing is ever deleted: an attachment is withdrawn with a reason, or superseded by a newer one;
    its bytes never change (triggers refuse it); every add and withdrawal is audited;
  * one upload is stored once: the same idempotency key (a retried upload from the phone), or the same
    bytes on the same target, returns the row already stored;
  * who may add or withdraw: whoever may edit the target (an editor in their area, an admin; on a store
    without accounts anyone, the name given is recorded); who may see: everyone may see photos and
    ordinary documents, a restricted (personal) document only admins, leaders and editors of its area;
  * an advance or a block/unblock may carry evidence: attached in the same transaction, linked to the
    new event (gis/store/parcels.py calls ``_attach_in``).
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass

from gis.auth import accounts
from gis.base.errors import ConflictError, InputError, NotFoundError, PermissionRefused, StageTransitionError
from gis.model import media
from gis.store.base import PARCEL_FIELDS, utcnow_iso

TARGET_KINDS = ("parcel", "site", "village", "event")
#: roles that see restricted (personal) documents anywhere; editors see those of their own area
RESTRICTED_ROLES = ("admin", "leader")
META_COLUMNS = ("id", "target_kind", "target_code", "event_id", "kind", "content_type", "filename", "size", "sha256",
                "caption", "added_by", "added_at", "taken_at", "lon", "lat", "direction", "width", "height",
                "has_script", "restricted", "supersedes", "superseded_by", "withdrawn_at", "withdrawn_by",
                "withdrawn_reason")
_SELECT = "SELECT " + ", ".join(META_COLUMNS) + " FROM attachments"


@dataclass(frozen=True)
class Attachment:
    """One photo or document as the store holds it (metadata only; the bytes are read apart)."""

    id: int
    target_kind: str          # 'parcel' | 'site' | 'village' | 'event'
    target_code: str          # parcel/site/village code (for an event: the event's parcel)
    event_id: int | None
    kind: str                 # 'photo' | 'document'
    content_type: str
    filename: str
    size: int
    sha256: str
    caption: str
    added_by: str
    added_at: str             # UTC ISO
    taken_at: str | None
    lon: float | None
    lat: float | None
    direction: float | None
    restricted: bool
    withdrawn_at: str | None
    withdrawn_by: str | None
    withdrawn_reason: str | None
    superseded_by: int | None
    supersedes: int | None = None
    width: int | None = None
    height: int | None = None
    has_script: bool = False

    @property
    def withdrawn(self) -> bool:
        return self.withdrawn_at is not None

    def to_json(self) -> dict:
        """What ``renewal attachments --json`` prints (no bytes)."""
        return asdict(self)

    @classmethod
    def from_row(cls, row) -> "Attachment":
        r = dict(row)
        return cls(
            id=int(r["id"]), target_kind=r["target_kind"], target_code=r["target_code"],
            event_id=None if r["event_id"] is None else int(r["event_id"]), kind=r["kind"],
            content_type=r["content_type"], filename=r["filename"] or "", size=int(r["size"]), sha256=r["sha256"],
            caption=r["caption"] or "", added_by=r["added_by"] or "", added_at=r["added_at"], taken_at=r["taken_at"],
            lon=_float(r["lon"]), lat=_float(r["lat"]), direction=_float(r["direction"]),
            restricted=bool(r["restricted"]), withdrawn_at=r["withdrawn_at"], withdrawn_by=r["withdrawn_by"],
            withdrawn_reason=r["withdrawn_reason"],
            superseded_by=None if r["superseded_by"] is None else int(r["superseded_by"]),
            supersedes=None if r["supersedes"] is None else int(r["supersedes"]),
            width=None if r["width"] is None else int(r["width"]),
            height=None if r["height"] is None else int(r["height"]), has_script=bool(r["has_script"]),
        )


def _float(v) -> float | None:
    return None if v is None else float(v)


@dataclass(frozen=True)
class Upload:
    """An upload checked and prepared outside the transaction (sniffing, EXIF, thumbnail take CPU time,
    and the write lock should not wait for them)."""

    data: bytes
    filename: str
    info: media.MediaInfo
    sha256: str
    thumbnail: bytes | None


def prepare_upload(data: bytes, filename: str) -> Upload:
    """Check one upload and make its thumbnail.

    Raises:
        InputError: see ``gis.model.media.inspect``.
    """
    data = bytes(data)
    info = media.inspect(data, filename)
    thumb = media.thumbnail(data) if info.kind == media.PHOTO else None
    return Upload(data, filename or "", info, hashlib.sha256(data).hexdigest(), thumb)


def prepare_uploads(evidence) -> list[tuple[Upload, str, str | None]]:
    """``(upload, caption, idempotency key)`` of each item ``(filename, bytes[, caption[, key]])`` of the
    evidence an advance or a block carries (None: none).

    Raises:
        InputError: a bad upload, or an item not of that shape.
    """
    out = []
    for item in evidence or ():
        if not isinstance(item, (tuple, list)) or not 2 <= len(item) <= 4 or not isinstance(item[1], (bytes, bytearray,
                                                                                                        memoryview)):
            raise InputError("evidence.bad_item")
        name, data, caption, key = (*item, "", None)[:4]
        out.append((prepare_upload(data, str(name or "")), str(caption or ""), key))
    return out


class AttachmentsMixin:
    """Photos and documents. Mixed into ``Store`` (see gis/store/store.py)."""

    # ------------------------------------------------------------------ targets and permissions
    def _attachment_target(self, con, code: str, target_kind: str) -> dict:
        """``{code, zone, village}`` of what an attachment is on, for the permission rule.

        Raises:
            InputError: an unknown target kind; NotFoundError: no such parcel, village or site.
        """
        if target_kind not in TARGET_KINDS:
            raise InputError("evidence.bad_target_kind", kind=target_kind, known=", ".join(TARGET_KINDS))
        if target_kind in ("parcel", "event"):
            return dict(self._row(con, code))
        table = "villages" if target_kind == "village" else "parks"
        if table not in self._tables(con):
            raise NotFoundError("evidence.no_target", code=code)
        cols = "code, zone" if target_kind == "village" else "code"
        row = con.execute(f"SELECT {cols} FROM {table} WHERE code = ? OR name = ? OR name_en = ?",
                          (code, code, code)).fetchone()
        if row is None:
            raise NotFoundError("evidence.no_target", code=code)
        row = dict(row)
        if target_kind == "village":
            return {"code": row["code"], "zone": row.get("zone"), "village": row["code"]}
        # a site: whoever may edit one of its parcels may document it
        members = [dict(r) for r in con.execute("SELECT code, zone, village FROM parcels WHERE park = ?",
                                                (row["code"],))]
        return {"code": row["code"], "zone": None, "village": None, "members": members}

    def _may_document(self, user, target: dict) -> bool:
        if user is None:
            return False
        if "members" in target:
            return user.role == "admin" or any(accounts.may_edit(user, m) for m in target["members"])
        return accounts.may_edit(user, target)

    def _acting_on(self, con, by: str, target: dict):
        """``(name to record, user)`` of ``by`` adding to or withdrawing from ``target``.

        Raises:
            PermissionRefused: an unknown account, or one that may not edit the target.
        """
        if not self._accounts_on(con):
            return by, None
        user = self._user(con, by)
        if user is None:
            raise PermissionRefused("error.unknown_user", user=by)
        if not self._may_document(user, target):
            raise PermissionRefused("evidence.refused", user=user.username, role=user.role, code=target["code"])
        return user.username, user

    def _prefetch_targets(self, con, target_cache: dict, att_rows) -> None:
        """The parcels the restricted attachments ``att_rows`` are on, read in one query into ``target_cache``
        (what :meth:`_sees_restricted` would otherwise ask one parcel at a time: a round trip each on PostGIS)."""
        codes = sorted({r["target_code"] for r in att_rows if r["target_kind"] in ("parcel", "event")})
        for i in range(0, len(codes), 500):
            part = codes[i:i + 500]
            found = {r["code"]: dict(r) for r in con.execute(
                f"SELECT {', '.join(PARCEL_FIELDS)} FROM parcels WHERE code IN ({', '.join('?' * len(part))})",
                tuple(part))}
            for code in part:
                if code in found:  # an unknown one is left to _sees_restricted (NotFound: not seen)
                    for kind in ("parcel", "event"):
                        target_cache[(kind, code)] = found[code]

    def _sees_restricted(self, con, viewer: str | None, target_cache: dict, att_row) -> bool:
        """Whether ``viewer`` may see a restricted attachment (None: the system, which sees everything)."""
        if viewer is None:
            return True
        if "user" not in target_cache:  # once per listing: the account and whether the store has accounts
            target_cache["user"] = self._user(con, viewer) if self._accounts_on(con) else True
        user = target_cache["user"]
        if user is True:
            return True
        if user is None:
            return False
        if user.role in RESTRICTED_ROLES:
            return True
        if user.role != "editor":
            return False
        key = (att_row["target_kind"], att_row["target_code"])
        if key not in target_cache:
            try:
                target_cache[key] = self._attachment_target(con, att_row["target_code"], att_row["target_kind"])
            except NotFoundError:
                target_cache[key] = None
        target = target_cache[key]
        return target is not None and self._may_document(user, target)

    # ------------------------------------------------------------------ writing
    def add_attachment(self, code: str, data: bytes, filename: str, by: str, *, target_kind: str = "parcel",
                       event_id: int | None = None, caption: str = "", restricted: bool | None = None,
                       idempotency_key: str | None = None, supersedes: int | None = None) -> Attachment:
        """Attach a photo or document to a parcel, site, village or (``event_id``) a parcel's stage event.

        The same ``idempotency_key``, or the same bytes on the same target, returns the row already
        stored (nothing is written twice). ``restricted`` None: the document of an event at a stage whose
        evidence is personal (``evidence_restricted``) is restricted, anything else is not.

        Raises:
            InputError: a bad upload (``gis.model.media``), an unknown target kind, an event of another parcel,
                ``supersedes`` not on the same target.
            NotFoundError: no such parcel, village, site, event or superseded attachment.
            PermissionRefused: ``by`` may not edit the target.
        """
        by = self._require_author(by)
        upload = prepare_upload(data, filename)
        if event_id is not None and target_kind == "parcel":
            target_kind = "event"
        with self._refusals_logged(by, "attach", code), self._connect(write=True) as con:
            return self._attach_in(con, code, upload, by, target_kind=target_kind, event_id=event_id,
                                   caption=caption, restricted=restricted, idempotency_key=idempotency_key,
                                   supersedes=supersedes)

    def add_attachments(self, code: str, files, by: str, *, target_kind: str = "parcel",
                        event_id: int | None = None, caption: str = "", restricted: bool | None = None
                        ) -> list[Attachment]:
        """``add_attachment`` for several files ``(filename, bytes[, caption[, idempotency key]])`` in one
        transaction: every file is checked first, and one bad file writes none.

        Raises:
            as ``add_attachment``.
        """
        by = self._require_author(by)
        uploads = prepare_uploads(files)
        if not uploads:
            raise InputError("evidence.no_files")
        if event_id is not None and target_kind == "parcel":
            target_kind = "event"
        with self._refusals_logged(by, "attach", code), self._connect(write=True) as con:
            return [self._attach_in(con, code, u, by, target_kind=target_kind, event_id=event_id,
                                    caption=c or caption, restricted=restricted, idempotency_key=k)
                    for u, c, k in uploads]

    def _attach_in(self, con, code: str, upload: Upload, by: str, *, target_kind: str = "parcel",
                   event_id: int | None = None, caption: str = "", restricted: bool | None = None,
                   idempotency_key: str | None = None, supersedes: int | None = None,
                   checked_by: str | None = None, added: tuple[str, str] | None = None) -> Attachment:
        """Insert one prepared upload inside the caller's transaction (``checked_by``: the name to record,
        when the caller has checked the permission already, as ``advance`` has; ``added``: who added it and
        when, as an import carries them from a believed source, instead of the writer and now)."""
        target = self._attachment_target(con, code, target_kind)
        code = target["code"]
        if checked_by is not None:
            by = checked_by
        else:
            by, _ = self._acting_on(con, by, target)
        key = (idempotency_key or "").strip() or None
        if key is not None:
            row = con.execute(_SELECT + " WHERE idempotency_key = ?", (key,)).fetchone()
            if row is not None:
                return Attachment.from_row(row)
        stage = None
        if event_id is not None:
            ev = con.execute("SELECT parcel, to_stage FROM stage_events WHERE id = ?", (int(event_id),)).fetchone()
            if ev is None:
                raise NotFoundError("evidence.no_event", id=event_id)
            if ev["parcel"] != code:
                raise InputError("evidence.event_elsewhere", id=event_id, code=code, parcel=ev["parcel"])
            stage = ev["to_stage"]
        same = con.execute(_SELECT + " WHERE sha256 = ? AND target_code = ? AND target_kind = ?"
                           " AND withdrawn_at IS NULL" + (" AND event_id = ?" if event_id is not None else
                                                          " AND event_id IS NULL"),
                           (upload.sha256, code, target_kind, *([int(event_id)] if event_id is not None else []))
                           ).fetchone()
        if same is not None:
            return Attachment.from_row(same)
        old = None
        if supersedes is not None:
            old = con.execute(_SELECT + " WHERE id = ?", (int(supersedes),)).fetchone()
            if old is None:
                raise NotFoundError("evidence.no_attachment", id=supersedes)
            if old["target_code"] != code or old["superseded_by"] is not None:
                raise InputError("evidence.bad_supersede", id=supersedes, code=code)
        if restricted is None:
            restricted = bool(upload.info.kind == media.DOCUMENT and stage and target.get("kind")
                              and self._stage_restricted(target["kind"], stage))
        info = upload.info
        now = utcnow_iso()
        added_by, added_at = added or (by, now)
        new_id = con.execute(
            "INSERT INTO attachments (content_type, target_kind, target_code, event_id, kind, filename, size, sha256,"
            " caption, added_by, added_at, taken_at, lon, lat, direction, width, height, has_script, restricted,"
            " idempotency_key, supersedes, thumbnail, data) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
            # the same key sent at the same moment by a retry (PostGIS runs them side by side): the first wins
            " ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
            (info.content_type, target_kind, code, None if event_id is None else int(event_id), info.kind,
             upload.filename, info.size, upload.sha256, caption or None, added_by, added_at, info.taken_at, info.lon,
             info.lat,
             info.direction, info.width, info.height, int(info.has_script), int(bool(restricted)), key,
             None if old is None else int(old["id"]), upload.thumbnail, upload.data),
        ).fetchone()
        if new_id is None:
            return Attachment.from_row(con.execute(_SELECT + " WHERE idempotency_key = ?", (key,)).fetchone())
        new_id = new_id[0]
        if target_kind in ("parcel", "event"):
            fid = con.execute("SELECT fid FROM parcels WHERE code = ?", (code,)).fetchone()[0]
            con.execute("INSERT INTO parcels_attachments (base_id, related_id) VALUES (?, ?)", (int(fid), int(new_id)))
        if old is not None:
            con.execute("UPDATE attachments SET superseded_by = ? WHERE id = ?", (int(new_id), int(old["id"])))
        self._bump_attachments(con)
        att = Attachment.from_row(con.execute(_SELECT + " WHERE id = ?", (int(new_id),)).fetchone())
        meta = {k: v for k, v in att.to_json().items() if k not in ("withdrawn_at", "withdrawn_by", "withdrawn_reason")}
        self._audit(con, by, "attach", code, "ok", None, meta, caption or upload.filename)
        return att

    def _stage_restricted(self, kind: str, stage: str) -> bool:
        try:
            return self.catalog.pipeline_for(kind).stage(stage).evidence_restricted
        except (StageTransitionError, InputError):  # a stage (or kind) no longer in the catalogue: not restricted
            return False

    def _bump_attachments(self, con) -> None:
        con.execute("UPDATE meta SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) WHERE key = 'data_version'")
        self._touch(con, ("attachments", "parcels_attachments", "meta"))

    def withdraw_attachment(self, attachment_id: int, reason: str, by: str) -> Attachment:
        """Withdraw an attachment (it stays in the store, marked, with who, when and why).

        Raises:
            InputError: no reason. ConflictError: withdrawn already (exit 4). NotFoundError: no such attachment.
            PermissionRefused: ``by`` may not edit its target.
        """
        by = self._require_author(by)
        reason = (reason or "").strip()
        if not reason:
            raise InputError("evidence.withdraw_reason")
        with self._refusals_logged(by, "attachment_withdraw", str(attachment_id)), self._connect(write=True) as con:
            row = con.execute(_SELECT + " WHERE id = ?" + self._lock, (int(attachment_id),)).fetchone()
            if row is None:
                raise NotFoundError("evidence.no_attachment", id=attachment_id)
            target = self._attachment_target(con, row["target_code"], row["target_kind"])
            by, _ = self._acting_on(con, by, target)
            if row["withdrawn_at"] is not None:
                raise ConflictError("evidence.withdrawn_already", id=attachment_id, at=row["withdrawn_at"])
            now = utcnow_iso()
            con.execute("UPDATE attachments SET withdrawn_at = ?, withdrawn_by = ?, withdrawn_reason = ? WHERE id = ?",
                        (now, by, reason, int(attachment_id)))
            self._bump_attachments(con)
            att = Attachment.from_row(con.execute(_SELECT + " WHERE id = ?", (int(attachment_id),)).fetchone())
            self._audit(con, by, "attachment_withdraw", row["target_code"], "ok",
                        {"id": att.id, "withdrawn_at": None},
                        {"id": att.id, "withdrawn_at": now, "withdrawn_by": by}, reason)
        return att

    # ------------------------------------------------------------------ reading
    def attachments(self, code: str | None = None, *, target_kind: str = "parcel", event_id: int | None = None,
                    viewer: str | None = None, include_withdrawn: bool = False, kind: str | None = None
                    ) -> list[Attachment]:
        """The attachments a viewer may see, oldest first (metadata only, never bytes).

        ``code`` with ``target_kind='parcel'`` lists the parcel's own and its events'; ``event_id`` those of one
        event; no code, every attachment. ``kind``: ``photo`` or ``document`` only.

        Raises:
            NotFoundError: an unknown parcel (village, site).
        """
        where, params = [], []
        with self._connect() as con:
            if code is not None:
                target = self._attachment_target(con, code, target_kind)
                where.append("target_code = ?")
                params.append(target["code"])
                kinds = ("parcel", "event") if target_kind in ("parcel", "event") else (target_kind,)
                where.append("target_kind IN (" + ", ".join("?" * len(kinds)) + ")")
                params += list(kinds)
            if event_id is not None:
                where.append("event_id = ?")
                params.append(int(event_id))
            if not include_withdrawn:
                where.append("withdrawn_at IS NULL")
            if kind:
                where.append("kind = ?")
                params.append(kind)
            sql = _SELECT + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id"
            rows = con.execute(sql, tuple(params)).fetchall()
            cache: dict = {}
            return [Attachment.from_row(r) for r in rows
                    if not r["restricted"] or self._sees_restricted(con, viewer, cache, r)]

    def _visible_row(self, con, attachment_id: int, viewer: str | None):
        row = con.execute(_SELECT + " WHERE id = ?", (int(attachment_id),)).fetchone()
        if row is None:
            raise NotFoundError("evidence.no_attachment", id=attachment_id)
        if row["restricted"] and not self._sees_restricted(con, viewer, {}, row):
            raise PermissionRefused("evidence.restricted", id=attachment_id,
                                    user=viewer or {"zh": "（未登录）", "en": "(not signed in)"})
        return row

    def attachment(self, attachment_id: int, viewer: str | None = None) -> Attachment:
        """One attachment's metadata.

        Raises:
            NotFoundError: no such attachment. PermissionRefused: restricted, and ``viewer`` may not see it.
        """
        with self._connect() as con:
            return Attachment.from_row(self._visible_row(con, attachment_id, viewer))

    def attachment_data(self, attachment_id: int, viewer: str | None = None) -> bytes:
        """An attachment's bytes, as uploaded.

        Raises:
            NotFoundError, PermissionRefused: as for ``attachment``.
        """
        return b"".join(self.attachment_chunks(attachment_id, viewer=viewer))

    def attachment_chunks(self, attachment_id: int, size: int = 1 << 20, viewer: str | None = None
                          ) -> Iterator[bytes]:
        """An attachment's bytes in chunks of ``size``, streamed from the store (never all in memory).

        Raises:
            NotFoundError, PermissionRefused: as for ``attachment`` (on the first ``next``).
        """
        with self._connect() as con:
            row = self._visible_row(con, attachment_id, viewer)
            yield from self._blob_chunks(con, int(row["id"]), int(row["size"]), size)

    def _blob_chunks(self, con, attachment_id: int, total: int, size: int) -> Iterator[bytes]:
        """SQLite's incremental blob I/O: reads pages as they are asked for (PostGIS overrides it)."""
        with con.blobopen("attachments", "data", attachment_id, readonly=True) as blob:
            while True:
                chunk = blob.read(size)
                if not chunk:
                    return
                yield chunk

    def attachment_thumbnail(self, attachment_id: int, viewer: str | None = None) -> bytes | None:
        """The JPEG thumbnail (≤ 320 px) of a photo; None for a document.

        Raises:
            NotFoundError, PermissionRefused: as for ``attachment``.
        """
        with self._connect() as con:
            self._visible_row(con, attachment_id, viewer)
            row = con.execute("SELECT thumbnail FROM attachments WHERE id = ?", (int(attachment_id),)).fetchone()
        return None if row["thumbnail"] is None else bytes(row["thumbnail"])

    def photo_points(self, viewer: str | None = None, bbox: tuple[float, float, float, float] | None = None
                     ) -> list[dict]:
        """Photos with a location (not withdrawn): ``{id, code, lon, lat, direction, caption, taken_at}``,
        within ``bbox`` (min lon, min lat, max lon, max lat) if given."""
        sql = ("SELECT id, target_code, target_kind, lon, lat, direction, caption, taken_at, restricted FROM attachments"
               " WHERE kind = 'photo' AND withdrawn_at IS NULL AND lon IS NOT NULL AND lat IS NOT NULL")
        params: tuple = ()
        if bbox is not None:
            sql += " AND lon >= ? AND lat >= ? AND lon <= ? AND lat <= ?"
            params = tuple(float(v) for v in bbox)
        with self._connect() as con:
            rows = con.execute(sql + " ORDER BY id", params).fetchall()
            cache: dict = {}
            return [{"id": int(r["id"]), "code": r["target_code"], "lon": float(r["lon"]), "lat": float(r["lat"]),
                     "direction": _float(r["direction"]), "caption": r["caption"] or "", "taken_at": r["taken_at"]}
                    for r in rows if not r["restricted"] or self._sees_restricted(con, viewer, cache, r)]

    def attachment_counts(self, viewer: str | None = None, codes=None) -> dict[str, int]:
        """``{parcel code: attachments not withdrawn}`` (restricted ones counted only for who may see them);
        ``codes``: of those parcels only (a panel's tab label: one indexed query, not the whole table)."""
        out: dict[str, int] = {}
        where, args = "", ()
        if codes is not None:
            codes = sorted(set(codes))
            if not codes:
                return out
            where, args = f" AND target_code IN ({', '.join('?' * len(codes))})", tuple(codes)
        with self._connect() as con:
            rows = con.execute("SELECT target_code, target_kind, restricted FROM attachments"
                               " WHERE withdrawn_at IS NULL AND target_kind IN ('parcel', 'event')" + where,
                               args).fetchall()
            cache: dict = {}
            if viewer is not None:
                self._prefetch_targets(con, cache, [r for r in rows if r["restricted"]])
            for r in rows:
                if not r["restricted"] or self._sees_restricted(con, viewer, cache, r):
                    out[r["target_code"]] = out.get(r["target_code"], 0) + 1
        return out
