"""Accounts and roles: who may do what, decided in the core, not by the UI.

Roles:
    viewer  browse and export
    editor  advance stages, flag blocked parcels and edit notes, only for the
            zones or villages assigned to them
    admin   everything: import, manage users and assignments

Passwords are stored as argon2id hashes. Repeated failed logins are slowed
down: after ``FREE_FAILURES`` failures in a row each further attempt must wait
2, 4, 8 … seconds (capped), whatever the password.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass, field

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.low_level import Type, hash_secret

from gis.base.errors import InputError, PermissionRefused

ROLES = ("viewer", "editor", "admin")
SCOPES = ("zone", "village")
FREE_FAILURES = 3
MAX_DELAY_S = 300
MIN_PASSWORD = 8
#: the name under which the operator acts (``renewal --operator``): whoever may write the data folder or holds
#: the database's credentials; no account can be called so (a user name may not contain ':')
OPERATOR_PREFIX = "operator:"

_hasher = PasswordHasher()  # argon2id, library defaults


@dataclass(frozen=True)
class User:
    username: str
    display_name: str
    role: str
    zones: frozenset = field(default_factory=frozenset)
    villages: frozenset = field(default_factory=frozenset)

    @property
    def label(self) -> str:
        return self.display_name or self.username


def hash_password(password: str, salt: bytes | None = None) -> str:
    """An argon2id hash. ``salt`` only for reproducible demo files; normally random.

    Raises:
        InputError: shorter than MIN_PASSWORD characters.
    """
    if len(password or "") < MIN_PASSWORD:
        raise InputError("error.weak_password", n=MIN_PASSWORD)
    if salt is None:
        return _hasher.hash(password)
    return hash_secret(password.encode(), salt, time_cost=_hasher.time_cost, memory_cost=_hasher.memory_cost,
                       parallelism=_hasher.parallelism, hash_len=_hasher.hash_len, type=Type.ID).decode()


def verify_password(stored_hash: str | None, password: str) -> bool:
    if not stored_hash:
        return False
    try:
        return _hasher.verify(stored_hash, password or "")
    except (VerificationError, InvalidHashError):
        return False


def demo_salt(seed: int, username: str) -> bytes:
    """A deterministic salt so that `renewal demo` rebuilds byte-identical files."""
    return hashlib.sha256(f"renewal-demo:{seed}:{username}".encode()).digest()[:16]


def login_delay(failed_count: int) -> int:
    """Seconds a login must wait after ``failed_count`` failures in a row."""
    if failed_count < FREE_FAILURES:
        return 0
    return min(MAX_DELAY_S, 2 ** (failed_count - FREE_FAILURES + 1))


def seconds_to_wait(failed_count: int, last_failed_at: str | None, now: dt.datetime) -> int:
    if not last_failed_at:
        return 0
    delay = login_delay(failed_count)
    if not delay:
        return 0
    since = (now - dt.datetime.fromisoformat(last_failed_at)).total_seconds()
    return max(0, int(delay - since + 0.999))


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InputError("error.bad_role", role=role, known=", ".join(ROLES))
    return role


def may_edit(user: User | None, parcel: dict) -> bool:
    """Whether ``user`` may change this parcel (stage, blocked flag, note)."""
    if user is None:
        return False
    if user.role == "admin":
        return True
    if user.role != "editor":
        return False
    return parcel.get("zone") in user.zones or (parcel.get("village") or None) in user.villages


def require_edit(user: User | None, parcel: dict) -> None:
    """Raises PermissionRefused unless ``user`` may change ``parcel``."""
    if not may_edit(user, parcel):
        role = user.role if user else "-"
        raise PermissionRefused("error.refused_parcel", user=user.username if user else "?", role=role,
                                code=parcel.get("code"))


def require_admin(user: User | None, action: str) -> None:
    if user is None or user.role != "admin":
        raise PermissionRefused("error.refused_admin", user=user.username if user else "?", action=action)


def is_operator(name: str | None) -> bool:
    """Whether ``name`` is the operator's (see README, *Trust model of the command line*)."""
    return str(name or "").startswith(OPERATOR_PREFIX)


def new_token() -> str:
    """A personal token for the command line: 256 random bits, shown once."""
    return "rnw_" + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """What the store keeps of a token (a random token needs no slow hash)."""
    return hashlib.sha256(token.strip().encode()).hexdigest()
