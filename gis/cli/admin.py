"""Administration commands of ``renewal``: database set-up, accounts, audit, backup.

Registered into gis/cli/main.py's parser; they use its settings and error edge.
"""
from __future__ import annotations

import getpass
import sys
from pathlib import Path

from gis.base.errors import InputError
from gis.base.fileio import atomic_write
from gis.base.sheets import csv_bytes
from gis.cli.common import actor, open_cli_store, operator_name, output_path, print_json
from gis.model.pipelines import load_catalog
from gis.store.backup import backup, copy_for_check, restore
from gis.store.pg import PostgisStore, load_store_into
from gis.store.store import Store


def _password(args) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    if args.password:
        return args.password
    if sys.stdin.isatty():
        return getpass.getpass("密码 Password: ")
    raise InputError("error.no_password")


def cmd_init_db(args) -> int:
    store = PostgisStore(args.url, load_catalog(args.settings.layers_dir / "pipelines.toml"), create=True)
    print_json({"database": store.location, "schema_version": int(store.meta()["schema_version"])})
    return 0


def cmd_load_demo(args) -> int:
    catalog = load_catalog(args.settings.layers_dir / "pipelines.toml")
    target = PostgisStore(args.url, catalog, create=True)
    if len(target.parcels(geometry=False)) and not args.replace:
        raise InputError("error.database_not_empty", database=target.location)
    source = Path(args.source) if args.source else args.settings.demo_store

    counts = load_store_into(Store(copy_for_check(source), catalog), target)
    print_json({"database": target.location, **counts})
    return 0


def cmd_user(args) -> int:
    store = open_cli_store(args)
    who = actor(args, store, login_default=True)
    if args.user_command == "list":
        store.require_admin(who, "user_list")
        rows = store.users()
        if args.json:
            print_json(rows)
        else:
            for r in rows:
                print(f"{r['username']:<16} {r['role']:<7} {r['display_name'] or '':<10} {' '.join(r['assignments'])}")
        return 0
    if args.user_command in ("logout", "rotate-key"):
        return _sessions_command(store, args, who)
    if args.user_command == "add":
        store.add_user(args.name, _password(args), args.role, who, display_name=args.display or "")
    elif args.user_command == "passwd":
        store.set_password(args.name, _password(args), who)
    elif args.user_command == "assign":
        if not (args.zone or args.village or args.unit):
            raise InputError("error.assign_what")
        for scope, code in (("zone", args.zone), ("village", args.village), ("unit", args.unit)):
            if code:
                store.assign(args.name, scope, code, who, remove=args.remove)
    print_json(next(u for u in store.users() if u["username"] == args.name))
    return 0


def _sessions_command(store, args, who: str) -> int:
    """``user logout NAME``: end every sign-in of NAME on every app server; ``user rotate-key``: a new
    signing key (the previous one still accepted, older ones retired)."""
    if args.user_command == "logout":
        store.end_sessions(args.name, by=who)
        print_json({"user": args.name, "sessions_ended": True})
    else:
        print_json({"session_key_generation": store.rotate_session_key(by=who)})
    return 0


def cmd_audit(args) -> int:
    if args.csv:
        output_path(args, args.csv)
    store = open_cli_store(args)
    store.require_admin(actor(args, store, login_default=True), "audit")
    df = store.audit(actor=args.actor, action=args.action, outcome=args.outcome, target=args.target)
    if args.csv:
        data = csv_bytes(df)  # BOM for Excel; a name "=HYPERLINK(…)" stays text
        atomic_write(args.csv, lambda f: f.write(data))
        print_json({"csv": args.csv, "rows": len(df)})
    else:
        print_json(df.to_dict("records"))
    return 0


def cmd_backup(args) -> int:
    output_path(args, args.output)
    store = open_cli_store(args)
    out = backup(store, args.output, actor(args, store, login_default=True))
    print_json({"backup": str(out), "bytes": out.stat().st_size})
    return 0


def cmd_restore(args) -> int:
    """An admin restores through the live store; the operator (--operator) without opening it, so that a
    store too damaged to open can be replaced."""
    catalog = load_catalog(args.settings.layers_dir / "pipelines.toml")
    where = args.settings.database_url or str(args.settings.store_path)
    if args.operator:
        summary = restore(where, args.file, operator_name(args), operator=True, catalog=catalog)
    else:
        try:
            store = open_cli_store(args)
        except InputError as e:
            raise InputError("error.restore_needs_operator",
                             detail={lang: e.message(lang) for lang in ("zh", "en")}) from e
        summary = restore(store, args.file, actor(args, store, login_default=True))
    print_json({"restored": str(args.file), **summary})
    return 0


def cmd_token(args) -> int:
    """Personal tokens for the command line: issued by an admin, shown once, kept only as a hash."""
    store = open_cli_store(args)
    who = actor(args, store, login_default=True)
    if args.token_command == "issue":
        token = store.issue_token(args.name, who)
        print_json({"user": args.name, "token": token,
                    "use": "RENEWAL_TOKEN=<token> renewal …  (shown once; only its hash is kept)"})
    else:
        print_json({"user": args.name, "revoked": store.revoke_tokens(args.name, who)})
    return 0


def register(sub) -> None:
    s = sub.add_parser("init-db", help="create the schema on an empty PostgreSQL/PostGIS database")
    s.add_argument("url", help="postgresql://user@host/dbname")
    s.set_defaults(func=cmd_init_db)

    s = sub.add_parser("load-demo", help="load the demo district (or another GeoPackage store) into PostGIS")
    s.add_argument("url")
    s.add_argument("--source", help="GeoPackage store to load (default: the demo)")
    s.add_argument("--replace", action="store_true", help="even if the database already has parcels")
    s.set_defaults(func=cmd_load_demo)

    s = sub.add_parser("user", help="accounts: add, list, assign, passwd, logout, rotate-key (admins)")
    us = s.add_subparsers(dest="user_command", required=True)
    u = us.add_parser("add")
    u.add_argument("name")
    u.add_argument("--role", required=True, choices=["viewer", "editor", "admin"])
    u.add_argument("--display", help="display name, e.g. 张伟")
    u.add_argument("--password")
    u.add_argument("--password-stdin", action="store_true")
    u = us.add_parser("passwd")
    u.add_argument("name")
    u.add_argument("--password")
    u.add_argument("--password-stdin", action="store_true")
    u = us.add_parser("assign")
    u.add_argument("name")
    u.add_argument("--zone")
    u.add_argument("--village")
    u.add_argument("--unit", help="a responsible unit: the account reports for its key projects")
    u.add_argument("--remove", action="store_true")
    u = us.add_parser("list")
    u.add_argument("--json", action="store_true")
    u = us.add_parser("logout", help="end every session of a user, on every app server (admins; or yourself)")
    u.add_argument("name")
    us.add_parser("rotate-key", help="a new sign-in signing key; the previous one stays accepted (admins)")
    s.set_defaults(func=cmd_user)

    s = sub.add_parser("audit", help="the audit trail (admins)")
    for opt in ("actor", "action", "outcome", "target"):
        s.add_argument(f"--{opt}")
    s.add_argument("--csv", help="write it as CSV instead of JSON")
    s.set_defaults(func=cmd_audit)

    s = sub.add_parser("backup", help="a consistent copy of the store (GeoPackage or pg_dump)")
    s.add_argument("-o", "--output", required=True)
    s.set_defaults(func=cmd_backup)

    s = sub.add_parser("restore", help="replace the store's content with a backup")
    s.add_argument("file")
    s.set_defaults(func=cmd_restore)

    s = sub.add_parser("token", help="personal tokens for the command line (RENEWAL_TOKEN): issue (admins), revoke")
    ts = s.add_subparsers(dest="token_command", required=True)
    ts.add_parser("issue", help="a new token for USER, printed once").add_argument("name", metavar="USER")
    ts.add_parser("revoke", help="end every token of USER").add_argument("name", metavar="USER")
    s.set_defaults(func=cmd_token)
