"""Signed sign-in tokens, so that a browser reload keeps a planner signed in.

Streamlit keeps who is signed in in its session, which a reload of the page
starts anew. After a password login the app gives the browser a cookie with
a token: the username, an expiry and a stamp of the account (its password
hash, role and state), signed with HMAC-SHA256 by a key only the server
holds (``<data_dir>/session.key``, created on first use, readable by its owner
only). A reload presents the cookie; the token is accepted only while it has
not expired, its signature is right, and the account is unchanged — a new
password, a new role or a disabled account ends every session at once.
Signing out removes the cookie.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path

COOKIE = "renewal_session"
TTL_S = 12 * 3600  # a working day


def session_key(data_dir: Path) -> bytes:
    """The server's signing key, made once (32 random bytes, file mode 0600)."""
    path = Path(data_dir) / "session.key"
    try:
        return bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError):
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    tmp = path.with_name(f".session.key.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key.hex())
    try:
        os.link(tmp, path)  # the first writer wins; others read its key
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return bytes.fromhex(path.read_text().strip())


def _b64(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode("ascii")


def _unb64(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def issue(key: bytes, username: str, stamp: str, now: float | None = None, ttl_s: int = TTL_S) -> str:
    """A token for ``username`` whose account currently has ``stamp``, valid ``ttl_s`` seconds."""
    expires = int((now if now is not None else time.time()) + ttl_s)
    body = _b64(f"{username}\x1f{expires}\x1f{stamp}".encode("utf-8"))
    sig = _b64(hmac.new(key, body.encode("ascii"), hashlib.sha256).digest())
    return f"{body}.{sig}"


def verify(key: bytes, token: str | None, stamp_of, now: float | None = None) -> str | None:
    """The username a token vouches for, or None (missing, malformed, forged, expired, account changed).

    ``stamp_of(username)`` gives the account's current stamp, or None when it is gone or disabled.
    """
    if not token or token.count(".") != 1:
        return None
    body, sig = token.split(".")
    want = _b64(hmac.new(key, body.encode("ascii"), hashlib.sha256).digest())
    if not hmac.compare_digest(sig, want):
        return None
    try:
        username, expires, stamp = _unb64(body).decode("utf-8").split("\x1f")
        expires_at = int(expires)
    except (ValueError, UnicodeDecodeError):
        return None
    if expires_at < (now if now is not None else time.time()):
        return None
    current = stamp_of(username)
    if current is None or not hmac.compare_digest(current, stamp):
        return None
    return username


def cookie_script(token: str | None, ttl_s: int = TTL_S) -> str:
    """JavaScript for the page (from a component's frame, same origin) that sets or, with None, removes the cookie."""
    if token is None:
        value = f"{COOKIE}=; Max-Age=0; Path=/; SameSite=Strict"
    else:
        value = f"{COOKIE}={token}; Max-Age={ttl_s}; Path=/; SameSite=Strict"
    return f"<script>window.parent.document.cookie = {value!r};</script>"
