"""Evidence commands of ``renewal``: photos and documents on parcels, villages, sites and stage events.

    renewal attach CODE FILE [FILE…] [--event ID] [--caption T] [--kind-of village|site] [--restricted] --json
    renewal attachments CODE [--kind-of village|site] [--event ID] [--withdrawn] --json
    renewal attachment get ID -o FILE [--strip-personal]
    renewal attachment withdraw ID --reason T
    renewal advance CODE --to STAGE --evidence FILE [--evidence FILE …]     (gis/cli/main.py)

Every file is checked (real type, size, pixels) before anything is written; one bad file writes none.
A restricted (personal) document is shown only to who may see it: on a store with accounts, say who you
are with ``--as`` (and its proof), as for a write.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from gis.base.errors import InputError
from gis.base.fileio import atomic_write
from gis.base.i18n import t
from gis.cli.common import actor, int_range, open_cli_store, output_path, print_json
from gis.cli.evidence_export import add_zip_command
from gis.model import media


def read_files(paths) -> list[tuple[str, bytes]]:
    """``(file name, bytes)`` of each path, refusing a missing file or one over the size cap before reading it.

    Raises:
        InputError: a folder, a path that is not a readable file, or too large.
    """
    out = []
    for p in paths or ():
        path = Path(p)
        if path.is_dir():
            raise InputError("outpath.input_is_folder", path=str(path))
        if not path.is_file():
            raise InputError("evidence.no_file", path=str(path))
        size = path.stat().st_size
        if size > media.MAX_MB * 1024 * 1024:
            raise InputError("evidence.too_large", name=path.name, mb=f"{size / 1048576:.1f}", max=media.MAX_MB)
        try:
            out.append((path.name, path.read_bytes()))
        except OSError:
            raise InputError("evidence.no_file", path=str(path)) from None
    return out


def viewer(args, store) -> str | None:
    """Whose eyes a read is for: None (everything) on a store without accounts or for the operator; the
    proven account with ``--as`` or a token; otherwise anyone's (restricted documents left out)."""
    if not store.accounts_enabled():
        return None
    if getattr(args, "operator", False):
        actor(args, store)  # proves it is the operator
        return None
    if getattr(args, "as_user", None) or os.environ.get("RENEWAL_TOKEN"):
        return actor(args, store)
    return ""


def _copy(chunks, f) -> None:
    for chunk in chunks:
        f.write(chunk)


def evidence_of(args, single: bool):
    """The ``--evidence`` files of an advance or a block, read and named (None when none).

    Raises:
        InputError: a missing or too large file; evidence with more than one parcel.
    """
    if not getattr(args, "evidence", None):
        return None
    if not single:
        raise InputError("evidence.one_parcel")
    return read_files(args.evidence)


def _line(a) -> str:
    where = f" @ {a.lon:.6f},{a.lat:.6f}" if a.lon is not None else ""
    return f"#{a.id}\t{a.kind}\t{a.filename}\t{a.size} B\t{a.taken_at or '-'}{where}\t{a.caption}"


def cmd_attach(args) -> int:
    files = read_files(args.files)
    store = open_cli_store(args)
    rows = store.add_attachments(args.code, files, actor(args, store), target_kind=args.kind_of,
                                 event_id=args.event, caption=args.caption or "",
                                 restricted=True if args.restricted else None)
    if args.json:
        print_json([a.to_json() for a in rows])
    else:
        for a in rows:
            print(_line(a))
    return 0


def cmd_attachments(args) -> int:
    store = open_cli_store(args)
    who = viewer(args, store)
    rows = store.attachments(args.code, target_kind=args.kind_of, event_id=args.event, viewer=who,
                             include_withdrawn=args.withdrawn)
    hidden = 0  # someone's eyes: how many restricted ones they were not shown (said on stderr)
    if who is not None:
        hidden = len(store.attachments(args.code, target_kind=args.kind_of, event_id=args.event,
                                       include_withdrawn=args.withdrawn)) - len(rows)
    if args.json:
        print_json([a.to_json() for a in rows])
    else:
        for a in rows:
            print(_line(a) + (f"\t[{a.withdrawn_reason}]" if a.withdrawn_at else ""))
    if hidden:
        sys.stdout.flush()
        print(f"{t('outpath.restricted_hidden', 'zh', n=hidden)} / {t('outpath.restricted_hidden', 'en', n=hidden)}",
              file=sys.stderr)
    return 0


def cmd_attachment(args) -> int:
    store = open_cli_store(args)
    if args.attachment_command == "get":
        out = output_path(args, args.output)
        who = viewer(args, store)
        att = store.attachment(args.id, viewer=who)
        if args.strip_personal:
            data = media.strip_personal(store.attachment_data(att.id, viewer=who))
            atomic_write(out, lambda f: f.write(data))
        else:
            atomic_write(out, lambda f: _copy(store.attachment_chunks(att.id, viewer=who), f))
        print(t("evidence.saved", args.lang, path=str(out), size=out.stat().st_size))
        return 0
    att = store.withdraw_attachment(args.id, args.reason or "", actor(args, store))
    print_json(att.to_json())
    return 0


def register(sub) -> None:
    s = sub.add_parser("attach", help="attach photos or documents to a parcel, a village, a site or a stage event")
    s.add_argument("code", help="parcel code (or a village's / site's code or name with --kind-of)")
    s.add_argument("files", nargs="+", metavar="FILE", help="JPEG, PNG, WebP, HEIC, PDF, Word, Excel, PowerPoint")
    s.add_argument("--event", type=int_range(1, 2**62), help="the id of the stage event the files document (renewal history)")
    s.add_argument("--caption", default="")
    s.add_argument("--kind-of", dest="kind_of", choices=["parcel", "village", "site"], default="parcel",
                   help="what CODE is (default: a parcel)")
    s.add_argument("--restricted", action="store_true",
                   help="personal documents (signed agreements): only admins, leaders and the area's editors see them")
    s.add_argument("--by", help="who adds them (a store without accounts)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_attach)

    s = sub.add_parser("attachments", help="list the photos and documents of a parcel (and its events)")
    s.add_argument("code")
    s.add_argument("--kind-of", dest="kind_of", choices=["parcel", "village", "site"], default="parcel")
    s.add_argument("--event", type=int_range(1, 2**62), help="only those of this stage event")
    s.add_argument("--withdrawn", action="store_true", help="include withdrawn ones")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_attachments)

    s = sub.add_parser("attachment", help="get or withdraw one attachment, or zip a parcel's or a village's evidence")
    asub = s.add_subparsers(dest="attachment_command", required=True)
    g = asub.add_parser("get", help="write an attachment's file")
    g.add_argument("id", type=int)
    g.add_argument("-o", "--output", required=True, help="file to write")
    g.add_argument("--strip-personal", action="store_true",
                   help="a photo without personal EXIF (camera serial, owner, GPS), as exports give it")
    g.set_defaults(func=cmd_attachment)
    w = asub.add_parser("withdraw", help="withdraw an attachment (it stays in the store, marked, with the reason)")
    w.add_argument("id", type=int)
    w.add_argument("--reason", required=True)
    w.add_argument("--by")
    w.set_defaults(func=cmd_attachment)
    add_zip_command(asub)  # renewal attachment zip: gis/cli/evidence_export.py
