"""The ``renewal`` command line: the same core as the app.

JSON goes to stdout; errors go to stderr in Chinese and English; the exit
code is 0 on success, 2 on bad input (3 refused, 4 conflict).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from gis import __version__
from gis.base import clock
from gis.base.errors import InputError, RenewalError
from gis.base.i18n import t
from gis.base.settings import ROOT, Settings
from gis.cli import admin, basemap, cadastre, dashboard, evidence, plans, projects, timeline
from gis.cli.common import (
    DPI,
    actor,
    add_moment_options,
    import_options,
    int_range,
    moment_of,
    open_cli_store,
    output_path,
    parse_map,
    print_json,
    progress_bar,
)
from gis.demo.cadastre import add_demo_cadastre
from gis.demo.district import build_demo, build_demo_raster
from gis.io.exporter import SUFFIX, export
from gis.io.importer import ImportOptions, import_file
from gis.maps.basemaps import required_export_basemap
from gis.maps.cadastre_tiles import cadastre_tiles
from gis.model.board import village_progress
from gis.model.catalog import load_layer_catalog
from gis.model.pipelines import parse_share
from gis.printing.briefing import (
    default_raster,
    render_atlas,
    render_parcel_page,
    render_village_page,
    select_parcels,
    select_villages,
)
from gis.printing.project_brief import render_project_page
from gis.store.asof import store_at
from gis.store.open import as_store, seed_store


def _demo_cadastre(args, store) -> dict:
    """--cadastre N: the fictional cadastre into ``store`` (a store or a path), and its vector tiles built for the app."""

    store = as_store(store)
    out = add_demo_cadastre(store, args.cadastre, seed=args.seed if args.out else None)
    spec = load_layer_catalog(args.settings.layers_dir / "catalog.toml").get("cadastre")
    tiles = cadastre_tiles(store, spec, args.settings.generated_dir)
    out.update(tiles=tiles["name"], tiles_build_s=tiles["build_s"], tiles_mb=round(tiles["bytes"] / 1e6, 1))
    return out


def cmd_demo(args) -> int:
    if args.cadastre and not args.out:
        # only the cadastre, into the working store: the committed demo never carries a big one
        store = open_cli_store(args)
        print_json({"store": store.location, "cadastre": _demo_cadastre(args, store)})
        return 0
    out = output_path(args, args.out) if args.out else args.settings.demo_store
    raster = output_path(args, args.raster) if args.raster else args.settings.raster
    summary = build_demo(out, seed=args.seed)
    if raster:
        build_demo_raster(raster, seed=args.seed, gpkg_path=out)
        summary["raster"] = str(raster)
    if args.reset_store:

        seed_store(out, args.settings.store_path)
        summary["store"] = str(args.settings.store_path)
    summary["gpkg"] = str(out)
    if args.cadastre:
        summary["cadastre"] = _demo_cadastre(args, out)
    print_json(summary)
    return 0


def cmd_layers(args) -> int:
    store = open_cli_store(args)
    cat = load_layer_catalog(args.settings.layers_dir / "catalog.toml")
    present = set(store.layer_names())
    counts = {}
    rows = []
    for lyr in cat.layers:
        if lyr.is_parcels:
            if "parcels" not in counts:
                counts["parcels"] = store.parcels(geometry=False)
            n = int(counts["parcels"]["kind"].isin(lyr.kinds).sum())
            available = True
        elif lyr.is_raster:
            r = args.settings.raster
            available = bool(r and Path(r).exists())
            n = 1 if available else 0
        else:
            available = lyr.source in present
            n = len(store.layer(lyr.source)) if available else 0
        rows.append({
            "id": lyr.id, "label": lyr.label(args.lang), "label_zh": lyr.label_zh, "label_en": lyr.label_en,
            "group": lyr.group, "group_label": cat.groups[lyr.group].label(args.lang),
            "source": lyr.source, "kinds": list(lyr.kinds), "features": n, "available": available,
        })
    if args.json:
        print_json(rows)
    else:
        for r in rows:
            print(f"{r['id']:<16} {r['features']:>6}  {r['group_label']} / {r['label']}")
    return 0


def cmd_parcels(args) -> int:
    store = store_at(open_cli_store(args), moment_of(args))  # --as-of: the stages replayed to that day
    df = store.parcels(kind=args.kind, zone=args.zone, village=args.village, search=args.search, stage=args.stage,
                       geometry=False)
    rows = store.describe_many(df.to_dict("records"), args.lang)
    for r in rows:  # the same fields now and as of a date: the facts not kept for that date (none today)
        r.setdefault("unknown_then", [])
    if args.json:
        print_json(rows)
    else:
        for r in rows:
            print(f"{r['code']:<10} {r['name']:<16} {r['stage_label']:<10} {r['area_mu']:>8.2f} 亩")
    return 0


def _codes(store, args, blocked: bool | None = None) -> tuple[list[str], bool]:
    """The parcels a command names (``CODE …``) or selects (``--village/--zone/--kind/--stage``),
    and whether it was one code named (the single-parcel behaviour and output).

    Raises:
        InputError: neither or both given; a selection that finds no parcel.
    """
    chosen = {k: getattr(args, f"select_{k}") for k in ("village", "zone", "kind", "stage")}
    if bool(args.code) == any(chosen.values()):
        raise InputError("error.bulk_codes_or_selection")
    if args.code:
        return list(args.code), len(args.code) == 1
    codes = list(store.parcels(**chosen, blocked=blocked, geometry=False)["code"])
    if not codes:
        raise InputError("error.bulk_empty")
    return codes, False


def cmd_advance(args) -> int:
    store = open_cli_store(args)
    share = parse_share(args.share)  # checked before anything is read or written
    codes, single = _codes(store, args)
    files = evidence.evidence_of(args, single)
    if single:
        ev = store.advance(codes[0], args.to, args.date, actor(args, store), note=args.note or "",
                           correction=args.correction, share=share, expected_version=args.expect_version,
                           evidence=files)
        print_json({"event": ev.as_dict(), "parcel": store.parcel(codes[0], args.lang)})
        return 0
    events = store.advance_many(codes, args.to, args.date, actor(args, store), note=args.note or "",
                                correction=args.correction, share=share)
    print_json({"parcels": len(events), "events": [e.as_dict() for e in events]})
    return 0


def cmd_block(args) -> int:
    store = open_cli_store(args)
    codes, single = _codes(store, args, blocked=bool(args.clear))  # a selection: those not yet in that state
    files = evidence.evidence_of(args, single)
    if single:
        ev = store.set_blocked(codes[0], not args.clear, args.reason or "", actor(args, store), args.date,
                               evidence=files)
        print_json({"event": ev.as_dict(), "parcel": store.parcel(codes[0], args.lang)})
        return 0
    events = store.set_blocked_many(codes, not args.clear, args.reason or "", actor(args, store), args.date)
    print_json({"parcels": len(events), "events": [e.as_dict() for e in events]})
    return 0


def _selection_options(s, what: str) -> None:
    s.add_argument("code", nargs="*", help="parcel code(s); several are updated in one transaction, all or none")
    sel = s.add_argument_group(f"or select the parcels to {what} (instead of codes)")
    for opt in ("village", "zone", "kind"):
        sel.add_argument(f"--{opt}", dest=f"select_{opt}", metavar=opt.upper(), help=f"the parcels of this {opt}")
    sel.add_argument("--stage", dest="select_stage", metavar="STAGE", help="the parcels at this stage: key or label, e.g. demolition or 拆除 (not_started for none)")


def cmd_history(args) -> int:
    store = open_cli_store(args)
    p = store.parcel(args.code, args.lang)
    events = [e.as_dict() for e in store.history(args.code)]
    cat = store.catalog
    bad = dict(cat.bad_events(p["kind"], events))
    for e in events:  # a bad event already stored is shown as recorded, and named
        e["from_label"] = cat.stage_label_or_key(p["kind"], e["from_stage"], args.lang)
        e["to_label"] = cat.stage_label_or_key(p["kind"], e["to_stage"], args.lang)
        if e["id"] in bad:
            e["problem"] = t("ui.bad_event_row", args.lang, id=e["id"], stage=bad[e["id"]])
            print(f"警告 Warning: {t('ui.bad_event_row', 'zh', id=e['id'], stage=bad[e['id']])} / "
                  f"{t('ui.bad_event_row', 'en', id=e['id'], stage=bad[e['id']])}", file=sys.stderr)
    if args.json:
        print_json(events)
    else:
        for e in events:
            print(f"{e['event_date']}  {e['action']:<10} {e['from_label']} → {e['to_label']}  {e['recorded_by']}  {e['note'] or ''}")
    return 0


def cmd_villages(args) -> int:
    store = store_at(open_cli_store(args), moment_of(args))
    parcels, events = store.parcels(kind="village", geometry=False), store.events()
    board = village_progress(parcels, store.layer("villages"), events, store.catalog, args.lang)
    if args.json:
        print_json(board.to_dict("records"))
    else:
        print(board[["code", "name", "parcels", "area_mu", "cleared_share", "blocked", "status"]].to_string(index=False))
    return 0


def cmd_import(args) -> int:
    """Import parcels from a file; the report is JSON. Nothing importable (or a refused file) exits 2."""


    mapping = parse_map(args.map)
    opts = ImportOptions(layer=args.layer, crs=args.crs, encoding=args.encoding, mapping=mapping, kind=args.kind,
                         gcj02=args.gcj02, derive=not args.no_derive, lang=args.lang)
    store = open_cli_store(args)
    by = "" if args.dry_run else actor(args, store, login_default=True)  # a dry run writes nothing
    report = import_file(store, args.file, opts, by=by, dry_run=args.dry_run)
    if args.json:
        print_json(report)
    else:
        print(f"{report['features_read']} read, {report['features_imported']} imported "
              f"({report['new']} new, {report['updated']} updated), {report['repaired']} repaired, "
              f"{len(report['rejected'])} rejected; EPSG:{report['crs']} ({report['crs_source']}), {report['encoding']}")
        for r in report["rejected"]:
            print(f"  row {r['row']} {r['code']}: {r['reason']}")
        for w in report["warnings"]:  # the GCJ-02 hint, curves linearised, overlaps …
            print(f"  ! {w['message']}")
    if report["features_read"] and not report["features_imported"] and not report["unchanged"]:
        raise InputError("import.nothing_to_import", read=report["features_read"])
    return 0


def export_format(fmt: str | None, output: str) -> str:
    """The export format: ``--format`` or else the file name's extension; they must agree (README, *Output files*).

    Raises:
        InputError: an extension no format writes, or one that is not ``--format``'s (nothing written).
    """
    suffix = Path(output).suffix.lower()
    if fmt:
        if suffix != SUFFIX[fmt]:
            raise InputError("outpath.format_mismatch", format=fmt, path=output, suffix=SUFFIX[fmt])
        return fmt
    found = next((f for f, suf in SUFFIX.items() if suf == suffix), None)
    if found is None:
        raise InputError("outpath.bad_suffix", path=output, known=", ".join(SUFFIX.values()))
    return found


def cmd_export(args) -> int:
    """Export the (filtered) parcels as gpkg, geojson, shp (zip) or xlsx; prints a JSON summary."""

    output_path(args, args.output)
    fmt = export_format(args.format, args.output)
    store = store_at(open_cli_store(args), moment_of(args))  # --as-of: the stages of that day
    codes = None
    if any((args.kind, args.zone, args.village, args.stage, args.search, args.blocked)):
        codes = store.parcels(kind=args.kind, zone=args.zone, village=args.village, stage=args.stage,
                              search=args.search, blocked=True if args.blocked else None, geometry=False)["code"]
    viewer = None  # a GeoPackage carries the restricted documents of the account proven by --as (or a token)
    if fmt == "gpkg" and store.accounts_enabled() and (args.as_user or os.environ.get("RENEWAL_TOKEN")):
        viewer = actor(args, store, login_default=True)
    print_json(export(store, fmt, args.output, codes, encoding=args.encoding, lang=args.lang, viewer=viewer))
    return 0


def _raster_choice(args):
    """--no-raster: none; --raster FILE: that file (checked when used); --basemap: Tianditu;
    else the configured basemap if present."""

    if sum(map(bool, (args.no_raster, args.raster, args.basemap))) > 1:
        raise InputError("brief.one_background")
    if args.no_raster:
        return None
    if args.basemap:

        return required_export_basemap(args.settings, args.basemap, args.lang)
    if args.raster:
        return Path(args.raster)
    return default_raster(args.settings)


def cmd_brief(args) -> int:
    """One briefing page (PDF or PNG) of a parcel, or of a village with --village."""

    if args.project and (args.code or args.village):
        raise InputError("projects_ui.brief_one")
    if not args.project and bool(args.code) == bool(args.village):
        raise InputError("brief.code_or_village")
    output_path(args, args.output)
    store = store_at(open_cli_store(args), moment_of(args))  # --as-of: the page as it stood that day
    kw = dict(paper=args.paper, raster=_raster_choice(args), lang=args.lang, settings=args.settings, dpi=args.dpi)
    if args.project:
        out = render_project_page(store, args.project, args.output, **kw)
    elif args.village:
        out = render_village_page(store, args.village, args.output, **kw)
    else:
        out = render_parcel_page(store, args.code, args.output, photo=not args.no_photo, **kw)
    print_json({"output": str(out), "bytes": out.stat().st_size})
    return 0


def cmd_atlas(args) -> int:
    """A briefing atlas: cover, index, a page per village (--villages) or per parcel of a filter."""


    if not any((args.villages, args.village, args.zone, args.kind, args.stage, args.search)):
        raise InputError("brief.atlas_what")
    if args.villages and args.photos:  # village pages have no photo pages: say so rather than drop it
        raise InputError("outpath.atlas_photos_villages")
    output_path(args, args.output)
    if args.png_zip:
        output_path(args, args.png_zip)
    store = store_at(open_cli_store(args), moment_of(args))
    if args.villages:
        selection = select_villages(store, zone=args.zone)
    else:
        selection = select_parcels(store, kind=args.kind, zone=args.zone, village=args.village,
                                   stage=args.stage, search=args.search)
    result = render_atlas(store, selection, args.output, png_zip=args.png_zip, paper=args.paper,
                          raster=_raster_choice(args), lang=args.lang, settings=args.settings,
                          progress=None if args.quiet else progress_bar(), jobs=args.jobs, dpi=args.dpi,
                          photos=args.photos)
    print_json(result)
    close = getattr(store, "close", None)  # a database store's pooled connections, closed cleanly
    if close is not None:
        close()
    args.quick_exit = True  # its files are written and renamed, its worker processes gone: see run()
    return 0


#: settings that name files, made absolute for the server: it runs in the checkout (where Streamlit finds
#: .streamlit/config.toml), and a path typed relative to where `renewal serve` was run must still hold
PATH_SETTINGS = ("RENEWAL_DATA_DIR", "RENEWAL_STORE", "RENEWAL_DEMO_STORE", "RENEWAL_RASTER", "RENEWAL_ORTHOPHOTO",
                 "RENEWAL_LAYERS_DIR", "RENEWAL_CONFIG")


def cmd_serve(args) -> int:
    """Become the Streamlit server (exec, no child process): a signal to `renewal serve` (Ctrl-C, SIGTERM,
    a service manager's stop) reaches the server itself, so stopping it leaves nothing on the port."""
    # seed the working store before Streamlit starts, so a broken setup fails here, readably
    open_cli_store(args)
    cmd = [sys.executable, str(ROOT / "ui" / "serve.py"), "run", str(ROOT / "app.py"),
           "--server.port", str(args.port or args.settings.port), "--server.headless", "true"]
    env = dict(os.environ)
    for key in PATH_SETTINGS:
        if env.get(key):
            env[key] = os.path.abspath(env[key])
    if args.store and args.store.startswith(("postgresql://", "postgres://")):
        env["RENEWAL_DATABASE_URL"] = args.store
    elif args.store:
        env["RENEWAL_STORE"] = os.path.abspath(args.store)
    if args.lang_set:
        env["RENEWAL_LANG"] = args.lang
    sys.stdout.flush()
    sys.stderr.flush()
    os.chdir(ROOT)
    os.execve(sys.executable, cmd, env)  # does not return


#: command groups with a module of their own; each adds its sub-commands with ``register(sub)``
GROUPS = (admin, basemap, cadastre, timeline, dashboard, plans, projects, evidence)


def _global_options(p, sub: bool) -> None:
    """The options of every command, before the command (``renewal --lang en brief …``) or, on a sub-command's
    parser (``sub``), after it (``renewal brief … --lang en``): there they default to nothing, so that they
    never undo what was given before the command, and only ``--lang`` shows in the sub-command's help.
    ``--password-stdin`` only before it: after ``user add`` it is the new account's password."""

    def add(*flags, help, **kw):
        if sub:
            kw["default"] = argparse.SUPPRESS
            help = f"{help} (also before the command)" if flags[0] == "--lang" else argparse.SUPPRESS
        p.add_argument(*flags, help=help, **kw)

    add("--store", help="GeoPackage file or postgresql:// URL (default: var/renewal.gpkg, seeded from the demo)")
    add("--as", dest="as_user", metavar="USER",
        help="act as this account; on a store with accounts prove it: --password-stdin, "
             "RENEWAL_PASSWORD or a personal token in RENEWAL_TOKEN")
    if not sub:
        add("--password-stdin", dest="login_password_stdin", action="store_true",
            help="read the password of --as USER from the first line of stdin")
    add("--operator", action="store_true",
        help="act as the operator (who may write the data folder or holds the database URL): "
             "administration and recovery, e.g. a restore onto a damaged store")
    add("--lang", choices=["zh", "en"], help="language of labels (default: zh)")


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are bilingual like every other error; a sub-command's parser also takes
    the global options (:func:`_global_options`)."""

    def __init__(self, *a, root: bool = False, **kw):
        super().__init__(*a, **kw)
        _global_options(self, sub=not root)

    def error(self, message):
        self.print_usage(sys.stderr)
        self.exit(2, f"错误 Error: 命令参数有误 / invalid arguments: {message}\n")


def _page_options(s, flag: str, help_out: str) -> None:
    s.add_argument(flag, "--output", required=True, help=help_out)
    s.add_argument("--paper", choices=["A4", "A3"], default="A4", help="paper, landscape (default A4)")
    s.add_argument("--raster", help="background GeoTIFF, any CRS (default: the configured basemap)")
    s.add_argument("--no-raster", action="store_true", help="no background image")
    s.add_argument("--basemap", choices=["tianditu_img", "tianditu_vec"],
                   help="Tianditu imagery or vector map as background, fetched for each page (needs a key)")
    s.add_argument("--dpi", type=DPI, default=150, help="resolution of PNG output, 50-600 (default 150)")
    add_moment_options(s)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="renewal", description="城市更新一张图 Renewal Atlas", root=True)
    p.add_argument("--version", action="version", version=__version__)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("demo", help="rebuild the fictional demo district (deterministic)")
    s.add_argument("--seed", type=int_range(0, 2**32 - 1), default=2026)
    s.add_argument("--out", help="GeoPackage to write (default: data/parcels/demo.gpkg)")
    s.add_argument("--raster", help="GeoTIFF basemap to write (default: data/raster/demo_basemap.tif)")
    s.add_argument("--reset-store", action="store_true", help="also replace the working store with the new demo")
    s.add_argument("--cadastre", type=int_range(1, 10_000_000), metavar="N",
                   help="also write a fictional cadastre of N parcels (e.g. 100000) and build its map tiles: "
                        "into --out when given, else only into the working store (the demo is not rebuilt)")
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser("layers", help="list the map layers")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_layers)

    s = sub.add_parser("parcels", help="list tracked parcels")
    for opt in ("kind", "zone", "village", "stage", "search"):
        s.add_argument(f"--{opt}")
    add_moment_options(s)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_parcels)

    s = sub.add_parser("advance", help="move a parcel (or several, all or none) to a stage")
    _selection_options(s, "advance")
    s.add_argument("--to", required=True, help="stage key or label, e.g. signing or 签约")
    s.add_argument("--date", help="business date YYYY-MM-DD (default: today)")
    s.add_argument("--by", help="who records this")
    s.add_argument("--note", default="")
    s.add_argument("--correction", help="reason, to go back or skip as a correction")
    s.add_argument("--share", help="share for a gated stage: a fraction 0–1 (0.86) or a percentage with its sign"
                                   " (86%%); a bare 86 is refused")
    s.add_argument("--expect-version", type=int_range(0, 2**62),
                   help="the parcel's version as read; if someone changed it since, exit 4 and write nothing")
    s.add_argument("--evidence", action="append", metavar="FILE",
                   help="a document or photo attached to the new event in the same transaction (repeatable);"
                        " a stage such as the vote needs one")
    s.set_defaults(func=cmd_advance)

    s = sub.add_parser("block", help="flag parcels as blocked (卡点), or --clear the flag")
    _selection_options(s, "flag (those not yet flagged; with --clear, those flagged)")
    s.add_argument("--reason")
    s.add_argument("--by")
    s.add_argument("--date")
    s.add_argument("--clear", action="store_true")
    s.add_argument("--evidence", action="append", metavar="FILE", help="a photo or document attached to the event")
    s.set_defaults(func=cmd_block)

    s = sub.add_parser("history", help="a parcel's stage history")
    s.add_argument("code")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_history)

    s = sub.add_parser("villages", help="progress of every old village")
    add_moment_options(s)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_villages)

    s = sub.add_parser("brief", help="a briefing map page (PDF or PNG) of a parcel, or of a village")
    s.add_argument("code", nargs="?", help="parcel code, e.g. V07-023")
    s.add_argument("--village", help="a village page instead: village code or name")
    s.add_argument("--project", help="a key project's page instead: project code")
    _page_options(s, "-o", "file to write: .pdf or .png")
    s.add_argument("--no-photo", action="store_true", help="leave out the parcel's latest site photo")
    s.set_defaults(func=cmd_brief)

    s = sub.add_parser("atlas", help="a briefing atlas: cover, index and one page per village or parcel")
    what = s.add_argument_group("what to print (at least one)")
    what.add_argument("--villages", action="store_true", help="one page per old village (with --zone: of that zone)")
    for opt in ("village", "zone", "kind", "stage", "search"):
        what.add_argument(f"--{opt}", help=f"one page per parcel, filtered by {opt}")
    _page_options(s, "-o", "PDF file to write")
    s.add_argument("--png-zip", help="also write the pages as PNG images in this zip file")
    s.add_argument("--photos", action="store_true", help="a page of site photos after each parcel that has some")
    s.add_argument("--jobs", type=int_range(1, 64), help="processes rendering pages, 1-64 (default: the CPUs available)")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_atlas)

    s = sub.add_parser("serve", help="run the web app")
    s.add_argument("--port", type=int_range(1, 65535))
    s.set_defaults(func=cmd_serve)

    s = sub.add_parser("import", help="import parcels from a file (zip/shp, gpkg, geojson, kml/kmz, dxf, csv)")
    import_options(s, "field mapping, e.g. code=宗地编号 (repeatable; TARGET= to leave a field out)")
    s.add_argument("--kind", help="kind of the parcels when the file has no kind column, e.g. village")
    s.add_argument("--no-derive", action="store_true", help="do not fill zone/village from the location")
    s.add_argument("--by", help="who records this import (default: RENEWAL_USER, else the login name)")
    s.set_defaults(func=cmd_import)

    s = sub.add_parser("export", help="export parcels as gpkg, geojson, shp (zip), xlsx (the ledger) or csv (the parcel table)")
    s.add_argument("--format", choices=["gpkg", "geojson", "shp", "xlsx", "csv"], help="default: from the file name")
    s.add_argument("-o", "--output", required=True, help="file to write")
    for opt in ("kind", "zone", "village", "stage", "search"):
        s.add_argument(f"--{opt}")
    s.add_argument("--blocked", action="store_true", help="only parcels flagged as blocked")
    s.add_argument("--encoding", help="shapefile text encoding: utf-8 (default) or gbk")
    add_moment_options(s)
    s.set_defaults(func=cmd_export)
    for group in GROUPS:
        group.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    return _main(argv)[0]


def _main(argv) -> tuple[int, argparse.Namespace]:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.lang_set = args.lang is not None
        url = args.store if args.store and args.store.startswith(("postgresql://", "postgres://")) else None
        args.settings = Settings.load(store=None if url else args.store, database_url=url, lang=args.lang)
        args.lang = args.settings.lang
        clock.configure(args.settings.timezone)
        return args.func(args), args
    except RenewalError as e:
        print(f"错误 Error: {e.bilingual()}", file=sys.stderr)
        return e.exit_code, args
    except KeyboardInterrupt:
        return 130, args


def run() -> None:
    """The process entry (the ``renewal`` script, ``python -m gis.cli``): ``main()``, then the exit.

    A command that says it may (``args.quick_exit``: the atlas, once its files are renamed into place and
    its workers are gone) leaves through ``os._exit`` after flushing its output: tearing down an
    interpreter that holds pandas, GDAL and a district's sheet took ~0.1 s, a tenth of the atlas.
    """
    try:
        code, args = _main(None)
        sys.stdout.flush()
    except BrokenPipeError:
        # the reader went away (``renewal parcels | head``): stop quietly, as a pipe's writer should;
        # stdout goes to devnull so that the interpreter's own flush at exit does not raise again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    if getattr(args, "quick_exit", False):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    run()
