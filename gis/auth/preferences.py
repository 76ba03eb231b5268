"""Per-user preferences: a small JSON file in the data folder, keyed by the user's name.

``<data_dir>/preferences.json`` holds ``{"users": {name: {section: value}}}``.
The name is who the user says they are (the author of their stage changes,
or their login once the app has one); nothing secret goes in here. Several
sessions may write at once: each write takes an exclusive lock on a side
file, re-reads, changes one entry and replaces the file atomically, so no
write is lost and no reader sees half a file.
"""
from __future__ import annotations

import fcntl
import json
from contextlib import contextmanager
from pathlib import Path

from gis.base.fileio import atomic_write

FILE_NAME = "preferences.json"
MAX_NAME = 100


def _path(settings) -> Path:
    return Path(settings.data_dir) / FILE_NAME


def _key(user: str | None) -> str | None:
    name = (user or "").strip()
    return name[:MAX_NAME] if name else None


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"users": {}}
    if not isinstance(data, dict) or not isinstance(data.get("users"), dict):
        return {"users": {}}
    return data


@contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def load_preference(settings, user: str | None, section: str):
    """The user's stored value for ``section``, or None (no user, no file, nothing stored)."""
    key = _key(user)
    if key is None:
        return None
    entry = _read(_path(settings))["users"].get(key)
    return entry.get(section) if isinstance(entry, dict) else None


def save_preference(settings, user: str | None, section: str, value) -> bool:
    """Store ``value`` (JSON-serialisable) for the user; False when there is no user to store it for.

    Raises:
        OSError: the data folder is not writable.
    """
    key = _key(user)
    if key is None:
        return False
    path = _path(settings)
    with _locked(path):
        data = _read(path)
        entry = data["users"].setdefault(key, {})
        if not isinstance(entry, dict):
            entry = data["users"][key] = {}
        if entry.get(section) == value:
            return True
        entry[section] = value
        atomic_write(path, lambda f: f.write(json.dumps(data, ensure_ascii=False, indent=1).encode("utf-8")))
    return True
