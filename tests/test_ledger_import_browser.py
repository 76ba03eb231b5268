"""The project ledger imported through the projects page (review items 12, 13), in the real app (headless
Chromium, localhost only): the template uploaded unchanged imports nothing, and the page says the example
row was skipped and that blank cells keep the stored values. Screenshots go to ``RENEWAL_SCREENSHOTS``."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gis.auth import sessions
from gis.devtools.devserver import running_app
from gis.io import projects_io
from gis.store.open import open_store_at
from tests.conftest import local_only_page, poll, screenshot_dir, sign_in

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "data" / "parcels" / "demo.gpkg"

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_the_template_uploaded_unchanged_imports_nothing_and_says_why(tmp_path, browser):
    shutil.copy(DEMO, tmp_path / "renewal.gpkg")
    store = open_store_at(str(tmp_path / "renewal.gpkg"))
    template = tmp_path / "项目台账.xlsx"
    template.write_bytes(projects_io.template_bytes(store))
    before = len(store.projects())
    with running_app(tmp_path) as app:
        for size, name in (((1400, 900), "ledger_import.png"), ((390, 844), "ledger_import_phone.png")):
            ctx, page = local_only_page(browser, viewport={"width": size[0], "height": size[1]})
            sign_in(page, app["url"], "leader", "renewal-leader")
            page.get_by_role("heading", name="城市更新一张图").first.wait_for(timeout=90000)
            poll(lambda: any(c["name"] == sessions.COOKIE for c in ctx.cookies()), timeout=30)
            page.goto(app["url"] + "/projects", wait_until="domcontentloaded")  # the sign-in cookie carries over
            page.get_by_role("heading", name="重点项目").wait_for(timeout=90000)
            page.get_by_role("tab", name="填报与导入").first.click()
            page.locator("[data-testid='stFileUploaderDropzoneInput']").first.set_input_files(str(template))
            page.get_by_role("button", name="导入项目台账").first.click()
            page.get_by_text("跳过模板示例行 1 行").first.wait_for(timeout=60000)
            assert page.get_by_text("空白单元格保留已有数据").count()
            poll(lambda: page.locator("[data-testid='stStatusWidget']").count() == 0, timeout=60)
            page.get_by_text("跳过模板示例行 1 行").first.scroll_into_view_if_needed()
            page.screenshot(path=str(screenshot_dir(tmp_path) / name), full_page=False)
            ctx.close()
    assert len(open_store_at(str(tmp_path / "renewal.gpkg")).projects()) == before
