"""``renewal dashboard``: the district dashboard (总览) on the command line, as JSON or a short text."""
from __future__ import annotations

from gis.base.i18n import t
from gis.cli.common import add_moment_options, int_range, moment_of, open_cli_store, print_json
from gis.model.dashboard import dashboard_of
from gis.model.timeline import as_of_text
from gis.store.asof import store_at


def cmd_dashboard(args) -> int:
    store = store_at(open_cli_store(args), moment_of(args))  # --as-of: the district as it stood that day
    d = dashboard_of(store, args.lang, latest=args.latest)
    as_of = as_of_text(store.meta(), args.lang)
    if as_of:
        d["as_of"] = store.meta()["as_of"]
    if args.json:
        print_json(d)
        return 0
    if as_of:
        print(as_of)
    tot = d["totals"]
    lang = args.lang
    print(t("dash.text_totals", lang, parcels=tot["parcels"], mu=f"{tot['area_mu']:,.0f}", blocked=tot["blocked"]))
    for r in d["progress"]:
        print(f"  {r['label']:<12} {r['parcels']:>5}  {r['area_mu']:>10,.1f}  "
              f"{r['key_stage_label']} {r['past_key_share']:.0%}")
    for r in d["blocked_by_reason"]:
        print(f"  {t('ui.blocked', lang)}  {r['reason']:<16} {r['parcels']:>4}")
    for e in d["latest"]:
        print(f"  {e['recorded_at']}  {e['parcel']:<10} {e['action_label']} {e['to_label']}  {e['by']}")
    return 0


def register(sub) -> None:
    s = sub.add_parser("dashboard", help="the district dashboard: totals, progress by kind, blocked parcels, "
                                         "latest changes")
    s.add_argument("--json", action="store_true")
    s.add_argument("--latest", type=int_range(1, 1000), default=12, help="how many of the latest changes (default 12)")
    add_moment_options(s)
    s.set_defaults(func=cmd_dashboard)
