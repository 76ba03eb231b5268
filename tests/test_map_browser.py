"""The map page in a real Chromium at desktop (1,400×900) and phone (390×844) size, on both back ends:
a click picks only what is drawn, and the layer groups and the view survive the rerun a click causes
(the panel opening beside or below the map mounts a new map)."""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
import shapely
from playwright.sync_api import Error as PlaywrightError

from gis.devtools.devserver import running_app
from gis.store.open import open_store_at
from tests.conftest import local_only_page, map_frame, poll, screenshot_dir, set_view, sign_in

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "data" / "parcels" / "demo.gpkg"
VIEWPORTS = {"desktop": (1400, 900), "phone": (390, 844)}

pytestmark = [pytest.mark.browser, pytest.mark.filterwarnings("ignore:Geometry is in a geographic CRS")]


@pytest.fixture(scope="module", params=["gpkg", "postgis"])
def server(request, tmp_path_factory):
    """A Streamlit server on a private copy of the demo district, on each back end."""
    work = tmp_path_factory.mktemp("mapapp")
    env = {}
    if request.param == "gpkg":
        shutil.copy(DEMO, work / "renewal.gpkg")
        where = str(work / "renewal.gpkg")
    else:
        from tests.conftest import pg_database

        where = pg_database(request.getfixturevalue("pg_server"), "map_browser_demo",
                            template=request.getfixturevalue("pg_demo_template"))
        env["RENEWAL_DATABASE_URL"] = where
    with running_app(work, env) as app:
        yield {"url": app["url"], "store": where, "work": work}


@pytest.fixture(params=list(VIEWPORTS))
def sized_page(request, browser):
    """A page of the viewport's size whose requests may only reach localhost (the others are recorded)."""
    width, height = VIEWPORTS[request.param]
    ctx, pg = local_only_page(browser, viewport={"width": width, "height": height})
    pg.size_name = request.param
    yield pg
    ctx.close()


def settled(page, timeout=30):
    """Wait until the app has finished its run (Streamlit's running indicator gone)."""
    page.wait_for_timeout(400)
    assert poll(lambda: page.locator("[data-testid='stStatusWidget']").count() == 0, timeout), "the app kept running"


def search(page, text):
    """Type into the sidebar's search box (the sidebar opened first on a phone, closed after)."""
    expand = page.locator("[data-testid='stExpandSidebarButton']")
    phone = expand.count() > 0 and expand.first.is_visible()
    if phone:
        expand.first.click()
    box = page.get_by_label("搜索名称或编号")
    box.fill(text)
    box.press("Enter")
    page.get_by_text("符合条件的地块：1 个").wait_for(timeout=30000)
    if phone:
        page.locator("[data-testid='stSidebarCollapseButton'] button, [data-testid='stSidebarCollapseButton']").first.click()
        page.wait_for_timeout(500)


def screen_xy(page, frame, lat, lon):
    """Page coordinates of a map location (the map must show it), the map scrolled into view."""
    page.locator("iframe[title*='st_folium']").first.scroll_into_view_if_needed()
    x, y = frame.evaluate(f"() => {{ const p = window.map.latLngToContainerPoint([{lat}, {lon}]); return [p.x, p.y]; }}")
    box = page.locator("iframe[title*='st_folium']").first.bounding_box()
    return box["x"] + x, box["y"] + y


def zoomed_to(page, pt, timeout=30):
    """The map frame once it has zoomed in on ``pt`` (after a search: a new map fits the result)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            frame = map_frame(page, min_paths=1)
            if frame.evaluate("() => window.map.getZoom()") >= 15 and frame.evaluate(
                    f"() => window.map.getBounds().contains([{pt.y}, {pt.x}])"):
                return frame
        except PlaywrightError:  # the iframe was replaced while the app reran
            pass
        page.wait_for_timeout(300)
    raise AssertionError("the map did not zoom to the result")


def mark(frame):
    """Mark the map in view as seen: :func:`kept` checks that it is still the one shown."""
    frame.evaluate("() => { window.__seen = true; }")


def kept(page, hidden=None, timeout=30):
    """The map frame once the page has settled with the same map :func:`mark` saw (opening or closing the
    panel leaves the map where it is: no new map, no reload), with ``hidden`` switched off."""
    def ready():
        try:
            fr = map_frame(page, min_paths=1)
            shown = fr.evaluate("() => window.__seen && window.map._ratlasToken ? RenewalAtlas.shownGroups(window.map)"
                                " : null")
        except (PlaywrightError, AssertionError):
            return None
        return fr if shown and (hidden is None or shown.get(hidden) is False) else None
    frame = poll(ready, timeout)
    assert frame, "the map was replaced, or lost the planner's state"
    return frame


def assert_view(frame, zoom, lat, lon):
    assert frame.evaluate("() => window.map.getZoom()") == zoom
    c = frame.evaluate("() => { const c = window.map.getCenter(); return [c.lat, c.lng]; }")
    assert abs(c[0] - lat) < 0.0015 and abs(c[1] - lon) < 0.0015, (c, lat, lon)


def test_clicks_pick_only_drawn_parcels_and_the_map_keeps_its_layers_and_view(server, sized_page):
    page = sized_page
    page.goto(server["url"], wait_until="domcontentloaded")
    page.get_by_label("用户名").fill("viewer")
    page.get_by_label("密码").fill("renewal-viewer")
    page.get_by_role("button", name="登录").click()
    map_frame(page)

    store = open_store_at(server["store"])
    villages = store.parcels(kind="village", zone="north")
    target = villages.iloc[0]
    others = villages[villages["code"] != target["code"]]
    # a neighbour close enough to be in the view once the map has zoomed to the target
    near = others[others.geometry.distance(target.geometry) < 0.0008]  # degrees: a few tens of metres
    neighbour = near.iloc[0]
    pt, npt = shapely.point_on_surface(target.geometry), shapely.point_on_surface(neighbour.geometry)

    search(page, target["code"])
    frame = zoomed_to(page, pt)
    settled(page)
    # 1. a click on the neighbour, filtered out and not drawn, opens nothing
    if not frame.evaluate(f"() => window.map.getBounds().contains([{npt.y}, {npt.x}])"):
        set_view(frame.evaluate, (pt.y + npt.y) / 2, (pt.x + npt.x) / 2, 16)
    page.mouse.click(*screen_xy(page, frame, npt.y, npt.x))
    assert poll(lambda: frame.evaluate("() => !!(window.__GLOBAL_DATA__.previous_data || {}).last_clicked")), \
        "the click was not reported"
    settled(page)
    page.wait_for_timeout(1500)
    assert page.get_by_role("heading", name=neighbour["name"]).count() == 0
    assert page.get_by_text("点击地图上的地块查看详情").count() == 1  # no panel open

    # 2. a click on the parcel opens its panel beside the same map (not a new one): the fitted view stays
    view = frame.evaluate("() => [window.map.getZoom(), window.map.getCenter().lat, window.map.getCenter().lng]")
    mark(frame)
    page.mouse.click(*screen_xy(page, frame, pt.y, pt.x))
    page.get_by_role("heading", name=target["name"]).wait_for(timeout=30000)
    settled(page)
    frame = kept(page)
    assert_view(frame, *view)

    # 3. two groups switched off, the map moved; the panel closed, the parcel clicked once more (and
    #    again): the same map throughout, the groups stay off, the view stays
    frame.locator(".leaflet-control-layers").hover()  # a folded switcher opens under the pointer
    for name in ("三大片区（北优、中融、南拓）", "行政区与海域"):
        frame.locator(".leaflet-control-layers-overlays label", has_text=name).locator("input").uncheck()
    assert frame.evaluate("() => RenewalAtlas.shownGroups(window.map)")["zones"] is False
    frame.evaluate("() => window.map.getContainer().dispatchEvent(new MouseEvent('mouseout'))")
    settled(page)
    zoom = int(frame.evaluate("() => window.map.getZoom()")) - 1
    set_view(frame.evaluate, pt.y, pt.x, zoom)
    page.wait_for_timeout(500)
    mark(frame)
    page.get_by_role("button", name="关闭").click()
    page.get_by_text("点击地图上的地块查看详情").wait_for(timeout=30000)
    settled(page)
    frame = kept(page, hidden="zones")
    assert_view(frame, zoom, pt.y, pt.x)
    mark(frame)
    page.mouse.click(*screen_xy(page, frame, pt.y, pt.x))
    page.get_by_role("heading", name=target["name"]).wait_for(timeout=30000)
    settled(page)
    frame = kept(page, hidden="zones")
    shown = frame.evaluate("() => RenewalAtlas.shownGroups(window.map)")
    assert shown["zones"] is False and shown["base"] is False and shown["villages"] is True
    assert_view(frame, zoom, pt.y, pt.x)
    unchecked = frame.evaluate("() => [...document.querySelectorAll('.leaflet-control-layers-overlays label')]"
                               ".filter(l => !l.querySelector('input').checked).map(l => l.textContent.trim())")
    assert sorted(unchecked) == sorted(["三大片区（北优、中融、南拓）", "行政区与海域"])
    # the layer switcher starts folded, off the 示例数据 mark
    assert frame.evaluate("() => !document.querySelector('.leaflet-control-layers-expanded')")
    badge = frame.locator(".ratlas-demo").bounding_box()
    switch = frame.locator(".leaflet-control-layers").bounding_box()
    assert badge["x"] + badge["width"] <= switch["x"] or badge["y"] + badge["height"] <= switch["y"]
    page.wait_for_timeout(800)
    shots = Path(os.environ.get("RENEWAL_SCREENSHOTS", server["work"]))
    shots.mkdir(parents=True, exist_ok=True)
    if page.size_name == "phone":  # the panel sits below the map: show the map's foot and the panel
        page.get_by_role("tab", name="概况").scroll_into_view_if_needed()
    page.screenshot(path=str(shots / f"map_panel_{page.size_name}.png"))
    assert page.blocked == [], page.blocked


@pytest.fixture
def desktop(browser):
    """A 1,400×900 page limited to localhost (the blocked requests recorded)."""
    ctx, pg = local_only_page(browser, viewport={"width": 1400, "height": 900})
    yield pg
    ctx.close()


def _parcels_geojson(path: Path) -> Path:
    """Three parcels inside the demo district, written in code."""
    import json

    x0, y0 = 121.30, 37.40
    feats = [{"type": "Feature", "properties": {"编号": f"T-{i}", "名称": f"测试地块{i}"},
              "geometry": shapely.geometry.mapping(shapely.box(x0 + i * 0.004, y0, x0 + i * 0.004 + 0.003, y0 + 0.003))}
             for i in range(3)]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": feats}, ensure_ascii=False), encoding="utf-8")
    return path


def test_board_audit_and_import_pages_fit_and_speak_the_users_language(server, desktop, tmp_path):
    page = desktop
    shots = Path(os.environ.get("RENEWAL_SCREENSHOTS", server["work"]))
    shots.mkdir(parents=True, exist_ok=True)
    page.goto(server["url"], wait_until="domcontentloaded")
    page.get_by_label("用户名").fill("admin")
    page.get_by_label("密码").fill("renewal-admin")
    page.get_by_role("button", name="登录").click()
    map_frame(page)

    # the board: the table fits 1,400 px (no horizontal scroll) and the chart names all 30 villages
    for lang in ("zh", "en"):
        if lang == "en":
            page.get_by_text("English").click()
            page.get_by_text("Progress of the 30 old villages").wait_for(timeout=30000)
        else:
            page.get_by_role("link", name="旧村改造进度").click()
            page.get_by_text("30个旧村改造进度").wait_for(timeout=30000)
        settled(page)
        page.wait_for_timeout(1500)
        grid = page.locator("[data-testid='stDataFrame']").first
        assert poll(lambda: grid.evaluate(
            "e => { const s = e.querySelector('.dvn-scroller'); return s && s.scrollWidth <= s.clientWidth + 1; }"), 10), \
            f"the board table scrolls sideways ({lang})"
        chart = page.locator("[data-testid='stVegaLiteChart']").first
        chart.scroll_into_view_if_needed()
        labels = poll(lambda: chart.evaluate(
            "e => [...e.querySelectorAll('g.role-axis-label text')].map(t => t.textContent)"), 10)
        villages = open_store_at(server["store"]).attributes("villages")
        names = {(v.get("name_en") if lang == "en" else None) or v["name"] for v in villages.values()}
        assert names <= set(labels), names - set(labels)
        page.locator("[data-testid='stMain']").evaluate("e => e.scrollTo(0, 0)")
        page.wait_for_timeout(300)
        page.screenshot(path=str(shots / f"board_1400_{lang}.png"))
    page.get_by_text("中文").first.click()
    page.get_by_text("30个旧村改造进度").wait_for(timeout=30000)

    # the audit page: Chinese headers and values, records counted in 条
    page.get_by_role("link", name="操作审计").click()
    page.get_by_text("条记录").first.wait_for(timeout=30000)
    settled(page)
    grid = page.locator("[data-testid='stDataFrame']").first
    def headers():
        return grid.evaluate("e => [...e.querySelectorAll('[role=columnheader]')].map(h => h.textContent.trim())")
    assert poll(lambda: {"时间", "操作人", "操作", "对象", "结果"} <= set(headers()), 15), headers()
    page.wait_for_timeout(800)
    page.screenshot(path=str(shots / "audit.png"))

    # the import page: the uploader in Chinese; the preview on land colour, with a metric scale
    page.get_by_role("link", name="数据导入导出").click()
    drop = page.locator("[data-testid='stFileUploaderDropzone']").first
    drop.wait_for(timeout=30000)
    def texts():
        return drop.evaluate("e => [...e.querySelectorAll('p, span')].map(x => getComputedStyle(x, '::after').content)")
    assert poll(lambda: any("每个文件不超过 300 MB" in t for t in texts()) and any("选择文件" in t for t in texts()),
                15), texts()
    assert drop.evaluate("e => getComputedStyle(e.querySelector('[data-testid=stFileUploaderDropzoneInstructions] span'))"
                         ".fontSize") == "0px"  # the English line is not shown
    page.locator("[data-testid='stFileUploaderDropzoneInput']").first.set_input_files(
        str(_parcels_geojson(tmp_path / "地块.geojson")))
    page.get_by_role("button", name="检查并预览").click()
    page.get_by_text("预览地图").wait_for(timeout=60000)
    settled(page)
    frame = poll(lambda: next((f for f in page.frames if _has_preview(f)), None), 30)
    assert frame, "no preview map"
    assert frame.evaluate("() => getComputedStyle(window.map.getContainer()).backgroundColor") == "rgb(242, 239, 233)"
    def scale_lines():
        return frame.evaluate("() => [...document.querySelectorAll('.leaflet-control-scale-line')].map(e => e.textContent)")
    scale = poll(scale_lines, 10)
    assert len(scale) == 1 and scale[0].endswith("m") and "mi" not in scale[0] and "ft" not in scale[0], scale
    page.wait_for_timeout(800)
    page.locator("[data-testid='stMain']").evaluate("e => e.scrollTo(0, e.scrollHeight)")
    page.wait_for_timeout(500)
    page.screenshot(path=str(shots / "import_preview.png"))
    assert page.blocked == [], page.blocked


def _has_preview(frame) -> bool:
    try:
        return bool(frame.evaluate("() => !!window.map && !!window.RenewalAtlas && !document.querySelector('.ratlas-demo')"))
    except PlaywrightError:
        return False


def test_tooltips_stay_inside_the_map_and_legends_fold(browser, tiny_gpkg, tmp_path):
    """A zone's tooltip near any edge of the map opens on the side that keeps it in view; on a small map
    the stage legend starts folded to its title, and a click opens it."""
    from gis.maps.mapview import build_map

    m = build_map(tiny_gpkg.context(), tiny_gpkg.parcels(), tiny_gpkg.catalog)
    html = m.get_root().render().replace("/app/static/", (ROOT / "static").as_uri() + "/")
    (tmp_path / "m.html").write_text(html, encoding="utf-8")
    for size, folded in (((900, 600), False), ((380, 520), True)):
        page = browser.new_page(viewport={"width": size[0], "height": size[1]})
        try:
            page.goto((tmp_path / "m.html").as_uri())
            page.wait_for_function("() => window.RenewalAtlas && document.querySelector('path.leaflet-interactive')")
            # zoomed in on the zones' border: the zones cover the whole map, to every edge
            the_map = "Object.values(window).find(v => v instanceof L.Map)"
            set_view(page.evaluate, 37.41, 121.31, int(page.evaluate(f"() => {the_map}.getZoom()")) + 2, the_map)
            page.wait_for_timeout(300)
            box = page.locator(".leaflet-container").bounding_box()
            for fx, fy in ((0.5, 0.03), (0.03, 0.3), (0.97, 0.3), (0.9, 0.16), (0.5, 0.8), (0.6, 0.97)):  # clear of controls
                x, y = box["x"] + box["width"] * fx, box["y"] + box["height"] * fy
                page.mouse.move(x - 4, y - 4)
                page.mouse.move(x, y)
                page.mouse.move(x + 1, y + 1)
                tip = page.locator(".ratlas-tooltip").first
                assert poll(lambda: tip.count() and tip.is_visible(), 5), (size, fx, fy)
                page.wait_for_timeout(100)
                r = tip.bounding_box(timeout=3000)
                assert r["x"] >= box["x"] - 1 and r["y"] >= box["y"] - 1, (fx, fy, r)
                assert r["x"] + r["width"] <= box["x"] + box["width"] + 1, (fx, fy, r)
            legend = page.locator(".ratlas-legend").first
            assert ("ratlas-folded" in (legend.get_attribute("class") or "")) is folded
            page.locator(".ratlas-legend-title").first.click()
            assert ("ratlas-folded" in (legend.get_attribute("class") or "")) is not folded
        finally:
            page.close()


PARCELS_DRAWN = ("() => { const out = []; window.map.eachLayer(l => { if (l.feature && l.feature.properties.kind)"
                 " out.push(l.feature.properties.code); }); return out; }")
LAYER_FILES = "() => performance.getEntriesByType('resource').filter(e => e.name.includes('/generated/layers/')).length"


def _tooltip_over(page, frame, lat, lon, tries=12) -> str:
    """The tooltips' text with the pointer on a map location (moved a frame apart, until one shows)."""
    x, y = screen_xy(page, frame, lat, lon)
    shown = ""
    for _ in range(tries):
        page.mouse.move(x - 3, y - 3)
        page.wait_for_timeout(60)
        page.mouse.move(x, y)
        page.wait_for_timeout(150)
        shown = " ".join(frame.locator(".ratlas-tooltip").all_inner_texts())
        if shown:
            return shown
    return shown


def test_a_filter_hides_and_fits_on_the_map_the_browser_holds(server, desktop):
    """Issue 19: a filter sends its result to the map the browser already holds (filter_group): the other
    parcels are hidden (no tooltip, no click), the view fits the result, no layer file is fetched again and
    the Leaflet map is the same object; later reruns keep the planner's view; cleared, every parcel is back."""
    page = desktop
    sign_in(page, server["url"], "viewer", "renewal-viewer")
    frame = map_frame(page, min_paths=2000)
    settled(page)
    every = sorted(frame.evaluate(PARCELS_DRAWN))
    assert len(every) > 2000
    frame.evaluate("() => { window.__mark = window.map; }")  # gone if the iframe or the map is replaced
    fetched = frame.evaluate(LAYER_FILES)
    assert fetched >= 1

    store = open_store_at(server["store"])
    villages = store.parcels(kind="village", zone="north")
    target = villages.iloc[3]
    near = villages[(villages["code"] != target["code"])
                    & (villages.geometry.distance(target.geometry) < 0.0008)].iloc[0]
    pt, npt = shapely.point_on_surface(target.geometry), shapely.point_on_surface(near.geometry)

    search(page, target["code"])
    assert poll(lambda: frame.evaluate(PARCELS_DRAWN) == [target["code"]], 30), "the other parcels stay drawn"
    assert poll(lambda: frame.evaluate(f"() => window.map.getZoom() >= 15 && window.map.getBounds()"
                                       f".contains([{pt.y}, {pt.x}])"), 30), "the view was not fitted"
    settled(page)
    assert frame.evaluate("() => window.__mark === window.map")  # the same iframe, the same Leaflet map
    assert frame.evaluate(LAYER_FILES) == fetched  # nothing fetched again
    # the hidden neighbour gives no tooltip (the village's own may show), the result does
    if not frame.evaluate(f"() => window.map.getBounds().contains([{npt.y}, {npt.x}])"):
        set_view(frame.evaluate, (pt.y + npt.y) / 2, (pt.x + npt.x) / 2, 16)
    assert near["code"] not in _tooltip_over(page, frame, npt.y, npt.x)
    assert target["code"] in _tooltip_over(page, frame, pt.y, pt.x)
    page.screenshot(path=str(screenshot_dir(server["work"]) / "map_filtered_desktop.png"))

    # the planner zooms out a step; a click opens the panel (a rerun with the same filter): the view stays
    zoom = int(frame.evaluate("() => window.map.getZoom()")) - 1
    set_view(frame.evaluate, pt.y, pt.x, zoom)
    page.wait_for_timeout(500)
    page.mouse.click(*screen_xy(page, frame, pt.y, pt.x))
    page.get_by_role("heading", name=target["name"]).wait_for(timeout=30000)
    settled(page)
    assert frame.evaluate("() => window.__mark === window.map")
    assert_view(frame, zoom, pt.y, pt.x)

    # the filter cleared: every parcel back, the view where the planner left it, still the same map
    expand = page.locator("[data-testid='stExpandSidebarButton']")
    assert not (expand.count() and expand.first.is_visible())  # desktop: the sidebar is open
    box = page.get_by_label("搜索名称或编号")
    box.fill("")
    box.press("Enter")
    assert poll(lambda: sorted(frame.evaluate(PARCELS_DRAWN)) == every, 30), "the parcels did not come back"
    settled(page)
    assert page.get_by_text("符合条件的地块：").count() == 0
    assert frame.evaluate("() => window.__mark === window.map")
    assert frame.evaluate(LAYER_FILES) == fetched
    assert_view(frame, zoom, pt.y, pt.x)
    assert near["code"] in _tooltip_over(page, frame, npt.y, npt.x)
    assert page.blocked == [], page.blocked
