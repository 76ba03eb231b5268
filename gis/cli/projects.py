"""Key-project commands of ``renewal`` (issue 18): the ledger, daily reports, stages, the dispatch table
and the year's indicators.

    renewal project template -o projects.xlsx [--year Y]
    renewal project import projects.xlsx [--year Y] --json
    renewal project list [--list NAME] [--industry I] [--as-of D] --json
    renewal project show CODE --json
    renewal project report CODE --date D --invested AMOUNT [--output O] [--note T] [--correction-of ID --reason R]
    renewal project advance CODE --to STAGE [--date D] [--note T] [--correction REASON]
    renewal project dispatch [--date D] [--weekly] --json
    renewal indicators --year Y [--as-of D] --json

Amounts are in 万元, the unit the offices report in.
"""
from __future__ import annotations

import sys
from pathlib import Path

from gis.base.errors import InputError
from gis.base.i18n import t
from gis.cli.common import YEAR, actor, int_range, open_cli_store, output_path, print_json
from gis.io import projects_io
from gis.io.templates import TEMPLATE_SUFFIXES
from gis.model import projects as model


def _round(rows: list[dict]) -> list[dict]:
    """Figures rounded to the 0.01 万元 (100 yuan) a ledger shows."""
    return [{k: round(v, 2) if isinstance(v, float) else v for k, v in r.items()} for r in rows]


def cmd_project(args) -> int:
    c = args.project_command
    out = output_path(args, args.output, suffixes=TEMPLATE_SUFFIXES) if c == "template" else None
    store = open_cli_store(args)
    if c == "template":
        path = projects_io.write_template(store, out, args.lang, args.year)
        print_json({"template": str(path)})
        return 0
    if c == "import":
        rows = projects_io.read_project_file(Path(args.file), args.year)
        try:
            out = store.upsert_projects(rows, actor(args, store, login_default=True))
        except InputError as e:
            if "rejected" in e.params:  # all or nothing: say which rows, then fail
                print_json({"added": 0, "updated": 0, "unchanged": 0, "rejected": e.params["rejected"]})
            raise
        if args.json:
            print_json(out)
        else:
            print(f"+{out['added']} ~{out['updated']} ={out['unchanged']}")
        # how the import read the sheet, said every time: blanks keep, example rows are not data
        notes = [t("ledger.blanks_kept", lang) for lang in ("zh", "en")]
        if out.get("examples_skipped"):
            notes += [t("ledger.examples_skipped", lang, n=out["examples_skipped"]) for lang in ("zh", "en")]
        print(" / ".join(notes), file=sys.stderr)
        return 0
    if c == "list":
        rows = store.projects(list_name=args.list, industry=args.industry, as_of=args.as_of, lang=args.lang)
        if args.json:
            print_json(rows)
        else:
            for r in rows:
                print(f"{r['code']:<10} {r['stage_label']:<6} {r['invested_to_date']:>12,.2f} / "
                      f"{r['investment_total']:>12,.2f}  {r['name']}")
        return 0
    if c == "show":
        print_json(store.project(args.code, lang=args.lang))
        return 0
    if c == "report":
        print_json(store.report_project(args.code, args.date, args.invested, actor(args, store, login_default=True), note=args.note or "",
                                        output_wan=args.output, correction_of=args.correction_of,
                                        reason=args.reason))
        return 0
    if c == "advance":
        print_json(store.advance_project(args.code, args.to, args.date, actor(args, store, login_default=True), note=args.note or "",
                                         correction=args.correction))
        return 0
    if c == "dispatch":
        table = model.dispatch_table(store, args.date, cadence="weekly" if args.weekly else None)
        table["behind_plan"] = _round(table["behind_plan"])
        if args.json:
            print_json(table)
        else:
            n = table["counts"]
            print(f"{table['day']} {table['cadence']}: {n['reported']}/{n['dispatched']} reported, "
                  f"{n['missing']} missing, {n['behind_plan']} behind plan")
            for r in table["missing"]:
                print(f"  missing  {r['code']:<10} {r['unit'] or '':<16} {r['name']}")
            for r in table["behind_plan"]:
                print(f"  behind   {r['code']:<10} {r['invested_year']:>10,.0f} / {r['expected_by_now']:>10,.0f}  "
                      f"{r['name']}")
        return 0
    raise InputError("error.input")


def cmd_indicators(args) -> int:
    store = open_cli_store(args)
    rows = model.indicators(store, args.year, args.as_of, lang=args.lang)
    rows = [{**r, "candidates": _round(r["candidates"])} for r in _round(rows)]
    if args.json:
        print_json(rows)
    else:
        for r in rows:
            print(f"{r['label']:<16} {r['target']:>14,.0f} {r['actual']:>14,.0f} {r['expected_by_now']:>14,.0f}"
                  f" {r['gap']:>14,.0f} {r['unit']}")
    return 0


def register(sub) -> None:
    """Add ``project`` and ``indicators`` to the ``renewal`` parser."""
    p = sub.add_parser("project", help="key projects (重点项目): ledger, daily reports, stages, dispatch table")
    ps = p.add_subparsers(dest="project_command", required=True)
    s = ps.add_parser("template", help="write the project ledger template (项目编号, 项目名称, …, monthly plan)")
    s.add_argument("-o", "--output", required=True, help="file to write: .xlsx, or .csv (the sheet to fill, UTF-8)")
    s.add_argument("--year", type=YEAR, help="year of the plan columns, 1900-2100 (default: this year)")
    s = ps.add_parser("import", help="import a project ledger (xlsx or csv): all rows or none")
    s.add_argument("file")
    s.add_argument("--year", type=YEAR, help="year of plan columns headed only by a month (default: this year)")
    s.add_argument("--by")
    s.add_argument("--json", action="store_true")
    s = ps.add_parser("list", help="list projects: code, name, industry, investment, invested to date, stage")
    s.add_argument("--list", help="only the projects on this list (key or name, e.g. 省重点项目)")
    s.add_argument("--industry", help="only this leading industry (key or name)")
    s.add_argument("--as-of", help="invested to date as of YYYY-MM-DD (default: today)")
    s.add_argument("--json", action="store_true")
    s = ps.add_parser("show", help="one project: facts, plan and actual by month, reports, stage events")
    s.add_argument("code")
    s.add_argument("--json", action="store_true")
    s = ps.add_parser("report", help="report a project's completed investment for a day (万元)")
    s.add_argument("code")
    s.add_argument("--date", help="business date YYYY-MM-DD (default: today)")
    s.add_argument("--invested", required=True, help="investment completed since the last report, 万元")
    s.add_argument("--output", help="output (产值) in the period, 万元")
    s.add_argument("--note", help="progress note")
    s.add_argument("--correction-of", type=int_range(1, 2**62), help="id of the report this one corrects (keeps its date)")
    s.add_argument("--reason", help="why the correction")
    s.add_argument("--by")
    s = ps.add_parser("advance", help="move a project to its next stage")
    s.add_argument("code")
    s.add_argument("--to", required=True, help="stage key or label, e.g. construction or 在建")
    s.add_argument("--date", help="business date YYYY-MM-DD (default: today)")
    s.add_argument("--note")
    s.add_argument("--correction", help="reason, to go back or skip as a correction")
    s.add_argument("--by")
    s = ps.add_parser("dispatch", help="the dispatch table (日调度): reports of the day, missing, behind plan")
    s.add_argument("--date", help="YYYY-MM-DD (default: today)")
    s.add_argument("--weekly", action="store_true", help="weekly reports (default: as layers/projects.toml says)")
    s.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_project)

    s = sub.add_parser("indicators", help="the year's indicators against their targets, with the gap")
    s.add_argument("--year", type=YEAR, help="1900-2100 (default: this year)")
    s.add_argument("--as-of", help="YYYY-MM-DD (default: today, or the year's end)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_indicators)
