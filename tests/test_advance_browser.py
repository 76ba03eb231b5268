"""An advance from the parcel's panel in a real Chromium: it reruns the map with its panel and the table
under it (two keyed fragments, not the page), and both show the new state: the table's row its new
stage, the map its new colour, and under a stage filter the parcel leaves the table (issue 19)."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import shapely
from playwright.sync_api import Error as PlaywrightError

from gis.io.parcel_table import COLUMNS
from gis.store.open import open_store_at
from tests.conftest import map_frame, poll, sign_in
from tests.test_browser import (
    _open_parcel,
    server,  # noqa: F401 -- the app on a demo copy, both back ends
)

pytestmark = [pytest.mark.browser]

VILLAGE = "V04"  # a northern village (editor_north's) with several parcels at 签约 that no other test moves
STAGE_AT = COLUMNS.index("stage")


def _sidebar_select(page, label: str):
    return page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').filter(has_text=label).first


def _choose(page, label: str, text: str, option: str | None = None) -> None:
    """Type into a select box of the sidebar and pick the suggestion (the first, or ``option``)."""
    _sidebar_select(page, label).locator("input").click()
    page.keyboard.type(text)
    opts = page.get_by_role("option")
    opts.first.wait_for(timeout=10000)
    (page.get_by_role("option", name=option, exact=True) if option else opts.first).click()


def _rows(page) -> dict[str, str]:
    """The parcel table's rows on screen, code → stage label (the grid's cells for assistive technology);
    the table under the map is the page's last grid (the panel has its own)."""
    cells = page.locator("[data-testid='stDataFrame']").last.locator("table td").all_inner_texts()
    n = len(COLUMNS)
    return {cells[i]: cells[i + STAGE_AT] for i in range(0, len(cells) - n + 1, n)}


def _click_parcel(page, code: str, geom, name: str) -> None:
    """Click the parcel where the map draws it until its panel opens (a click that lands while Streamlit
    replaces the map's iframe is lost)."""
    pt = shapely.point_on_surface(geom)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            frame = map_frame(page)
            if frame.evaluate(f"() => window.map.getBounds().contains([{pt.y}, {pt.x}])"):
                xy = frame.evaluate(f"() => {{ const p = window.map.latLngToContainerPoint([{pt.y}, {pt.x}]);"
                                    " return [p.x, p.y]; }")
                box = page.locator("iframe[title*='st_folium']").first.bounding_box()
                page.mouse.click(box["x"] + xy[0], box["y"] + xy[1])
                page.get_by_role("heading", name=name).wait_for(timeout=8000)
                return
        except PlaywrightError:
            pass
        page.wait_for_timeout(300)
    raise AssertionError(f"the panel of {code} did not open")


def _advance(page, code: str, stage_label: str) -> None:
    page.get_by_role("tab", name="操作").click()  # the panel's forms are in its third tab
    page.get_by_role("button", name="提交").click()
    page.get_by_text(f"已将 {code} 推进到“{stage_label}”").wait_for(timeout=30000)


def _feature(page, code: str):
    """(stage, fill colour) of the parcel among the layers the browser's map holds, or None."""
    js = (f"() => {{ let p = null; window.map.eachLayer(l => {{ if (l.feature && l.feature.properties.code"
          f" === {code!r} && l.feature.properties.phase) p = [l.feature.properties.stage, l.options.fillColor]; }});"
          " return p; }")
    try:
        return map_frame(page, 30, 1).evaluate(js)
    except PlaywrightError:  # the iframe replaced while it was read
        return None


def test_an_advance_updates_the_table_and_the_map_and_leaves_a_stage_filter(server, page):  # noqa: F811
    store = open_store_at(server["store"])
    cat = store.catalog
    village = store.parcels(village=VILLAGE)
    at_signing = village[(village["stage"] == "signing") & ~village["blocked"].astype(bool)]
    assert len(at_signing) >= 2
    first, second = at_signing.iloc[0], at_signing.iloc[1]
    sign_in(page, server["url"], "editor_north", "renewal-north")
    map_frame(page)

    # one parcel found by its code: after the advance its row shows the new stage, the map recolours it
    _open_parcel(page, first["code"], first.geometry)
    page.get_by_role("heading", name=first["name"]).wait_for(timeout=30000)
    page.get_by_text("地块列表（1 个）").click()  # the list opens at a click, and stays open for the filters after
    assert poll(lambda: _rows(page) == {first["code"]: "签约"}, 15), _rows(page)
    layers = ("() => performance.getEntriesByType('resource')"
              ".filter(e => e.name.includes('/generated/layers/')).length")
    fetched = map_frame(page, 30, 1).evaluate(layers)
    _advance(page, first["code"], "拆除")
    assert poll(lambda: _rows(page).get(first["code"]) == "拆除", 30), _rows(page)
    assert poll(lambda: (_feature(page, first["code"]) or [None])[0] == "demolition", 30)
    assert _feature(page, first["code"])[1] == cat.phase_of("village", "demolition").color
    assert map_frame(page, 30, 1).evaluate(layers) == fetched  # no new layer file: the patch restyled it
    page.get_by_text("符合条件的地块：1 个").wait_for(timeout=10000)  # the search still finds it
    page.get_by_role("tab", name="变更记录").click()
    page.get_by_text("签约 → 拆除").first.wait_for(timeout=30000)  # the panel's history has the event
    page.wait_for_timeout(1000)
    shots = Path(os.environ.get("RENEWAL_SCREENSHOTS", server["work"]))
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots / "map_after_advance.png"))

    # the village under a stage filter: the parcel advanced out of it leaves the table and the count
    _choose(page, "快速查找", VILLAGE)  # the village is the first suggestion for its code (the search is cleared)
    page.get_by_text(f"地块列表（{len(village)} 个）").wait_for(timeout=30000)
    _choose(page, "阶段", "签约", option="签约")
    n = int(((village["stage"] == "signing") & (village["code"] != first["code"])).sum())
    page.get_by_text(f"地块列表（{n} 个）").wait_for(timeout=30000)
    _click_parcel(page, second["code"], second.geometry, second["name"])
    assert second["code"] in _rows(page)
    _advance(page, second["code"], "拆除")
    page.get_by_text(f"地块列表（{n - 1} 个）").wait_for(timeout=30000)
    page.get_by_text(f"符合条件的地块：{n - 1} 个").wait_for(timeout=10000)
    assert poll(lambda: second["code"] not in _rows(page) and len(_rows(page)) == n - 1, 15), _rows(page)
    assert _sidebar_select(page, "阶段").locator("input").input_value() == "签约"  # the filters stay as they were
    after = open_store_at(server["store"])
    assert after.parcel(first["code"])["stage"] == after.parcel(second["code"])["stage"] == "demolition"
    assert page.blocked == [], page.blocked
