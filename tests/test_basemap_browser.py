"""Basemaps in a real browser: `streamlit run app.py` and Debian's headless Chromium, with every
request to a non-localhost address aborted and recorded (an intranet without internet).

The basemap is chosen per page load with ``?basemap=KIND``; the server has an
orthophoto (a synthetic 5,000 × 5,000 px GeoTIFF in EPSG:4528 with overviews)
and a made-up Tianditu key, so Tianditu tiles are requested and fail.
"""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest
import shapely

from gis.base.gcj02 import wgs84_to_gcj02
from gis.devtools.devserver import running_app
from gis.store.store import Store
from tests.conftest import poll, set_view

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "data" / "parcels" / "demo.gpkg"
FAKE_KEY = "0123456789abcdef0123456789abcdef"

pytestmark = [pytest.mark.browser]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from bench.orthophoto import make_orthophoto
    from gis.maps.rasterview import build_overviews

    work = tmp_path_factory.mktemp("basemap_app")
    shutil.copy(DEMO, work / "renewal.gpkg")
    # bigger than a full-resolution underlay (4,096 px), so the map draws view images on pan
    dom = make_orthophoto(work / "dom_2025.tif", size=4400, pixel_m=1.4, epsg=4528)
    build_overviews(dom)
    with running_app(work, {"RENEWAL_ORTHOPHOTO": str(dom), "RENEWAL_TIANDITU_KEY": FAKE_KEY}) as app:
        yield {"url": app["url"], "store": work / "renewal.gpkg", "dom": dom}


def _shots(server) -> Path:
    d = Path(os.environ.get("RENEWAL_SCREENSHOTS", server["store"].parent))
    d.mkdir(parents=True, exist_ok=True)
    return d


def _open(page, server, kind: str):
    """The map page with ``?basemap=kind``, signed in as the demo's viewer when the store has accounts."""
    page.goto(f"{server['url']}/?basemap={kind}", wait_until="domcontentloaded")
    deadline = time.time() + 60
    while time.time() < deadline:
        if page.get_by_label("用户名").count():
            page.get_by_label("用户名").fill("viewer")
            page.get_by_label("密码").fill("renewal-viewer")
            page.get_by_role("button", name="登录").click()
            break
        if _frame(page):
            break
        page.wait_for_timeout(300)
    return _map_frame(page)


def _frame(page, min_paths=20):
    for fr in page.frames:
        try:
            n = fr.evaluate("() => window.map && document.querySelectorAll('path.leaflet-interactive').length")
        except Exception:  # noqa: BLE001 -- frames come and go while Streamlit renders
            continue
        if n and n >= min_paths:
            return fr
    return None


def _map_frame(page, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        fr = _frame(page)
        if fr:
            return fr
        page.wait_for_timeout(300)
    raise AssertionError("the map never drew its polygons")


def _wait(page, fn, what: str, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = fn()
        if value:
            return value
        page.wait_for_timeout(250)
    raise AssertionError(f"timed out waiting for {what}")


_IMAGES = """() => Array.from(document.querySelectorAll('img.leaflet-image-layer'))
    .map(i => ({src: i.getAttribute('src'), w: i.naturalWidth, complete: i.complete}))"""


class _Map:
    """The map's frame, found once and found again only if Streamlit replaced it
    (searching every frame on each poll stalls for seconds on a loaded machine)."""

    def __init__(self, page):
        self.page, self.frame = page, _map_frame(page)

    def eval(self, js: str):
        try:
            return self.frame.evaluate(js)
        except Exception:  # noqa: BLE001 -- the frame was detached by a re-render
            self.frame = _map_frame(self.page)
            return self.frame.evaluate(js)

    def images(self, part: str) -> list[dict]:
        return [i for i in self.eval(_IMAGES) if part in (i["src"] or "") and i["w"] > 0]


def _images(frame) -> list[dict]:
    return frame.evaluate(_IMAGES)


def test_orthophoto_and_parcels_together_offline(server, page):
    _open(page, server, "orthophoto")
    m = _Map(page)
    under = _wait(page, lambda: m.images("underlay_"), "the orthophoto underlay")
    assert under[0]["src"].startswith("/app/static/generated/")
    # zoom to a parcel on the orthophoto: the view image at screen resolution replaces the underlay's pixels
    from gis.maps.rasterview import raster_info

    (s, w), (n, e) = raster_info(server["dom"]).bounds
    parcels = Store(server["store"]).parcels()
    on_dom = parcels[shapely.within(shapely.point_on_surface(parcels.geometry.values), shapely.box(w, s, e, n).buffer(-0.002))]
    assert len(on_dom), "the test orthophoto covers no parcel"
    pt = shapely.point_on_surface(on_dom.geometry.iloc[0])
    set_view(m.eval, pt.y, pt.x, 17)
    views = _wait(page, lambda: m.images("/views/view_"), "the view-sized orthophoto image")
    assert views[0]["w"] >= 1000
    assert m.eval("() => window.map.getZoom()") >= 16.5
    assert m.eval("() => document.querySelectorAll('path.leaflet-interactive').length") > 0
    assert not m.eval("() => !!document.querySelector('.ratlas-basemap-notice')")
    page.mouse.move(5, 900)  # off the map: no tooltip in the picture
    page.wait_for_timeout(800)
    page.screenshot(path=str(_shots(server) / "orthophoto.png"))
    assert "dom_2025" in m.eval("() => document.querySelector('.leaflet-control-attribution').textContent")
    assert page.blocked == [], page.blocked


def test_tianditu_unreachable_shows_the_notice_and_the_data(server, page):
    _open(page, server, "tianditu_img")
    m = _Map(page)
    notice = _wait(page, lambda: m.eval(
        "() => { const n = document.querySelector('.ratlas-basemap-notice'); return n && n.offsetParent && n.textContent; }"),
        "the unreachable-basemap notice", timeout=20)
    assert "底图" in notice and "无法访问，已仅显示数据" in notice
    assert m.eval("() => document.querySelectorAll('path.leaflet-interactive').length") > 2000
    page.mouse.move(5, 900)
    page.wait_for_timeout(500)
    page.screenshot(path=str(_shots(server) / "basemap_unreachable.png"))
    # the browser did ask Tianditu (and only Tianditu) for tiles, with the key, and got nothing
    assert page.blocked and all(urlparse(u).hostname.endswith(".tianditu.gov.cn") for u in page.blocked)
    assert any(f"tk={FAKE_KEY}" in u for u in page.blocked)


@pytest.mark.parametrize("kind", ["none", "raster"])
def test_local_basemaps_request_nothing_outside(server, page, kind):
    frame = _open(page, server, kind)
    if kind == "raster":
        m = _Map(page)
        _wait(page, lambda: m.images("underlay_"), "the demo imagery")
    else:
        page.wait_for_timeout(1500)
        assert _images(frame) == []
    assert page.blocked == [], page.blocked


def test_click_round_trip_under_amap(server, page):
    """Over AMap the parcels are drawn in GCJ-02; clicking where one is drawn opens that parcel."""
    _open(page, server, "amap_road")
    m = _Map(page)
    p = Store(server["store"]).parcels(kind="village", stage="signing").iloc[0]
    pt = shapely.point_on_surface(p.geometry)
    glon, glat = wgs84_to_gcj02(pt.x, pt.y)
    set_view(m.eval, glat, glon, 17)
    # the parcel is drawn at its GCJ-02 place, ≈ 500 m from its true one
    drawn = poll(lambda: m.eval(f"""() => {{
        const pt = window.map.latLngToContainerPoint([{glat}, {glon}]);
        const el = document.elementFromPoint(pt.x, pt.y);
        return el && el.tagName.toLowerCase() === 'path' && el.classList.contains('leaflet-interactive');
    }}"""))
    assert drawn
    xy = m.eval(f"() => {{ const q = window.map.latLngToContainerPoint([{glat}, {glon}]); return [q.x, q.y]; }}")
    box = page.locator("iframe[title*='st_folium']").first.bounding_box()
    page.mouse.click(box["x"] + xy[0], box["y"] + xy[1])
    page.get_by_role("heading", name=p["name"]).wait_for(timeout=30000)
    assert page.blocked and all("autonavi.com" in urlparse(u).hostname for u in page.blocked)
