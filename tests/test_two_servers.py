"""Two app servers over one PostGIS (README: several app servers): a planner signed in on one is signed
in on the other; what one writes, the other shows.

Two `streamlit run app.py` processes (``gis.devtools.devserver``), each with its own data folder and
port, over the same database; Debian's headless Chromium drives both.
"""
from __future__ import annotations

import pytest

from gis.devtools.devserver import running_app
from gis.store.open import open_store_at
from tests.conftest import pg_database, poll
from tests.test_browser import _login, _map_frame, _open_parcel

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_signed_in_on_one_server_signed_in_on_the_other_and_an_update_shows_on_both(pg_server, pg_demo_template,
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
            # the sign-in cookie of server a (same host, another port: the browser sends it to b too)
            # is accepted by b: the signing key is in the database, not in a's data folder
            ctx = browser.new_context(viewport={"width": 1500, "height": 950}, locale="zh-CN")
            contexts.append(ctx)
            first = ctx.new_page()
            _login(first, a["url"], "viewer", "renewal-viewer")
            _map_frame(first)
            assert poll(lambda: any(c["name"] == "renewal_session" for c in ctx.cookies()))
            moved = ctx.new_page()
            moved.goto(b["url"], wait_until="domcontentloaded")
            moved.get_by_text("当前用户：查看者").first.wait_for(timeout=30000)  # not the login form
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
            on_a.get_by_role("heading", name=p["name"]).wait_for(timeout=30000)
            on_a.get_by_role("tab", name="操作").click()  # the panel's forms are in its third tab
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
