"""Progress over time on the command line: any listing as of a date, trends, the dispatch-meeting pack.

    renewal parcels --as-of 2026-06-15 --json          the stages on that business day (corrections applied)
    renewal parcels --as-recorded 2026-06-15T18:00     what the system said at that moment
    renewal villages --as-of 2026-06-15 --json
    renewal trend --village V07 --by month --json       cleared area and stage mix at each month's end
    renewal report --since 2026-11-16 --until 2026-11-30 -o 调度会.docx   (.pdf, .xlsx)
"""
from __future__ import annotations

import sys

from gis.base.errors import InputError
from gis.cli.common import open_cli_store, output_path, print_json, progress_bar
from gis.model.timeline import parse_as_of, trend_by_month
from gis.printing.report import build_report, write_report


def cmd_trend(args) -> int:
    store = open_cli_store(args)
    parcels = store.parcels(kind=args.kind, zone=args.zone, village=args.village, geometry=False)
    events = store.events()
    rows = trend_by_month(parcels, events[events["parcel"].isin(parcels["code"])], store.catalog,
                          until=parse_as_of(args.until), since=parse_as_of(args.since))
    if args.json:
        print_json(rows.to_dict("records"))
    else:
        print(rows.to_string(index=False))
    return 0


def cmd_report(args) -> int:
    since = parse_as_of(args.since)
    if since is None:
        raise InputError("error.bad_date", value="")
    output_path(args, args.output)
    store = open_cli_store(args)
    rep = build_report(store, since, parse_as_of(args.until), zone=args.zone, unit=args.unit, village=args.village,
                       lang=args.lang, classification=args.settings.classification,
                       progress=None if args.quiet else progress_bar(sys.stderr))
    out = write_report(rep, args.output)
    if args.json:
        print_json(out)
    else:
        print(f"{out['file']}: {out.get('pages') or out.get('sections')} " + ("pages" if "pages" in out else "sections"))
    return 0


def register(sub) -> None:
    s = sub.add_parser("report", help="the dispatch-meeting pack (调度会材料): PDF, Word or Excel")
    s.add_argument("--since", required=True, metavar="YYYY-MM-DD", help="first day of the period")
    s.add_argument("--until", metavar="YYYY-MM-DD", help="last day of the period (default: today)")
    scope = s.add_mutually_exclusive_group()
    scope.add_argument("--zone")
    scope.add_argument("--unit")
    scope.add_argument("--village")
    s.add_argument("-o", "--output", required=True, help="file to write: .pdf, .docx or .xlsx")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_report)

    s = sub.add_parser("trend", help="progress by month: area past site clearance, parcels per phase")
    for opt in ("kind", "zone", "village"):
        s.add_argument(f"--{opt}")
    s.add_argument("--by", choices=["month"], default="month", help="step of the series (month)")
    s.add_argument("--since", metavar="YYYY-MM-DD", help="first month (default: the first entry's)")
    s.add_argument("--until", metavar="YYYY-MM-DD", help="last day (default: today)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_trend)
