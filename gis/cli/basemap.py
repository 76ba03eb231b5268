"""Basemap commands of ``renewal``: coordinate conversion (GCJ-02) and orthophoto preparation.

Registered into gis/cli/main.py's parser; they use its settings and error edge.

    renewal convert-coords --from wgs84 --to gcj02 121.35 37.41    → {"lon": ..., "lat": ...}
    renewal raster prepare /data/dom_2025.tif                       → overviews in dom_2025.tif.ovr
"""
from __future__ import annotations

import sys
import time

from gis.base.gcj02 import DATUMS, convert
from gis.cli.common import print_json
from gis.maps.rasterview import build_overviews, raster_info


def cmd_convert_coords(args) -> int:
    lon, lat = convert(args.lon, args.lat, args.src, args.dst)
    print_json({"lon": round(lon, 9), "lat": round(lat, 9)})
    return 0


def _progress_bar(stream=None):
    """A bar on a terminal; a line per tenth otherwise (logs, CI)."""
    stream = stream or sys.stderr
    tty = stream.isatty()
    shown = {"last": -1}

    def show(done: int, total: int, label: str = "") -> None:
        pct = int(100 * done / max(total, 1))
        if tty:
            n = pct * 30 // 100
            stream.write(f"\r[{'#' * n}{'.' * (30 - n)}] {pct:3d}%")
            if pct >= 100:
                stream.write("\n")
        elif pct // 10 > shown["last"] // 10 or pct >= 100 and shown["last"] < 100:
            stream.write(f"{pct}%\n")
        shown["last"] = pct
        stream.flush()

    return show


def cmd_raster_prepare(args) -> int:
    t0 = time.perf_counter()
    factors = build_overviews(args.file, progress=None if args.quiet else _progress_bar())
    info = raster_info(args.file)
    print_json({"file": info.path, "width": info.width, "height": info.height, "crs": info.crs,
                 "built": factors, "overviews": list(info.overviews),
                 "seconds": round(time.perf_counter() - t0, 2)})
    return 0


def cmd_raster_info(args) -> int:
    info = raster_info(args.file)
    print_json({"file": info.path, "width": info.width, "height": info.height, "crs": info.crs,
                 "bounds": info.bounds, "overviews": list(info.overviews),
                 "needs_overviews": info.needs_overviews})
    return 0


def register(sub) -> None:
    s = sub.add_parser("convert-coords", help="convert a lon/lat between wgs84, cgcs2000 and gcj02 (AMap)")
    s.add_argument("--from", dest="src", required=True, choices=DATUMS)
    s.add_argument("--to", dest="dst", required=True, choices=DATUMS)
    s.add_argument("lon", type=float)
    s.add_argument("lat", type=float)
    s.set_defaults(func=cmd_convert_coords)

    s = sub.add_parser("raster", help="orthophoto (GeoTIFF) tools")
    rsub = s.add_subparsers(dest="raster_command", required=True)
    r = rsub.add_parser("prepare", help="add overviews (FILE.ovr) so that the map shows it fast at every scale")
    r.add_argument("file")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.set_defaults(func=cmd_raster_prepare)
    r = rsub.add_parser("info", help="size, CRS, bounds and overviews of a GeoTIFF")
    r.add_argument("file")
    r.set_defaults(func=cmd_raster_info)
