"""The overview, the quick find, the parcel table and a bulk advance in a real Chromium, at desktop
(1400×900) and phone (390×844) size, every non-localhost request blocked. Screenshots go to
``RENEWAL_SCREENSHOTS`` (the README's come from here)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import shapely

from gis.maps.area_select import parcels_in_area
from gis.store.open import open_store_at
from tests.conftest import local_only_page, poll, sign_in
from tests.conftest import map_frame as _map_frame
from tests.test_browser import server  # noqa: F401 -- the app on a demo copy, both back ends

pytestmark = [pytest.mark.browser]

SIZES = {"desktop": (1400, 900), "phone": (390, 844)}
# a village per size (each run advances its own parcels), in the zone of the editor who signs in
VILLAGES = {"desktop": ("V08", "editor_central", "renewal-central"), "phone": ("V05", "editor_north", "renewal-north")}


@pytest.fixture(params=list(SIZES))
def sized(request, browser):
    """A page of the size named by the parameter, limited to localhost like conftest's ``page``."""
    w, h = SIZES[request.param]
    ctx, pg = local_only_page(browser, viewport={"width": w, "height": h}, is_mobile=w < 500,
                              has_touch=False)
    pg.size = request.param
    yield pg
    ctx.close()


def _shot(server, page, name: str) -> Path:  # noqa: F811 -- the fixture's value, passed on
    d = Path(os.environ.get("RENEWAL_SCREENSHOTS", server["work"]))
    d.mkdir(parents=True, exist_ok=True)
    path = d / (name if page.size == "desktop" else name.replace(".png", "_phone.png"))
    page.screenshot(path=str(path))
    return path


def _sidebar(page, open_: bool) -> None:
    """On a phone the sidebar is a drawer: open or close it."""
    if page.size != "phone":
        return
    button = "stExpandSidebarButton" if open_ else "stSidebarCollapseButton"
    loc = page.locator(f'[data-testid="{button}"]')
    if loc.count() and loc.first.is_visible():
        loc.first.click()
        page.wait_for_timeout(600)


def _choose(page, label: str, text: str, option: str | None = None) -> None:
    """Type into a select box of the sidebar and pick the suggestion (the first, or ``option``)."""
    box = page.locator('[data-testid="stSelectbox"]').filter(has_text=label).last
    box.locator("input").click()
    page.keyboard.type(text)
    opts = page.get_by_role("option")
    opts.first.wait_for(timeout=10000)
    (page.get_by_role("option", name=option, exact=True) if option else opts.first).click()


def test_overview_shows_the_district_at_a_glance(server, sized):  # noqa: F811
    page = sized
    sign_in(page, server["url"], "viewer", "renewal-viewer")
    page.get_by_role("heading", name="城市更新一张图").wait_for(timeout=60000)
    _sidebar(page, True)
    page.get_by_role("link", name="总览").click()  # a reload would start a new session
    page.get_by_role("heading", name="全区城市更新总览").wait_for(timeout=30000)
    _sidebar(page, False)
    n = len(open_store_at(server["store"]).parcels(geometry=False))
    page.get_by_text(f"{n:,}", exact=True).first.wait_for(timeout=30000)
    # the progress, reason and latest-change tables (grids drawn on a canvas)
    assert poll(lambda: page.locator("[data-testid='stDataFrame']").count() >= 3, timeout=30)
    # the charts have drawn (altair renders into canvas or svg)
    assert poll(lambda: page.locator(".vega-embed").count() >= 3, timeout=30)
    page.wait_for_timeout(1500)
    _shot(server, page, "overview.png")
    page.get_by_role("heading", name="最新动态").scroll_into_view_if_needed()
    page.get_by_role("heading", name="卡点原因").wait_for(timeout=10000)
    assert page.blocked == [], page.blocked


def test_quick_find_table_and_a_bulk_advance(server, sized):  # noqa: F811
    page = sized
    village, user, password = VILLAGES[page.size]
    store = open_store_at(server["store"])
    due = store.parcels(village=village, stage="demolition", geometry=False)
    assert len(due) > 1
    sign_in(page, server["url"], user, password)
    _map_frame(page)
    _sidebar(page, True)
    _choose(page, "快速查找", village)  # the village is the first suggestion for its code
    page.get_by_text(f"地块列表（{len(store.parcels(village=village, geometry=False))} 个）").wait_for(timeout=30000)
    _choose(page, "阶段", "拆除", option="拆除")
    title = page.get_by_text(f"地块列表（{len(due)} 个）")
    title.wait_for(timeout=30000)
    _sidebar(page, False)
    title.scroll_into_view_if_needed()
    title.click()  # the list opens at a click (shut, it is not sent with the page)
    grid = page.locator("[data-testid='stDataFrame']").first
    grid.wait_for(timeout=30000)
    page.wait_for_timeout(1200)
    _shot(server, page, "parcel_table.png")

    # tick every row (the grid's header checkbox), then advance them together
    _click_grid_until(page, grid, 18, lambda: page.get_by_text(f"批量更新：已选 {len(due)} 个地块").count())
    submit = page.get_by_role("button", name=f"推进这 {len(due)} 个地块")
    submit.scroll_into_view_if_needed()
    target = page.locator('[data-testid="stSelectbox"]').filter(has_text="目标阶段").locator("input")
    assert target.input_value() == "清表"  # the next stage of them all, preselected
    page.wait_for_timeout(800)
    _shot(server, page, "bulk_advance.png")
    submit.click()
    page.get_by_text(f"已将 {len(due)} 个地块推进到“清表”").wait_for(timeout=60000)
    after = open_store_at(server["store"]).parcels(village=village, geometry=False).set_index("code")
    assert set(after.loc[list(due["code"]), "stage"]) == {"clearance"}
    assert set(after.loc[list(due["code"]), "updated_by"]) == {user}
    events = open_store_at(server["store"]).events()
    assert len(events[events["parcel"].isin(due["code"]) & (events["to_stage"] == "clearance")]) == len(due)
    assert page.blocked == [], page.blocked


@pytest.mark.parametrize("sized", ["desktop"], indirect=True)
def test_a_rectangle_drawn_on_the_map_selects_its_parcels(server, sized):  # noqa: F811
    page = sized
    sign_in(page, server["url"], "editor_central", "renewal-central")
    _map_frame(page)
    _choose(page, "快速查找", "V08")
    page.get_by_text("符合条件的地块：").wait_for(timeout=30000)
    frame = poll(lambda: next((f for f in page.frames if _draw_ready(f)), None), timeout=30)
    assert frame, "the rectangle tool never appeared"
    page.wait_for_timeout(1500)  # the map has zoomed to the village
    frame.locator(".leaflet-draw-draw-rectangle").click()
    box = page.locator("iframe[title*='st_folium']").first.bounding_box()
    x0, y0 = box["x"] + box["width"] * 0.35, box["y"] + box["height"] * 0.35
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x0 + 100, y0 + 80, steps=6)
    page.mouse.move(x0 + 220, y0 + 170, steps=6)
    page.mouse.up()
    page.get_by_text("框选了").first.wait_for(timeout=30000)
    s, w, n, e = frame.evaluate("() => { const b = window.drawnItems.getBounds();"
                                " return [b.getSouth(), b.getWest(), b.getNorth(), b.getEast()]; }")
    shown = open_store_at(server["store"]).parcels(village="V08")
    expected = parcels_in_area(shown, {"type": "Feature", "properties": {},
                                       "geometry": shapely.geometry.mapping(shapely.box(w, s, e, n))})
    assert expected
    page.get_by_text(f"框选了 {len(expected)} 个地块").wait_for(timeout=10000)
    page.get_by_text(f"批量更新：已选 {len(expected)} 个地块").wait_for(timeout=10000)
    page.wait_for_timeout(1000)
    assert page.get_by_role("button", name="关闭").count() == 0  # the click that ended the drawing opened no panel
    page.get_by_text("框选了").first.scroll_into_view_if_needed()
    page.mouse.move(box["x"] + box["width"] + 30, 450)  # beside the map: the wheel scrolls the page, not the map
    page.mouse.wheel(0, -420)  # the rectangle and the form in one view
    page.wait_for_timeout(1000)
    _shot(server, page, "area_select.png")
    assert page.blocked == [], page.blocked


def _draw_ready(frame) -> bool:
    try:
        return bool(frame.evaluate("() => !!window.map && document.querySelectorAll("
                                   "'.leaflet-draw-draw-rectangle').length === 1"))
    except Exception:  # noqa: BLE001 -- frames come and go while Streamlit renders
        return False


@pytest.mark.parametrize("sized", ["desktop"], indirect=True)
def test_ticking_one_row_of_the_table_opens_its_parcel(server, sized):  # noqa: F811
    page = sized
    parcels = open_store_at(server["store"]).parcels(village="V10", geometry=False).sort_values("code")
    second = parcels.iloc[1]
    sign_in(page, server["url"], "viewer", "renewal-viewer")
    _map_frame(page)
    _choose(page, "快速查找", "V10")
    title = page.get_by_text(f"地块列表（{len(parcels)} 个）")
    title.wait_for(timeout=30000)
    title.scroll_into_view_if_needed()
    title.click()  # the list opens at a click
    grid = page.locator("[data-testid='stDataFrame']").first
    grid.wait_for(timeout=30000)
    page.wait_for_timeout(1000)
    heading = page.get_by_role("heading", name=second["name"])
    _click_grid_until(page, grid, 35 + 35 + 17, heading.count)  # the row-selection cell of the second row
    page.get_by_role("button", name="关闭").wait_for(timeout=10000)
    assert page.blocked == [], page.blocked


def _click_grid_until(page, grid, dy: int, done) -> None:
    """Click the grid's selection column at ``dy`` below its top until ``done()``: a click that lands
    while the grid still draws is lost, and one more would undo a click that the page is still
    answering, so each click gets its time."""
    for _ in range(3):
        grid.scroll_into_view_if_needed()
        box = grid.bounding_box()
        page.mouse.click(box["x"] + 18, box["y"] + dy)
        if poll(done, timeout=12):
            return
    page.screenshot(path=str(Path(os.environ.get("RENEWAL_SCREENSHOTS", "/tmp")) / "grid_click_failed.png"))
    raise AssertionError("the grid did not take the click")
