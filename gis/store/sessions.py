"""Sign-in sessions kept in the store: the signing keys and the sessions ended early.

Everything two app servers must agree on to share their planners' sign-ins
lives here, in the database when the store is PostGIS (in the GeoPackage's own
tables otherwise): the signing keys — a current one that signs, the previous
one still accepted after a rotation — the sessions signed out before they
expired, and per account the moment an admin (or the planner) ended all of
its sessions. Tokens themselves are made and read by ``gis.auth.sessions``.
"""
from __future__ import annotations

import time

from gis.auth import sessions
from gis.base.errors import NotFoundError
from gis.store.base import utcnow_iso


class SessionsMixin:
    """Signing keys (with rotation), sign-out and "end every session of this user"."""

    def _session_keys(self, con) -> list[str]:
        rows = con.execute("SELECT secret FROM session_keys ORDER BY generation DESC LIMIT 2").fetchall()
        return [r[0] for r in reversed(rows)]

    def session_keys(self) -> list[str]:
        """The accepted signing keys, oldest first ([previous, current]; the last signs). Made on first use."""
        with self._connect() as con:
            keys = self._session_keys(con)
        if keys:
            return keys
        with self._connect(write=True) as con:  # the first server to ask makes it; the others read it
            con.execute("INSERT INTO session_keys (generation, secret, created_at) VALUES (1, ?, ?)"
                        " ON CONFLICT (generation) DO NOTHING", (sessions.new_secret(), utcnow_iso()))
            return self._session_keys(con)

    def rotate_session_key(self, by: str) -> int:
        """A new current signing key (admins). Tokens signed by the previous key stay valid; older ones end.

        Returns the new key's generation.

        Raises:
            PermissionRefused: ``by`` is not an admin.
        """
        self.session_keys()
        with self._refusals_logged(by, "session_key_rotate", "session_keys"):
            with self._connect(write=True) as con:
                self._admin(con, by, "rotate session key")
                gen = int(con.execute("SELECT max(generation) FROM session_keys").fetchone()[0]) + 1
                con.execute("INSERT INTO session_keys (generation, secret, created_at) VALUES (?, ?, ?)",
                            (gen, sessions.new_secret(), utcnow_iso()))
                con.execute("DELETE FROM session_keys WHERE generation < ?", (gen - 1,))
                self._audit(con, by, "session_key_rotate", "session_keys", "ok", None, {"generation": gen})
        return gen

    def issue_session(self, username: str, now: float | None = None) -> str | None:
        """A sign-in token for ``username`` (None for an unknown or disabled account)."""
        stamp = self.session_stamp(username)
        if stamp is None:
            return None
        token, _ = sessions.issue(self.session_keys(), username, stamp, now=now)
        return token

    def verify_session(self, token: str | None, now: float | None = None) -> str | None:
        """The username a token vouches for, or None: missing, forged, expired, signed by a retired key,
        the account changed or disabled, signed out, or every session of the user ended since it was issued."""
        claims = sessions.read(self.session_keys(), token, now=now)
        if claims is None:
            return None
        stamp = self.session_stamp(claims.username)
        if stamp is None or stamp != claims.stamp:
            return None
        with self._connect() as con:
            if con.execute("SELECT 1 FROM session_revocations WHERE sid = ?", (claims.sid,)).fetchone():
                return None
            cut = con.execute("SELECT not_before FROM session_cutoffs WHERE username = ?",
                              (claims.username,)).fetchone()
        if cut is not None and claims.issued_at <= float(cut[0]):
            return None
        return claims.username

    def end_session(self, token: str | None, now: float | None = None) -> bool:
        """Sign out: the token is refused from now on, by every server of this store. False if it was not valid."""
        at = now if now is not None else time.time()
        claims = sessions.read(self.session_keys(), token, now=now)
        if claims is None:
            return False
        with self._connect(write=True) as con:
            con.execute("DELETE FROM session_revocations WHERE expires_at < ?", (at,))  # expired anyway
            con.execute("INSERT INTO session_revocations (sid, username, revoked_at, expires_at) VALUES (?,?,?,?)"
                        " ON CONFLICT (sid) DO NOTHING",
                        (claims.sid, claims.username, utcnow_iso(), claims.issued_at + sessions.TTL_S))
            self._audit(con, claims.username, "logout", claims.username, "ok")
        return True

    def end_sessions(self, username: str, by: str, now: float | None = None) -> None:
        """End every session of ``username`` issued until now (an admin, or the planner themself).

        Raises:
            NotFoundError: no such account. PermissionRefused: ``by`` is neither.
        """
        at = now if now is not None else time.time()
        with self._refusals_logged(by, "sessions_end", username):
            with self._connect(write=True) as con:
                if by != username:
                    self._admin(con, by, "user logout")
                if not con.execute("SELECT 1 FROM users WHERE username = ?", (username,)).fetchone():
                    raise NotFoundError("error.no_user", user=username)
                con.execute("INSERT INTO session_cutoffs (username, not_before) VALUES (?, ?)"
                            " ON CONFLICT (username) DO UPDATE SET not_before = excluded.not_before", (username, at))
                self._audit(con, by, "sessions_end", username, "ok")
