"""The district map (gis/mapview.py): offline assets, escaping, legend, basemap raster.

Data are made in code: a small fictional district around lon 121.3, lat 37.4.
Browser tests render the map to a file with the Leaflet URLs rewritten to the
vendored files and open it in headless Chromium.
"""
from __future__ import annotations

import hashlib
import json
import re
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely

from gis.maps.elements import escape_html, js_json
from gis.maps.mapview import (
    BLOCKED_COLOR,
    LEAFLET_URL,
    MAP_SCRIPTS,
    MAP_STYLES,
    build_map,
    gdf_bounds,
    legend_items,
    render_basemap_png,
    selection_group,
)
from gis.model.pipelines import load_catalog
from tests.conftest import poll, set_view

ROOT = Path(__file__).resolve().parent.parent
VENDOR = ROOT / "static" / "vendor" / "leaflet"
CRS = "EPSG:4490"
X0, Y0 = 121.25, 37.35  # south-west corner of the fictional district

EVIL_IMG = "<img src=x onerror=alert(1)>"
EVIL_TPL = "村`${alert(1)}`</script><script>alert(2)</script>"
# branca compiles folium's rendered output as a Jinja template a second time: data must not reach it
EVIL_JINJA = "村{{ 7*7 }}{% if true %}X{% endif %}"
EVIL_PID = "地块{{ lipsum.__globals__.os.getpid() }}"


def _mp(*polys):
    return shapely.MultiPolygon(list(polys))


def make_context(village_names: list[str] | None = None) -> dict:
    """District, sea, three zones, the development zone with three parks, villages, two points."""
    W, H = 0.20, 0.20
    gdf = lambda d, geoms: gpd.GeoDataFrame(d, geometry=geoms, crs=CRS)  # noqa: E731
    district = gdf({"name": ["示例区"], "name_en": ["Demo district"]}, [_mp(shapely.box(X0, Y0, X0 + W, Y0 + H))])
    sea = gdf({"name": ["示例海湾"], "name_en": ["Demo bay"]},
              [_mp(shapely.box(X0 - 0.02, Y0 + H, X0 + W + 0.02, Y0 + H + 0.04))])
    bands = [("south", "南部", "South", "南拓", "前庭花园；乡村振兴样板区", "Front garden; rural-revitalisation model zone"),
             ("central", "中部", "Central", "中融", "产城融合示范区；经济发展隆起带",
              "Industry–city integration zone; economic uplift belt"),
             ("north", "北部", "North", "北优", "城市会客厅；人才蓄水池", "City living room; talent reservoir")]
    zones = gdf(
        {"code": [b[0] for b in bands], "name": [b[1] for b in bands], "name_en": [b[2] for b in bands],
         "strategy": [b[3] for b in bands], "roles": [b[4] for b in bands], "roles_en": [b[5] for b in bands]},
        [_mp(shapely.box(X0, Y0 + i * H / 3, X0 + W, Y0 + (i + 1) * H / 3)) for i in range(3)],
    )
    devzone = gdf({"code": ["edz"], "name": ["经济开发区"], "name_en": ["Economic development zone"]},
                  [_mp(shapely.box(X0 + 0.10, Y0 + 0.07, X0 + 0.19, Y0 + 0.13))])
    parks = gdf(
        {"code": ["hsr_ai", "digital", "coastal"],
         "name": ["高铁南站电子信息和人工智能产业园", "威思顿周边地块数字产业园", "滨海科创产业园"],
         "name_en": ["HSR South AI Park", "Digital Industry Park", "Coastal Sci-Tech Park"],
         "industry": ["电子信息和人工智能", "电子信息和人工智能", "节能环保"]},
        [_mp(shapely.box(X0 + 0.105 + i * 0.028, Y0 + 0.075, X0 + 0.13 + i * 0.028, Y0 + 0.125)) for i in range(3)],
    )
    n = len(village_names) if village_names else 30
    names = village_names or [f"示例{i + 1:02d}村" for i in range(n)]
    vg = []
    for i in range(n):
        cx, cy = X0 + 0.01 + (i % 6) * 0.015, Y0 + 0.005 + (i // 6) * 0.038
        vg.append(_mp(shapely.box(cx, cy, cx + 0.012, cy + 0.03)))
    villages = gdf({"code": [f"V{i + 1:02d}" for i in range(n)], "name": names,
                    "name_en": [f"Village {i + 1}" for i in range(n)], "zone": ["south"] * n}, vg)
    points = gpd.GeoDataFrame(
        {"code": ["hsr_south", "gov"], "name": ["高铁南站", "区政府"], "name_en": ["HSR South", "District government"],
         "kind": ["station", "government"]},
        geometry=[shapely.Point(X0 + 0.12, Y0 + 0.065), shapely.Point(X0 + 0.15, Y0 + 0.16)], crs=CRS,
    )
    return {"district": district, "sea": sea, "zones": zones, "devzone": devzone, "parks": parks,
            "villages": villages, "points": points}


def make_parcels(context: dict, n_target: int = 60, seed: int = 1) -> gpd.GeoDataFrame:
    """Parcels on a grid inside villages (≈70 %) and parks, plus ministry, landmark and low-efficiency plots."""
    cat = load_catalog()
    rng = np.random.default_rng(seed)
    rows, geoms = [], []

    def stage_for(kind):
        keys = [None] + cat.pipeline_for(kind).keys
        return keys[int(rng.integers(0, len(keys)))]

    def grid(poly, count):
        minx, miny, maxx, maxy = poly.bounds
        cols = max(1, int(np.ceil(np.sqrt(count * (maxx - minx) / (maxy - miny)))))
        rws = int(np.ceil(count / cols))
        dx, dy = (maxx - minx) / cols, (maxy - miny) / rws
        out = []
        for k in range(count):
            x, y = minx + (k % cols) * dx, miny + (k // cols) * dy
            # a slightly irregular pentagon, like a real plot
            j = rng.uniform(0.05, 0.15, 4)
            out.append(shapely.Polygon([(x + dx * j[0], y + dy * j[1]), (x + dx * (1 - j[2]), y + dy * 0.08),
                                        (x + dx * 0.92, y + dy * (1 - j[3])), (x + dx * 0.5, y + dy * 0.95),
                                        (x + dx * 0.07, y + dy * 0.85)]))
        return out

    villages, parks = context["villages"], context["parks"]
    per_village = max(1, int(n_target * 0.7 / len(villages)))
    for code, name, geom in zip(villages["code"], villages["name"], villages.geometry):
        for k, g in enumerate(grid(geom.geoms[0], per_village)):
            rows.append(dict(code=f"{code}-{k + 1:03d}", name=f"{name}{k + 1}号地块", kind="village", zone="south",
                             village=code, park="", stage=stage_for("village")))
            geoms.append(g)
    per_park = max(1, int(n_target * 0.25 / len(parks)))
    for code, geom in zip(parks["code"], parks.geometry):
        for k, g in enumerate(grid(geom.geoms[0], per_park)):
            rows.append(dict(code=f"{code.upper()}-{k + 1:03d}", name=f"产业园{k + 1}号地块", kind="park",
                             zone="central", village="", park=code, stage=stage_for("park")))
            geoms.append(g)
    extra = [("MIN-01", "某部委闲置地（虚构）", "ministry", "north", 0.03, 0.15),
             ("MIN-02", "某部委仓储用地（虚构）", "ministry", "north", 0.06, 0.16),
             ("LM-ZOO", "野生动物园", "landmark", "north", 0.09, 0.15),
             ("LM-CEMENT", "长荣水泥厂工业遗存", "landmark", "central", 0.10, 0.135),
             ("LE-01", "低效用地1号", "low_efficiency", "central", 0.02, 0.13)]
    for code, name, kind, zone, dx, dy in extra:
        rows.append(dict(code=code, name=name, kind=kind, zone=zone, village="", park="", stage=stage_for(kind)))
        geoms.append(shapely.box(X0 + dx, Y0 + dy, X0 + dx + 0.012, Y0 + dy + 0.01))
    gdf = gpd.GeoDataFrame(rows, geometry=[_mp(g) for g in geoms], crs=CRS)
    gdf["blocked"] = (rng.random(len(gdf)) < 0.08).astype(int)
    gdf["area_m2"] = 1000.0
    return gdf


@pytest.fixture(scope="module")
def cat():
    return load_catalog()


@pytest.fixture(scope="module")
def evil_context():
    names = [f"示例{i + 1:02d}村" for i in range(6)]
    names[0], names[1], names[2] = EVIL_IMG, EVIL_TPL, EVIL_JINJA
    return make_context(names)


@pytest.fixture(scope="module")
def evil_parcels(evil_context):
    p = make_parcels(evil_context, 40)
    p.loc[p.index[0], "name"] = EVIL_IMG + "地块"
    p.loc[p.index[0], "blocked"] = 1
    p.loc[p.index[1], "name"] = EVIL_PID
    return p


@pytest.fixture(scope="module")
def evil_html(evil_context, evil_parcels, cat):
    return build_map(evil_context, evil_parcels, cat, selected=evil_parcels["code"].iloc[3]).get_root().render()


# ----------------------------------------------------------------------------- offline assets

def _script_and_link_urls(page: str) -> list[str]:
    return re.findall(r'<script[^>]*\bsrc="([^"]*)"', page) + re.findall(r'<link[^>]*\bhref="([^"]*)"', page)


def test_the_maps_own_scripts_are_plain_files():
    """No template placeholders left from when they were Python strings; the CSS keeps the blocked colour."""
    for _, path, _ in MAP_SCRIPTS + MAP_STYLES:
        text = (ROOT / "static" / path).read_text(encoding="utf-8")
        assert "%(" not in text and "{{" not in text and "{%" not in text and "<script" not in text, path
    assert f"color: {BLOCKED_COLOR};" in (ROOT / "static/css/renewal-atlas.css").read_text(encoding="utf-8")


def test_vendored_leaflet_is_complete():
    for name in ("leaflet.js", "leaflet.css", "LICENSE", "images/layers.png", "images/layers-2x.png",
                 "images/marker-icon.png", "images/marker-icon-2x.png", "images/marker-shadow.png"):
        assert (VENDOR / name).stat().st_size > 0, name
    assert "Leaflet 1.9.4" in (VENDOR / "leaflet.js").read_text(encoding="utf-8")[:300]
    assert "BSD 2-Clause" in (VENDOR / "LICENSE").read_text(encoding="utf-8")


def test_map_loads_only_vendored_leaflet(evil_html):
    urls = _script_and_link_urls(evil_html)
    own = [u for u in urls if not u.startswith(LEAFLET_URL)]
    assert [u for u in urls if u.startswith(LEAFLET_URL)] == [f"{LEAFLET_URL}/leaflet.js", f"{LEAFLET_URL}/leaflet.css"]
    assert urls[0] == f"{LEAFLET_URL}/leaflet.js"  # Leaflet before the app's own scripts that use it
    # the app's own JavaScript and CSS: files under static/, versioned by their content
    assert sorted(u.split("?")[0] for u in own) == sorted(f"/app/static/{path}" for _, path, _ in MAP_SCRIPTS + MAP_STYLES)
    for u in own:
        path, version = u.removeprefix("/app/static/").split("?v=")
        assert hashlib.sha256((ROOT / "static" / path).read_bytes()).hexdigest()[:10] == version
    assert LEAFLET_URL.startswith("/app/static/vendor/leaflet")  # absolute: the map lives in an iframe
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", evil_html)
    assert not re.search(r"""url\(\s*["']?(https?:)?//""", evil_html)  # no CSS imports from a CDN
    for cdn in ("jsdelivr", "cdnjs", "jquery", "bootstrap", "awesome", "font-awesome", "unpkg", "d3js"):
        assert cdn not in evil_html.lower(), cdn


def test_streamlit_folium_gets_only_vendored_links(evil_context, evil_parcels, cat):
    """What st_folium hands the component: the default_js/css of every element on the map."""
    import branca
    import folium.elements

    m = build_map(evil_context, evil_parcels, cat)
    m.get_root().render()
    links, stack = [], [m]
    while stack:
        el = stack.pop()
        if isinstance(el, branca.colormap.ColorMap):
            links.append("d3 from a CDN (colormap)")
        if isinstance(el, folium.elements.JSCSSMixin):
            links += [u for _, u in el.default_js] + [u for _, u in el.default_css]
        stack.extend(getattr(el, "_children", {}).values())
    own = sorted(f"/app/static/{path}" for _, path, _ in MAP_SCRIPTS + MAP_STYLES)
    assert sorted({u.split("?")[0] for u in links}) == sorted([f"{LEAFLET_URL}/leaflet.css", f"{LEAFLET_URL}/leaflet.js", *own])
    # the class-level defaults of folium stay untouched (other maps, other code)
    import folium as f

    assert any("jsdelivr" in u for _, u in f.Map.default_js)


def test_streamlit_config_serves_static():
    import tomllib

    cfg = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert cfg["server"]["enableStaticServing"] is True
    assert cfg["server"]["headless"] is True
    assert cfg["browser"]["gatherUsageStats"] is False
    assert cfg["client"]["toolbarMode"] == "minimal"


# ----------------------------------------------------------------------------- escaping

def test_user_text_never_reaches_html_raw(evil_html):
    assert "<img" not in evil_html
    assert "onerror=alert" not in evil_html.replace("\\u003cimg src=x onerror=alert(1)\\u003e", "")
    assert "<script>alert(2)" not in evil_html
    assert "${alert(1)}" in evil_html  # only inside a JSON string, never in a template literal
    for m in re.finditer(r"\$\{alert\(1\)\}", evil_html):
        line = evil_html[evil_html.rfind("\n", 0, m.start()):evil_html.find("\n", m.end())]
        assert "`" not in line.replace("村`${alert(1)}`", "")
    assert "\\u003cimg src=x onerror=alert(1)\\u003e" in evil_html


def test_no_server_side_template_injection(evil_html):
    """A ``{{ }}`` in the data is text: it must not be evaluated by Jinja when the page renders."""
    import os

    assert "村49" not in evil_html and "村X" not in evil_html  # what Jinja would have made of it
    assert f"地块{os.getpid()}" not in evil_html
    for fc in _layer_data(evil_html):
        for f in fc["features"]:
            name = f["properties"].get("name", "")
            if name.startswith("村{{") or name.startswith("地块{{"):
                assert name.startswith((EVIL_JINJA, EVIL_PID)), name
    names = {f["properties"].get("name") for fc in _layer_data(evil_html) for f in fc["features"]}
    assert {EVIL_JINJA, EVIL_PID} <= names
    assert not re.search(r"\{[{%#]", evil_html)  # no Jinja delimiter left anywhere in the page


def test_escape_html_for_folium_strings():
    s = escape_html(EVIL_TPL + "\\" + EVIL_IMG + EVIL_JINJA)
    for bad in ("<", ">", "`", "${", "\\", "{{", "{%"):
        assert bad not in s
    assert html_unescape(s) == EVIL_TPL + "\\" + EVIL_IMG + EVIL_JINJA


def _tojson(s):
    """A string as folium's templates write it (jinja's |tojson)."""
    from jinja2.utils import htmlsafe_json_dumps

    return str(htmlsafe_json_dumps(s))


def html_unescape(s):
    import html

    return html.unescape(s)


def test_layer_switcher_names_are_escaped(evil_context, evil_parcels, cat):
    from gis.model.catalog import LayerCatalog, load_layer_catalog

    real = load_layer_catalog()
    groups = dict(real.groups)
    g = groups["villages"]
    groups["villages"] = type(g)(key=g.key, label_zh=EVIL_IMG, label_en=g.label_en)
    page = build_map(evil_context, evil_parcels, cat, layers=LayerCatalog(groups=groups, layers=real.layers)) \
        .get_root().render()
    assert "<img" not in page
    assert _tojson(escape_html(EVIL_IMG)) in page  # Leaflet's layer control sets names with innerHTML


# ----------------------------------------------------------------------------- content

def test_legend_demo_mark_and_colours(evil_html, cat):
    for phase in cat.phases.values():
        assert js_json(phase.label("zh")) in evil_html
        assert phase.color in evil_html
    assert "卡点" in evil_html and "#d7191c" in evil_html
    assert "示例数据（虚构）" in evil_html
    support = (ROOT / "static/js/renewal-atlas.js").read_text(encoding="utf-8")  # the map's shared script
    assert "metric: true" in support and "imperial: false" in support


def test_group_labels_and_feature_properties(evil_context, evil_parcels, cat):
    from gis.model.catalog import load_layer_catalog

    page = build_map(evil_context, evil_parcels, cat).get_root().render()
    layers = load_layer_catalog()
    for group in layers.groups.values():
        # no basemap and no tile pyramid (the cadastre) given → no group
        if group.key != "basemap" and not all(lyr.is_tiles for lyr in layers.in_group(group.key)):
            assert _tojson(escape_html(group.label("zh"))) in page, group.key
    data = _layer_data(page)
    parcels = [f for fc in data for f in fc["features"] if "stage_label" in f["properties"]]
    assert {f["properties"]["code"] for f in parcels} == set(evil_parcels["code"])
    byc = {f["properties"]["code"]: f["properties"] for f in parcels}
    for _, row in evil_parcels.iterrows():
        p = byc[row["code"]]
        stage = row["stage"] if isinstance(row["stage"], str) else None
        assert p["stage"] == stage
        assert p["phase"] == cat.phase_of(row["kind"], stage).key
        assert p["stage_label"] == cat.stage_label(row["kind"], stage, "zh")
        assert p["blocked"] == int(row["blocked"])
        if row["village"]:
            assert p["village_name"] == evil_context["villages"].set_index("code").loc[row["village"], "name"]
    zones = [f for fc in data for f in fc["features"] if f["properties"].get("layer") == "zones"]
    assert {z["properties"]["roles"] for z in zones} >= {"城市会客厅；人才蓄水池"}
    # coordinates rounded to 6 decimals
    coords = json.dumps(parcels[0]["geometry"]["coordinates"])
    assert all(len(d) <= 6 for d in re.findall(r"\.(\d+)", coords))


def test_english_labels(evil_context, evil_parcels, cat):
    page = build_map(evil_context, evil_parcels, cat, lang="en", demo=False).get_root().render()
    assert "Demo data (fictional)" not in page and "示例数据（虚构）" not in page
    for phase in cat.phases.values():
        assert js_json(phase.label("en")) in page
    assert "City living room; talent reservoir" in page
    assert "Three zones" in page


def test_fit_bounds_and_selection(evil_context, evil_parcels, cat):
    b = gdf_bounds(evil_parcels.iloc[[3]])
    page = build_map(evil_context, evil_parcels, cat, bounds=b, selected=evil_parcels["code"].iloc[3]) \
        .get_root().render()
    assert re.search(r"fitBounds\(\s*\[\[%.4f" % b[0][0], page)
    assert '"layer":"selected"' in page
    fg = selection_group(evil_parcels, evil_parcels["code"].iloc[3])
    assert fg.control is False


def _layer_data(page: str) -> list[dict]:
    """The FeatureCollections embedded in the page."""
    out = []
    for m in re.finditer(r"RenewalAtlas\.addLayer\(\s*[\w]+, [\w]+,\s*", page):
        start = m.end()
        out.append(json.JSONDecoder().raw_decode(page[start:])[0])
    return out


def test_legend_items(cat):
    items = legend_items(cat, "zh")
    assert [i["key"] for i in items[:-1]] == list(cat.phases)
    assert items[-1]["kind"] == "outline" and items[-1]["stroke"] == "#d7191c"
    assert legend_items(cat, "en")[0]["label"] == "Not started"


def test_build_time_for_2500_parcels(cat):
    ctx = make_context()
    parcels = make_parcels(ctx, 2650)
    assert 2400 < len(parcels) < 2600
    build_map(ctx, parcels, cat)  # warm up imports and the layer catalogue
    t0 = time.perf_counter()
    m = build_map(ctx, parcels, cat)
    html_ = m.get_root().render()
    elapsed = time.perf_counter() - t0
    print(f"\nbuild+render {len(parcels)} parcels: {elapsed * 1000:.0f} ms, {len(html_) / 1e6:.2f} MB")
    assert elapsed < 1.0


# ----------------------------------------------------------------------------- basemap raster

@pytest.fixture
def small_tif(tmp_path):
    """300×200 RGB GeoTIFF in EPSG:4549 (CGCS2000 GK CM 120E) over the fictional district, with overviews."""
    import rasterio
    from pyproj import Transformer
    from rasterio.transform import from_origin

    x, y = Transformer.from_crs(CRS, "EPSG:4549", always_xy=True).transform(X0, Y0 + 0.2)
    path = tmp_path / "img.tif"
    data = np.zeros((3, 200, 300), np.uint8)
    data[0] = np.linspace(0, 255, 300, dtype=np.uint8)[None, :]
    data[1] = np.linspace(0, 255, 200, dtype=np.uint8)[:, None]
    data[2] = 128
    with rasterio.open(path, "w", driver="GTiff", width=300, height=200, count=3, dtype="uint8",
                       crs="EPSG:4549", transform=from_origin(x, y, 60.0, 60.0)) as dst:
        dst.write(data)
    with rasterio.open(path, "r+") as dst:
        dst.build_overviews([2, 4], rasterio.enums.Resampling.average)
    return path


def test_render_basemap_png(small_tif, tmp_path):
    from PIL import Image

    out = tmp_path / "gen"
    r = render_basemap_png(small_tif, out, max_size=128)
    png = Path(r["path"])
    assert png.parent == out and png.name.startswith("basemap_") and r["url"] == f"/app/static/generated/{png.name}"
    (s, w), (n, e) = r["bounds"]
    assert 37.3 < s < n < 37.6 and 121.2 < w < e < 121.5
    assert abs(n - (Y0 + 0.2)) < 0.01 and abs(w - X0) < 0.01
    img = Image.open(png)
    assert img.mode == "RGBA" and max(img.size) <= 128
    assert (img.width, img.height) == (r["width"], r["height"])
    a = np.asarray(img)
    assert a[..., 3].max() == 255  # the image itself is opaque; the warp margins are transparent
    mtime = png.stat().st_mtime_ns
    assert render_basemap_png(small_tif, out, max_size=128) == r  # cached: same file, not rewritten
    assert png.stat().st_mtime_ns == mtime
    big = render_basemap_png(small_tif, out)  # no downscale needed: full resolution
    assert big["path"] != r["path"] and max(big["width"], big["height"]) >= 280


def test_render_basemap_png_single_band_no_overviews(tmp_path):
    """16-bit grey imagery with nodata and no overviews: decimated read, stretched, nodata transparent."""
    import rasterio
    from PIL import Image
    from rasterio.transform import from_origin

    path = tmp_path / "grey.tif"
    a = (np.arange(600)[None, :] + np.arange(400)[:, None]).astype("uint16") + 1000
    a[:200, :300] = 0  # north-west quarter is nodata
    with rasterio.open(path, "w", driver="GTiff", width=600, height=400, count=1, dtype="uint16",
                       crs="EPSG:4490", transform=from_origin(X0, Y0 + 0.2, 0.2 / 600, 0.2 / 400), nodata=0) as dst:
        dst.write(a, 1)
    r = render_basemap_png(path, tmp_path / "gen", max_size=150)
    img = np.asarray(Image.open(r["path"]))
    assert max(img.shape[:2]) <= 150
    h, w = img.shape[:2]
    assert img[h // 8, w // 8, 3] == 0  # nodata → transparent
    assert img[h * 7 // 8, w * 7 // 8, 3] == 255
    assert img[h * 7 // 8, w * 7 // 8, 0] > img[h * 5 // 8, w * 5 // 8, 0]  # stretched gradient survives
    (s, w_), (n, e) = r["bounds"]
    assert abs(w_ - X0) < 1e-3 and abs(n - (Y0 + 0.2)) < 1e-3


def test_basemap_in_map(evil_context, evil_parcels, cat, small_tif, tmp_path):
    r = render_basemap_png(small_tif, tmp_path, max_size=128, attribution=EVIL_IMG)
    page = build_map(evil_context, evil_parcels, cat, basemap=r).get_root().render()
    assert r["url"] in page and "RenewalAtlas.addImage" in page
    assert "<img" not in page
    assert _tojson("影像底图") in page


# ----------------------------------------------------------------------------- in a real browser

def write_offline_page(m, path: Path) -> Path:
    """The map as a standalone file whose static URLs (Leaflet, the map's own scripts) point at static/."""
    page = m.get_root().render().replace("/app/static/", (ROOT / "static").as_uri() + "/")
    path.write_text(page, encoding="utf-8")
    return path


def _open(browser, path: Path, size=(1000, 800)):
    page = browser.new_page(viewport={"width": size[0], "height": size[1]})
    dialogs, errors, requests = [], [], []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(path.as_uri())
    page.wait_for_function("() => window.RenewalAtlas && document.querySelector("
                           "'.leaflet-overlay-pane canvas, .leaflet-overlay-pane path.leaflet-interactive')")
    page.wait_for_timeout(300)
    return page, dialogs, errors, requests


def _hover_feature(page, code_or_layer: str, key: str = "code"):
    """Move the mouse onto the centre of a feature found by a property, and return the tooltip text."""
    xy = page.evaluate(
        """([key, value]) => {
            const map = Object.values(window).find(v => v instanceof L.Map);
            let hit = null;
            map.eachLayer(l => { if (!hit && l.feature && l.feature.properties[key] === value && l.getBounds) hit = l; });
            if (!hit) return null;
            const p = map.latLngToContainerPoint(hit.getBounds().getCenter());
            const r = map.getContainer().getBoundingClientRect();
            return [p.x + r.left, p.y + r.top];
        }""",
        [key, code_or_layer],
    )
    assert xy, code_or_layer
    if key != "code":
        page.mouse.move(xy[0] - 3, xy[1] - 3)
        page.mouse.move(*xy)
        page.wait_for_selector(".ratlas-tooltip", state="visible")
        return page.inner_text(".ratlas-tooltip")
    # Leaflet's canvas renderer throttles hover checks (one per 32 ms), so a move that lands inside the window is
    # dropped and the previous parcel stays hovered: move again, a frame apart, until this parcel's tooltip is up
    for _ in range(40):
        page.mouse.move(xy[0] - 3, xy[1] - 3)
        page.wait_for_timeout(50)
        page.mouse.move(*xy)
        page.wait_for_timeout(100)
        shown = [t for t in page.locator(".ratlas-tooltip").all_inner_texts() if code_or_layer in t]
        if shown:
            return shown[0]
    raise AssertionError(f"no tooltip for {code_or_layer}: {page.locator('.ratlas-tooltip').all_inner_texts()}")


@pytest.mark.browser
@pytest.mark.parametrize("renderer", ["svg", "canvas"])
def test_browser_tooltips_show_literal_text(browser, evil_context, evil_parcels, cat, tmp_path, renderer):
    page, dialogs, errors, requests = _open(
        browser, write_offline_page(build_map(evil_context, evil_parcels, cat, renderer=renderer), tmp_path / "map.html"))
    try:
        # a parcel whose name and village carry markup
        code = evil_parcels["code"].iloc[0]
        text = _hover_feature(page, code)
        assert EVIL_IMG + "地块" in text and EVIL_IMG in text.replace(EVIL_IMG + "地块", "")
        assert "⚠ 卡点" in text
        assert page.locator(".ratlas-tooltip img").count() == 0
        assert EVIL_PID in _hover_feature(page, evil_parcels["code"].iloc[1])  # shown, not evaluated
        # a village boundary with backticks and ${...}: hover a spot inside the village but outside its parcels
        xy = page.evaluate(
            """(code) => {
                const map = Object.values(window).find(v => v instanceof L.Map);
                let v = null;
                map.eachLayer(l => { if (l.feature && l.feature.properties.layer === 'villages'
                                        && l.feature.properties.code === code) v = l; });
                const b = v.getBounds();
                const p = map.latLngToContainerPoint(L.latLng(b.getNorth() - 0.0002, b.getWest() + 0.0002));
                const r = map.getContainer().getBoundingClientRect();
                return [p.x + r.left, p.y + r.top];
            }""",
            "V02",
        )
        # the canvas renderer notices the pointer leaving the parcel on a later move: move until it has
        shown = ""
        for _ in range(25):
            page.mouse.move(xy[0] + 2, xy[1] + 2)
            page.mouse.move(*xy)
            page.wait_for_timeout(200)
            shown = " ".join(page.locator(".ratlas-tooltip").all_inner_texts())
            if EVIL_TPL in shown:
                break
        assert EVIL_TPL in shown, shown
        # legend, demo mark, layer switcher
        legend = page.inner_text(".ratlas-legend")
        for phase in cat.phases.values():
            assert phase.label("zh") in legend
        assert page.inner_text(".ratlas-demo") == "示例数据（虚构）"
        page.hover(".leaflet-control-layers")  # the switcher starts folded to its button; it opens under the pointer
        assert "三大片区" in page.inner_text(".leaflet-control-layers")
        assert page.locator(".leaflet-control-scale-line").count() == 1  # metric only
        labels = page.locator(".ratlas-label").all_inner_texts()  # zone names; village names only when zoomed in
        assert {"北部", "中部", "南部"} <= set(labels) and EVIL_IMG not in labels
        page.wait_for_timeout(300)
        assert dialogs == [] and errors == []
        assert not [u for u in requests if u.startswith("http")], requests
    finally:
        page.close()


@pytest.mark.browser
@pytest.mark.parametrize("renderer", ["svg", "canvas"])
def test_browser_click_reports_feature_like_streamlit_folium(browser, evil_context, evil_parcels, cat, tmp_path,
                                                            renderer):
    """streamlit-folium binds `click` on every layer in map._layers at start and reads e.layer.toGeoJSON()."""
    page, dialogs, errors, _ = _open(
        browser, write_offline_page(build_map(evil_context, evil_parcels, cat, renderer=renderer), tmp_path / "m.html"))
    try:
        n_paths = page.evaluate("() => document.querySelectorAll('path.leaflet-interactive').length")
        assert (n_paths > len(evil_parcels)) if renderer == "svg" else n_paths == 0
        page.evaluate(
            """() => {
                const map = Object.values(window).find(v => v instanceof L.Map);
                window.__got = [];
                for (const k in map._layers) {
                    const l = map._layers[k];
                    if (l && l.on) l.on('click', e => { if (e.layer && e.layer.toGeoJSON)
                        window.__got.push(e.layer.toGeoJSON().properties.code); });
                }
            }"""
        )
        code = evil_parcels["code"].iloc[5]
        _hover_feature(page, code)
        page.mouse.down()
        page.mouse.up()
        assert poll(lambda: code in page.evaluate("window.__got"))
        # switching a group off and on keeps parcels above the zones (hover still finds the parcel)
        page.hover(".leaflet-control-layers")  # folded to its button: open it
        page.locator(".leaflet-control-layers label", has_text="三大片区").click()
        page.locator(".leaflet-control-layers label", has_text="三大片区").click()
        page.wait_for_timeout(200)
        page.evaluate("window.__got = []")
        _hover_feature(page, code)
        page.mouse.down()
        page.mouse.up()
        assert (poll(lambda: page.evaluate("window.__got")) or [None])[0] == code
        assert dialogs == [] and errors == []
    finally:
        page.close()


@pytest.mark.browser
def test_browser_screenshot(browser, cat, tmp_path, small_tif):
    ctx = make_context()
    parcels = make_parcels(ctx, 2650)
    basemap = render_basemap_png(small_tif, tmp_path / "gen", max_size=512)
    basemap = {**basemap, "url": Path(basemap["path"]).as_uri()}
    m = build_map(ctx, parcels, cat, basemap=basemap, selected=parcels["code"].iloc[40])
    page, dialogs, errors, _ = _open(browser, write_offline_page(m, tmp_path / "demo.html"), size=(1200, 900))
    try:
        page.screenshot(path=str(tmp_path / "map.png"))
        assert (tmp_path / "map.png").stat().st_size > 10_000
        assert errors == [] and dialogs == []
    finally:
        page.close()


# ----------------------------------------------------------------------------- the filter on the map the browser holds

def test_filter_group_carries_the_result_and_the_bounds_to_fit(tiny_store):
    from streamlit_folium import _get_feature_group_string

    from gis.maps.mapstate import view_key
    from gis.maps.mapview import filter_group

    m = build_map(tiny_store.context(), tiny_store.parcels(), tiny_store.catalog)
    m.get_root().render()

    def options(fg):
        text = _get_feature_group_string(fg, m, 1)
        return json.loads(text.split("RenewalAtlas.filter(map_div, ", 1)[1].split(");", 1)[0])

    got = options(filter_group(("V01-002", "V01-001", "V01-001"), [[37.4, 121.3], [37.401, 121.303]], "tok"))
    assert got == {"codes": ["V01-001", "V01-002"], "bounds": [[37.4, 121.3], [37.401, 121.303]],
                   "key": view_key([[37.4, 121.3], [37.401, 121.303]]), "token": "tok"}
    # (minx, miny, maxx, maxy) bounds are the same bounds: the same key, no second fit
    assert options(filter_group(["V01-001"], (121.3, 37.4, 121.303, 37.401), "tok"))["key"] == got["key"]
    assert options(filter_group(None, None, "tok")) == {"codes": None, "bounds": None, "key": None, "token": "tok"}
    assert options(filter_group((), None))["codes"] == []  # nothing kept: every parcel hidden
    assert view_key(None) is None and view_key([[1, 2], [3, 4]]) != view_key([[1, 2], [3, 4.0001]])


def test_the_maps_script_and_layer_file_do_not_depend_on_the_filter(tiny_store, tmp_path):
    """The app builds its map from every parcel whatever the filter: the same script, the same file."""
    from streamlit_folium import _get_map_string

    from gis.maps.mapview import LayerFiles, filter_group

    files = LayerFiles(tmp_path / "layers")
    scripts = []
    for codes in (None, ("V01-001",), ("HSR-001", "MIN-01")):
        m = build_map(tiny_store.context(), tiny_store.parcels(), tiny_store.catalog, publish=files)
        filter_group(codes, None, "t")  # built beside the map, not on it
        m.get_root().render()
        scripts.append(_get_map_string(m))
    assert scripts[0] == scripts[1] == scripts[2]
    assert "RenewalAtlas.filter" not in scripts[0]


def test_the_maps_first_script_fetches_every_published_layer_at_once(tiny_store, tmp_path):
    """The map's layer files are asked for side by side by a first script, before Leaflet loads (the map's
    script read them one after another, issue 19): its ``data:`` URL names each published file once."""
    import base64
    import re

    from gis.maps.mapview import LayerFiles

    files = LayerFiles(tmp_path / "layers")
    m = build_map(tiny_store.context(), tiny_store.parcels(), tiny_store.catalog, publish=files)
    m.get_root().render()
    name, src = m.default_js[0]
    assert name == "ratlas_prefetch" and src.startswith("data:text/javascript;base64,")
    code = base64.b64decode(src.split(",", 1)[1]).decode()
    asked = re.findall(r'"(/app/static/generated/layers/[0-9a-f]+\.json)"', code)
    published = {f"/app/static/generated/layers/{p.name}" for p in (tmp_path / "layers").glob("*.json")}
    assert asked and len(asked) == len(set(asked)) and set(asked) == published
    assert m.default_js[1][0] == "leaflet"
    inline = build_map(tiny_store.context(), tiny_store.parcels(), tiny_store.catalog)  # an export: data inline
    assert all(n != "ratlas_prefetch" for n, _ in inline.default_js)


def _map_of(page) -> str:
    return "Object.values(window).find(v => v instanceof L.Map)"


def _tooltip_at(page, xy, tries=15) -> str:
    """The tooltips' text with the pointer on ``xy`` (moved a frame apart: the canvas renderer drops moves)."""
    shown = ""
    for _ in range(tries):
        page.mouse.move(xy[0] - 3, xy[1] - 3)
        page.wait_for_timeout(50)
        page.mouse.move(*xy)
        page.wait_for_timeout(100)
        shown = " ".join(page.locator(".ratlas-tooltip").all_inner_texts())
        if shown:
            return shown
    return shown


@pytest.mark.browser
@pytest.mark.parametrize("renderer", ["svg", "canvas"])
def test_browser_filter_hides_parcels_and_fits_once(browser, evil_context, evil_parcels, cat, tmp_path, renderer):
    """filter_group on the map the browser holds: the parcels not in the result give no tooltip and no click
    (svg and canvas), the view fits the result once, every parcel comes back when the filter is cleared."""
    from gis.maps.mapstate import view_key
    from gis.maps.mapview import filter_group
    from gis.model.spatial import fit_bounds

    parcels = evil_parcels[evil_parcels["kind"] == "village"]
    kept, hidden = parcels.iloc[4], parcels.iloc[5]  # neighbours in one village
    bounds = fit_bounds(parcels.iloc[[4]])
    m = build_map(evil_context, evil_parcels, cat, renderer=renderer)
    filter_group([kept["code"]], bounds, "tok").add_to(m)  # as streamlit-folium evaluates it, after the map
    page, dialogs, errors, _ = _open(browser, write_offline_page(m, tmp_path / "f.html"))
    the_map = _map_of(page)

    def xy(row):
        pt = shapely.point_on_surface(row.geometry)
        return page.evaluate(f"""() => {{ const map = {the_map}; const p = map.latLngToContainerPoint([{pt.y}, {pt.x}]);
                                 const r = map.getContainer().getBoundingClientRect(); return [p.x + r.left, p.y + r.top]; }}""")

    def drawn():
        return page.evaluate(f"""() => {{ const out = []; {the_map}.eachLayer(l => {{
            if (l.feature && l.feature.properties.phase) out.push(l.feature.properties.code); }}); return out; }}""")

    def view():
        return page.evaluate(f"() => {{ const m = {the_map}, c = m.getCenter(); return [m.getZoom(), c.lat, c.lng]; }}")

    try:
        assert drawn() == [kept["code"]]
        fitted = page.evaluate(f"() => {the_map}.getBoundsZoom({json.dumps(bounds)}, false, L.point(24, 24))")
        assert poll(lambda: view()[0] == fitted) and fitted > 12  # fitted to the one parcel, not the district
        (s, w), (n, e) = bounds
        assert page.evaluate(f"() => {the_map}.getBounds().contains([[{s}, {w}], [{n}, {e}]])")
        if renderer == "svg":  # the hidden parcels' paths are gone from the DOM
            n_paths = page.evaluate("() => document.querySelectorAll('path.leaflet-interactive').length")
            assert n_paths < len(evil_parcels)
        page.evaluate(f"""() => {{ window.__got = []; for (const l of {the_map}._ratlasOrder) if (l._ratlasParcels)
            l.on('click', e => window.__got.push(e.layer.feature.properties.code)); }}""")
        hxy = xy(hidden)
        assert hxy[0] > 0 and hxy[1] > 0, "the neighbour is out of view"
        assert hidden["code"] not in _tooltip_at(page, hxy, 8)  # no tooltip (the village's own may show)
        page.mouse.down()
        page.mouse.up()
        page.wait_for_timeout(300)
        assert page.evaluate("window.__got") == []  # and no click
        assert kept["code"] in _tooltip_at(page, xy(kept))
        page.mouse.down()
        page.mouse.up()
        assert poll(lambda: page.evaluate("window.__got") == [kept["code"]])

        # the same filter again (a later rerun): the planner's pan and zoom stay
        set_view(page.evaluate, hidden.geometry.centroid.y, hidden.geometry.centroid.x, 16, the_map)
        before = view()
        opts = json.dumps({"codes": [kept["code"]], "bounds": bounds, "key": view_key(bounds), "token": "tok"})
        page.evaluate(f"() => {{ RenewalAtlas.filter({the_map}, {opts}); }}")
        page.wait_for_timeout(100)
        assert view() == before
        # a stage update while a parcel is hidden: it comes back with its new properties
        new_phase = "prep" if cat.phase_of("village", hidden["stage"]).key == "done" else "done"
        page.evaluate(f"""() => {{ for (const l of {the_map}._ratlasOrder) if (l._ratlasParcels) l._ratlasId = 'p';
            RenewalAtlas.patch({the_map}, {{p: {{{json.dumps(hidden['code'])}: {{code: {json.dumps(hidden['code'])},
            phase: {json.dumps(new_phase)}, layer: 'x', name: 'patched'}}}}}}); }}""")
        # cleared: every parcel back, the view where the planner left it
        page.evaluate(f"() => {{ RenewalAtlas.filter({the_map}, {{codes: null, bounds: null, key: null, token: 'tok'}}); }}")
        assert sorted(drawn()) == sorted(evil_parcels["code"])
        assert view() == before
        assert hidden["code"] in _tooltip_at(page, xy(hidden))
        color = page.evaluate(f"""() => {{ let c = null; {the_map}.eachLayer(l => {{ if (l.feature &&
            l.feature.properties.code === {json.dumps(hidden['code'])} && l.feature.properties.phase) c = l.options.fillColor; }});
            return c; }}""")
        assert color == cat.phases[new_phase].color
        # the parcels back are drawn where they were: above the zones, below the selection
        page.evaluate("window.__got = []")
        page.mouse.down()
        page.mouse.up()
        assert poll(lambda: page.evaluate("window.__got") == [hidden["code"]])
        # the same filter once more after clearing: fitted again
        set_view(page.evaluate, kept.geometry.centroid.y, kept.geometry.centroid.x, 10, the_map)
        page.evaluate(f"() => {{ RenewalAtlas.filter({the_map}, {opts}); }}")
        assert poll(lambda: view()[0] == fitted) and drawn() == [kept["code"]]
        assert dialogs == [] and errors == []
    finally:
        page.close()
