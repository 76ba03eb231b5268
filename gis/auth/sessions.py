"""Signed sign-in tokens, so that a browser reload keeps a planner signed in.

Streamlit keeps who is signed in in its session, which a reload of the page
starts anew. After a password login the app gives the browser a cookie with
a token: the username, a stamp of the account (its password hash and role), a
random session id and the time it was issued, signed (HMAC-SHA256, through
``itsdangerous``) by the store's current signing key. A reload presents the
cookie; the token is accepted only while it is younger than ``TTL_S``, its
signature verifies under the current or the previous key (keys rotate), the
account is unchanged (a new password, a new role or a disabled account ends
every session at once), and the store has not revoked it (signed out) or ended
every session of its user since it was issued. The keys and the revocations
live in the store (``gis.store.sessions``), so app servers sharing one PostGIS
accept each other's tokens and refuse each other's sign-outs.

This module only signs and reads tokens; it keeps no state.
"""
from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Sequence

from itsdangerous import BadData, TimestampSigner, URLSafeTimedSerializer

COOKIE = "renewal_session"
TTL_S = 12 * 3600  # a working day
_SALT = "renewal-atlas.sign-in"


def new_secret() -> str:
    """A fresh signing key (32 random bytes, hex)."""
    return secrets.token_hex(32)


@dataclass(frozen=True)
class Claims:
    """What a valid token says."""

    username: str
    stamp: str
    sid: str          # this session's id (what a sign-out revokes)
    issued_at: float  # seconds since the epoch


class _Signer(TimestampSigner):
    """itsdangerous' timestamp signer with a clock that tests (and ``now=``) can set."""

    def __init__(self, *args, now: float | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._now = now

    def get_timestamp(self) -> int:
        return int(self._now if self._now is not None else time.time())


def _serializer(keys: Sequence[str | bytes], now: float | None) -> URLSafeTimedSerializer:
    if not keys:
        raise ValueError("no signing key")
    # itsdangerous signs with the last key and accepts every key given: [previous, current]
    return URLSafeTimedSerializer(list(keys), salt=_SALT, signer=_Signer,
                                  signer_kwargs={"now": now, "digest_method": hashlib.sha256})


def issue(keys: Sequence[str | bytes], username: str, stamp: str, now: float | None = None) -> tuple[str, Claims]:
    """A token for ``username`` whose account has ``stamp``, signed with the last of ``keys``; and its claims."""
    at = now if now is not None else time.time()
    claims = Claims(username, stamp, secrets.token_urlsafe(16), at)
    token = _serializer(keys, now).dumps({"u": username, "s": stamp, "i": claims.sid, "t": at})
    return token, claims


def read(keys: Sequence[str | bytes], token: str | None, now: float | None = None,
         ttl_s: int = TTL_S) -> Claims | None:
    """The claims of a token signed by one of ``keys`` and younger than ``ttl_s``; None for anything else
    (missing, malformed, forged, signed by a key no longer accepted, expired)."""
    if not token or not isinstance(token, str) or len(token) > 4096:
        return None
    try:
        data = _serializer(keys, now).loads(token, max_age=ttl_s)
        claims = Claims(str(data["u"]), str(data["s"]), str(data["i"]), float(data["t"]))
    except (BadData, KeyError, TypeError, ValueError):
        return None
    return claims


def cookie_script(token: str | None, ttl_s: int = TTL_S) -> str:
    """JavaScript for the page (from a component's frame, same origin) that sets or, with None, removes the cookie."""
    if token is None:
        value = f"{COOKIE}=; Max-Age=0; Path=/; SameSite=Strict"
    else:
        value = f"{COOKIE}={token}; Max-Age={ttl_s}; Path=/; SameSite=Strict"
    return f"<script>window.parent.document.cookie = {value!r};</script>"
