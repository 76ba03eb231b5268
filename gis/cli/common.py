"""What the ``renewal`` commands share: printing JSON, opening the store, the acting user,
the options every file import takes."""
from __future__ import annotations

import json
import sys

from gis.base.errors import InputError
from gis.store import open_store


def print_json(obj) -> None:
    json.dump(obj, sys.stdout, ensure_ascii=False, indent=1, default=str)
    sys.stdout.write("\n")


def open_cli_store(args):
    """The store the command works on: ``--store`` or the settings' (seeded from the demo on first use)."""
    return open_store(args.settings)


def actor(args) -> str:
    """Who is acting: ``--as``, else the command's ``--by``, else the settings' user."""
    return getattr(args, "as_user", None) or getattr(args, "by", None) or args.settings.user


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
