"""Vector tiles of the store's cadastre, built once per change of its content.

The pyramid is named after the cadastre's content key, what the tiles carry
and the datum, so a build happens only when that name is not on disk yet.
Over PostGIS the pyramid built is also stored in the database
(gis/store/tiles.py), and a server that does not have it on disk copies it
from there rather than building it: a tile one server built, the others
serve. A long-running app builds it in a child process (``python -m
gis.maps.cadastre_tiles``) so it does not keep the memory of reading 100,000
polygons.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys

from gis.base.errors import InputError
from gis.base.gcj02 import gdf_to_gcj02
from gis.base.settings import ROOT
from gis.maps.vectortiles import build_tileset_in_blocks, find_tileset, tileset_files, tileset_key, write_tileset
from gis.model.catalog import LayerSpec, load_layer_catalog
from gis.store import open_store_at
from gis.store.cadastre import LAND_USES, OWNER_TYPES

BATCH = 50_000  # parcels read from the store at a time


def cadastre_tiles(store, spec, out_dir, *, datum: str = "wgs84", url_prefix: str | None = None,
                   isolate: bool = False) -> dict | None:
    """The vector tile pyramid of the store's cadastre for the catalogue layer ``spec``; None without a cadastre.

    Named after the cadastre's content (``store.cadastre_key()``), what the
    tiles carry and ``datum`` (``gcj02``: shifted to line up with AMap), and
    built only when that pyramid is not on disk yet: a few cheap queries
    otherwise. Building reads the table once, a slice at a time, and encodes
    a block of tiles at a time (memory: a compact copy of the cadastre, ≈ 300
    bytes a parcel, plus one block's work); ``isolate`` builds in a child
    process, so a long-running app does not keep that memory, nor hold its
    other sessions up.

    Raises:
        InputError: the child process failed (its message is passed on).
    """
    name = pyramid_name(store, spec, datum)
    if name is None:
        return None
    found = find_tileset(out_dir, name)
    if found:
        return found
    stored = store.tile_pyramid(name)  # another server over the same PostGIS built it: copy, do not build
    if stored is not None:
        return write_tileset(out_dir, name, stored, store.tile_pyramid_tiles(name))
    if isolate:
        return _build_in_child(store, spec, out_dir, datum, url_prefix)
    return _build(store, spec, out_dir, name, datum, url_prefix)


def pyramid_name(store, spec, datum: str = "wgs84") -> str | None:
    """The name of the pyramid of the store's cadastre for ``spec`` and ``datum`` (None: no cadastre)."""
    key = store.cadastre_key()
    if key is None:
        return None
    return f"{spec.id}_{tileset_key(key + '|' + datum, spec.class_field or 'land_use', tuple(spec.tooltip))}"


def _build(store, spec, out_dir, name: str, datum: str, url_prefix: str | None) -> dict:
    fields = tuple(spec.tooltip)
    batches = store.cadastre_batches(BATCH)
    if datum == "gcj02":
        batches = map(gdf_to_gcj02, batches)
    kw = {"url_prefix": url_prefix} if url_prefix else {}
    # read a slice at a time, encoded a block of tiles at a time: the same tiles as build_tileset over the
    # whole table, in memory that a million parcels fit (bench/RESULTS.md)
    manifest = build_tileset_in_blocks(batches, out_dir, name, layer=spec.id,
                                       class_field=spec.class_field or "land_use", detail_fields=fields,
                                       value_labels={"en": {**LAND_USES, **OWNER_TYPES}}, **kw)
    store.save_tile_pyramid(name, manifest, tileset_files(out_dir, name))  # for the other servers (PostGIS)
    return manifest


def _build_in_child(store, spec, out_dir, datum: str, url_prefix: str | None) -> dict:
    cmd = [sys.executable, "-m", "gis.maps.cadastre_tiles", "tiles", store.where, str(out_dir),
           "--datum", datum, "--spec", json.dumps(_spec_dict(spec), ensure_ascii=False)]
    if url_prefix:
        cmd += ["--url-prefix", url_prefix]
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if res.returncode != 0:
        raise InputError("error.bad_store", path=store.location, detail=(res.stderr.strip().splitlines() or ["?"])[-1])
    return json.loads(res.stdout.strip().splitlines()[-1])


def _spec_dict(spec) -> dict:
    return {"id": spec.id, "label_zh": spec.label_zh, "label_en": spec.label_en, "group": spec.group,
            "source": spec.source, "tooltip": list(spec.tooltip), "render": spec.render,
            "class_field": spec.class_field, "style": dict(spec.style), "classes": dict(spec.classes)}


def main(argv=None) -> int:
    """``python -m gis.maps.cadastre_tiles tiles STORE OUT_DIR [--datum D] [--spec JSON] [--url-prefix P]``:
    build the pyramid in this process and print its manifest (with this process's peak memory)."""
    ap = argparse.ArgumentParser(prog="python -m gis.maps.cadastre_tiles")
    ap.add_argument("command", choices=["tiles"])
    ap.add_argument("store")
    ap.add_argument("out_dir")
    ap.add_argument("--datum", default="wgs84")
    ap.add_argument("--spec", help="the catalogue layer as JSON (default: layers/catalog.toml's cadastre)")
    ap.add_argument("--url-prefix")
    args = ap.parse_args(argv)
    store = open_store_at(args.store)
    if args.spec:
        d = json.loads(args.spec)
        spec = LayerSpec(**{**d, "tooltip": tuple(d.get("tooltip", ()))})
    else:
        spec = load_layer_catalog().get("cadastre")
    out = cadastre_tiles(store, spec, args.out_dir, datum=args.datum, url_prefix=args.url_prefix)
    for line in open("/proc/self/status", encoding="ascii"):
        if line.startswith("VmHWM:"):
            out["build_peak_rss_mb"] = round(int(line.split()[1]) / 1024, 1)
    print(json.dumps(out, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
