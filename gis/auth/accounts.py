"""Accounts and roles: who may do what, decided in the core, not by the UI.

Roles:
    viewer  browse and export
    editor  advance stages, flag blocked parcels and edit notes, only for the
            zones or villages assigned to them; report for the key projects of the
            units assigned to them (gis/store/projects.py)
    leader  领导/督查: plan targets anywhere and issue follow-up orders (gis/store/plans.py),
            but not edit parcels
    admin   everything: import, manage users and assignments

Passwords are stored as argon2id hashes. Repeated failed logins are slowed
down, per account and client (``Store.authenticate``): after ``FREE_FAILURES``
failures in a row each further attempt from that client is held 2, 4, 8 …
seconds (at most ``MAX_DELAY_S``) before it is checked — the right password
still signs in after the delay, and other clients are not slowed.
"""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.low_level import Type, hash_secret

from gis.base.errors import InputError, PermissionRefused

ROLES = ("viewer", "editor", "leader", "admin")
SCOPES = ("zone", "village", "unit")  # unit: the responsible unit whose key projects it reports for
FREE_FAILURES = 3
MAX_DELAY_S = 30
#: an attempt that would be held longer than this (a client queueing attempts) is refused with the wait
MAX_HOLD_S = 60
#: failed logins of one (account, client) within this many seconds make one line of the audit
LOGIN_WINDOW_S = 900
#: names one client may try a day before its further attempts are counted together, under "*"
NAMES_PER_CLIENT = 20
#: a client quiet this long is forgotten (its delay starts again)
FORGET_AFTER_S = 86400
MAX_NAME_CHARS = 128
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


@cache
def _stand_in_hash() -> str:
    return _hasher.hash(secrets.token_hex(16))


def check_password(stored_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches ``stored_hash``, at the same cost when there is no hash (an unknown
    account): argon2 then runs against a stand-in, so the time of a refusal does not tell which it was."""
    stand_in = _stand_in_hash()
    if not stored_hash:
        verify_password(stand_in, password)
        return False
    return verify_password(stored_hash, password)


def demo_salt(seed: int, username: str) -> bytes:
    """A deterministic salt so that `renewal demo` rebuilds byte-identical files."""
    return hashlib.sha256(f"renewal-demo:{seed}:{username}".encode()).digest()[:16]


def login_delay(failed_count: int) -> int:
    """Seconds a login must wait after ``failed_count`` failures in a row."""
    if failed_count < FREE_FAILURES:
        return 0
    return min(MAX_DELAY_S, 2 ** (failed_count - FREE_FAILURES + 1))


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
