"""Two app servers over one PostGIS (README: several app servers): what one writes, the other shows.

Two `streamlit run app.py` processes (``gis.devtools.devserver``), each with its own data folder and
port, over the same database; Debian's headless Chromium drives both.
"""
from __future__ import annotations

import pytest

from gis.devtools.devserver import running_app
from gis.store.open import open_store_at
from tests.conftest import pg_database
from tests.test_browser import _login, _map_frame, _open_parcel

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_a_stage_update_on_one_server_shows_on_the_other_at_its_next_rerun(pg_server, pg_demo_template,
                                                                           tmp_path, browser):
    url = pg_database(pg_server, "two_servers", template=pg_demo_template)
    env = {"RENEWAL_DATABASE_URL": url}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    p = open_store_at(url).parcels(kind="village", zone="north", stage="signing", blocked=False).iloc[0]
    code = p["code"]
    contexts = []
    try:
        with running_app(tmp_path / "a", env) as a, running_app(tmp_path / "b", env) as b:
            assert a["url"] != b["url"]
            pages = {}
            for name, app in (("a", a), ("b", b)):
                ctx = browser.new_context(viewport={"width": 1500, "height": 950}, locale="zh-CN")
                contexts.append(ctx)
                pages[name] = ctx.new_page()
                _login(pages[name], app["url"], "editor_north", "renewal-north")
                _map_frame(pages[name])
            on_b = pages["b"]
            _open_parcel(on_b, code, p.geometry)
            on_b.get_by_text("当前阶段：签约").wait_for(timeout=30000)

            on_a = pages["a"]
            _open_parcel(on_a, code, p.geometry)
            on_a.get_by_role("button", name="提交").wait_for(timeout=30000)
            on_a.get_by_role("button", name="提交").click()
            on_a.get_by_text(f"已将 {code} 推进到“拆除”").wait_for(timeout=30000)

            # server b's next rerun (here: the filter typed again) reads the change from the database
            box = on_b.get_by_label("搜索名称或编号")
            box.fill(code + " ")
            box.press("Enter")
            on_b.get_by_text("当前阶段：拆除").wait_for(timeout=30000)
            assert open_store_at(url).parcel(code)["stage"] == "demolition"
    finally:
        for ctx in contexts:
            ctx.close()
