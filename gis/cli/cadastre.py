"""Cadastre commands of ``renewal``: bring a district's real cadastre (地籍宗地) into the store.

Registered into gis/cli/main.py's parser; they use its settings and error edge.

    renewal --as admin cadastre import 地籍.zip --json     → the report; the cadastre replaced, its tiles built
    renewal cadastre import zd.gpkg --layer ZD --crs 4528 --map code=ZDDM --dry-run --json
"""
from __future__ import annotations

from gis.cli.common import actor, import_options, open_cli_store, parse_map, print_json
from gis.io.cadastre_import import CadastreOptions, import_cadastre
from gis.maps.cadastre_tiles import cadastre_tiles
from gis.model.catalog import load_layer_catalog


def cmd_cadastre_import(args) -> int:
    opts = CadastreOptions(layer=args.layer, crs=args.crs, encoding=args.encoding, mapping=parse_map(args.map),
                           gcj02=args.gcj02, lang=args.lang)
    store = open_cli_store(args)
    by = "" if args.dry_run else actor(args, store, login_default=True)  # a dry run writes nothing
    report = import_cadastre(store, args.file, opts, by=by, dry_run=args.dry_run)
    if not args.dry_run:  # the map's tiles now, rather than on the first page view
        spec = load_layer_catalog(args.settings.layers_dir / "catalog.toml").get("cadastre")
        tiles = cadastre_tiles(store, spec, args.settings.generated_dir)
        report.update(tiles=tiles["name"], tiles_build_s=tiles["build_s"])
    if args.json:
        print_json(report)
    else:
        print(f"{report['features_read']} read, {report['features_imported']} imported, {report['repaired']} repaired, "
              f"{len(report['rejected'])} rejected; EPSG:{report['crs']} ({report['crs_source']}), "
              f"{report['encoding']}" + (" — dry run, nothing written" if args.dry_run else ""))
        for r in report["rejected"]:
            print(f"  row {r['row']} {r['code']}: {r['reason']}")
        for w in report["warnings"]:
            print(f"  ! {w['message']}")
    return 0


def register(sub) -> None:
    s = sub.add_parser("cadastre", help="the district's cadastre (地籍宗地): import a delivered file (admins)")
    cs = s.add_subparsers(dest="cadastre_cmd", required=True)
    c = cs.add_parser("import", help="replace the store's cadastre with a file (zip/shp, gpkg, geojson, kml, dxf, csv)")
    import_options(c, "field mapping: code, land_use, owner_type, e.g. code=ZDDM (repeatable)")
    c.set_defaults(func=cmd_cadastre_import)
