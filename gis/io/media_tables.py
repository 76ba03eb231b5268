"""Attachments in an exported GeoPackage, and back: the GeoPackage Related Tables Extension (OGC 18-000).

An export carries a **media table** ``attachments`` (``id``, ``data`` BLOB, ``content_type``, then what the
store knows: file name, caption, sha256, time taken, location, stage event …) and one **mapping table** per
layer it relates to — ``parcels_attachments`` (parcels.fid → attachments.id), ``stage_events_attachments``
and ``villages_attachments`` — each registered in ``gpkg_contents`` (attributes), ``gpkgext_relations``
(``relation_name = 'media'``) and ``gpkg_extensions`` (``gpkg_related_tables``, read-write), so QGIS and GDAL
(``GDALDataset::GetRelationshipNames``) see the relations and ``validate_gpkg.py`` passes.

Exported photo bytes go through :func:`gis.model.media.strip_personal` (no camera serial, owner or GPS in
the file; time and place stay in the columns). Restricted documents (signed agreements …) leave the store only
for an account the store lets see them. Bytes are copied one attachment at a time — a document in chunks
straight into the file's BLOB (SQLite's incremental BLOB I/O) — never the whole set in memory.

    write_media(store, "out.gpkg", codes, viewer="张伟")   after the layers are written
    rows = read_media("in.gpkg", "parcels")                 metadata of what a file carries for a layer
    data = media_data("in.gpkg", rows[0].row_id)
"""
from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from gis.model.media import strip_personal

MEDIA_TABLE = "attachments"
EXTENSION = "gpkg_related_tables"
DEFINITION = "http://www.opengis.net/doc/IS/gpkg-rte/1.0"
#: attachment target kind → the exported layer it relates to, and that layer's primary key
BASES = {"parcel": ("parcels", "fid"), "event": ("stage_events", "id"), "village": ("villages", "fid"),
         "site": ("parks", "fid")}
CHUNK = 1 << 20

MEDIA_COLUMNS = (
    ("data", "BLOB NOT NULL"), ("content_type", "TEXT NOT NULL"), ("kind", "TEXT"), ("filename", "TEXT"),
    ("caption", "TEXT"), ("size", "INTEGER"), ("sha256", "TEXT"), ("store_sha256", "TEXT"),
    ("taken_at", "TEXT"), ("lon", "REAL"), ("lat", "REAL"), ("direction", "REAL"),
    ("added_by", "TEXT"), ("added_at", "TEXT"), ("target_kind", "TEXT"), ("target_code", "TEXT"),
    ("event_id", "INTEGER"), ("restricted", "INTEGER"),
)


# ------------------------------------------------------------------ what leaves the store
def exportable(store, viewer: str | None, parcels: set[str], places: dict[str, set[str]] | None = None
               ) -> tuple[list, int]:
    """The attachments (metadata) of ``parcels`` and of ``places`` (``{"village": codes, "site": codes}``) an
    export by ``viewer`` carries, and how many restricted ones were left out. Withdrawn ones stay in the store.

    ``viewer=None``: an export by no account in particular — on a store with accounts restricted documents
    are left out (a planner's own file without accounts has no one to hide them from); a named viewer gets
    what the store lets that account see.
    """
    anonymous = viewer is None and store.accounts_enabled()
    places = places or {}
    every = [a for a in store.attachments(None, viewer=None)
             if a.target_code in (parcels if a.target_kind in ("parcel", "event") else places.get(a.target_kind, ()))]
    visible = None
    if any(a.restricted for a in every) and not anonymous and viewer is not None:
        visible = {a.id for a in store.attachments(None, viewer=viewer)}  # what the store lets the viewer see
    out, left_out = [], 0
    for a in every:
        if a.restricted and (anonymous or (visible is not None and a.id not in visible)):
            left_out += 1
            continue
        out.append(a)
    return out, left_out


def export_bytes_of(store, a, viewer: str | None):
    """The bytes of attachment ``a`` as an export carries them: a photo without its personal EXIF (one
    photo in memory, capped by the upload limit); a document as stored, in chunks (an iterator)."""
    if a.kind == "photo":
        return strip_personal(store.attachment_data(a.id, viewer=viewer))
    return store.attachment_chunks(a.id)


# ------------------------------------------------------------------ writing
def write_media(store, path: Path | str, parcels, viewer: str | None = None, places: dict | None = None) -> dict:
    """Add the media table, its mapping tables and the relation records to the GeoPackage at ``path``
    (already holding ``parcels``, ``stage_events`` and perhaps ``villages`` and ``parks``, written by GDAL).
    ``places``: ``{"village": codes, "site": codes}`` whose own attachments go along.

    Returns ``{"attachments", "attachment_bytes", "restricted_left_out"}``; with nothing to carry the file
    is left as it was (no empty extension).
    """
    rows, left_out = exportable(store, viewer, set(parcels), places)
    summary = {"attachments": 0, "attachment_bytes": 0, "restricted_left_out": left_out}
    if not rows:
        return summary
    con = sqlite3.connect(path)
    try:
        with con:
            fids = {kind: _keys(con, table, key, "code" if kind != "event" else None)
                    for kind, (table, key) in BASES.items()}
            cols = ", ".join(f'"{n}" {t}' for n, t in MEDIA_COLUMNS)
            con.execute(f'CREATE TABLE "{MEDIA_TABLE}" (id INTEGER PRIMARY KEY AUTOINCREMENT, {cols})')
            _register(con, MEDIA_TABLE, "attachments (photos and documents) of the parcels, their events and villages")
            used: dict[str, list[tuple[int, int]]] = {}
            total = 0
            for a in rows:
                size, sha = _insert(con, a, export_bytes_of(store, a, viewer))
                total += size
                links = []
                if a.target_kind in ("parcel", "event") and a.target_code in fids["parcel"]:
                    links.append(("parcel", fids["parcel"][a.target_code]))
                if a.event_id is not None and a.event_id in fids["event"]:
                    links.append(("event", a.event_id))
                if a.target_kind in ("village", "site") and a.target_code in fids[a.target_kind]:
                    links.append((a.target_kind, fids[a.target_kind][a.target_code]))
                for kind, base_id in links:
                    used.setdefault(kind, []).append((base_id, a.id))
            con.execute("INSERT INTO gpkg_extensions (table_name, column_name, extension_name, definition, scope)"
                        " VALUES ('gpkgext_relations', NULL, ?, ?, 'read-write')", (EXTENSION, DEFINITION))
            con.execute("CREATE TABLE gpkgext_relations (id INTEGER PRIMARY KEY AUTOINCREMENT,"
                        " base_table_name TEXT NOT NULL, base_primary_column TEXT NOT NULL DEFAULT 'id',"
                        " related_table_name TEXT NOT NULL, related_primary_column TEXT NOT NULL DEFAULT 'id',"
                        " relation_name TEXT NOT NULL, mapping_table_name TEXT NOT NULL UNIQUE)")
            for kind, pairs in used.items():
                base, key = BASES[kind]
                mapping = f"{base}_{MEDIA_TABLE}"
                # a key of its own, as every GeoPackage attribute table; foreign keys, so that
                # PRAGMA foreign_key_check (validate_gpkg) vouches for every pair
                con.execute(f'CREATE TABLE "{mapping}" (id INTEGER PRIMARY KEY AUTOINCREMENT,'
                            f' base_id INTEGER NOT NULL REFERENCES "{base}"("{key}"),'
                            f' related_id INTEGER NOT NULL REFERENCES "{MEDIA_TABLE}"(id))')
                con.executemany(f'INSERT INTO "{mapping}" (base_id, related_id) VALUES (?, ?)', pairs)
                _register(con, mapping, f"{base} → {MEDIA_TABLE} (GeoPackage related tables, media)")
                con.execute("INSERT INTO gpkgext_relations (base_table_name, base_primary_column,"
                            " related_table_name, related_primary_column, relation_name, mapping_table_name)"
                            " VALUES (?, ?, ?, 'id', 'media', ?)", (base, key, MEDIA_TABLE, mapping))
                con.execute("INSERT INTO gpkg_extensions (table_name, column_name, extension_name, definition,"
                            " scope) VALUES (?, NULL, ?, ?, 'read-write')", (mapping, EXTENSION, DEFINITION))
    finally:
        con.close()
    summary.update(attachments=len(rows), attachment_bytes=total)
    return summary


def _keys(con, table: str, key: str, code: str | None) -> dict:
    """``{code: primary key}`` of an exported layer (``{id: id}`` for the events); empty if it is absent."""
    if not con.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone():
        return {}
    if code is None:
        return {r[0]: r[0] for r in con.execute(f'SELECT "{key}" FROM "{table}"')}
    return {r[1]: r[0] for r in con.execute(f'SELECT "{key}", "{code}" FROM "{table}"')}


def _register(con, table: str, description: str) -> None:
    con.execute("INSERT INTO gpkg_contents (table_name, data_type, identifier, description, last_change, srs_id)"
                " VALUES (?, 'attributes', ?, ?, strftime('%Y-%m-%dT%H:%M:%fZ','now'), 0)",
                (table, table, description))


def _insert(con, a, data) -> tuple[int, str]:
    """One media row: bytes as given, or chunks written into a zero-filled BLOB of the stored size."""
    meta = (a.content_type, a.kind, a.filename, a.caption or "", a.sha256, a.taken_at, a.lon, a.lat,
            a.direction, a.added_by, a.added_at, a.target_kind, a.target_code, a.event_id, int(bool(a.restricted)))
    names = ("content_type", "kind", "filename", "caption", "store_sha256", "taken_at", "lon", "lat", "direction",
             "added_by", "added_at", "target_kind", "target_code", "event_id", "restricted")
    sql = (f'INSERT INTO "{MEDIA_TABLE}" (id, data, size, sha256, {", ".join(names)})'
           f' VALUES (?, {{}}, ?, ?, {", ".join("?" * len(names))})')
    if isinstance(data, (bytes, bytearray)):
        sha = hashlib.sha256(data).hexdigest()
        con.execute(sql.format("?"), (a.id, bytes(data), len(data), sha, *meta))
        return len(data), sha
    h = hashlib.sha256()
    con.execute(sql.format("zeroblob(?)"), (a.id, a.size, a.size, None, *meta))
    done = 0
    with con.blobopen(MEDIA_TABLE, "data", a.id) as blob:
        for chunk in data:
            blob.write(chunk)
            h.update(chunk)
            done += len(chunk)
    if done != a.size:  # the store's size and its bytes disagree: never a file with a hole
        raise ValueError(f"attachment {a.id}: {done} bytes read, {a.size} stored")
    sha = h.hexdigest()
    con.execute(f'UPDATE "{MEDIA_TABLE}" SET sha256 = ? WHERE id = ?', (sha, a.id))
    return done, sha


# ------------------------------------------------------------------ reading (an import)
@dataclass(frozen=True)
class MediaRow:
    """An attachment a GeoPackage carries for a feature of the layer being imported (no bytes)."""

    row_id: int
    code: str                  # the feature's code (the parcel)
    content_type: str
    filename: str
    caption: str
    size: int
    sha256: str | None         # of the bytes in the file
    store_sha256: str | None   # as the exporting store had it (before personal EXIF was stripped)
    restricted: bool
    event: dict | None         # the exported stage event it documents: parcel, action, to_stage, event_date
    added_by: str | None = None  # who added it, and when, as the exporting store recorded
    added_at: str | None = None


def read_media(path: Path | str, layer: str) -> list[MediaRow] | None:
    """What the media relations of ``layer`` carry (our own export, or any GeoPackage with a ``media`` relation
    whose base table has a ``code`` column), or None when there are none."""
    con = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    con.row_factory = sqlite3.Row
    try:
        rels = con.execute("SELECT base_primary_column, related_table_name, related_primary_column,"
                           " mapping_table_name FROM gpkgext_relations WHERE base_table_name = ?"
                           " AND relation_name = 'media'", (layer,)).fetchall()
    except sqlite3.Error:
        return None
    try:
        out = []
        for r in rels:
            media, key, mapping = r["related_table_name"], r["related_primary_column"], r["mapping_table_name"]
            if media != MEDIA_TABLE:  # a media table of another tool: only its required columns are known
                continue
            cols = {c[1] for c in con.execute(f'PRAGMA table_info("{media}")')}
            events = _exported_events(con) if "event_id" in cols else {}
            opt = lambda c, default="NULL": f'm."{c}"' if c in cols else default  # noqa: E731
            sql = (f'SELECT m."{key}" AS row_id, b."code" AS code, m.content_type, {opt("filename")} AS filename,'
                   f' {opt("caption")} AS caption, length(m.data) AS size, {opt("sha256")} AS sha256,'
                   f' {opt("store_sha256")} AS store_sha256, {opt("restricted", "0")} AS restricted,'
                   f' {opt("event_id")} AS event_id, {opt("added_by")} AS added_by, {opt("added_at")} AS added_at'
                   f' FROM "{mapping}" x JOIN "{layer}" b ON b."{r["base_primary_column"]}" = x.base_id'
                   f' JOIN "{media}" m ON m."{key}" = x.related_id ORDER BY x.rowid')
            for row in con.execute(sql):
                out.append(MediaRow(int(row["row_id"]), str(row["code"]), row["content_type"] or "",
                                    row["filename"] or f"attachment-{row['row_id']}", row["caption"] or "",
                                    int(row["size"] or 0), row["sha256"], row["store_sha256"],
                                    bool(row["restricted"]), events.get(row["event_id"]),
                                    row["added_by"] or None, row["added_at"] or None))
        return out or None
    except sqlite3.Error:
        return None
    finally:
        con.close()


def _exported_events(con) -> dict[int, dict]:
    try:
        return {r[0]: {"parcel": r[1], "action": r[2], "to_stage": r[3], "event_date": r[4]}
                for r in con.execute("SELECT id, parcel, action, to_stage, event_date FROM stage_events")}
    except sqlite3.Error:
        return {}


def media_data(path: Path | str, row_id: int) -> bytes:
    """The bytes of one media row of a staged GeoPackage."""
    con = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    try:
        row = con.execute(f'SELECT data FROM "{MEDIA_TABLE}" WHERE id = ?', (row_id,)).fetchone()
        return bytes(row[0]) if row and row[0] is not None else b""
    finally:
        con.close()
