"""Per-user preferences kept in the store (the basemap a planner chose, …).

In the store rather than a file of one app server: several servers over one
PostGIS show a planner the same choices whichever server the proxy sends them
to. ``{user: {section: value}}``; a value is JSON. Nothing secret goes in here.
"""
from __future__ import annotations

import json

from gis.store.base import utcnow_iso

MAX_NAME = 100


def _key(user: str | None) -> str | None:
    name = (user or "").strip()
    return name[:MAX_NAME] if name else None


class PreferencesMixin:
    """A user's preferences: read one section, replace one section (one small write, no version bump)."""

    def preference(self, user: str | None, section: str):
        """The user's stored value for ``section``, or None (no user, nothing stored)."""
        key = _key(user)
        if key is None:
            return None
        with self._connect() as con:
            row = con.execute("SELECT value FROM preferences WHERE username = ? AND section = ?",
                              (key, section)).fetchone()
        if row is None:
            return None
        try:
            return json.loads(row[0])
        except ValueError:
            return None

    def set_preference(self, user: str | None, section: str, value) -> bool:
        """Store ``value`` (JSON-serialisable) for the user; False when there is no user to store it for."""
        key = _key(user)
        if key is None:
            return False
        text = json.dumps(value, ensure_ascii=False, sort_keys=True)
        with self._connect(write=True) as con:
            con.execute("INSERT INTO preferences (username, section, value, updated_at) VALUES (?, ?, ?, ?)"
                        " ON CONFLICT (username, section) DO UPDATE SET value = excluded.value,"
                        " updated_at = excluded.updated_at", (key, section, text, utcnow_iso()))
        return True
