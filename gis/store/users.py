"""Accounts, permissions, sign-in and the audit trail of a store.

The store refuses what a user may not do; every write and every refusal leaves
a line in the append-only audit table.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from contextlib import contextmanager

import pandas as pd

from gis.auth import accounts
from gis.auth.accounts import User
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
        with self._connect() as con:
            return {r["username"]: r["display_name"] or r["username"]
                    for r in con.execute("SELECT username, display_name FROM users")}

    def accounts_enabled(self) -> bool:
        with self._connect() as con:
            return self._accounts_on(con)

    def user(self, username: str) -> User | None:
        with self._connect() as con:
            return self._user(con, username)

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
        """Give (or take back) an editor's zone or village."""
        if scope not in accounts.SCOPES:
            raise InputError("error.bad_scope", scope=scope)
        code = self.village_code(code) if scope == "village" else self.zone_code(code)
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

    def authenticate(self, username: str, password: str, now: dt.datetime | None = None) -> User:
        """The user if the password is right; failures are counted and slow further attempts down.

        Raises:
            PermissionRefused: wrong name or password, a disabled account, or too soon after failures.
        """
        now = now or dt.datetime.now(dt.timezone.utc)
        with self._connect(write=True) as con:
            row = con.execute("SELECT username, password_hash, failed_count, last_failed_at, disabled FROM users"
                              " WHERE username = ?", (username,)).fetchone()
            wait = accounts.seconds_to_wait(row["failed_count"], row["last_failed_at"], now) if row else 0
            if wait:
                self._audit(con, username, "login", username, "refused", detail=f"throttled {wait}s")
                refusal = PermissionRefused("error.login_wait", seconds=wait)
            elif row and not row["disabled"] and accounts.verify_password(row["password_hash"], password):
                con.execute("UPDATE users SET failed_count = 0, last_failed_at = NULL WHERE username = ?", (username,))
                self._audit(con, username, "login", username, "ok")
                refusal = None
            else:
                if row:
                    con.execute("UPDATE users SET failed_count = failed_count + 1, last_failed_at = ? WHERE username = ?",
                                (now.isoformat(), username))
                self._audit(con, username, "login", username, "refused", detail="bad credentials")
                refusal = PermissionRefused("error.bad_login")
        if refusal:
            raise refusal
        return self.user(username)

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
        """The audit trail, newest first, filtered."""
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
            return self.authenticate(username or "", password)
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
