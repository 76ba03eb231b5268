"""Accounts, permissions, sign-in and the audit trail of a store.

The store refuses what a user may not do; every write and every refusal leaves
a line in the append-only audit table.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from contextlib import contextmanager

import pandas as pd

from gis.auth import accounts
from gis.auth.accounts import User
from gis.base import clock
from gis.base.errors import InputError, NotFoundError, PermissionRefused
from gis.store.base import utcnow_iso


class UsersMixin:
    """Accounts, permissions, sign-in and the audit trail of a store."""

    def _audit(self, con, actor, action, target, outcome, before=None, after=None, detail="") -> None:
        """One line of the audit trail (append-only): who, when, what, before and after."""
        dump = (lambda d: None if d is None else json.dumps(d, ensure_ascii=False, default=str, sort_keys=True))
        con.execute("INSERT INTO audit (at, actor, action, target, outcome, before, after, detail)"
                    " VALUES (?,?,?,?,?,?,?,?)",
                    (utcnow_iso(), actor, action, target, outcome, dump(before), dump(after), detail or None))

    @contextmanager
    def _refusals_logged(self, actor: str, action: str, target: str):
        """A refused write leaves nothing but its line in the audit trail (written after the rollback)."""
        try:
            yield
        except PermissionRefused as e:
            with self._connect(write=True) as con:
                self._audit(con, actor, action, target, "refused", detail=e.message("en"))
            raise

    def _user(self, con, username: str) -> User | None:
        row = con.execute("SELECT username, display_name, role, disabled FROM users WHERE username = ?",
                          (username,)).fetchone()
        if row is None or row["disabled"]:
            return None
        scopes = con.execute("SELECT scope, code FROM assignments WHERE username = ?", (username,)).fetchall()
        return User(row["username"], row["display_name"] or "", row["role"],
                    frozenset(r["code"] for r in scopes if r["scope"] == "zone"),
                    frozenset(r["code"] for r in scopes if r["scope"] == "village"))

    def _accounts_on(self, con) -> bool:
        return con.execute("SELECT 1 FROM users LIMIT 1").fetchone() is not None

    def _may_edit(self, con, by: str, row) -> str:
        """The name to record for ``by`` changing ``row``.

        A store without accounts (a planner's own file) records ``by`` as given;
        a store with accounts needs a known user allowed to edit the parcel.
        """
        if not self._accounts_on(con):
            return by
        user = self._user(con, by)
        if user is None:
            raise PermissionRefused("error.unknown_user", user=by)
        accounts.require_edit(user, dict(row))
        return user.username

    def may_edit(self, code: str, username: str | None) -> bool:
        """Whether ``username`` may change parcel ``code`` (stage, blocked flag, note): the rule the
        writes enforce, asked before trying (the panel shows only the forms one may use). On a store
        without accounts anyone may (the name given is recorded).

        Raises:
            NotFoundError: unknown parcel.
        """
        with self._connect() as con:
            row = dict(self._row(con, code))
            if not self._accounts_on(con):
                return True
            return accounts.may_edit(self._user(con, username) if username else None, row)

    def display_names(self) -> dict[str, str]:
        """``{username: display name}`` of every account (the username where it has none)."""
        def read():
            with self._connect() as con:
                return {r["username"]: r["display_name"] or r["username"]
                        for r in con.execute("SELECT username, display_name FROM users")}
        return dict(self._memoized("display_names", read))

    def accounts_enabled(self) -> bool:
        def read():
            with self._connect() as con:
                return self._accounts_on(con)
        return self._memoized("accounts_enabled", read)

    def user(self, username: str) -> User | None:
        def read():
            with self._connect() as con:
                return self._user(con, username)
        return self._memoized(("user", username), read)  # a User is frozen: shared safely

    def users(self) -> list[dict]:
        with self._connect() as con:
            rows = [dict(r) for r in con.execute(
                "SELECT username, display_name, role, disabled, created_at FROM users ORDER BY username")]
            for r in rows:
                r["assignments"] = [f"{a['scope']}:{a['code']}" for a in con.execute(
                    "SELECT scope, code FROM assignments WHERE username = ? ORDER BY scope, code", (r["username"],))]
        return rows

    def _admin(self, con, by: str, action: str) -> None:
        """Refuse a non-admin an administrative act on a store with accounts (the operator may)."""
        if self._accounts_on(con) and not accounts.is_operator(by):
            accounts.require_admin(self._user(con, by), action)

    def add_user(self, username: str, password: str, role: str, by: str, display_name: str = "",
                 password_hash: str | None = None) -> None:
        """Create an account. The first account may be created by anyone (bootstrap); then admins only.

        Raises:
            InputError: bad name, role or weak password; the name exists.
            PermissionRefused: ``by`` is not an admin.
        """
        username = (username or "").strip()
        if not username or any(c.isspace() for c in username):
            raise InputError("error.bad_username", user=username)
        if ":" in username:
            raise InputError("error.bad_username_colon", user=username)
        accounts.check_role(role)
        hashed = password_hash or accounts.hash_password(password)
        with self._refusals_logged(by, "user_add", username):
            with self._connect(write=True) as con:
                self._admin(con, by, "user add")
                if con.execute("SELECT 1 FROM users WHERE username = ?", (username,)).fetchone():
                    raise InputError("error.user_exists", user=username)
                con.execute("INSERT INTO users (username, display_name, role, password_hash, failed_count, created_at,"
                            " disabled) VALUES (?,?,?,?,0,?,0)", (username, display_name, role, hashed, utcnow_iso()))
                self._audit(con, by, "user_add", username, "ok", None,
                            {"username": username, "role": role, "display_name": display_name})

    def set_password(self, username: str, password: str, by: str) -> None:
        """Change a password: an admin for anyone, a user for themself."""
        hashed = accounts.hash_password(password)
        with self._refusals_logged(by, "user_passwd", username):
            with self._connect(write=True) as con:
                if by != username:
                    self._admin(con, by, "user passwd")
                if not con.execute("SELECT 1 FROM users WHERE username = ?", (username,)).fetchone():
                    raise NotFoundError("error.no_user", user=username)
                con.execute("UPDATE users SET password_hash = ?, failed_count = 0 WHERE username = ?",
                            (hashed, username))
                self._audit(con, by, "user_passwd", username, "ok")

    def assign(self, username: str, scope: str, code: str, by: str, remove: bool = False) -> None:
        """Give (or take back) an editor's zone or village, or a responsible unit (its key projects)."""
        if scope not in accounts.SCOPES:
            raise InputError("error.bad_scope", scope=scope)
        code = self.village_code(code) if scope == "village" else self.zone_code(code) if scope == "zone" \
            else str(code or "").strip()
        if not code:
            raise InputError("error.bad_scope", scope=scope)
        with self._refusals_logged(by, "user_assign", username):
            with self._connect(write=True) as con:
                self._admin(con, by, "user assign")
                if not con.execute("SELECT 1 FROM users WHERE username = ?", (username,)).fetchone():
                    raise NotFoundError("error.no_user", user=username)
                if remove:
                    con.execute("DELETE FROM assignments WHERE username = ? AND scope = ? AND code = ?",
                                (username, scope, code))
                elif not con.execute("SELECT 1 FROM assignments WHERE username = ? AND scope = ? AND code = ?",
                                     (username, scope, code)).fetchone():
                    con.execute("INSERT INTO assignments (username, scope, code) VALUES (?,?,?)", (username, scope, code))
                self._audit(con, by, "user_unassign" if remove else "user_assign", username, "ok",
                            None, {"scope": scope, "code": code})

    def authenticate(self, username: str, password: str, now: dt.datetime | None = None, client: str = "",
                     sleep=time.sleep) -> User:
        """The user if the password is right.

        The same message, and the same work (an argon2 check against a stand-in
        hash), whether the account exists, is disabled or the password is wrong,
        so that neither the answer nor its time tells which. Failures are
        counted per (account, client): after ``accounts.FREE_FAILURES`` of them
        each further attempt from that client is held for a growing delay
        (``sleep``) and then checked — the right password still signs in, and
        other clients are not slowed. A client that queues attempts beyond
        ``accounts.MAX_HOLD_S`` is refused with the time to wait. The audit gets
        one line per (account, client) and ``accounts.LOGIN_WINDOW_S`` with the
        count of failures, not a line each; a client trying more than
        ``accounts.NAMES_PER_CLIENT`` names a day is counted under one name, ``*``.

        Raises:
            PermissionRefused: ``error.bad_login`` (wrong name or password, disabled account) or
                ``error.login_wait`` (this client must wait).
        """
        now = now or clock.utcnow()
        at = now.timestamp()
        name = (username or "")[:accounts.MAX_NAME_CHARS]
        client = (client or "-")[:accounts.MAX_NAME_CHARS]
        with self._connect(write=True) as con:
            self._close_login_windows(con, at)
            key = self._attempt_key(con, name, client, at)
            row = con.execute("SELECT failures, next_at FROM login_attempts WHERE account = ? AND client = ?",
                              (key, client)).fetchone()
            if row is None:
                con.execute("INSERT INTO login_attempts (account, client, failures, window_count, seen_at)"
                            " VALUES (?, ?, 0, 0, ?)", (key, client, at))
                failures, start = 0, at
            else:
                failures, start = int(row["failures"]), max(at, float(row["next_at"] or at))
            hold = start - at
            if hold > accounts.MAX_HOLD_S:  # attempts queued faster than the delay lets them through
                self._count_login_failure(con, key, client, at, counts=False)
            else:  # reserve this attempt's slot: the next one waits for it and its delay
                con.execute("UPDATE login_attempts SET next_at = ?, seen_at = ? WHERE account = ? AND client = ?",
                            (start + accounts.login_delay(failures + 1), at, key, client))
        if hold > accounts.MAX_HOLD_S:
            raise PermissionRefused("error.login_wait", seconds=int(hold - accounts.MAX_HOLD_S + 0.999))
        if hold > 0:
            sleep(hold)
        with self._connect() as con:
            row = con.execute("SELECT password_hash, disabled FROM users WHERE username = ?", (name,)).fetchone()
        right = accounts.check_password(row["password_hash"] if row else None, password)
        ok = right and row is not None and not row["disabled"]
        with self._connect(write=True) as con:
            if ok:
                if key == name:  # the client's own bucket for this account starts again
                    self._close_login_window(con, key, client)
                    con.execute("DELETE FROM login_attempts WHERE account = ? AND client = ?", (key, client))
                self._audit(con, name, "login", name, "ok", detail=f"client {client}")
            else:
                self._count_login_failure(con, key, client, at)
        if not ok:
            raise PermissionRefused("error.bad_login")
        return self.user(name)

    def _attempt_key(self, con, name: str, client: str, at: float) -> str:
        """The name a client's attempts are counted under: the name typed, or ``*`` once the client has
        tried more than NAMES_PER_CLIENT names in a day (known or not alike, so this tells nothing)."""
        if con.execute("SELECT 1 FROM login_attempts WHERE account = ? AND client = ?", (name, client)).fetchone():
            return name
        n = con.execute("SELECT count(*) FROM login_attempts WHERE client = ? AND account <> '*'",
                        (client,)).fetchone()[0]
        return "*" if int(n) >= accounts.NAMES_PER_CLIENT else name

    def _count_login_failure(self, con, key: str, client: str, at: float, counts: bool = True) -> None:
        row = con.execute("SELECT window_start, window_count FROM login_attempts WHERE account = ? AND client = ?",
                          (key, client)).fetchone()
        if row["window_start"] is not None and at - float(row["window_start"]) >= accounts.LOGIN_WINDOW_S:
            self._close_login_window(con, key, client)
            row = {"window_start": None, "window_count": 0}
        start = at if row["window_start"] is None else float(row["window_start"])
        con.execute("UPDATE login_attempts SET failures = failures + ?, window_start = ?, window_count = ?,"
                    " window_last = ?, seen_at = ? WHERE account = ? AND client = ?",
                    (1 if counts else 0, start, int(row["window_count"] or 0) + 1, at, at, key, client))

    def _close_login_window(self, con, key: str, client: str) -> None:
        """The audit line of a window of failures (how many, from which client, first and last), then reset."""
        row = con.execute("SELECT window_start, window_count, window_last FROM login_attempts"
                          " WHERE account = ? AND client = ?", (key, client)).fetchone()
        if row is None or not row["window_count"]:
            return
        iso = (lambda s: dt.datetime.fromtimestamp(float(s), dt.timezone.utc).isoformat(timespec="seconds"))
        n = int(row["window_count"])
        self._audit(con, key, "login", key, "refused", None,
                    {"failures": n, "client": client, "first": iso(row["window_start"]), "last": iso(row["window_last"])},
                    detail=f"{n} failed login(s) from {client}")
        con.execute("UPDATE login_attempts SET window_start = NULL, window_count = 0, window_last = NULL"
                    " WHERE account = ? AND client = ?", (key, client))

    def _close_login_windows(self, con, at: float) -> None:
        """Write the audit lines of every window that has ended; forget clients quiet for a day."""
        ended = con.execute("SELECT account, client FROM login_attempts WHERE window_count > 0 AND window_start <= ?",
                            (at - accounts.LOGIN_WINDOW_S,)).fetchall()
        for r in ended:
            self._close_login_window(con, r["account"], r["client"])
        con.execute("DELETE FROM login_attempts WHERE seen_at < ? AND window_count = 0 AND (next_at IS NULL OR next_at < ?)",
                    (at - accounts.FORGET_AFTER_S, at))

    def close_login_windows(self, now: dt.datetime | None = None) -> None:
        """Write the audit lines of failed-login windows that have ended (the audit page calls it before reading)."""
        at = (now or clock.utcnow()).timestamp()
        with self._connect(write=True) as con:
            self._close_login_windows(con, at)

    def session_stamp(self, username: str) -> str | None:
        """A short digest of what a sign-in rests on (password hash, role, state), for ``gis.sessions``;
        None for an unknown or disabled account."""
        with self._connect() as con:
            row = con.execute("SELECT password_hash, role, disabled FROM users WHERE username = ?",
                              (username,)).fetchone()
        if row is None or row["disabled"]:
            return None
        return hashlib.sha256(f"{row['password_hash']}|{row['role']}".encode()).hexdigest()[:16]

    def audit(self, actor: str | None = None, action: str | None = None, outcome: str | None = None,
              target: str | None = None, limit: int = 5000) -> pd.DataFrame:
        """The audit trail, newest first, filtered (failed-login windows that have ended written first)."""
        self.close_login_windows()
        where, params = [], []
        for col, val in (("actor", actor), ("action", action), ("outcome", outcome), ("target", target)):
            if val:
                where.append(f"{col} = ?")
                params.append(val)
        sql = "SELECT id, at, actor, action, target, outcome, before, after, detail FROM audit"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY id DESC LIMIT {int(limit)}"
        with self._connect() as con:
            cur = con.execute(sql, tuple(params))
            cols = [d[0] for d in cur.description]
            return pd.DataFrame([tuple(r) if not isinstance(r, dict) else tuple(r.values()) for r in cur.fetchall()],
                                columns=cols)

    # ----------------------------------------------------------- administration and proof of identity
    def record_audit(self, actor: str, action: str, target: str, outcome: str = "ok", before=None, after=None,
                     detail: str = "") -> None:
        """One line of the audit trail, in its own transaction (backups, restores, sign-ins of the command line)."""
        with self._connect(write=True) as con:
            self._audit(con, actor, action, target, outcome, before, after, detail)

    def require_admin(self, by: str, action: str, target: str = "") -> None:
        """Refuse ``by`` an administrative act on a store with accounts unless an admin or the operator
        (``accounts.is_operator``); the refusal is audited.

        Raises:
            PermissionRefused: not an admin.
        """
        with self._refusals_logged(by or "?", action, target or action), self._connect() as con:
            self._admin(con, by, action)

    def sign_in(self, username: str | None, password: str | None = None, token: str | None = None) -> User:
        """The account proved by a password (counted and slowed down like the app's login) or by a personal
        token (``issue_token``; it names its account, so ``username`` may be empty).

        Raises:
            PermissionRefused: no credential, a wrong one, a token that is unknown, revoked or another account's.
        """
        if password is not None:
            return self.authenticate(username or "", password, client="command line")
        if not token:
            self.record_audit(username or "?", "login", username or "?", "refused", detail="no credential")
            raise PermissionRefused("error.no_credential", user=username or "?")
        with self._connect(write=True) as con:
            row = con.execute("SELECT username FROM cli_tokens WHERE token_hash = ? AND revoked_at IS NULL",
                              (accounts.token_digest(token),)).fetchone()
            user = self._user(con, row["username"]) if row else None
            if user is None or (username and username != user.username):
                self._audit(con, username or "?", "login", username or "?", "refused", detail="bad token")
                user = None
            else:
                self._audit(con, user.username, "login", user.username, "ok", detail="token")
        if user is None:
            raise PermissionRefused("error.bad_token")
        return user

    def issue_token(self, username: str, by: str) -> str:
        """A new personal token for ``username`` (admins only). Only its hash is kept: show it once.

        Raises:
            PermissionRefused: ``by`` is not an admin (audited). NotFoundError: no such account.
        """
        token = accounts.new_token()
        with self._refusals_logged(by, "token_issue", username), self._connect(write=True) as con:
            self._admin(con, by, "token issue")
            if self._user(con, username) is None:
                raise NotFoundError("error.no_user", user=username)
            con.execute("INSERT INTO cli_tokens (username, token_hash, created_at, created_by) VALUES (?,?,?,?)",
                        (username, accounts.token_digest(token), utcnow_iso(), by))
            self._audit(con, by, "token_issue", username, "ok")
        return token

    def revoke_tokens(self, username: str, by: str) -> int:
        """End every personal token of ``username`` (admins, or the user for themself); returns how many.

        Raises:
            PermissionRefused: not allowed (audited).
        """
        with self._refusals_logged(by, "token_revoke", username), self._connect(write=True) as con:
            if by != username:
                self._admin(con, by, "token revoke")
            n = con.execute("UPDATE cli_tokens SET revoked_at = ? WHERE username = ? AND revoked_at IS NULL",
                            (utcnow_iso(), username)).rowcount
            self._audit(con, by, "token_revoke", username, "ok", None, {"revoked": n})
        return n
