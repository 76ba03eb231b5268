"""The map's date control and its comparison of two dates, in Chromium (1400×900 and 390×844)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import map_frame as _map_frame
from tests.conftest import poll, sign_in
from tests.test_browser import server  # noqa: F401 -- the app on a demo copy, both back ends

pytestmark = [pytest.mark.browser]


def _legend(frame) -> str:
    try:
        return frame.evaluate("() => (document.querySelector('.ratlas-legend') || {}).textContent || ''")
    except Exception:  # noqa: BLE001 - the map's frame is replaced while Streamlit renders
        return ""


@pytest.mark.parametrize("size", [(1400, 900), (390, 844)], ids=["desktop", "phone"])
def test_compare_two_dates_colours_and_counts_what_changed(server, browser, size):  # noqa: F811
    ctx = browser.new_context(viewport={"width": size[0], "height": size[1]}, locale="zh-CN")
    page = ctx.new_page()
    try:
        sign_in(page, server["url"], "viewer", "renewal-viewer")
        frame = _map_frame(page)
        assert "未启动" in _legend(frame)  # the stage legend, today
        if size[0] < 600:  # the phone's sidebar is folded away
            page.get_by_test_id("stExpandSidebarButton").click()
        box = page.get_by_text("与另一日期对比")
        box.scroll_into_view_if_needed()
        box.click()

        def compared():
            for fr in page.frames:
                text = _legend(fr)
                if "无变化" in text:
                    return fr, text
            return None

        fr, text = poll(compared, timeout=60)
        assert "推进" in text and "新增卡点" in text
        counts = fr.evaluate("""() => {
            const out = {};
            const map = window.map;
            map.eachLayer(l => { if (l.feature && l.feature.properties.change) {
                const c = l.feature.properties.change; out[c] = (out[c] || 0) + 1; } });
            return out;
        }""")
        # the demo's year so far: parcels advanced; the legend's count is what the map draws
        assert counts.get("advanced", 0) > 0
        assert f"推进 {counts['advanced']}" in text
        shots = os.environ.get("RENEWAL_SCREENSHOTS")
        if shots and size[0] > 600:  # on the phone the sidebar covers the map while it is open
            Path(shots).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(shots) / "compare.png"))
    finally:
        ctx.close()


def test_overview_and_board_as_of_a_past_month_draw_their_charts(server, browser):  # noqa: F811
    """The dashboard's date control (?as_of= in the address) puts the overview at a past month; the board's
    trend charts draw. Screenshots for the README with RENEWAL_SCREENSHOTS."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 900}, locale="zh-CN")
    page = ctx.new_page()
    shots = os.environ.get("RENEWAL_SCREENSHOTS")
    try:
        sign_in(page, server["url"], "viewer", "renewal-viewer")
        _map_frame(page)
        page.goto(server["url"] + "/overview?as_of=2025-11-30", wait_until="domcontentloaded")
        page.get_by_text("显示 2025-11-30 的状态").first.wait_for(timeout=60000)
        page.get_by_text("各类项目进度").first.wait_for(timeout=30000)
        poll(lambda: page.locator(".vega-embed canvas, .vega-embed svg").count() >= 3, timeout=60)
        slider = page.get_by_test_id("stSlider").first
        assert "2025-11" in slider.inner_text()
        if shots:
            Path(shots).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(shots) / "overview_as_of.png"))
        page.goto(server["url"] + "/board?as_of=2025-11-30", wait_until="domcontentloaded")
        heading = page.get_by_text("累计清表面积（亩）").first
        heading.wait_for(timeout=60000)
        heading.scroll_into_view_if_needed()
        poll(lambda: page.locator(".vega-embed canvas, .vega-embed svg").count() >= 3, timeout=60)
        page.wait_for_timeout(1500)  # the charts' first paint
        if shots:
            page.screenshot(path=str(Path(shots) / "board_trend.png"))
    finally:
        ctx.close()
