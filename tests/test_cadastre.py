"""The cadastre (gis/cadastre.py) and its vector tiles (gis/vectortiles.py).

Data are made in code: the demo's fictional cadastre at a few thousand
parcels, or a small grid of square parcels in the tiny store. Tiles are read
back with GDAL's MVT driver, so the encoder is checked against an independent
reader. The browser test runs the real app on a 10,000-parcel cadastre.
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

from gis.base.errors import InputError, NotFoundError
from gis.demo.cadastre import add_demo_cadastre, generate_cadastre
from gis.devtools.devserver import running_app
from gis.maps.cadastre_tiles import cadastre_tiles
from gis.maps.mapview import build_map
from gis.maps.vectortiles import build_tileset, build_tileset_in_blocks, find_tileset
from gis.model.catalog import load_layer_catalog
from gis.model.spatial import ParcelIndex
from gis.store import tiles as store_tiles
from gis.store.cadastre import LAND_USES, content_hash, describe_cadastre, overlapping_parcels
from gis.store.open import cadastre_at, cadastre_key, cadastre_parcel, write_cadastre
from gis.store.store import Store
from tests.conftest import poll, set_view

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "data" / "parcels" / "demo.gpkg"
X0, Y0 = 121.30, 37.40  # the tiny store's corner (tests/conftest.py)


@pytest.fixture(scope="module")
def demo_cadastre():
    return generate_cadastre(3000)


def grid_cadastre(n_side: int = 6, cell: float = 0.001) -> gpd.GeoDataFrame:
    """n_side² square parcels over the tiny store's district, codes C00…; one with text that is markup."""
    geoms, codes, uses = [], [], []
    names = list(LAND_USES)
    for i in range(n_side):
        for j in range(n_side):
            k = i * n_side + j
            geoms.append(shapely.MultiPolygon([shapely.box(X0 + i * cell, Y0 + j * cell,
                                                           X0 + (i + 1) * cell, Y0 + (j + 1) * cell)]))
            codes.append(f"C{k:02d}")
            uses.append(names[k % len(names)])
    uses[0] = "<img src=x onerror=alert(1)>"
    return gpd.GeoDataFrame({"code": codes, "land_use": uses, "owner_type": ["集体"] * len(codes),
                             "area_m2": [round(1000.0 + k, 1) for k in range(len(codes))]},
                            geometry=geoms, crs="EPSG:4490")


# ------------------------------------------------------------------ the demo cadastre
def test_demo_cadastre_tiles_the_district_with_exactly_n_parcels(demo_cadastre):
    from gis.base.units import areas_m2
    from gis.demo.district import build_layout

    g = demo_cadastre
    assert len(g) == 3000 and g.crs.equals("EPSG:4490")
    assert g["code"].is_unique and (g["code"].str.len() == 19).all() and g["code"].str.startswith("990101").all()
    assert set(g["land_use"]) <= set(LAND_USES) and set(g["owner_type"]) <= {"国有", "集体"}
    assert g.is_valid.all() and (g.geom_type == "MultiPolygon").all()
    # parcels do not overlap, and cover the district but for 6 m lanes between blocks
    area = areas_m2(g)
    assert np.allclose(area, g["area_m2"], rtol=0.01)
    union = areas_m2(gpd.GeoDataFrame(geometry=[shapely.union_all(g.geometry.values)], crs=g.crs))[0]
    assert area.sum() <= union * 1.001
    district = build_layout(2026).district.area
    assert 0.9 * district < area.sum() <= district * 1.001
    assert 5 <= shapely.get_num_coordinates(g.geometry.values).mean() <= 15


def test_demo_cadastre_is_deterministic_and_refuses_too_few(demo_cadastre):
    again = generate_cadastre(3000)
    assert content_hash(again) == content_hash(demo_cadastre)
    assert content_hash(generate_cadastre(3000, seed=7)) != content_hash(demo_cadastre)
    with pytest.raises(InputError, match="100"):
        generate_cadastre(50)


# ------------------------------------------------------------------ the store
def test_write_lookup_and_facts(tiny_store, tmp_path):
    assert cadastre_key(tiny_store) is None
    assert cadastre_at(tiny_store, X0 + 0.0005, Y0 + 0.0005) is None
    g = grid_cadastre()
    out = write_cadastre(tiny_store, g)
    assert out["parcels"] == 36
    key = cadastre_key(tiny_store)
    assert key and key == cadastre_key(tiny_store)
    write_cadastre(tiny_store, g)  # the same content: the same key (tiles are reused)
    assert cadastre_key(tiny_store) == key
    # a click inside parcel (2, 3) → C15; outside the grid → nothing
    rec = cadastre_at(tiny_store, X0 + 2.5 * 0.001, Y0 + 3.5 * 0.001)
    assert rec["code"] == "C15" and rec["area_m2"] == 1015.0 and rec["geometry"].area > 0
    assert cadastre_at(tiny_store, X0 + 0.05, Y0 + 0.05) is None
    assert cadastre_parcel(tiny_store, "C15")["geometry"].equals(rec["geometry"])
    with pytest.raises(NotFoundError):
        cadastre_parcel(tiny_store, "nope")
    # the tracked parcels lying on a cadastre parcel
    index = ParcelIndex(tiny_store.parcels())
    assert overlapping_parcels(cadastre_parcel(tiny_store, "C00")["geometry"], index) == ["V01-001"]
    assert overlapping_parcels(cadastre_parcel(tiny_store, "C35")["geometry"], index) == []
    # a changed cadastre gets a new key; writing it never touches the tracked parcels' version
    version = tiny_store.data_version()
    write_cadastre(tiny_store, g.iloc[:30])
    assert cadastre_key(tiny_store) != key and tiny_store.data_version() == version


def test_describe_reads_the_parcel_code():
    d = describe_cadastre({"code": "990101003010JC00256", "land_use": "住宅用地", "owner_type": "集体",
                           "area_m2": 5720.0}, "zh")
    assert d["section"] == "003" and d["subsection"] == "010" and d["number"] == "00256"
    assert d["right_label"] == "集体土地·宅基地使用权" and d["area_mu"] == 8.58
    en = describe_cadastre({"code": "990101003010JC00256", "land_use": "住宅用地", "owner_type": "集体",
                            "area_m2": 5720.0}, "en")
    assert en["land_use_label"] == "Residential" and en["owner_type_label"] == "Collective"


def test_only_a_demo_store_gets_a_demo_cadastre(tiny_store):
    with tiny_store._connect(write=True) as con:
        con.execute("UPDATE meta SET value = '0' WHERE key = 'demo'")
    with pytest.raises(InputError, match="demo"):
        add_demo_cadastre(tiny_store, 200)
    with pytest.raises(InputError, match="demo"):  # by its path or URL too
        add_demo_cadastre(tiny_store.path or tiny_store.url, 200)


# ------------------------------------------------------------------ tiles
def _tiles_on_disk(root: Path) -> dict:
    return {(int(p.parts[-3]), int(p.parts[-2]), int(p.stem)): p for p in root.glob("*/*/*.pbf")}


def test_tiles_read_back_by_gdal(demo_cadastre, tmp_path):
    spec = load_layer_catalog().get("cadastre")
    m = build_tileset(demo_cadastre, tmp_path, "cadastre_test", layer="cadastre", class_field="land_use",
                      detail_fields=spec.tooltip)
    assert m["levels"] == [12, 14, 16] and m["url"] == "/app/static/generated/cadastre_test/{z}/{x}/{y}.pbf"
    files = _tiles_on_disk(tmp_path / "cadastre_test")
    assert sum(p.stat().st_size for p in files.values()) == m["bytes"]
    # the index of tiles in the manifest is exactly the files on disk
    for z, b in m["tiles"].items():
        bits = np.unpackbits(np.frombuffer(base64.b64decode(b["bits"]), np.uint8), bitorder="little")[: b["w"] * b["h"]]
        listed = {(int(z), b["x0"] + k % b["w"], b["y0"] + k // b["w"]) for k in np.flatnonzero(bits)}
        assert listed == {t for t in files if t[0] == int(z)}
    # the deepest level, read by GDAL and dissolved by code, gives back every parcel
    parts = []
    for (z, x, y), p in files.items():
        if z == 16:
            t = pyogrio.read_dataframe(p, layer="cadastre")
            assert t.is_valid.all()
            parts.append(t)
    back = gpd.GeoDataFrame(pd.concat(parts), crs="EPSG:3857").dissolve("code").to_crs(4490)
    assert set(back.index) == set(demo_cadastre["code"])
    orig = demo_cadastre.set_index("code").loc[back.index]
    assert (back["land_use"] == orig["land_use"]).all() and np.allclose(back["area_m2"], orig["area_m2"])
    inter = shapely.area(shapely.intersection(back.geometry.values, orig.geometry.values))
    iou = inter / shapely.area(shapely.union(back.geometry.values, orig.geometry.values))
    assert np.percentile(iou, 1) > 0.98 and np.median(iou) > 0.995
    # lower levels carry only the class, fewer vertices, and every parcel at least once
    low = [pyogrio.read_dataframe(p, layer="cadastre") for (z, _, _), p in files.items() if z == 12]
    low = pd.concat(low)
    assert list(low.columns) == ["mvt_id", "land_use", "geometry"] and low["land_use"].notna().all()
    # built once: the same name is found, not rebuilt
    assert find_tileset(tmp_path, "cadastre_test")["build_s"] == m["build_s"]
    assert build_tileset(demo_cadastre, tmp_path, "cadastre_test", class_field="land_use")["build_s"] == m["build_s"]


def _pyramid(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.glob("*/*/*.pbf")}


def _same_manifest(a: dict, b: dict) -> None:
    skip = ("name", "url", "build_s", "built_at")
    assert {k: v for k, v in a.items() if k not in skip} == {k: v for k, v in b.items() if k not in skip}


def test_a_pyramid_built_in_blocks_is_the_pyramid_built_whole(demo_cadastre, tmp_path):
    """Read in batches and encoded a block of tiles at a time (so a million parcels fit in memory), the
    pyramid is byte for byte the one built from the whole layer at once, down to each tile's value table."""
    spec = load_layer_catalog().get("cadastre")
    kw = {"layer": "cadastre", "class_field": "land_use", "detail_fields": spec.tooltip}
    whole = build_tileset(demo_cadastre, tmp_path, "whole", **kw)
    batches = (demo_cadastre.iloc[i:i + 701] for i in range(0, len(demo_cadastre), 701))
    blocks = build_tileset_in_blocks(batches, tmp_path, "blocks", block_features=150, **kw)
    _same_manifest(whole, blocks)
    a, b = _pyramid(tmp_path / "whole"), _pyramid(tmp_path / "blocks")
    assert len(a) > 1000 and a.keys() == b.keys()
    assert [k for k in a if a[k] != b[k]] == []
    # one block per tile, and everything in one block, give it too
    for n, bf in (("tiny", 1), ("one", 10**9)):
        m = build_tileset_in_blocks([demo_cadastre], tmp_path, n, block_features=bf, **kw)
        _same_manifest(whole, m)
        assert _pyramid(tmp_path / n) == a


@pytest.mark.parametrize("datum", ["wgs84", "gcj02"])
def test_the_store_builds_the_pyramid_from_slices_of_its_table(tiny_store, demo_cadastre, tmp_path, monkeypatch,
                                                               datum):
    """The app's build reads the store's cadastre a slice at a time (both back ends): the same tiles as the
    whole layer read at once."""
    import gis.maps.cadastre_tiles as ct
    from gis.base.gcj02 import gdf_to_gcj02

    spec = load_layer_catalog().get("cadastre")
    assert list(tiny_store.cadastre_batches()) == []  # no cadastre yet
    write_cadastre(tiny_store, demo_cadastre)
    slices = list(tiny_store.cadastre_batches(1000))
    assert [len(s) for s in slices] == [1000, 1000, 1000]
    whole_layer = tiny_store.layer("cadastre")
    assert list(pd.concat(slices)["code"]) == list(whole_layer["code"])
    monkeypatch.setattr(ct, "BATCH", 700)
    m = cadastre_tiles(tiny_store, spec, tmp_path / "app", datum=datum)
    gdf = gdf_to_gcj02(whole_layer) if datum == "gcj02" else whole_layer
    ref = build_tileset(gdf, tmp_path / "ref", m["name"], layer=spec.id, class_field="land_use",
                        detail_fields=spec.tooltip, value_labels=m["value_labels"])
    _same_manifest(ref, m)
    assert _pyramid(tmp_path / "app" / m["name"]) == _pyramid(tmp_path / "ref" / m["name"])


def test_store_tiles_are_named_after_content_and_datum(tiny_store, tmp_path):
    spec = load_layer_catalog().get("cadastre")
    assert cadastre_tiles(tiny_store, spec, tmp_path) is None
    write_cadastre(tiny_store, grid_cadastre())
    wgs = cadastre_tiles(tiny_store, spec, tmp_path)
    gcj = cadastre_tiles(tiny_store, spec, tmp_path, datum="gcj02")
    assert wgs["name"] != gcj["name"] and wgs["name"].startswith("cadastre_")
    # GCJ-02 moves the district by hundreds of metres (north-east here)
    assert gcj["bounds"][0][0] > wgs["bounds"][0][0] and gcj["bounds"][0][1] > wgs["bounds"][0][1]
    assert cadastre_tiles(tiny_store, spec, tmp_path)["build_s"] == wgs["build_s"]


def test_a_pyramid_one_server_built_is_copied_from_postgis_by_another(tiny_store, tmp_path, monkeypatch):
    """Over PostGIS the pyramid goes into the database with its tiles; a server with another disk copies
    it instead of building it. A GeoPackage (one server) stores nothing."""
    import gis.maps.cadastre_tiles as ct

    spec = load_layer_catalog().get("cadastre")
    monkeypatch.setattr(store_tiles, "ROWS", 3)  # stored and copied a few tiles at a time
    write_cadastre(tiny_store, grid_cadastre())
    built = cadastre_tiles(tiny_store, spec, tmp_path / "a")
    stored = tiny_store.tile_pyramid(built["name"])
    if not tiny_store.shares_tiles:  # the GeoPackage
        assert stored is None and not tiny_store.save_tile_pyramid(built["name"], built, [])
        return
    assert stored == built
    on_disk = {(z, x, y): b for z, x, y, b in ct.tileset_files(tmp_path / "a", built["name"])}
    assert on_disk and {(z, x, y): b for z, x, y, b in tiny_store.tile_pyramid_tiles(built["name"])} == on_disk

    def no_build(*a, **k):
        raise AssertionError("built again")

    monkeypatch.setattr(ct, "build_tileset_in_blocks", no_build)
    other = cadastre_tiles(tiny_store, spec, tmp_path / "b")  # the second server: same store, another disk
    assert other == built and other["built_at"] == built["built_at"]
    assert {(z, x, y): b for z, x, y, b in ct.tileset_files(tmp_path / "b", built["name"])} == on_disk
    assert not tiny_store.save_tile_pyramid(built["name"], built, [])  # stored once


def test_the_map_draws_tiles_offline_and_keeps_data_out_of_the_page(tiny_store, tmp_path):
    spec = load_layer_catalog().get("cadastre")
    write_cadastre(tiny_store, grid_cadastre())
    m = cadastre_tiles(tiny_store, spec, tmp_path)
    page = build_map(tiny_store.context(), tiny_store.parcels(), tiny_store.catalog,
                     tiles={"cadastre": m}).get_root().render()
    assert "RenewalTiles.add(" in page and m["url"] in page
    assert "C15" not in page and "onerror" not in page  # parcel data travel in the tiles only
    assert '"title":"地籍宗地"' in page and '"耕地":"#e8df8f"' in page  # legend and colours from the catalogue
    assert "https://" not in page.replace("https://leafletjs.com", "")  # nothing from a CDN
    # English: the legend and the tooltip labels follow the language
    page_en = build_map(tiny_store.context(), tiny_store.parcels(), tiny_store.catalog, lang="en",
                        tiles={"cadastre": m}).get_root().render()
    assert "Cropland" in page_en and "Land use" in page_en


# ------------------------------------------------------------------ the command line
def test_cli_writes_a_demo_cadastre_into_the_working_store(tmp_path):
    store = tmp_path / "work.gpkg"
    shutil.copy(DEMO, store)
    res = subprocess.run([sys.executable, "-m", "gis.cli", "--store", str(store), "demo", "--cadastre", "400"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)["cadastre"]
    assert out["parcels"] == 400 and out["tiles"].startswith("cadastre_")
    assert (ROOT / "static" / "generated" / out["tiles"] / "manifest.json").exists()
    assert len(Store(store).layer("cadastre")) == 400
    assert DEMO.stat().st_size < 30e6  # the committed demo is not touched


# ------------------------------------------------------------------ the real app, 10,000 parcels
@pytest.fixture(scope="module")
def cadastre_app(tmp_path_factory):
    """``streamlit run app.py`` on a copy of the demo with a 10,000-parcel cadastre."""
    work = tmp_path_factory.mktemp("cadastre-app")
    store = work / "renewal.gpkg"
    shutil.copy(DEMO, store)
    add_demo_cadastre(store, 10_000)
    with running_app(work) as app:
        yield {"url": app["url"], "store": store, "log": app["log"]}


def _tooltips(frame) -> list[str]:
    """Texts of the Leaflet tooltips open in a frame (none when it is not a map, or has gone)."""
    try:
        return frame.evaluate("() => [...document.querySelectorAll('.leaflet-tooltip')]"
                              ".filter(e => e.offsetParent !== null).map(e => e.textContent)")
    except Exception:  # noqa: BLE001 - frames come and go while Streamlit renders
        return []


@pytest.mark.browser
def test_app_draws_a_10k_cadastre_and_a_click_opens_the_right_parcel(cadastre_app, page):
    store = Store(cadastre_app["store"])
    tracked = shapely.union_all(store.parcels().geometry.values)
    g = store.layer("cadastre")
    target = next(r for r in g.sample(200, random_state=1).itertuples() if not tracked.intersects(r.geometry))
    pt = shapely.point_on_surface(target.geometry)
    page.goto(cadastre_app["url"], wait_until="domcontentloaded")
    page.get_by_label("用户名").fill("viewer")
    page.get_by_label("密码").fill("renewal-viewer")
    page.get_by_role("button", name="登录").click()
    frame, deadline = None, time.time() + 90
    while frame is None and time.time() < deadline:
        for fr in page.frames:
            try:
                if fr.evaluate("() => !!(window.map && window.RenewalTiles && RenewalTiles.stats.loads > 0)"):
                    frame = fr
                    break
            except Exception:  # noqa: BLE001 - frames come and go while Streamlit renders
                continue
        page.wait_for_timeout(200)
    assert frame is not None, "the cadastre tiles were never drawn"
    stats = frame.evaluate("() => RenewalTiles.stats")
    assert stats["errors"] == 0 and stats["features"] >= 10_000 and stats["bytes"] < 2e6
    # the parcels are not in the page: only the tracked parcels are SVG paths
    assert frame.evaluate("() => document.querySelectorAll('path.leaflet-interactive').length") < 3000
    assert frame.evaluate("() => document.querySelectorAll('canvas.leaflet-tile').length") > 0

    set_view(frame.evaluate, pt.y, pt.x, 17)
    page.wait_for_timeout(800)
    xy = frame.evaluate(f"() => {{ const q = window.map.latLngToContainerPoint([{pt.y}, {pt.x}]);"
                        " return [q.x, q.y]; }")
    box = page.locator("iframe[title*='st_folium']").first.bounding_box()
    page.mouse.move(box["x"] + xy[0] + 3, box["y"] + xy[1] + 3)
    page.mouse.move(box["x"] + xy[0], box["y"] + xy[1])
    tips = poll(lambda: target.code in frame.evaluate("() => [...document.querySelectorAll('.ratlas-tooltip')]"
                                                      ".map(e => e.textContent).join(' ')"))
    assert tips, f"no tooltip naming {target.code}"
    page.mouse.click(box["x"] + xy[0], box["y"] + xy[1])
    page.get_by_role("heading", name=f"地籍宗地 {target.code}").wait_for(timeout=30_000)
    page.get_by_text(target.land_use).first.wait_for(timeout=5000)
    # the pointer has not moved since the map was redrawn: no zone or village tooltip over the cadastre
    page.wait_for_timeout(1500)
    open_tips = [t for fr in page.frames for t in _tooltips(fr)]
    assert not [t for t in open_tips if "战略" in t or "功能定位" in t], open_tips
    shots = os.environ.get("RENEWAL_SCREENSHOTS")
    if shots:
        page.wait_for_timeout(1500)
        page.screenshot(path=str(Path(shots) / "cadastre_panel.png"))
    assert page.blocked == [], page.blocked
