"""Backup and restore of a store, on either back end.

GeoPackage: SQLite's online backup API (consistent while others read and
write; a restore goes through the same API into the live file, so a WAL file
never meets a database it does not belong to). PostGIS: pg_dump/pg_restore in
custom format.
"""
from __future__ import annotations

import glob
import os
import shutil
import sqlite3
import subprocess
import tempfile
from pathlib import Path

from gis.base.errors import InputError
from gis.base.fileio import atomic_path
from gis.store.store import Store


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


def backup(store, out: Path | str) -> Path:
    """Write a consistent copy of ``store`` to ``out`` (atomically: no partial file on failure).

    Raises:
        InputError: unwritable target, or the dump tool failed.
    """
    out = _writable_target(Path(out))
    if store.backend == "gpkg" and out.resolve() == Path(store.path).resolve():
        raise InputError("error.backup_onto_store", path=str(out))
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
            res = subprocess.run([_pg_tool("pg_dump"), "-Fc", "--no-owner", "-f", tmp, store.url],
                                 capture_output=True, text=True)
            if res.returncode:
                raise InputError("error.backup_failed", detail=res.stderr.strip()[-300:])
    return out


def restore(store, source: Path | str) -> None:
    """Replace ``store``'s content with a backup made by ``backup``.

    The backup is checked first (it must open as a store of the same back end);
    a bad file changes nothing.

    Raises:
        InputError: missing, unreadable or foreign backup; the restore tool failed.
    """
    source = Path(source)
    if not source.is_file():
        raise InputError("error.no_backup", path=str(source))
    if store.backend == "gpkg":

        check = copy_for_check(source)
        try:
            Store(check, store.catalog)
        except InputError as e:
            raise InputError("error.bad_backup", path=str(source), detail=e.message("en")) from e
        finally:
            shutil.rmtree(check.parent, ignore_errors=True)
        src, dst = sqlite3.connect(source), sqlite3.connect(store.path, timeout=30)
        try:
            src.backup(dst)
        finally:
            src.close()
            dst.close()
        return
    head = source.read_bytes()[:5]
    if head != b"PGDMP":
        raise InputError("error.bad_backup", path=str(source), detail="not a pg_dump custom-format file")
    res = subprocess.run([_pg_tool("pg_restore"), "--clean", "--if-exists", "--no-owner", "--single-transaction",
                          "-d", store.url, str(source)], capture_output=True, text=True)
    if res.returncode:
        raise InputError("error.backup_failed", detail=res.stderr.strip()[-300:])


def copy_for_check(source: Path) -> Path:
    """Open a backup for checking on a throwaway copy (opening migrates, and must not touch the backup)."""
    tmp = Path(tempfile.mkdtemp(prefix="renewal-check-")) / "check.gpkg"
    shutil.copy(source, tmp)
    return tmp
