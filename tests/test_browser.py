"""The real thing: `streamlit run app.py` on localhost, driven by Debian's headless Chromium,
with every request to a non-localhost address blocked (an intranet with no internet)."""
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
from tests.conftest import map_frame as _map_frame
from tests.conftest import poll, sign_in

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "data" / "parcels" / "demo.gpkg"

pytestmark = [pytest.mark.browser]


@pytest.fixture(scope="module", params=["gpkg", "postgis"])
def server(request, tmp_path_factory):
    """A Streamlit server on a private copy of the demo district, on each back end."""
    work = tmp_path_factory.mktemp("app")
    env = {}
    if request.param == "gpkg":
        shutil.copy(DEMO, work / "renewal.gpkg")
        where = str(work / "renewal.gpkg")
    else:
        from tests.conftest import pg_database

        where = pg_database(request.getfixturevalue("pg_server"), "browser_demo",
                            template=request.getfixturevalue("pg_demo_template"))
        env["RENEWAL_DATABASE_URL"] = where
    with running_app(work, env) as app:
        yield {"url": app["url"], "store": where, "work": work, "log": app["log"]}


def _open_parcel(page, code, geom):
    """Find a parcel by its code (the map zooms to it) and click it on the map."""
    pt = shapely.point_on_surface(geom)
    box_input = page.get_by_label("搜索名称或编号")
    box_input.fill(code)
    box_input.press("Enter")
    page.get_by_text("符合条件的地块：1 个").wait_for(timeout=30000)
    deadline = time.time() + 30
    zoom = None
    while True:  # until the re-rendered map has zoomed to the parcel and stays put
        assert time.time() < deadline, f"map did not zoom to the parcel (zoom {zoom})"
        try:  # Streamlit may replace the map's iframe while it reruns: then look again
            frame = _map_frame(page)
            zoom = frame.evaluate("() => window.map.getZoom()")
            inside = frame.evaluate(f"() => window.map.getBounds().contains([{pt.y}, {pt.x}])")
            if zoom >= 15 and inside:
                page.wait_for_timeout(800)
                xy = frame.evaluate(f"() => {{ const p = window.map.latLngToContainerPoint([{pt.y}, {pt.x}]);"
                                    " return [p.x, p.y]; }")
                break
        except PlaywrightError:
            pass
        page.wait_for_timeout(300)
    box = _iframe_box(page)
    page.mouse.click(box["x"] + xy[0], box["y"] + xy[1])


def _iframe_box(page):
    return page.locator("iframe[title*='st_folium']").first.bounding_box()


def test_map_shows_the_district_offline_and_a_click_advances_a_parcel(server, page):
    sign_in(page, server["url"], "editor_north", "renewal-north")
    frame = _map_frame(page)
    n_paths = frame.evaluate("() => document.querySelectorAll('path.leaflet-interactive').length")
    assert n_paths > 2000  # village parcels and the rest
    # Leaflet came from the app itself, not a CDN
    assert frame.evaluate("() => typeof L === 'object' && L.version.startsWith('1.')")
    page.wait_for_timeout(1500)
    shot_dir = Path(os.environ.get("RENEWAL_SCREENSHOTS", server["work"]))
    shot_dir.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shot_dir / "map.png"))

    # a parcel at 'signing' in one of editor_north's villages: found by code, clicked, advanced
    store = open_store_at(server["store"])
    p = store.parcels(kind="village", zone="north", stage="signing", blocked=False).iloc[0]
    code = p["code"]
    _open_parcel(page, code, p.geometry)
    page.get_by_role("heading", name=p["name"]).wait_for(timeout=30000)
    page.get_by_text("签约").filter(visible=True).first.wait_for(timeout=10000)
    page.get_by_role("tab", name="操作").click()  # the panel's forms are in its third tab
    page.get_by_role("button", name="提交").wait_for(timeout=30000)
    fetched = _map_frame(page, 30, 1).evaluate("() => performance.getEntriesByType('resource')"
                                           ".filter(e => e.name.includes('/generated/layers/')).length")
    page.get_by_role("button", name="提交").click()
    page.get_by_text(f"已将 {code} 推进到“拆除”").wait_for(timeout=30000)
    # the map the browser holds recolours the parcel from a small patch: no new layer file is fetched
    feature = (f"() => {{ let p = null; window.map.eachLayer(l => {{ if (l.feature && l.feature.properties.code"
               f" === {code!r} && l.feature.properties.phase) p = [l.feature.properties.stage, l.options.fillColor]; }});"
               " return p; }")
    assert poll(lambda: (_map_frame(page, 30, 1).evaluate(feature) or [None])[0] == "demolition", 30)
    frame = _map_frame(page, 30, 1)
    assert frame.evaluate(feature)[1] == store.catalog.phase_of("village", "demolition").color  # restyled
    assert frame.evaluate("() => performance.getEntriesByType('resource')"
                          ".filter(e => e.name.includes('/generated/layers/')).length") == fetched
    page.get_by_role("tab", name="变更记录").click()
    page.get_by_text("签约 → 拆除").wait_for(timeout=30000)  # the history table, every column in view
    page.wait_for_timeout(1500)
    page.screenshot(path=str(shot_dir / "panel.png"))
    after = open_store_at(server["store"]).parcel(code)
    assert after["stage"] == "demolition" and after["updated_by"] == "editor_north"

    # a parcel of a southern village: the panel says read-only and offers no form
    q = store.parcels(kind="village", zone="south", stage="signing", blocked=False).iloc[0]
    _open_parcel(page, q["code"], q.geometry)
    page.get_by_role("heading", name=q["name"]).wait_for(timeout=30000)
    page.get_by_role("tab", name="操作").click()
    page.get_by_text("您无权修改此地块").wait_for(timeout=10000)
    # no form the store would refuse (the previous panel's form may linger while the page reruns)
    assert poll(lambda: page.get_by_role("button", name="提交").count() == 0, 15)
    assert open_store_at(server["store"]).parcel(q["code"])["stage"] == "signing"
    assert page.blocked == [], page.blocked


def test_village_board_opens_a_village_on_the_map(server, page):
    sign_in(page, server["url"], "viewer", "renewal-viewer")
    _map_frame(page)
    page.get_by_role("link", name="旧村改造进度").click()  # a reload would start a new, signed-out session
    page.get_by_text("30个旧村改造进度").wait_for(timeout=30000)
    page.wait_for_timeout(2500)
    shot_dir = Path(os.environ.get("RENEWAL_SCREENSHOTS", server["work"]))
    page.screenshot(path=str(shot_dir / "board.png"), full_page=True)
    # selecting a village's row opens the map filtered to that village
    grid = page.locator("[data-testid='stDataFrame']").first
    box = grid.bounding_box()
    page.mouse.click(box["x"] + 16, box["y"] + 35 + 35 * 2 + 17)  # the row-selection cell of the 3rd village
    page.get_by_text("符合条件的地块：").wait_for(timeout=30000)
    frame = _map_frame(page)
    page.wait_for_timeout(500)
    assert frame.evaluate("() => window.map.getZoom()") >= 14
    assert page.blocked == [], page.blocked


def test_a_reload_keeps_the_planner_signed_in_until_they_sign_out(server, page):
    sign_in(page, server["url"], "viewer", "renewal-viewer")
    _map_frame(page)
    assert poll(lambda: any(c["name"] == "renewal_session" for c in page.context.cookies()))
    page.reload(wait_until="domcontentloaded")
    page.get_by_text("当前用户：查看者").first.wait_for(timeout=30000)  # signed in again, not the login form
    _map_frame(page)
    page.get_by_role("button", name="退出登录").click()
    page.get_by_label("用户名").wait_for(timeout=30000)
    assert poll(lambda: not any(c["name"] == "renewal_session" for c in page.context.cookies()))
    page.reload(wait_until="domcontentloaded")
    page.get_by_label("用户名").wait_for(timeout=30000)  # signed out stays signed out
    assert page.blocked == [], page.blocked
