"""Key projects in the real app (`streamlit run app.py`, headless Chromium, localhost only): the projects
page (the lists, the day's dispatch, the indicator board, a report refused for another unit and accepted
for the project's own), and a project's circle on the map opening its panel. Screenshots go to
``RENEWAL_SCREENSHOTS`` (the README's come from here)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from playwright.sync_api import Error as PlaywrightError

from gis.auth import sessions
from gis.base.clock import office_today
from gis.devtools.devserver import running_app
from gis.store.open import open_store_at
from tests.conftest import local_only_page, map_frame, poll, screenshot_dir, set_view, sign_in

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "data" / "parcels" / "demo.gpkg"

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    work = tmp_path_factory.mktemp("projects_app")
    shutil.copy(DEMO, work / "renewal.gpkg")
    with running_app(work) as app:
        yield {"url": app["url"], "store": str(work / "renewal.gpkg"), "work": work}


def _shots(server) -> Path:
    return screenshot_dir(server["work"])


def _settled(page):
    poll(lambda: page.locator("[data-testid='stStatusWidget']").count() == 0, timeout=60)
    page.wait_for_timeout(800)


def _projects_page(page):
    page.get_by_role("link", name="重点项目").click()
    page.get_by_role("heading", name="重点项目").wait_for(timeout=90000)
    _settled(page)


def _tab(page, name):
    page.get_by_role("tab", name=name).first.click()
    _settled(page)


def _choose_project(page, p) -> None:
    """Pick the project in the report form's select box (typed: the list of 60 is drawn in part)."""
    box = page.locator("[data-testid='stSelectbox']").filter(has_text="项目名称").first
    box.locator("input").click()
    page.keyboard.type(p["code"])
    page.get_by_role("option", name=f"{p['code']} {p['name']}").click()
    _settled(page)


def _a_project(s, with_unit: bool = True) -> dict:
    """The demo's largest project that has a responsible unit and land."""
    codes = set(s.project_footprints()["code"])
    rows = [p for p in s.projects() if p["code"] in codes and (p["unit"] or not with_unit)
            and p["investment_total"] - p["invested_to_date"] > 100]
    return max(rows, key=lambda p: p["investment_total"])


def test_projects_page_lists_dispatch_board_and_a_report_by_the_unit(server, browser):
    s = open_store_at(server["store"])
    p = _a_project(s)
    other = next(r["unit"] for r in s.projects() if r["unit"] and r["unit"] != p["unit"])
    s.add_user("unit_a", "unit-a-pass-2026", "editor", "admin", display_name="项目单位填报员")
    s.assign("unit_a", "unit", p["unit"], "admin")
    s.add_user("unit_b", "unit-b-pass-2026", "editor", "admin", display_name="其他单位填报员")
    s.assign("unit_b", "unit", other, "admin")
    before = s.project(p["code"])["invested_to_date"]

    ctx, page = local_only_page(browser, viewport={"width": 1400, "height": 900})
    try:
        # another unit's reporter: the form is there, the store refuses, the page says why in Chinese
        sign_in(page, server["url"], "unit_b", "unit-b-pass-2026")
        _projects_page(page)
        assert page.get_by_role("tab", name="项目清单").count() and page.get_by_role("tab", name="日调度").count()
        grid = page.locator("[data-testid='stDataFrame']").first
        grid.wait_for(timeout=30000)
        page.screenshot(path=str(_shots(server) / "projects_page.png"))
        _tab(page, "填报与导入")
        _choose_project(page, p)
        page.get_by_role("spinbutton", name="本次完成投资（万元）").first.fill("12.5")
        page.get_by_label("进展情况").first.fill("主体结构施工")
        page.get_by_role("button", name="提交填报").first.click()
        page.get_by_text("无权").first.wait_for(timeout=60000)
        assert open_store_at(server["store"]).project(p["code"])["invested_to_date"] == before
        ctx.close()

        # the project's own unit: accepted; invested-to-date rises by the amount
        ctx, page = local_only_page(browser, viewport={"width": 1400, "height": 900})
        sign_in(page, server["url"], "unit_a", "unit-a-pass-2026")
        _projects_page(page)
        _tab(page, "填报与导入")
        _choose_project(page, p)
        page.get_by_role("spinbutton", name="本次完成投资（万元）").first.fill("12.5")
        page.get_by_label("进展情况").first.fill("主体结构施工")
        page.get_by_role("button", name="提交填报").first.click()
        page.get_by_text(f"已填报 {p['code']}").wait_for(timeout=60000)
        after = open_store_at(server["store"]).project(p["code"])
        assert after["invested_to_date"] == pytest.approx(before + 12.5)
        assert after["reports"][0]["note"] == "主体结构施工" and after["reports"][0]["recorded_by"] == "unit_a"

        # the day's dispatch counts the report; the board draws its chart
        _tab(page, "日调度")
        page.get_by_role("tab", name="已填报").first.wait_for(timeout=30000)
        reported = open_store_at(server["store"]).project_reports(on=office_today())
        assert any(r["code"] == p["code"] for r in reported)
        assert page.locator("[data-testid='stMetric']").filter(has_text="已填报").count()
        for part, value in (("month", "11"), ("day", "13")):  # the demo's last day of reports, 2026-11-13
            page.get_by_role("spinbutton", name=f"{part}, 调度日期").first.click()
            page.keyboard.type(value)
        page.keyboard.press("Enter")
        page.wait_for_timeout(500)
        page.get_by_role("heading", name="重点项目").click()  # the field keeps the date once it loses focus
        _settled(page)
        page.get_by_text("填报周期 2026-11-13").first.wait_for(timeout=30000)
        page.get_by_role("tab", name="落后月度计划").first.click()
        page.wait_for_timeout(1200)
        page.screenshot(path=str(_shots(server) / "projects_dispatch.png"))
        _tab(page, "指标看板")
        page.get_by_text("蓝条为实际完成").first.wait_for(timeout=30000)
        assert poll(lambda: page.locator("[data-testid='stVegaLiteChart'] canvas, "
                                         "[data-testid='stVegaLiteChart'] svg").count() > 0, timeout=30)
        page.screenshot(path=str(_shots(server) / "projects_board.png"))
        assert page.blocked == [], page.blocked
    finally:
        ctx.close()


def test_projects_page_on_a_phone(server, browser):
    ctx, page = local_only_page(browser, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=False)
    try:
        sign_in(page, server["url"], "leader", "renewal-leader")
        page.get_by_role("heading", name="城市更新一张图").first.wait_for(timeout=90000)
        assert poll(lambda: any(c["name"] == sessions.COOKIE for c in ctx.cookies()), timeout=30), ctx.cookies()
        page.goto(server["url"] + "/projects", wait_until="domcontentloaded")  # the sign-in cookie carries over
        page.get_by_role("heading", name="重点项目").wait_for(timeout=90000)
        _settled(page)
        page.locator("[data-testid='stDataFrame']").first.wait_for(timeout=30000)
        page.wait_for_timeout(1500)
        page.screenshot(path=str(_shots(server) / "projects_page_phone.png"))
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 400, width  # nothing runs off the side of the phone
    finally:
        ctx.close()


CIRCLE_AT = """(code) => { let out = null; window.map.eachLayer(l => {
    const f = l.feature;
    if (f && f.properties && f.properties.layer === 'projects' && f.properties.code === code
        && f.geometry.type === 'Point' && l._path) {
        const p = window.map.latLngToContainerPoint(l.getLatLng()); out = [p.x, p.y, l.options.fillColor, l.getRadius()];
    } }); return out; }"""


# a spot of the project's circle that nothing else covers (smaller projects on the same land sit on top),
# in the frame's own coordinates
CLICK_SPOT = """(code) => { let lyr = null; window.map.eachLayer(l => {
    const f = l.feature;
    if (f && f.properties && f.properties.layer === 'projects' && f.properties.code === code
        && f.geometry.type === 'Point' && l._path) { lyr = l; } });
    if (!lyr) { return null; }
    const r = lyr.getRadius(), c = window.map.latLngToContainerPoint(lyr.getLatLng());
    const box = window.map.getContainer().getBoundingClientRect();
    for (const k of [0, 0.5, 0.8]) { for (let a = 0; a < 16; a++) {
        const x = box.left + c.x + k * r * Math.cos(a * Math.PI / 8), y = box.top + c.y + k * r * Math.sin(a * Math.PI / 8);
        if (document.elementFromPoint(x, y) === lyr._path) { return [x, y]; } } }
    return null; }"""


def test_a_project_circle_on_the_map_opens_its_panel(server, page):
    s = open_store_at(server["store"])
    p = _a_project(s)
    fp = s.project_footprints()
    c = fp[fp["code"] == p["code"]].geometry.iloc[0].point_on_surface()
    sign_in(page, server["url"], "leader", "renewal-leader")
    frame = map_frame(page, timeout=120, min_paths=2000)
    assert frame.evaluate("() => { let n = 0; window.map.eachLayer(l => { if (l.feature && l.feature.properties"
                          " && l.feature.properties.layer === 'projects' && l.feature.geometry.type === 'Point')"
                          " n++; }); return n; }") == len(fp)
    frame.evaluate(f"() => window.map.setView([{c.y}, {c.x}], 16, {{animate: false}})")
    page.wait_for_timeout(1200)
    hit = frame.evaluate(CIRCLE_AT, p["code"])
    assert hit is not None and hit[3] > 5  # drawn, sized by its investment
    spot = frame.evaluate(CLICK_SPOT, p["code"])
    assert spot is not None, "every part of the circle is covered"
    box = page.locator("iframe[title*='st_folium']").first.bounding_box()
    page.mouse.click(box["x"] + spot[0], box["y"] + spot[1])
    page.get_by_role("heading", name=p["name"]).wait_for(timeout=90000)
    _settled(page)
    assert page.get_by_role("tab", name="填报记录").count() and page.get_by_role("tab", name="地块与督办").count()
    assert poll(lambda: page.locator("[data-testid='stVegaLiteChart']").count() > 0, timeout=30)  # the curve
    page.set_viewport_size({"width": 1400, "height": 900})
    page.wait_for_timeout(1500)
    set_view(map_frame(page, timeout=60, min_paths=200).evaluate, c.y, c.x, 15)  # the panel's map, at the project
    page.wait_for_timeout(1500)
    page.screenshot(path=str(_shots(server) / "project_panel.png"))
    # a parcel under the project opens the parcel's panel
    page.get_by_role("tab", name="地块与督办").click()
    first = s.project(p["code"])
    links = [x["code"] for x in first["parcels"] if x["object_type"] == "parcel"]
    if links:
        page.get_by_role("button", name=links[0]).first.click()
        parcel = s.parcel(links[0])
        page.get_by_role("heading", name=parcel["name"]).wait_for(timeout=90000)
    assert page.blocked == [], page.blocked


def _safe(fn):
    try:
        return fn()
    except (PlaywrightError, AssertionError):
        return None


def _upload(page, path: Path) -> None:
    page.locator("[data-testid='stFileUploaderDropzoneInput']").first.set_input_files(str(path))
    _settled(page)
    page.get_by_role("button", name="导入项目台账").click()


def test_a_ledger_from_the_template_imports_all_or_nothing_and_shows_on_the_map(server, page, tmp_path):
    from openpyxl import load_workbook

    from gis.io.projects_io import template_bytes

    s = open_store_at(server["store"])
    template = tmp_path / "template.xlsx"
    template.write_bytes(template_bytes(s))
    wb = load_workbook(template)
    ws = wb.worksheets[0]
    head = [c.value for c in ws[1]]
    # the template's example row, filled in as a planner's own (an untouched example row is skipped on import)
    ws.cell(2, head.index("项目名称") + 1, "滨河片区配套道路")
    if "备注" in head:
        ws.cell(2, head.index("备注") + 1, None)
    example = [c.value for c in ws[2]]
    code = example[head.index("项目编号")]
    parcels = str(example[head.index("所在地块")]).split("、")
    wb.save(tmp_path / "good.xlsx")
    bad = ws.max_row + 1
    for i, v in enumerate(example):
        ws.cell(bad, i + 1, v)
    ws.cell(bad, head.index("项目编号") + 1, "XM-BAD")
    ws.cell(bad, head.index("总投资（万元）") + 1, "很多")
    wb.save(tmp_path / "bad.xlsx")

    sign_in(page, server["url"], "admin", "renewal-admin")
    _projects_page(page)
    _tab(page, "填报与导入")
    _upload(page, tmp_path / "bad.xlsx")  # one bad row: nothing lands, the row is named
    page.get_by_text("未导入").first.wait_for(timeout=60000)
    assert page.get_by_text(f"第 {bad} 行").count() or page.locator("[data-testid='stDataFrame']").count()
    assert code not in {p["code"] for p in open_store_at(server["store"]).projects()}

    page.reload(wait_until="domcontentloaded")
    _projects_page(page)
    _tab(page, "填报与导入")
    _upload(page, tmp_path / "good.xlsx")  # the same ledger without the bad row: it lands
    page.get_by_text("已导入：新增 1 个项目").wait_for(timeout=60000)
    s = open_store_at(server["store"])
    assert {x["code"] for x in s.project(code)["parcels"]} == set(parcels)

    page.get_by_role("link", name="一张图").click()
    frame = map_frame(page, timeout=120, min_paths=2000)
    assert poll(lambda: frame.evaluate(CIRCLE_AT, code) is not None, timeout=30)  # on its parcels, on the map
    fp = s.project_footprints()
    geom = fp[fp["code"] == code].geometry.iloc[0]
    union = s.parcels(geometry=True).set_index("code").loc[parcels].geometry.union_all()
    assert geom.equals_exact(union, 1e-9) or geom.symmetric_difference(union).area < 1e-12
