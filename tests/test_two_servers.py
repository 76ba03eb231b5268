"""Two app servers over one PostGIS (README: several app servers): a planner signed in on one is signed
in on the other; what one writes, the other shows.

Two `streamlit run app.py` processes (``gis.devtools.devserver``), each with its own data folder and
port, over the same database; Debian's headless Chromium drives both. And the cadastre's tiles: the
pyramid one server builds goes into the database, and the other serves it from there.
"""
from __future__ import annotations

import json
import shutil
import urllib.request

import pytest

from gis.base.settings import ROOT
from gis.demo.cadastre import generate_cadastre
from gis.devtools.devserver import running_app
from gis.maps.cadastre_tiles import pyramid_name
from gis.model.catalog import load_layer_catalog
from gis.store.open import open_store_at, write_cadastre
from tests.conftest import map_frame as _map_frame
from tests.conftest import pg_database, poll, sign_in
from tests.test_browser import _open_parcel

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
            sign_in(first, a["url"], "viewer", "renewal-viewer")
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
                sign_in(pages[name], app["url"], "editor_north", "renewal-north")
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


def test_a_tile_built_by_one_server_is_served_by_the_other(pg_server, pg_demo_template, tmp_path, browser):
    url = pg_database(pg_server, "two_servers_tiles", template=pg_demo_template)
    store = open_store_at(url)
    write_cadastre(store, generate_cadastre(3000))
    env = {"RENEWAL_DATABASE_URL": url}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    generated = ROOT / "static" / "generated"  # what Streamlit serves at /app/static/generated/
    name = pyramid_name(store, load_layer_catalog().get("cadastre"))
    shutil.rmtree(generated / name, ignore_errors=True)  # from an earlier run: server a must build it

    def stored_names():
        with store._connect() as con:
            return [r[0] for r in con.execute("SELECT name FROM tile_pyramids").fetchall()]

    ctx = browser.new_context(viewport={"width": 1500, "height": 950}, locale="zh-CN")
    try:
        with running_app(tmp_path / "a", env) as a:
            page = ctx.new_page()
            sign_in(page, a["url"], "viewer", "renewal-viewer")
            _map_frame(page)  # the map page asked for the cadastre's tiles: server a built them
            assert poll(lambda: stored_names(), timeout=60)
        assert stored_names() == [name]
        manifest = store.tile_pyramid(name)
        tiles = list(store.tile_pyramid_tiles(name))
        assert len(tiles) > 10 and manifest["features"] == 3000
        # server b has its own disk: nothing of a's static/ folder is there
        shutil.rmtree(generated / name)
        with running_app(tmp_path / "b", env) as b:
            page = ctx.new_page()  # a's sign-in cookie goes to b too (same host): signed in already
            page.goto(b["url"], wait_until="domcontentloaded")
            _map_frame(page)
            served = json.loads(urllib.request.urlopen(b["url"] + manifest["url"].split("{z}")[0]
                                                       + "manifest.json", timeout=30).read())
            assert served["built_at"] == manifest["built_at"]  # a's pyramid, not one b built again
            for z, x, y, data in (tiles[0], tiles[len(tiles) // 2], tiles[-1]):
                tile_url = b["url"] + manifest["url"].format(z=z, x=x, y=y)
                assert urllib.request.urlopen(tile_url, timeout=30).read() == data
        assert stored_names() == [name]
    finally:
        ctx.close()
