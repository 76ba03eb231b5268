"""What the ``renewal`` commands share: printing JSON, opening the store, the acting user,
the options every file import takes."""
from __future__ import annotations

import argparse
import getpass
import json
import math
import os
import sys
from pathlib import Path

from gis.auth import accounts
from gis.base.errors import InputError, PermissionRefused
from gis.base.fileio import check_output
from gis.base.i18n import t
from gis.model.timeline import Moment, parse_as_of, parse_as_recorded
from gis.store import open_store


def finite_json(obj):
    """``obj`` with every float that is not finite (NaN, ±Infinity: pandas' "missing", an overflow)
    as None, and pandas' NA/NaT as None: JSON has no such numbers, and ``json`` would write the
    invalid tokens ``NaN``/``Infinity`` that other programs refuse."""
    if isinstance(obj, dict):
        return {k: finite_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_json(v) for v in obj]
    if type(obj).__module__ == "numpy" and hasattr(obj, "item"):  # a numpy scalar: its Python value
        obj = obj.item()
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if type(obj).__name__ in ("NAType", "NaTType"):  # pandas' missing markers, not imported here for them
        return None
    return obj


def print_json(obj) -> None:
    """``obj`` as JSON on stdout: strictly valid JSON (a non-finite number is written as null)."""
    json.dump(finite_json(obj), sys.stdout, ensure_ascii=False, indent=1, default=str, allow_nan=False)
    sys.stdout.write("\n")


def open_cli_store(args):
    """The store the command works on: ``--store`` or the settings' (seeded from the demo on first use)."""
    return open_store(args.settings)


def output_path(args, path, suffixes=None) -> Path:
    """Where the command may write its output ``path`` (every command that writes a file asks here first):
    never over the live store (a GeoPackage, its -wal/-shm; a PostGIS store has no file), a folder, in a
    folder that is missing (it is not created) or not writable. See :func:`gis.base.fileio.check_output`.

    Raises:
        InputError: exit 2, nothing written.
    """
    s = args.settings
    return check_output(path, protected=() if s.database_url else (s.store_path,), suffixes=suffixes)


def _bilingual(key: str, **params) -> str:
    zh, en = t(key, "zh", **params), t(key, "en", **params)
    return f"{zh} / {en}"


def int_range(low: int, high: int):
    """An argparse ``type``: a whole number from ``low`` to ``high``, refused in both languages (exit 2)."""

    def parse(text: str) -> int:
        try:
            value = int(str(text).strip())
        except ValueError:
            raise argparse.ArgumentTypeError(_bilingual("range.int", value=text)) from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(_bilingual("range.out_of_range", value=text, low=low, high=high))
        return value

    parse.__name__ = "int"  # argparse names the type in its own messages
    return parse


def float_range(low: float, high: float):
    """An argparse ``type``: a finite number from ``low`` to ``high`` (``nan``/``inf`` refused)."""

    def parse(text: str) -> float:
        try:
            value = float(str(text).strip())
        except ValueError:
            raise argparse.ArgumentTypeError(_bilingual("range.number", value=text)) from None
        if not math.isfinite(value) or not low <= value <= high:
            raise argparse.ArgumentTypeError(_bilingual("range.out_of_range", value=text, low=low, high=high))
        return value

    parse.__name__ = "float"
    return parse


#: the years a plan, a template or the indicators may be about
YEAR = int_range(1900, 2100)
#: resolution of PNG pages: below 50 nothing is legible, above 600 an A3 page takes gigabytes
DPI = int_range(50, 600)


def operator_name(args) -> str:
    """``operator:<login>`` when this login is the operator of the store: it may write the GeoPackage and
    its folder, or it holds the database URL (whose credentials are the proof; a wrong one fails to connect).

    Raises:
        PermissionRefused: the data folder or the file is not writable by this login.
    """
    s = args.settings
    if not s.database_url:
        path = Path(s.store_path)
        if not (os.access(path.parent, os.W_OK) and (not path.exists() or os.access(path, os.R_OK | os.W_OK))):
            raise PermissionRefused("error.not_operator", path=str(path))
    return accounts.OPERATOR_PREFIX + getpass.getuser()


def _credential(args) -> tuple[str | None, str | None]:
    """(password, token) from ``--password-stdin``, RENEWAL_PASSWORD, RENEWAL_TOKEN, or a prompt on a terminal."""
    if getattr(args, "login_password_stdin", False):
        return sys.stdin.readline().rstrip("\r\n"), None
    if os.environ.get("RENEWAL_PASSWORD"):
        return os.environ["RENEWAL_PASSWORD"], None
    if os.environ.get("RENEWAL_TOKEN"):
        return None, os.environ["RENEWAL_TOKEN"].strip()
    if sys.stdin.isatty() and sys.stderr.isatty():
        return getpass.getpass("密码 Password: "), None
    return None, None


def actor(args, store=None, login_default: bool = False) -> str:
    """Who is acting (README, *Trust model of the command line*).

    ``--operator``: the operator (see :func:`operator_name`). A store without
    accounts (a planner's own file) records ``--as``, else ``--by``, else the
    settings' user as given (``login_default``: else the login name). A store
    with accounts believes a name only with its proof: ``--as NAME`` (or
    RENEWAL_USER) and a password (``--password-stdin``, RENEWAL_PASSWORD, or asked
    for on a terminal), or a personal token (RENEWAL_TOKEN, which names its
    account). Asked once per command.

    Raises:
        PermissionRefused: no proof, a wrong one, ``--by`` naming someone, ``--operator`` by a non-operator.
    """
    if getattr(args, "proven_actor", None) is not None:
        return args.proven_actor
    if getattr(args, "operator", False):
        name = operator_name(args)
    else:
        store = store or open_cli_store(args)
        claimed = getattr(args, "as_user", None)
        by = getattr(args, "by", None)
        if not store.accounts_enabled():
            name = claimed or by or args.settings.user or (getpass.getuser() if login_default else "")
        else:
            if by and by != claimed:
                raise PermissionRefused("error.by_needs_as", user=by)
            claimed = claimed or args.settings.user or None
            if claimed:
                password, token = _credential(args)
            elif os.environ.get("RENEWAL_TOKEN"):  # a token names its account
                password, token = None, os.environ["RENEWAL_TOKEN"].strip()
            else:  # say what is missing (not "?:" nor "wrong password"), and ask for no password in vain
                given = getattr(args, "login_password_stdin", False) or bool(os.environ.get("RENEWAL_PASSWORD"))
                store.record_audit("?", "login", "?", "refused", detail="no --as")
                raise PermissionRefused("error.password_without_as" if given else "error.no_as")
            name = store.sign_in(claimed, password=password, token=token).username
    args.proven_actor = name
    return name


def parse_map(items) -> dict[str, str]:
    """``--map target=source`` options as a dict (``target=`` leaves a field out).

    Raises:
        InputError: an item without ``=`` or without a target.
    """
    mapping = {}
    for item in items or []:
        target, sep, source = item.partition("=")
        if not sep or not target.strip():
            raise InputError("import.bad_map", item=item)
        mapping[target.strip()] = source.strip()
    return mapping


def import_options(s, map_help: str) -> None:
    """What every file import takes: the file, its layer, CRS, encoding, field mapping, GCJ-02, a dry run."""
    s.add_argument("file")
    s.add_argument("--layer", help="layer to read (GeoPackage, KML, a zip of several shapefiles)")
    s.add_argument("--crs", help="coordinate system of the file's coordinates, e.g. 4528 or EPSG:4528")
    s.add_argument("--encoding", help="text encoding of the attributes, e.g. gbk, utf-8")
    s.add_argument("--map", action="append", metavar="TARGET=SOURCE", help=map_help)
    s.add_argument("--gcj02", action="store_true", help="coordinates are GCJ-02 (AMap): convert to CGCS2000")
    s.add_argument("--dry-run", action="store_true", help="check and report only; write nothing")
    s.add_argument("--json", action="store_true")


def progress_bar(stream=None):
    """A progress bar on a terminal; a line per tenth of the work otherwise."""
    stream = stream or sys.stderr
    tty = stream.isatty()

    def show(done: int, total: int, label: str) -> None:
        if tty:
            n = int(30 * done / max(total, 1))
            stream.write(f"\r[{'#' * n}{'.' * (30 - n)}] {done}/{total} {label:<12.12}")
            if done >= total:
                stream.write("\n")
        elif done >= total or done % max(1, total // 10) == 0:
            stream.write(f"{done}/{total}\n")
        stream.flush()

    return show


def add_moment_options(s) -> None:
    """``--as-of`` and ``--as-recorded``, for every command that shows stages."""
    s.add_argument("--as-of", metavar="YYYY-MM-DD",
                   help="the state on that business date, replayed from the event log (corrections applied)")
    s.add_argument("--as-recorded", metavar="YYYY-MM-DD[THH:MM]",
                   help="only what had been recorded by then (office's time zone; a date means its end)")


def moment_of(args) -> Moment:
    """The moment the options name (``Moment()``: now).

    Raises:
        InputError: a date or time that does not parse.
    """
    return Moment(as_of=parse_as_of(getattr(args, "as_of", None)),
                  as_recorded=parse_as_recorded(getattr(args, "as_recorded", None)))
