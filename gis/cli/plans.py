"""Plan and follow-up commands of ``renewal``: plan, status, followup, digest.

    renewal plan template -o plan.xlsx
    renewal plan import plan.xlsx [--baseline NAME] [--reason TEXT] --json
    renewal plan set CODE --stage STAGE --due YYYY-MM-DD [--unit U] [--baseline NAME] [--reason TEXT]
    renewal plan list [--village V] [--baseline NAME] [--original] --json
    renewal plan baselines --json | plan baseline NAME [--label L] [--start D --end D] | plan adopt NAME
    renewal status [--as-of YYYY-MM-DD] [--village V] [--zone Z] [--unit U] [--baseline NAME] --json
    renewal followup add --on CODE --unit UNIT --due YYYY-MM-DD --text T
    renewal followup reply ID --text T | close ID [--text T] | return ID --text T | list [--open] --json
    renewal digest [--dry-run] [--as-of YYYY-MM-DD]
"""
from __future__ import annotations

import sys
from pathlib import Path

from gis.base.errors import InputError
from gis.base.i18n import t
from gis.cli.common import actor, add_moment_options, moment_of, open_cli_store, output_path, print_json
from gis.io import digest as digest_mod
from gis.io import plans_io
from gis.io.templates import TEMPLATE_SUFFIXES
from gis.model.timeline import as_of_text
from gis.store.asof import store_at


def _df_rows(df) -> list[dict]:
    return [{k: (None if v is not None and not isinstance(v, str) and v != v else v) for k, v in r.items()}
            for r in df.to_dict("records")]


def cmd_plan(args) -> int:
    c = args.plan_command
    if c == "template":
        out = output_path(args, args.output, suffixes=TEMPLATE_SUFFIXES)
        store = open_cli_store(args)
        path = plans_io.write_template(store, out, args.lang)
        print_json({"template": str(path)})
        return 0
    store = open_cli_store(args)
    if c == "import":
        rows = plans_io.read_plan_file(Path(args.file))
        try:
            out = store.set_targets(rows, actor(args, store), baseline=args.baseline, reason=args.reason)
        except InputError as e:
            if "rejected" in e.params:  # all or nothing: say which rows, then fail
                print_json({"baseline": args.baseline, "added": 0, "changed": 0, "unchanged": 0,
                            "rejected": e.params["rejected"]})
            raise
        if out.get("skipped_examples"):  # said on stderr too, so that a --json reader is not the only one told
            print(t("plans.skipped_examples", "zh", n=out["skipped_examples"]) + " / "
                  + t("plans.skipped_examples", "en", n=out["skipped_examples"]), file=sys.stderr)
        if args.json:
            print_json(out)
        else:
            print(f"{out['baseline']}: +{out['added']} ~{out['changed']} ={out['unchanged']}")
        return 0
    if c == "set":
        row = store.set_target(args.code, args.stage, args.due, actor(args, store), baseline=args.baseline,
                               unit=args.unit, note=args.note, reason=args.reason)
        print_json(row)
        return 0
    if c == "list":
        baseline = store.baseline_name(args.baseline) if args.baseline else None
        df = store.plan_targets(baseline=baseline, village=args.village, original=args.original)
        rows = _df_rows(df)
        if args.json:
            print_json(rows)
        else:
            for r in rows:
                print(f"{r['baseline']:<12} {r['object']:<10} {r['stage']:<14} {r['due_date']}  {r['unit'] or ''}")
        return 0
    if c == "baselines":
        print_json(store.plan_baselines())
        return 0
    if c == "baseline":
        kind = "campaign" if args.start or args.end else "plan"
        print_json(store.add_baseline(args.name, actor(args, store), label=args.label or "", kind=kind,
                                      start=args.start, end=args.end, note=args.note or ""))
        return 0
    if c == "adopt":
        print_json(store.adopt_baseline(args.name, actor(args, store)))
        return 0
    raise InputError("error.input")


def cmd_status(args) -> int:
    moment = moment_of(args)  # --as-recorded: only the stage entries recorded by then count
    store = store_at(open_cli_store(args), moment)
    rows = store.status_rows(args.as_of, args.village, args.zone, args.unit, args.baseline, args.lang)
    if args.json:
        print_json(rows)
    else:
        if not moment.is_now:
            print(as_of_text(store.meta(), args.lang))
        for r in rows:
            late = f"{r['days_late']}d" if r.get("days_late") else ""
            print(f"{r['object']:<10} {r['stage_label']:<12} {r.get('due') or '':<10} {r['status']:<10} {late}"
                  f" {r['unit'] or ''}")
    return 0


def cmd_followup(args) -> int:
    store = open_cli_store(args)
    c = args.followup_command
    if c == "add":
        out = store.issue_followup(args.on, args.unit, args.due, args.text, actor(args, store), target=args.target)
    elif c == "reply":
        out = store.reply_followup(args.id, args.text, actor(args, store))
    elif c == "close":
        out = store.close_followup(args.id, actor(args, store), text=args.text or "")
    elif c == "return":
        out = store.return_followup(args.id, args.text, actor(args, store))
    else:
        rows = store.followups(open_only=args.open, unit=store.unit_name(args.unit) if args.unit else None,
                               as_of=args.as_of)
        if args.json:
            print_json(rows)
        else:
            for r in rows:
                flag = " !" if r["overdue"] else ""
                print(f"#{r['id']:<4} {r['on']:<10} {r['unit']:<14} {r['due']} {r['state']}{flag}")
        return 0
    print_json(out)
    return 0


def cmd_digest(args) -> int:
    store = open_cli_store(args)
    text = digest_mod.build_digest(store, args.as_of, lang=args.lang)
    if args.dry_run:
        sys.stdout.write(text + "\n")
        return 0
    url = args.settings.digest_webhook
    if not url:
        raise InputError("plans.no_webhook")
    print_json(digest_mod.post_digest(url, text))
    return 0


def register(sub) -> None:
    """Add ``plan``, ``status``, ``followup`` and ``digest`` to the ``renewal`` parser."""
    p = sub.add_parser("plan", help="plans: targets with dates per baseline (年初目标, 承诺书目标, campaigns)")
    ps = p.add_subparsers(dest="plan_command", required=True)
    s = ps.add_parser("template", help="write the plan spreadsheet template (对象编号, 目标阶段, 计划完成日期, …)")
    s.add_argument("-o", "--output", required=True, help="file to write: .xlsx, or .csv (the sheet to fill, UTF-8)")
    s = ps.add_parser("import", help="import targets from a plan spreadsheet (xlsx or csv): all rows or none")
    s.add_argument("file")
    s.add_argument("--baseline", default="annual", help="an existing baseline (default: annual, 年初目标;"
                                                         " add others with `plan baseline`)")
    s.add_argument("--reason", help="why an adopted baseline changes")
    s.add_argument("--by")
    s.add_argument("--json", action="store_true")
    s = ps.add_parser("set", help="set one target: CODE reaches STAGE by DUE")
    s.add_argument("code", help="parcel code, village or site (park) code or name")
    s.add_argument("--stage", required=True, help="stage key or label, e.g. signing or 签约")
    s.add_argument("--due", required=True, help="planned date: 2026-12-31, 2026/12/31, 2026.12.31 or 2026年12月31日")
    s.add_argument("--unit", help="unit responsible (default: the object's)")
    s.add_argument("--note")
    s.add_argument("--baseline", default="annual")
    s.add_argument("--reason", help="why an adopted baseline changes")
    s.add_argument("--by")
    s = ps.add_parser("list", help="list targets")
    s.add_argument("--village")
    s.add_argument("--baseline")
    s.add_argument("--original", action="store_true", help="each target as first set (before revisions)")
    s.add_argument("--json", action="store_true")
    s = ps.add_parser("baselines", help="list baselines and campaigns")
    s.add_argument("--json", action="store_true")
    s = ps.add_parser("baseline", help="add a baseline; with --start and --end a campaign (e.g. 百日攻坚)")
    s.add_argument("name")
    s.add_argument("--label")
    s.add_argument("--start")
    s.add_argument("--end")
    s.add_argument("--note")
    s.add_argument("--by")
    s = ps.add_parser("adopt", help="adopt a baseline: later changes need a reason and keep the original")
    s.add_argument("name")
    s.add_argument("--by")
    p.set_defaults(func=cmd_plan)

    s = sub.add_parser("status", help="status against the plan: targets and stalled parcels")
    add_moment_options(s)
    for opt in ("village", "zone", "unit", "baseline"):
        s.add_argument(f"--{opt}")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_status)

    p = sub.add_parser("followup", help="follow-up orders (督办): issue, reply, close, return, list")
    fs = p.add_subparsers(dest="followup_command", required=True)
    s = fs.add_parser("add", help="issue an order (leaders and admins)")
    s.add_argument("--on", required=True, help="parcel, village or site code")
    s.add_argument("--unit", help="unit responsible (default: the object's)")
    s.add_argument("--due", required=True, help="due date, today or later (2026-12-31, 2026/12/31)")
    s.add_argument("--text", required=True)
    s.add_argument("--target", help="the target it is about: baseline/object/stage, e.g. annual/V07/signing"
                                    " or annual/V07/签约 (it must exist)")
    s.add_argument("--by")
    for name, needs in (("reply", True), ("close", False), ("return", True)):
        s = fs.add_parser(name, help=f"{name} an order")
        s.add_argument("id", type=int)
        s.add_argument("--text", required=needs)
        s.add_argument("--by")
    s = fs.add_parser("list", help="list orders")
    s.add_argument("--open", action="store_true", help="only orders not closed")
    s.add_argument("--unit")
    s.add_argument("--as-of")
    s.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_followup)

    s = sub.add_parser("digest", help="the daily digest: overdue and due-soon targets, open orders, per unit")
    s.add_argument("--dry-run", action="store_true", help="print it; send nothing")
    s.add_argument("--as-of")
    s.set_defaults(func=cmd_digest)
