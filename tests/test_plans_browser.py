"""Plans in the real app (`streamlit run app.py`, headless Chromium, localhost only): the map's plan
colouring, the plan table editor, and a follow-up order issued by a leader, answered by the unit's
editor in another browser and closed by the leader."""
from __future__ import annotations

import datetime as dt
import shutil
import time
from pathlib import Path

import pytest
import shapely
from playwright.sync_api import Error as PlaywrightError

from gis.base.clock import office_today
from gis.base.errors import PermissionRefused
from gis.devtools.devserver import running_app
from gis.model.plans import STATUS_COLORS
from gis.store.open import open_store_at
from tests.conftest import map_frame, poll, screenshot_dir, sign_in

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "data" / "parcels" / "demo.gpkg"

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    work = tmp_path_factory.mktemp("plans_app")
    shutil.copy(DEMO, work / "renewal.gpkg")
    with running_app(work) as app:
        yield {"url": app["url"], "store": str(work / "renewal.gpkg"), "work": work}


def _shots(server) -> Path:
    return screenshot_dir(server["work"])


def _map_frame(page, timeout=90, min_paths=2000):
    return map_frame(page, timeout=timeout, min_paths=min_paths)  # the whole demo drawn


FILL_OF = """(code) => { let c = null; window.map.eachLayer(l => {
    if (l.feature && l.feature.properties && l.feature.properties.code === code && l.options.fillColor) {
        c = l.options.fillColor; } }); return c; }"""


def test_plan_colouring_turns_an_overdue_parcel_red(server, page):
    s = open_store_at(server["store"])
    p = s.parcels(kind="village", zone="north", stage="signing", blocked=False, geometry=False).iloc[0]
    yesterday = (office_today() - dt.timedelta(days=1)).isoformat()
    s.add_baseline("月度调度", "leader")  # a baseline is added before it takes targets (a typo is refused)
    s.set_target(p["code"], "demolition", yesterday, "leader", baseline="月度调度")
    sign_in(page, server["url"], "leader", "renewal-leader")
    frame = _map_frame(page)
    stage_fill = frame.evaluate(FILL_OF, p["code"])
    page.get_by_text("计划状态", exact=True).click()
    assert poll(lambda: _safe(lambda: _map_frame(page).evaluate(FILL_OF, p["code"])) == STATUS_COLORS["overdue"],
                timeout=90)
    frame = _map_frame(page)
    assert stage_fill != STATUS_COLORS["overdue"]
    legend = frame.evaluate("() => document.querySelector('.ratlas-legend').innerText")
    assert "计划状态" in legend and "逾期" in legend and "停滞" in legend and "无计划" in legend
    page.wait_for_timeout(1500)
    page.screenshot(path=str(_shots(server) / "plan_map.png"))
    assert page.blocked == [], page.blocked


def _safe(fn):
    try:
        return fn()
    except (PlaywrightError, AssertionError):
        return None


def test_plan_table_editor_saves_a_revision_with_its_reason(server, page):
    s = open_store_at(server["store"])
    village = sorted(s.attributes("villages"))[0]
    before = s.plan_targets(baseline="annual")
    before = before[before["object"] == village].iloc[0]
    sign_in(page, server["url"], "leader", "renewal-leader")
    page.get_by_role("link", name="计划与督办").click()
    page.get_by_text("编辑计划目标").wait_for(timeout=60000)
    editor = page.locator("[data-testid='stDataFrame']").last
    editor.scroll_into_view_if_needed()
    editor.wait_for(timeout=30000)
    page.wait_for_timeout(1500)
    # the note of the first row (the village's own target): the grid's last column. The grid is a
    # canvas; its cells also stand in an accessibility table, and focusing one selects it
    editor.locator("#glide-cell-1-0").evaluate("el => el.focus()")  # selects the first cell of the row
    page.wait_for_timeout(300)
    for _ in range(4):
        page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")
    page.wait_for_timeout(300)
    page.keyboard.type("调度会确认按期推进")
    page.keyboard.press("Enter")
    page.wait_for_timeout(800)
    page.get_by_role("textbox", name="修改原因（计划已确认下达，修改须填写）").fill("11月调度会研究")
    page.get_by_role("button", name="保存计划").click()
    page.get_by_text("已保存：新增 0 项，修改 1 项").wait_for(timeout=60000)
    page.screenshot(path=str(_shots(server) / "plan_editor.png"))
    after = open_store_at(server["store"]).target_history(village, baseline="annual")
    last = after.iloc[-1]
    assert last["note"] == "调度会确认按期推进" and last["reason"] == "11月调度会研究"
    assert last["revision"] == before["revision"] + 1 and after.iloc[0]["due_date"] == before["original_due"]


def _open_parcel(page, code, geom):
    """Find a parcel by its code (the map zooms to it) and click it on the map."""
    pt = shapely.point_on_surface(geom)
    box_input = page.get_by_label("搜索名称或编号")
    box_input.fill(code)
    box_input.press("Enter")
    page.get_by_text("符合条件的地块：1 个").wait_for(timeout=60000)
    deadline = time.time() + 60
    while True:  # until the re-rendered map has zoomed to the parcel and stays put
        assert time.time() < deadline, "map did not zoom to the parcel"
        try:
            frame = _map_frame(page, min_paths=5)  # the search leaves one parcel (and the context)
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
    box = page.locator("iframe[title*='st_folium']").first.bounding_box()
    page.mouse.click(box["x"] + xy[0], box["y"] + xy[1])


def _my_work(page):
    """Open 我的待办 and wait until Streamlit has finished drawing it."""
    page.get_by_role("link", name="我的待办").click()
    page.get_by_role("heading", name="我的待办").wait_for(timeout=60000)
    poll(lambda: page.locator("[data-testid='stStatusWidget']").count() == 0, timeout=30)
    page.wait_for_timeout(1000)


def _order(page, fid):
    """The expander of order ``fid`` on the page, opened."""
    exp = page.locator("[data-testid='stExpander']").filter(has_text=f"#{fid} ").first
    exp.locator("summary").first.click()
    page.wait_for_timeout(500)
    return exp


def test_follow_up_loop_across_two_browsers(server, browser, page):
    s = open_store_at(server["store"])
    p = s.parcels(kind="village", zone="central", stage="signing", blocked=False).iloc[1]
    # the leader issues the order from the parcel's panel
    sign_in(page, server["url"], "leader", "renewal-leader")
    _map_frame(page)
    _open_parcel(page, p["code"], p.geometry)
    page.get_by_role("heading", name=p["name"]).wait_for(timeout=60000)
    page.get_by_text("下发督办").click()
    page.get_by_label("督办内容").fill("签约进度滞后，请一周内报送倒排计划")
    page.get_by_role("button", name="下发", exact=True).click()
    page.get_by_text("已下发督办").wait_for(timeout=60000)
    order = max(s.followups(), key=lambda f: f["id"])
    assert order["on"] == p["code"] and order["state"] == "issued" and order["issued_by"] == "leader"
    page.get_by_text("计划目标", exact=True).first.scroll_into_view_if_needed()
    page.wait_for_timeout(1500)
    page.screenshot(path=str(_shots(server) / "plan_panel.png"))

    # the unit's editor, in another browser, answers from 我的待办; an editor of another area cannot
    other = browser.new_context(viewport={"width": 1400, "height": 900}, locale="zh-CN")
    try:
        ed = other.new_page()
        sign_in(ed, server["url"], "editor_central", "renewal-central")
        _my_work(ed)
        exp = _order(ed, order["id"])
        exp.get_by_label("回复内容").fill("已召开专题会，12月20日前完成签约")
        exp.get_by_role("button", name="提交回复").click()
        ed.get_by_text(f"已回复督办 #{order['id']}").wait_for(timeout=60000)
    finally:
        other.close()
    with pytest.raises(PermissionRefused):
        s.reply_followup(order["id"], "不归我管", "editor_north")

    # the leader finds the reply in 我的待办 and closes the order
    _my_work(page)
    exp = _order(page, order["id"])
    exp.get_by_role("button", name="办结").click()
    page.get_by_text(f"已办结督办 #{order['id']}").wait_for(timeout=60000)
    final = open_store_at(server["store"]).followup(order["id"])
    assert [(e["action"], e["actor"]) for e in final["trail"]] == [
        ("issue", "leader"), ("reply", "editor_central"), ("close", "leader")]
    audit = open_store_at(server["store"]).audit(target=p["code"])
    assert {"followup_issue", "followup_reply", "followup_close"} <= set(audit["action"])
    assert set(audit.loc[audit["outcome"] == "refused", "actor"]) == {"editor_north"}
    assert page.blocked == [], page.blocked
