"""``renewal attachment zip``: the evidence of a parcel or of a village as one zip with a manifest
(added to the ``attachment`` group of gis/cli/evidence.py by ``add_zip_command``).

    renewal attachment zip V01-003 -o V01-003.zip
    renewal attachment zip --village 东岙村 -o 东岙村.zip

On a store with accounts, restricted documents go in only for the account proven with ``--as`` (or a token)
and allowed to see them; without ``--as`` they are left out (the summary counts them).
"""
from __future__ import annotations

import os

from gis.cli.common import actor, open_cli_store, output_path, print_json
from gis.io.evidence_zip import write_evidence_zip


def viewer_of(args, store) -> str | None:
    """The account an export is made for: the one proven by ``--as`` or a token, else None (no one in
    particular: restricted documents stay in the store)."""
    if store.accounts_enabled() and (getattr(args, "as_user", None) or os.environ.get("RENEWAL_TOKEN")):
        return actor(args, store)
    return None


def cmd_attachment_zip(args) -> int:
    output_path(args, args.output)
    store = open_cli_store(args)
    print_json(write_evidence_zip(store, args.output, code=args.code, village=args.village,
                                  viewer=viewer_of(args, store), lang=args.lang))
    return 0


def add_zip_command(attachment_sub) -> None:
    """``zip`` under the ``attachment`` command's own sub-commands."""
    s = attachment_sub.add_parser("zip", help="the evidence of a parcel (or --village) as a zip with a manifest")
    s.add_argument("code", nargs="?", help="parcel code, e.g. V01-003")
    s.add_argument("--village", help="a village instead: its own evidence and its parcels' (code or name)")
    s.add_argument("-o", "--output", required=True, help="zip file to write")
    s.set_defaults(func=cmd_attachment_zip)

