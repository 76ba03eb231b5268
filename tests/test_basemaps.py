"""Basemaps (gis/basemaps.py, gis/basemap_layers.py, gis/rasterview.py, gis/preferences.py).

No network: tile URLs are asserted as text, tile fetching for exports talks
to a server on 127.0.0.1, rasters are made in code.
"""
from __future__ import annotations

import hashlib
import http.server
import json
import re
import threading
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely

from gis.base.errors import InputError
from gis.base.gcj02 import wgs84_to_gcj02
from gis.base.settings import Settings
from gis.maps.basemap_layers import (
    add_basemap,
    raster_underlay,
    returned_view,
    view_group,
    view_image,
    wants_view_updates,
)
from gis.maps.basemaps import (
    KINDS,
    BasemapChoice,
    ExportBasemap,
    TileSource,
    bounds_from_display,
    bounds_to_display,
    click_to_store,
    export_basemap,
    load_choice,
    normalise_tile_url,
    resolve_basemap,
    save_choice,
    to_display,
)
from gis.maps.elements import escape_html, js_json
from gis.maps.mapview import build_map
from gis.model.spatial import ParcelIndex
from gis.store.open import open_store_at

ROOT = Path(__file__).resolve().parent.parent
KEY = "0123456789abcdef0123456789abcdef"
X0, Y0 = 121.30, 37.40
URL_RE = re.compile(r"""(?:https?:)?//[A-Za-z0-9.\-]+[^\s"'<>)]*""")


def settings(tmp_path, **env) -> Settings:
    base = {"RENEWAL_DATA_DIR": str(tmp_path)}
    base.update({f"RENEWAL_{k.upper()}": str(v) for k, v in env.items()})
    return Settings.load(env=base)


def make_tif(path, size=(600, 400), pixel=5.0, epsg=4549, dot=None, nodata_corner=False):
    """An RGB GeoTIFF in a CGCS2000 GK zone whose north-west corner is at (X0, Y0 + 0.02).

    ``dot``: (col, row) of a 4×4-pixel white square on a dark background (for alignment checks).
    """
    import rasterio
    from pyproj import Transformer
    from rasterio.transform import from_origin

    w, h = size
    x, y = Transformer.from_crs("EPSG:4490", f"EPSG:{epsg}", always_xy=True).transform(X0, Y0 + 0.02)
    data = np.zeros((3, h, w), np.uint8)
    data[0] = np.linspace(20, 120, w, dtype=np.uint8)[None, :]
    data[1] = np.linspace(20, 120, h, dtype=np.uint8)[:, None]
    data[2] = 60
    if dot:
        c, r = dot
        data[:, r:r + 4, c:c + 4] = 255
    kw = {}
    if nodata_corner:
        data[:, : h // 4, : w // 4] = 0
        kw["nodata"] = 0
    transform = from_origin(x, y, pixel, pixel)
    with rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=3, dtype="uint8",
                       crs=f"EPSG:{epsg}", transform=transform, tiled=True, blockxsize=256, blockysize=256,
                       **kw) as dst:
        dst.write(data)
    return Path(path), transform


def grid_parcels(n=8, size=0.0008):
    """n × n square parcels (≈ 70 m) from (X0, Y0): codes P00..P77."""
    rows = [(f"P{i}{j}", shapely.box(X0 + i * size, Y0 + j * size, X0 + (i + 1) * size, Y0 + (j + 1) * size))
            for i in range(n) for j in range(n)]
    return gpd.GeoDataFrame({"code": [r[0] for r in rows], "name": [r[0] for r in rows], "kind": "village",
                             "stage": None, "blocked": 0}, geometry=[r[1] for r in rows], crs="EPSG:4490")


def map_html(m) -> str:
    return m.get_root().render()


# ----------------------------------------------------------------------------- choosing and resolving

def test_every_kind_resolves_without_raising(tmp_path):
    s = settings(tmp_path)
    for kind in KINDS:
        b = resolve_basemap(BasemapChoice(kind=kind), s)
        assert b.kind == kind and b.label
    assert resolve_basemap(BasemapChoice(kind="nonsense"), s).kind == "none"


def test_local_kinds_request_nothing_and_tianditu_without_key_neither(tmp_path):
    tif, _ = make_tif(tmp_path / "dom.tif")
    s = settings(tmp_path, orthophoto=tif)
    for kind in ("none", "raster", "orthophoto", "tianditu_img", "tianditu_vec"):
        b = resolve_basemap(BasemapChoice(kind=kind), s)
        assert b.local, kind
    notice = resolve_basemap(BasemapChoice(kind="tianditu_img"), s)
    assert notice.notice == "basemap.no_tianditu_key" and "RENEWAL_TIANDITU_KEY" in notice.notice_text("zh")
    assert "已仅显示数据" in notice.notice_text("zh")


def test_tianditu_with_key_imagery_and_annotation(tmp_path):
    b = resolve_basemap(BasemapChoice(kind="tianditu_img"), settings(tmp_path, tianditu_key=KEY))
    assert [re.search(r"LAYER=(\w+)", s.url).group(1) for s in b.tiles] == ["img", "cia"]
    assert all(f"tk={KEY}" in s.url and s.url.startswith("https://t{s}.tianditu.gov.cn/") for s in b.tiles)
    assert b.datum == "wgs84" and "天地图" in b.attribution and b.exportable
    url = b.tiles[0].tile_url(15, 27426, 12555, 3)
    assert "t3.tianditu.gov.cn" in url and "TILEMATRIX=15&TILEROW=12555&TILECOL=27426" in url
    vec = resolve_basemap(BasemapChoice(kind="tianditu_vec"), settings(tmp_path, tianditu_key=KEY))
    assert [re.search(r"LAYER=(\w+)", s.url).group(1) for s in vec.tiles] == ["vec", "cva"]
    bad = resolve_basemap(BasemapChoice(kind="tianditu_img"), settings(tmp_path, tianditu_key="x'><script>"))
    assert bad.notice == "basemap.bad_tianditu_key" and not bad.tiles


def test_the_key_stays_out_of_the_settings_repr(tmp_path):
    s = settings(tmp_path, tianditu_key=KEY)
    assert s.tianditu_key == KEY and KEY not in repr(s)


def test_amap_is_gcj02_and_not_exported(tmp_path):
    s = settings(tmp_path)
    road = resolve_basemap(BasemapChoice(kind="amap_road"), s)
    sat = resolve_basemap(BasemapChoice(kind="amap_sat"), s)
    assert road.datum == sat.datum == "gcj02"
    assert "webrd0{s}.is.autonavi.com" in road.tiles[0].url and "style=8" in road.tiles[0].url
    assert "style=6" in sat.tiles[0].url and "style=8" in sat.tiles[1].url  # imagery + labels
    assert export_basemap(s, BasemapChoice(kind="amap_road")) is None


@pytest.mark.parametrize("url, expected", [
    ("https://tiles.example/{z}/{x}/{y}.png", "https://tiles.example/{z}/{x}/{y}.png"),
    ("http://{s}.tiles.example/{z}/{x}/{-y}.png", "http://{s}.tiles.example/{z}/{x}/{-y}.png"),
    ("http://gs.intranet/geoserver/gwc/service/wmts?SERVICE=WMTS&REQUEST=GetTile&LAYER=dom&TILEMATRIXSET=EPSG:900913"
     "&TILEMATRIX=EPSG:900913:{TileMatrix}&TILEROW={TileRow}&TILECOL={TileCol}&FORMAT=image/png",
     "http://gs.intranet/geoserver/gwc/service/wmts?SERVICE=WMTS&REQUEST=GetTile&LAYER=dom&TILEMATRIXSET=EPSG:900913"
     "&TILEMATRIX=EPSG:900913:{z}&TILEROW={y}&TILECOL={x}&FORMAT=image/png"),
    ("http://gs/wmts/dom/default/g/{tilematrix}/{tilerow}/{tilecol}.png", "http://gs/wmts/dom/default/g/{z}/{y}/{x}.png"),
    ("/app/static/tiles/{z}/{x}/{y}.png", "/app/static/tiles/{z}/{x}/{y}.png"),
])
def test_xyz_and_wmts_urls(url, expected):
    assert normalise_tile_url(url) == expected


@pytest.mark.parametrize("url, key", [
    ("", "basemap.no_url"),
    ("javascript:alert(1)//{z}{x}{y}", "basemap.bad_url"),
    ("file:///etc/{z}/{x}/{y}", "basemap.bad_url"),
    ("https://t.example/{z}/{x}.png", "basemap.missing_placeholder"),
    ("https://t.example/{z}/{x}/{y}.png?k={apikey}", "basemap.bad_placeholder"),
    ('https://t.example/{z}/{x}/{y}.png"onerror="x', "basemap.bad_url"),
])
def test_bad_tile_urls_are_refused(url, key):
    with pytest.raises(InputError) as e:
        normalise_tile_url(url)
    assert e.value.key == key


def test_a_bad_custom_url_is_a_notice_not_a_crash(tmp_path):
    b = resolve_basemap(BasemapChoice(kind="custom", url="ftp://x/{z}/{x}/{y}"), settings(tmp_path))
    assert b.notice == "basemap.bad_url" and not b.tiles


def test_settings_choose_the_default_basemap(tmp_path):
    s = settings(tmp_path, basemap="custom", tile_url="http://gs/{z}/{x}/{y}.png", tile_attribution="区测绘院")
    b = resolve_basemap(load_choice(s, None), s)
    assert b.kind == "custom" and b.attribution == "区测绘院" and b.tiles[0].url == "http://gs/{z}/{x}/{y}.png"
    with pytest.raises(InputError):
        settings(tmp_path, basemap="google")
    # the default, local imagery, without any configured: no basemap rather than a warning
    assert load_choice(settings(tmp_path, raster=""), None).kind == "none"
    assert load_choice(settings(tmp_path, raster=tmp_path / "gone.tif"), None).kind == "none"


def test_raster_paths_must_be_local_geotiffs(tmp_path):
    from gis.maps.rasterview import check_raster_path, raster_info

    for bad, key in [("/vsicurl/http://x/a.tif", "basemap.raster_not_local"),
                     ("http://x/a.tif", "basemap.raster_not_local"),
                     (str(tmp_path / "a.vrt"), "basemap.raster_not_tif"),
                     (str(tmp_path / "missing.tif"), "basemap.raster_missing")]:
        with pytest.raises(InputError) as e:
            check_raster_path(bad)
        assert e.value.key == key, bad
    # a VRT (which may read any file or URL) named .tif: GDAL's GTiff driver only, so refused
    fake = tmp_path / "fake.tif"
    fake.write_text('<VRTDataset rasterXSize="1" rasterYSize="1"><VRTRasterBand dataType="Byte" band="1">'
                    '<SimpleSource><SourceFilename>/etc/passwd</SourceFilename></SimpleSource>'
                    '</VRTRasterBand></VRTDataset>')
    with pytest.raises(InputError) as e:
        raster_info(fake)
    assert e.value.key == "basemap.raster_unreadable"
    b = resolve_basemap(BasemapChoice(kind="orthophoto", path=str(fake)), settings(tmp_path))
    assert b.notice == "basemap.raster_unreadable" and b.raster is None


# ----------------------------------------------------------------------------- per-user memory

def test_the_choice_is_remembered_per_user(tmp_path):
    s = settings(tmp_path)
    assert load_choice(s, "张伟").kind == "raster"  # the settings' default
    assert save_choice(s, "张伟", BasemapChoice(kind="custom", url="http://gs/{z}/{x}/{y}.png", attribution="测绘院"))
    assert save_choice(s, "李娜", BasemapChoice(kind="amap_sat"))
    assert not save_choice(s, "  ", BasemapChoice(kind="none"))  # nobody to remember it for
    assert load_choice(s, "张伟") == BasemapChoice(kind="custom", url="http://gs/{z}/{x}/{y}.png", attribution="测绘院")
    assert load_choice(s, "李娜").kind == "amap_sat"
    assert load_choice(s, "王强").kind == "raster" and load_choice(s, None).kind == "raster"
    stored = json.loads((tmp_path / "preferences.json").read_text(encoding="utf-8"))
    assert set(stored["users"]) == {"张伟", "李娜"}


def test_preferences_survive_a_broken_file_and_concurrent_writers(tmp_path):
    s = settings(tmp_path)
    (tmp_path / "preferences.json").write_text("{not json", encoding="utf-8")
    assert load_choice(s, "甲").kind == "raster"
    kinds = [k for k in KINDS if k not in ("orthophoto", "custom")]
    threads = [threading.Thread(target=save_choice, args=(s, f"用户{i}", BasemapChoice(kind=kinds[i % len(kinds)])))
               for i in range(24)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert all(load_choice(s, f"用户{i}").kind == kinds[i % len(kinds)] for i in range(24))


# ----------------------------------------------------------------------------- on the map

def test_tile_basemap_on_the_map_is_escaped_and_watched(tmp_path, catalog):
    evil = "<img src=x onerror=alert(1)>{{ 7*7 }}`${x}`"
    s = settings(tmp_path)
    b = resolve_basemap(BasemapChoice(kind="custom", url="http://gs.intranet/{z}/{x}/{y}.png", attribution=evil), s)
    m = add_basemap(build_map({}, grid_parcels(), catalog, basemap=None), b)
    html = map_html(m)
    assert "http://gs.intranet/{z}/{x}/{y}.png" in html
    assert "<img src=x" not in html and "{{ 7*7 }}" not in html and "`${x}`" not in html
    # Leaflet's attribution control uses innerHTML: the text goes in HTML-escaped (then as script-safe JSON)
    assert js_json(escape_html(evil))[1:-1] in html
    # the map calls the watcher, whose script (a static file every map loads) counts tile errors for the notice
    assert "RenewalBasemap.add(" in html and "/app/static/js/basemap-tiles.js?v=" in html
    watcher = (Path(__file__).resolve().parent.parent / "static/js/basemap-tiles.js").read_text(encoding="utf-8")
    assert "tileerror" in watcher and "ratlas-basemap-notice" in watcher


def test_notice_without_any_tile_layer_for_tianditu_without_key(tmp_path, catalog):
    b = resolve_basemap(BasemapChoice(kind="tianditu_img"), settings(tmp_path))
    html = map_html(add_basemap(build_map({}, grid_parcels(), catalog), b))
    assert "tianditu.gov.cn" not in html and '"noticeNow":true' in html and '"tiles":[]' in html


@pytest.mark.parametrize("kind", ["none", "raster"])
def test_local_basemaps_put_no_foreign_url_on_the_map(tmp_path, catalog, kind):
    s = settings(tmp_path)
    b = resolve_basemap(BasemapChoice(kind=kind), s)
    underlay = raster_underlay(b, tmp_path / "gen", "/app/static/generated")
    assert (underlay is None) == (kind == "none")
    html = map_html(add_basemap(build_map({}, grid_parcels(), catalog, basemap=underlay), b))
    foreign = [u for u in URL_RE.findall(html) if "leafletjs.com" not in u]
    assert foreign == [], foreign
    assert "L.tileLayer" not in html


def test_a_click_round_trip_under_amap_picks_the_right_parcel(tmp_path, catalog):
    """Parcels are drawn shifted to GCJ-02; a click there is shifted back and finds the parcel it is on."""
    s = settings(tmp_path)
    amap = resolve_basemap(BasemapChoice(kind="amap_road"), s)
    parcels = grid_parcels()
    index = ParcelIndex(parcels)
    shown = to_display(parcels, amap)
    html = map_html(add_basemap(build_map({}, shown, catalog), amap))
    for code in ("P00", "P34", "P77", "P52"):
        true_pt = parcels.loc[parcels["code"] == code, "geometry"].iloc[0].centroid
        drawn = shown.loc[shown["code"] == code, "geometry"].iloc[0].centroid
        glon, glat = wgs84_to_gcj02(true_pt.x, true_pt.y)
        assert abs(drawn.x - glon) < 1e-7 and abs(drawn.y - glat) < 1e-7  # drawn where AMap has it
        corner = shapely.get_coordinates(shown.loc[shown["code"] == code, "geometry"].iloc[0])[0]
        assert f"[{round(corner[0], 6)},{round(corner[1], 6)}]" in html  # the map draws the shifted parcel
        # the click lands on the drawn parcel; shifted back it finds the same parcel …
        assert index.at(*click_to_store(drawn.x, drawn.y, amap)) == code
        # … which the raw click (≈ 500 m off) would not
        assert index.at(drawn.x, drawn.y) != code
    none = resolve_basemap(BasemapChoice(kind="none"), s)
    assert to_display(parcels, none) is parcels and click_to_store(1.5, 2.5, none) == (1.5, 2.5)
    b = [[37.40, 121.30], [37.41, 121.31]]
    back = bounds_from_display(bounds_to_display(b, amap), amap)
    assert np.allclose(back, b, atol=1e-9) and not np.allclose(bounds_to_display(b, amap), b, atol=1e-3)


# ----------------------------------------------------------------------------- a big orthophoto

def test_underlay_and_view_line_up_with_the_truth(tmp_path):
    """The white dot of a GK raster lands on its true Web-Mercator place (within a pixel), in underlay and view."""
    from PIL import Image
    from pyproj import Transformer

    from gis.maps import rasterview

    tif, transform = make_tif(tmp_path / "dom.tif", size=(5000, 4200), pixel=1.0, epsg=4528, dot=(3210, 1870))
    info = rasterview.raster_info(tif)
    assert info.needs_overviews and info.crs == "EPSG:4528"
    assert rasterview.render_underlay(tif, tmp_path / "gen", "/g") is None  # too big to read whole
    calls = []
    assert rasterview.build_overviews(tif, progress=lambda d, t, label: calls.append(d)) == [2, 4, 8, 16, 32]
    assert calls[0] == 0 and calls[-1] == 100 and (tmp_path / "dom.tif.ovr").exists()
    info = rasterview.raster_info(tif)
    assert info.overviews and not info.needs_overviews

    gx, gy = transform @ (3212, 1872)  # the dot's centre in GK metres
    mx, my = Transformer.from_crs("EPSG:4528", "EPSG:3857", always_xy=True).transform(gx, gy)
    lon, lat = Transformer.from_crs("EPSG:4528", "EPSG:4326", always_xy=True).transform(gx, gy)

    def dot_in(result, mpp_x):
        img = np.asarray(Image.open(result["path"]).convert("RGB")).astype(int)
        ys, xs = np.nonzero(img.sum(axis=2) > 600)
        (s, w), (n, e) = result["bounds"]
        left, top = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True).transform(w, n)
        return (mx - left) / mpp_x - (xs.mean() + 0.5), (top - my) / mpp_x - (ys.mean() + 0.5)

    under = rasterview.render_underlay(tif, tmp_path / "gen", "/g")
    assert under["url"].startswith("/g/underlay_") and max(under["width"], under["height"]) == rasterview.UNDERLAY_PX
    view_b = [[lat - 0.002, lon - 0.003], [lat + 0.002, lon + 0.003]]
    view = rasterview.render_view(tif, view_b, 18, tmp_path / "gen", "/g", underlay=under)
    assert view is not None and view["url"].startswith("/g/views/view_") and view["format"] == "jpg"
    dx, dy = dot_in(view, rasterview.mpp_at_zoom(18))
    assert abs(dx) < 1.0 and abs(dy) < 1.0, (dx, dy)
    # zoomed out, the underlay shows as much as a view would: no view image
    assert rasterview.render_view(tif, view_b, 13, tmp_path / "gen", "/g", underlay=under) is None
    # the same view again: the cached file, not a new render
    again = rasterview.render_view(tif, view_b, 18, tmp_path / "gen", "/g", underlay=under)
    assert again == view


def test_a_view_reads_only_its_window(tmp_path, monkeypatch):
    """Without overviews, zoomed-out views of a big raster are refused (they would read it whole); zoomed in they render."""
    from gis.maps import rasterview

    tif, _ = make_tif(tmp_path / "raw.tif", size=(5000, 4200), pixel=1.0, epsg=4528)
    info = rasterview.raster_info(tif)
    (s, w), (n, e) = info.bounds
    c = [(s + n) / 2, (w + e) / 2]
    whole = [[s - 0.01, w - 0.01], [n + 0.01, e + 0.01]]  # a 1200-px map at zoom 14 sees all of it
    assert rasterview.render_view(tif, whole, 14, tmp_path / "gen", "/g") is None
    view = [[c[0] - 0.003, c[1] - 0.004], [c[0] + 0.003, c[1] + 0.004]]
    t = time.perf_counter()
    out = rasterview.render_view(tif, view, 18, tmp_path / "gen", "/g")
    assert out is not None and time.perf_counter() - t < 1.5


def test_the_view_group_and_returned_bounds(tmp_path):
    tif, _ = make_tif(tmp_path / "dom.tif", size=(800, 600), pixel=2.0)
    s = settings(tmp_path, orthophoto=tif)
    b = resolve_basemap(BasemapChoice(kind="orthophoto"), s)
    under = raster_underlay(b, tmp_path / "gen")
    assert under["attribution"] == "正射影像：dom" and (under["width"], under["height"]) >= (800, 600)
    assert not wants_view_updates(b, under)  # a small raster is its own underlay, at full resolution
    assert returned_view(None) is None and returned_view({"bounds": {"_southWest": {"lat": None}}}) is None
    rv = returned_view({"bounds": {"_southWest": {"lat": 37.40, "lng": 121.30},
                                   "_northEast": {"lat": 37.41, "lng": 121.32}}, "zoom": 17})
    assert rv == ([[37.40, 121.30], [37.41, 121.32]], 17.0)
    img = view_image(b, rv, None, tmp_path / "gen")
    assert img is not None and view_image(b, None, None, tmp_path / "gen") is None
    # a small pan within the image's margin keeps it; another zoom does not
    panned = ([[37.401, 121.301], [37.411, 121.321]], 17.0)
    assert view_image(b, panned, None, tmp_path / "gen", previous=img) is img
    assert view_image(b, (panned[0], 18.0), None, tmp_path / "gen", previous=img) is not img
    fg = view_group(img)
    assert fg is not None and view_group(None) is None
    m = build_map({}, None, _catalog())
    fg.add_to(m)
    html = map_html(m)
    assert "L.imageOverlay" in html and "/app/static/generated/views/view_" in html and "ratlasBasemap" in html


def _catalog():
    from gis.model.pipelines import load_catalog

    return load_catalog()


# ----------------------------------------------------------------------------- exports

def test_export_basemap_follows_the_terms(tmp_path):
    tif, _ = make_tif(tmp_path / "dom.tif")
    s = settings(tmp_path, orthophoto=tif, tianditu_key=KEY)
    assert export_basemap(s, BasemapChoice(kind="orthophoto")).raster == tif.resolve()
    assert export_basemap(s, BasemapChoice(kind="raster")).raster is not None
    t = export_basemap(s, BasemapChoice(kind="tianditu_img"))
    assert t.raster is None and len(t.tiles) == 2 and "天地图" in t.attribution
    for kind in ("none", "amap_road", "amap_sat", "custom"):
        assert export_basemap(s, BasemapChoice(kind=kind, url="http://gs/{z}/{x}/{y}.png")) is None, kind
    assert export_basemap(settings(tmp_path), BasemapChoice(kind="tianditu_img")) is None  # no key
    bg = export_basemap(s, BasemapChoice(kind="orthophoto")).background(
        _gk_box(), 4549, 200, 150)
    assert bg is not None and bg.image.shape[:2] == (150, 200)


def _gk_box():
    from pyproj import Transformer

    x, y = Transformer.from_crs("EPSG:4490", "EPSG:4549", always_xy=True).transform(X0 + 0.005, Y0 + 0.01)
    return (x, y, x + 800, y + 600)


class _Tiles(http.server.BaseHTTPRequestHandler):
    """PNG tiles coloured by their path; ``/bad/...`` answers an HTML error page (a wrong key)."""

    def do_GET(self):  # noqa: N802
        import io

        from PIL import Image

        if self.path.startswith("/bad/"):
            body, kind = b"<html>invalid key</html>", "text/html"
        else:
            shade = int(hashlib.md5(self.path.encode()).hexdigest()[:2], 16)
            buf = io.BytesIO()
            Image.new("RGB", (256, 256), (shade, 128, 255 - shade)).save(buf, "PNG")
            body, kind = buf.getvalue(), "image/png"
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


@pytest.fixture
def tile_server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Tiles)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


def test_tiles_for_an_export_page_are_fetched_mosaicked_and_warped(tile_server):
    src = ExportBasemap(kind="tianditu_img", label="", attribution="",
                        tiles=(TileSource(url=tile_server + "/{z}/{x}/{y}.png", subdomains=""),))
    bg = src.background(_gk_box(), 4549, 400, 300)
    assert bg is not None and bg.image.shape[:2] == (300, 400)
    assert bg.image[..., :3].std() > 0  # several tiles, several colours
    box = _gk_box()
    assert bg.extent == (box[0], box[2], box[1], box[3])


def test_unreachable_or_refusing_tile_servers_give_no_background_quickly(tile_server):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = sock.getsockname()[1]  # bound, never listening: refused at once
        for url in (f"http://127.0.0.1:{dead}/{{z}}/{{x}}/{{y}}.png", tile_server + "/bad/{z}/{x}/{y}.png"):
            src = ExportBasemap(kind="tianditu_img", label="", attribution="", tiles=(TileSource(url=url, subdomains=""),))
            t = time.perf_counter()
            assert src.background(_gk_box(), 4549, 400, 300) is None
            assert time.perf_counter() - t < 5


def test_a_briefing_page_prints_the_tile_basemap_and_names_its_source(tile_server, tiny_store, tmp_path):
    """Exports use the map's basemap where its terms allow: Tianditu tiles under the page's map, credited."""
    import subprocess

    from PIL import Image

    from gis.printing import briefing

    cfg = Settings.load(env={})
    tiles = ExportBasemap(kind="tianditu_img", label="天地图影像", attribution="天地图 · 国家地理信息公共服务平台",
                          tiles=(TileSource(url=tile_server + "/{z}/{x}/{y}.png", subdomains=""),))
    down = ExportBasemap(kind="tianditu_img", label="天地图影像", attribution="天地图 · 国家地理信息公共服务平台",
                         tiles=(TileSource(url=tile_server + "/bad/{z}/{x}/{y}.png", subdomains=""),))

    def page(name, raster):
        out = briefing.render_parcel_page(tiny_store, "V01-001", tmp_path / f"{name}.png", raster=raster,
                                          settings=cfg, dpi=60)
        pdf = briefing.render_parcel_page(tiny_store, "V01-001", tmp_path / f"{name}.pdf", raster=raster,
                                          settings=cfg)
        text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True).stdout
        return np.asarray(Image.open(out).convert("RGB")).astype(int), re.sub(r"\s+", "", text)

    plain_img, plain_text = page("none", None)
    tiled_img, tiled_text = page("tiles", tiles)
    down_img, down_text = page("down", down)
    assert "天地图·国家地理信息公共服务平台" in tiled_text and "天地图" not in plain_text
    assert "底图（天地图影像）无法获取" in down_text  # said on the page, which is still made
    h, w, _ = plain_img.shape
    area = (slice(int(h * 0.2), int(h * 0.8)), slice(int(w * 0.05), int(w * 0.5)))  # inside the main map
    assert np.abs(tiled_img[area] - plain_img[area]).mean() > 10  # the tiles show through the parcels
    assert np.abs(down_img[area] - plain_img[area]).mean() < 1


# ----------------------------------------------------------------------------- the picker (AppTest)

@pytest.fixture
def app(tmp_path, monkeypatch):
    """The app on a private copy of the demo, with an orthophoto configured and no Tianditu key."""
    import shutil

    import streamlit as st
    from streamlit.testing.v1 import AppTest

    shutil.copy(ROOT / "data" / "parcels" / "demo.gpkg", tmp_path / "renewal.gpkg")
    tif, _ = make_tif(tmp_path / "dom.tif", size=(800, 600), pixel=2.0)
    monkeypatch.setenv("RENEWAL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("RENEWAL_ORTHOPHOTO", str(tif))
    for k in ("RENEWAL_STORE", "RENEWAL_LANG", "RENEWAL_BASEMAP", "RENEWAL_TIANDITU_KEY", "RENEWAL_CONFIG"):
        monkeypatch.delenv(k, raising=False)
    st.cache_resource.clear()
    st.cache_data.clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    at.data_dir = tmp_path
    yield at
    st.cache_resource.clear()
    st.cache_data.clear()


def _picker(at):
    return next(s for s in at.sidebar.selectbox if s.label == "底图")


def test_picking_a_basemap_is_remembered_for_the_user(app):
    app.session_state["user"] = "viewer"
    app.run()
    assert not app.exception, app.exception
    assert _picker(app).value == "raster"
    _picker(app).set_value("tianditu_img").run()
    assert not app.exception, app.exception
    assert any("RENEWAL_TIANDITU_KEY" in w.value for w in app.sidebar.warning)  # no key: said on the server
    assert app.query_params["basemap"] == "tianditu_img"  # mirrored in the address
    kept = open_store_at(app.data_dir / "renewal.gpkg")  # the app keeps it in its store, for every server
    assert load_choice(Settings.load(), "viewer", kept).kind == "tianditu_img"
    assert load_choice(Settings.load(), "admin", kept).kind == "raster"
    assert not (app.data_dir / "preferences.json").exists()


def test_only_admins_type_orthophoto_paths(app):
    app.session_state["user"] = "viewer"
    app.run()
    _picker(app).set_value("orthophoto").run()
    assert not app.exception, app.exception
    assert not [t for t in app.sidebar.text_input if t.label.startswith("正射影像路径")]
    assert any("正射影像：dom" in c.value for c in app.sidebar.caption)  # the configured one
    app.session_state["user"] = "admin"
    app.run()
    assert [t for t in app.sidebar.text_input if t.label.startswith("正射影像路径")]


def test_another_user_signing_in_gets_their_own_basemap(app):
    kept = open_store_at(app.data_dir / "renewal.gpkg")
    save_choice(Settings.load(), "admin", BasemapChoice(kind="none"), kept)
    app.session_state["user"] = "viewer"
    app.run()
    _picker(app).set_value("amap_road").run()
    app.session_state["user"] = "admin"  # signs in in the same browser session
    app.run()
    assert not app.exception, app.exception
    assert _picker(app).value == "none"
    app.session_state["user"] = "editor_north"  # nothing stored: keeps what is shown, now remembered for them
    app.run()
    assert _picker(app).value == "none" and load_choice(Settings.load(), "editor_north", kept).kind == "none"


def test_the_export_page_prints_the_basemap_chosen_for_the_map(app):
    app.session_state["user"] = "viewer"
    app.run()

    def export_choice():
        app.switch_page("ui/export_page.py").run()
        assert not app.exception, app.exception
        box = app.checkbox(key="export_raster")
        label, disabled = box.label, box.disabled
        app.switch_page("ui/map_page.py").run()
        return label, disabled

    _picker(app).set_value("orthophoto").run()
    assert export_choice() == ("以底图为背景：正射影像（GeoTIFF 路径）", False)
    _picker(app).set_value("amap_road").run()  # AMap's terms keep it off paper: the configured imagery instead
    assert export_choice() == ("以底图为背景：本地影像（设置中的 GeoTIFF）", False)
    _picker(app).set_value("none").run()
    assert export_choice() == ("以底图为背景：无底图", True)
