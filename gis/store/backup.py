"""Backup and restore of a store, on either back end.

GeoPackage: SQLite's online backup API (consistent while others read and
write). PostGIS: pg_dump/pg_restore in custom format.

Attachments (photos, documents: gigabytes of them) are streamed, never read into this
process: SQLite copies the file page by page through its own page cache, pg_dump copies
a row at a time (tests/test_evidence_io.py measures both; bench/evidence.py at 10,000 photos).

A restore is an administrative act with its own rules:

- on a store with accounts only an admin or the operator (see README, *Trust
  model of the command line*) may take a backup (it holds the password hashes)
  or restore one; a refusal is audited;
- the backup is checked before anything is replaced (SQLite's integrity check
  and the GeoPackage's own tables; for PostGIS the whole archive is read by
  ``pg_restore``): a damaged one is refused and the live store is untouched;
- the audit trail is never rewound: audit rows the live store has and the
  backup has not are carried into the restored store, followed by one
  ``restore`` line (who, the backup's sha256, when it was taken, how many
  events and parcels were rolled back);
- the operator can restore onto a damaged GeoPackage (one that no longer
  opens): it is moved aside as ``<store>.damaged-<time>``, never overwritten.
"""
from __future__ import annotations

import contextlib
import glob
import hashlib
import os
import shutil
import sqlite3
import subprocess
import tempfile
from pathlib import Path

from gis.base import clock
from gis.base.errors import InputError
from gis.base.fileio import atomic_path
from gis.store.base import utcnow_iso
from gis.store.open import open_store_at
from gis.store.pg import PostgisStore, raw_connection
from gis.store.store import Store

AUDIT_COLUMNS = ("at", "actor", "action", "target", "outcome", "before", "after", "detail")
GPKG_APPLICATION_ID = 0x47504B47  # "GPKG"
REQUIRED_TABLES = ("gpkg_spatial_ref_sys", "gpkg_contents", "gpkg_geometry_columns", "parcels", "stage_events", "meta")
TAKEN_KEY = "last_backup_at"  # meta key written just before each copy, so a backup knows when it was taken


def _pg_tool(name: str) -> str:
    found = shutil.which(name) or (sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or [None])[-1]
    if not found:
        raise InputError("error.no_pg_tool", tool=name)
    return found


def _writable_target(out: Path) -> Path:
    out = Path(out)
    if not out.parent.is_dir() or not os.access(out.parent, os.W_OK):
        raise InputError("error.unwritable", path=str(out))
    return out


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ------------------------------------------------------------------ backup
def backup(store, out: Path | str, by: str) -> Path:
    """Write a consistent copy of ``store`` to ``out`` (atomically: no partial file on failure).

    Raises:
        PermissionRefused: the store has accounts and ``by`` is neither an admin nor the operator (audited).
        InputError: unwritable target, or the dump tool failed.
    """
    out = Path(out)
    store.require_admin(by, "backup", out.name)
    out = _writable_target(out)
    if store.backend == "gpkg" and out.resolve() == Path(store.path).resolve():
        raise InputError("error.backup_onto_store", path=str(out))
    taken = utcnow_iso()
    _set_meta(store, TAKEN_KEY, taken)  # so that the copy knows when it was taken
    with atomic_path(out) as tmp:
        if store.backend == "gpkg":
            src, dst = sqlite3.connect(store.path), sqlite3.connect(tmp)
            try:
                src.backup(dst)
                dst.execute("PRAGMA journal_mode = DELETE")  # a backup is one self-contained file
            finally:
                src.close()
                dst.close()
        else:
            # -Z 1: photos are JPEGs that no compressor shrinks, but pg_dump writes bytea as hex text, which
            # zlib halves at any level; level 1 does it 3.4x faster than the default (bench/evidence.py:
            # 150 MB of photos in 7.8 s instead of 26.5 s, a file 4.5 % larger)
            res = subprocess.run([_pg_tool("pg_dump"), "-Fc", "-Z", "1", "--no-owner", "-f", tmp, store.url],
                                 capture_output=True, text=True)
            if res.returncode:
                raise InputError("error.backup_failed", detail=res.stderr.strip()[-300:])
    store.record_audit(by, "backup", out.name, after={"sha256": file_sha256(out), "bytes": out.stat().st_size,
                                                      "taken_at": taken})
    return out


def _set_meta(store, key: str, value: str) -> None:
    with store._connect(write=True) as con:
        if not con.execute("UPDATE meta SET value = ? WHERE key = ?", (value, key)).rowcount:
            con.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (key, value))


def copy_for_check(source: Path) -> Path:
    """A throwaway copy of a GeoPackage store to open (opening migrates, and must not touch the original)."""
    tmp = Path(tempfile.mkdtemp(prefix="renewal-check-")) / "check.gpkg"
    shutil.copy(source, tmp)
    return tmp


# ------------------------------------------------------------------ checking a backup
def check_backup(source: Path, backend: str) -> None:
    """Refuse a backup that is damaged or is not a store of this back end, before anything is replaced.

    Raises:
        InputError: missing, damaged or foreign backup.
    """
    source = Path(source)
    if not source.is_file():
        raise InputError("error.no_backup", path=str(source))
    bad = lambda detail: InputError("error.bad_backup", path=str(source), detail=detail)  # noqa: E731
    if backend == "gpkg":
        con = sqlite3.connect(f"file:{source}?mode=ro&immutable=1", uri=True)
        try:
            app_id = con.execute("PRAGMA application_id").fetchone()[0]
            if app_id != GPKG_APPLICATION_ID:
                raise bad("not a GeoPackage (application_id)")
            problems = [r[0] for r in con.execute("PRAGMA integrity_check(20)")]
            if problems != ["ok"]:
                raise bad("integrity check: " + "; ".join(problems)[:300])
            if con.execute("PRAGMA foreign_key_check").fetchone():
                raise bad("foreign key check failed")
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            missing = [t for t in REQUIRED_TABLES if t not in tables]
            if missing:
                raise bad("missing " + ", ".join(missing))
            for t in ("parcels", "stage_events", "meta"):
                con.execute(f'SELECT count(*) FROM "{t}"').fetchone()  # every page of each table read
        except sqlite3.DatabaseError as e:
            raise bad(str(e)) from None
        finally:
            con.close()
        return
    with open(source, "rb") as f:
        if f.read(5) != b"PGDMP":
            raise bad("not a pg_dump custom-format file")
    listing = subprocess.run([_pg_tool("pg_restore"), "--list", str(source)], capture_output=True, text=True)
    if listing.returncode:
        raise bad(listing.stderr.strip()[-300:])
    for t in ("parcels", "stage_events", "meta"):
        if f"TABLE DATA public {t} " not in listing.stdout:
            raise bad(f"no table {t}")
    # reading the whole archive to nowhere decompresses every data block: a damaged one fails here
    full = subprocess.run([_pg_tool("pg_restore"), "-f", os.devnull, str(source)], capture_output=True, text=True)
    if full.returncode:
        raise bad(full.stderr.strip()[-300:])


# ------------------------------------------------------------------ what the live store holds
def _state(con) -> dict:
    """What the restore compares: audit rows, event keys, parcel versions, data version (each None if unreadable)."""
    def attempt(fn):
        try:
            return fn()
        except Exception:  # noqa: BLE001 — a damaged store: read what can be read, compare the rest as unknown
            return None

    return {
        "audit": attempt(lambda: [tuple(r) for r in con.execute(
            f"SELECT id, {', '.join(AUDIT_COLUMNS)} FROM audit ORDER BY id")]),
        "events": attempt(lambda: {(r[0], r[1], r[2]) for r in con.execute(
            "SELECT id, parcel, recorded_at FROM stage_events")}),
        "parcels": attempt(lambda: {r[0]: r[1] for r in con.execute("SELECT code, version FROM parcels")}),
        "data_version": attempt(lambda: int(con.execute(
            "SELECT value FROM meta WHERE key = 'data_version'").fetchone()[0])),
    }


def _live_state_gpkg(path: Path) -> dict:
    if not path.exists():
        return _state_unknown()
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    except sqlite3.Error:
        return _state_unknown()
    try:
        return _state(con)
    finally:
        con.close()


def _state_unknown() -> dict:
    return {"audit": None, "events": None, "parcels": None, "data_version": None}


def _diff(before: dict, after: dict) -> dict:
    """Audit rows to carry, and how many events and parcels the restore rolled back."""
    kept = {r for r in after["audit"] or ()}
    carried = [r for r in before["audit"] or () if r not in kept]
    events = None if before["events"] is None else len(before["events"] - (after["events"] or set()))
    parcels = None
    if before["parcels"] is not None:
        a, b = before["parcels"], after["parcels"] or {}
        parcels = sum(1 for c in a.keys() | b.keys() if a.get(c) != b.get(c))
    return {"carried": carried, "events_rolled_back": events, "parcels_rolled_back": parcels}


def _append_trail(store, before: dict, by: str, source: Path, sha: str, damaged: str | None) -> dict:
    """Carry the audit rows the backup lacks into the restored ``store``, then its ``restore`` line."""
    with store._connect(write=True) as con:
        after = _state(con)
        diff = _diff(before, after)
        meta = {r[0]: r[1] for r in con.execute("SELECT key, value FROM meta")}
        con.executemany(f"INSERT INTO audit ({', '.join(AUDIT_COLUMNS)}) VALUES ({', '.join('?' * len(AUDIT_COLUMNS))})",
                        [r[1:] for r in diff["carried"]])
        version = max(before["data_version"] or 0, after["data_version"] or 0) + 1  # caches never see an old key
        con.execute("UPDATE meta SET value = ? WHERE key = 'data_version'", (str(version),))
        summary = {
            "sha256": sha, "taken_at": meta.get(TAKEN_KEY) or (max((r[1] for r in after["audit"] or ()), default=None)),
            "events_rolled_back": diff["events_rolled_back"], "parcels_rolled_back": diff["parcels_rolled_back"],
            "audit_rows_carried": len(diff["carried"]), "live_unreadable": before["audit"] is None,
        }
        if damaged:
            summary["damaged_store_kept_as"] = damaged
        store._audit(con, by, "restore", source.name, "ok", None, summary)
    summary["data_version"] = version
    return summary


# ------------------------------------------------------------------ restore
def restore(target, source: Path | str, by: str, *, operator: bool = False, catalog=None) -> dict:
    """Replace the content of ``target`` (a store, or where one is: a path or URL) with a backup.

    ``operator``: the caller has established that ``by`` is the operator (who may
    write the data folder or holds the database's credentials); then the live
    store is not opened first, so a damaged GeoPackage can be replaced.

    Returns the ``restore`` audit line's summary.

    Raises:
        PermissionRefused: the store has accounts and ``by`` is not an admin (audited); nothing changes.
        InputError: missing, damaged or foreign backup (nothing changes); a live store that cannot
            be opened (then restore as the operator); the restore tool failed.
    """
    source = Path(source)
    live = target if hasattr(target, "backend") else None
    where = live.where if live is not None else str(target)
    backend = "pg" if where.startswith(("postgresql://", "postgres://")) else "gpkg"
    if not operator:
        if live is None:
            try:
                live = open_store_at(where, catalog)
            except InputError as e:  # a damaged store cannot say who its admins are: the operator restores
                raise InputError("error.restore_needs_operator",
                                 detail={lang: e.message(lang) for lang in ("zh", "en")}) from e
        live.require_admin(by, "restore", source.name)
    check_backup(source, backend)
    sha = file_sha256(source)
    catalog = catalog or (live.catalog if live is not None else None)
    if backend == "gpkg":
        return _restore_gpkg(Path(where), source, by, sha, catalog)
    return _restore_pg(where, source, by, sha, catalog)


def _opens(path: Path) -> bool:
    """Whether the live GeoPackage is a sound database (a quick check of every page)."""
    if not path.exists():
        return False
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            return [r[0] for r in con.execute("PRAGMA quick_check(1)")] == ["ok"]
        finally:
            con.close()
    except sqlite3.DatabaseError:
        return False


def _restore_gpkg(path: Path, source: Path, by: str, sha: str, catalog) -> dict:
    before = _live_state_gpkg(path)
    sound = _opens(path)
    damaged = None if sound or not path.exists() else f"{path}.damaged-{clock.utcnow().strftime('%Y%m%dT%H%M%S')}"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.restore-", suffix=".gpkg")
    os.close(fd)
    tmp = Path(tmp)
    try:
        shutil.copyfile(source, tmp)
        # the restored content, with the carried audit rows and the restore line, made beside the live file
        summary = _append_trail(Store(tmp, catalog), before, by, source, sha, damaged)
        con = sqlite3.connect(tmp)
        try:
            con.execute("PRAGMA journal_mode = DELETE")  # one self-contained file again
        finally:
            con.close()
        if sound:  # through the backup API: readers of the live file and its WAL stay consistent
            src, dst = sqlite3.connect(tmp), sqlite3.connect(path, timeout=30)
            try:
                src.backup(dst)
            finally:
                src.close()
                dst.close()
        else:  # a damaged (or missing) live file is kept aside, never overwritten; its WAL goes with it
            for suffix in ("", "-wal", "-shm"):
                if damaged and Path(str(path) + suffix).exists():
                    os.replace(str(path) + suffix, damaged + suffix)
            os.replace(tmp, path)
    finally:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(str(tmp) + suffix).unlink(missing_ok=True)
    return summary


def _restore_pg(url: str, source: Path, by: str, sha: str, catalog) -> dict:
    before = _state_unknown()
    with contextlib.suppress(InputError), raw_connection(url) as con:  # even a store that no longer opens
        before = _state(con)
    res = subprocess.run([_pg_tool("pg_restore"), "--clean", "--if-exists", "--no-owner", "--single-transaction",
                          "-d", url, str(source)], capture_output=True, text=True)
    if res.returncode:
        raise InputError("error.backup_failed", detail=res.stderr.strip()[-300:])
    return _append_trail(PostgisStore(url, catalog), before, by, source, sha, None)
