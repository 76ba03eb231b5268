"""Shared fixtures. Test data is made in code, small."""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from gis.base.units import areas_m2
from gis.model.pipelines import load_catalog

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "data" / "parcels" / "demo.gpkg"


def pytest_addoption(parser):
    parser.addoption("--slow", action="store_true",
                     help="also run the tests marked slow (CI and the README's test command do)")


def pytest_configure(config):
    config.addinivalue_line("markers", "browser: drives headless Chromium against a real server")
    config.addinivalue_line("markers", "slow: takes more than a few seconds; run with --slow (CI does)")


def pytest_collection_modifyitems(config, items):
    """A bare ``pytest`` (the whole suite) without ``--slow`` leaves out the tests marked slow: a
    developer's quicker run. CI runs everything (``--slow``); naming files or ``-m`` selects as usual."""
    def parts(item) -> set[str]:
        return set(item.callspec.id.split("-")) if hasattr(item, "callspec") else set()

    with_desktop = {(i.path, i.originalname) for i in items if "desktop" in parts(i)}
    for item in items:
        # a browser walk on PostGIS repeats its GeoPackage walk through the same pages; the store under
        # the pages is tested on both back ends in the quick run, and CI walks both
        params = getattr(item, "callspec", None)
        values = set(map(str, params.params.values())) if params else set()
        if item.get_closest_marker("browser") and "postgis" in values:
            item.add_marker(pytest.mark.slow)
        # a phone walk repeats its desktop walk at another size (the layout is what it adds: CI walks it)
        if item.get_closest_marker("browser") and "phone" in parts(item) and (item.path, item.originalname) in with_desktop:
            item.add_marker(pytest.mark.slow)
        # a command-line walk on PostGIS repeats its GeoPackage walk through subprocesses; the store's
        # commands are tested on both back ends in the quick run, and CI walks both
        if "postgis" in values and (item.path.name == "test_cli.py" or item.path.name.endswith("_cli.py")
                                    or item.path.name == "test_plan_checks.py"):
            item.add_marker(pytest.mark.slow)
    named = config.args_source != pytest.Config.ArgsSource.TESTPATHS  # files or tests named on the command line
    if config.getoption("--slow") or config.option.markexpr or named:
        return
    slow = [item for item in items if item.get_closest_marker("slow")]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if not item.get_closest_marker("slow")]


@pytest.fixture(scope="session")
def catalog():
    return load_catalog()


def _box(x, y, w=0.001, h=0.001):
    return shapely.MultiPolygon([shapely.box(x, y, x + w, y + h)])


def write_tiny_store(path: Path) -> Path:
    """A store with two zones, one village of three parcels, one park parcel and one ministry plot."""
    crs = "EPSG:4490"
    x0, y0 = 121.30, 37.40
    layer = dict(driver="GPKG", engine="pyogrio", layer_options={"GEOMETRY_NAME": "geom"})
    gpd.GeoDataFrame(
        {"name": ["测试区"], "name_en": ["Test district"]}, geometry=[_box(x0, y0, 0.02, 0.02)], crs=crs
    ).to_file(path, layer="district", **layer)
    gpd.GeoDataFrame(
        {"code": ["north", "south"], "name": ["北部", "南部"], "name_en": ["North", "South"],
         "strategy": ["北优", "南拓"], "roles": ["城市会客厅；人才蓄水池", "前庭花园；乡村振兴样板区"],
         "roles_en": ["City living room; talent reservoir", "Front garden; rural revitalisation"]},
        geometry=[_box(x0, y0 + 0.01, 0.02, 0.01), _box(x0, y0, 0.02, 0.01)], crs=crs,
    ).to_file(path, layer="zones", **layer)
    gpd.GeoDataFrame(
        {"code": ["V01"], "name": ["<b>东岙村</b>"], "name_en": ["Dong'ao"], "zone": ["south"]},
        geometry=[_box(x0, y0, 0.006, 0.002)], crs=crs,
    ).to_file(path, layer="villages", **layer)
    gpd.GeoDataFrame(
        {"code": ["hsr_ai"], "name": ["高铁南站电子信息和人工智能产业园"], "name_en": ["HSR South AI Park"],
         "industry": ["电子信息和人工智能"]},
        geometry=[_box(x0 + 0.01, y0, 0.004, 0.004)], crs=crs,
    ).to_file(path, layer="parks", **layer)
    parcels = gpd.GeoDataFrame(
        {
            "code": ["V01-001", "V01-002", "V01-003", "HSR-001", "MIN-01"],
            "name": ["东岙村1号地块", "东岙村2号地块", "东岙村3号地块", "产业园1号地块", "某部委闲置地"],
            "kind": ["village", "village", "village", "park", "ministry"],
            "zone": ["south", "south", "south", "south", "north"],
            "village": ["V01", "V01", "V01", "", ""],
            "park": ["", "", "", "hsr_ai", ""],
            "unit": ["凤凰街道办事处"] * 3 + ["区城市更新集团", "区自然资源局"],
            "owner": ["", "", "", "", "某部直属单位（虚构）"],
            "land_use": ["宅基地"] * 3 + ["工业", "仓储"],
            "stage": [None, "survey", "signing", "layout", None],
            "stage_date": [None, "2024-03-01", "2025-06-01", "2023-01-10", None],
            "blocked": [0, 0, 1, 0, 0],
            "blocked_reason": [None, None, "个别户未签约", None, None],
            "note": [None] * 5,
            "version": [1] * 5,
            "updated_at": ["2025-06-01T09:00:00+00:00"] * 5,
            "updated_by": ["张伟"] * 5,
        },
        geometry=[_box(x0 + i * 0.002, y0) for i in range(3)] + [_box(x0 + 0.011, y0), _box(x0, y0 + 0.015)],
        crs=crs,
    )
    parcels["area_m2"] = areas_m2(parcels)
    parcels.to_file(path, layer="parcels", **layer)
    events = pd.DataFrame(
        {
            "parcel": ["V01-002", "V01-003", "HSR-001"],
            "action": ["advance", "advance", "advance"],
            "from_stage": [None, "partner", None],
            "to_stage": ["survey", "signing", "layout"],
            "event_date": ["2024-03-01", "2025-06-01", "2023-01-10"],
            "recorded_at": ["2024-03-01T09:00:00+00:00", "2025-06-01T09:00:00+00:00", "2023-01-10T09:00:00+00:00"],
            "recorded_by": ["张伟", "李娜", "王强"],
            "unit": ["凤凰街道办事处", "凤凰街道办事处", "区城市更新集团"],
            "note": ["启动意愿征询", None, None],
            "reason": [None, None, None],
            "share": [None, 0.9, None],
        }
    )
    import pyogrio

    pyogrio.write_dataframe(events, path, layer="stage_events", driver="GPKG", layer_options={"FID": "id"})
    pyogrio.write_dataframe(
        pd.DataFrame({"key": ["demo", "data_version", "data_source"], "value": ["1", "0", "测试数据"]}),
        path, layer="meta", driver="GPKG",
    )
    return path


@pytest.fixture(scope="session")
def tiny_store_template(tmp_path_factory):
    return write_tiny_store(tmp_path_factory.mktemp("tiny") / "tiny.gpkg")


@pytest.fixture
def tiny_gpkg(tiny_store_template, tmp_path, catalog):
    """A fresh copy of the tiny store as a GeoPackage, for what only the file back end has (its path, GDAL)."""
    from gis.store.store import Store

    path = tmp_path / "store.gpkg"
    shutil.copy(tiny_store_template, path)
    return Store(path, catalog)


# ------------------------------------------------------------------ both back ends
@pytest.fixture(scope="session")
def pg_server():
    """A throwaway PostgreSQL/PostGIS cluster for the session (Debian's packages; .ci/install)."""
    from gis.devtools.pgtest import TempPostgres

    with TempPostgres(dbname="postgres_base") as pg:
        yield pg


def pg_database(pg_server, name: str, template: str | None = None) -> str:
    import psycopg

    admin = pg_server.url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as con:
        con.execute(f'DROP DATABASE IF EXISTS "{name}"')
        con.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    return pg_server.url.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(scope="session")
def pg_tiny_template(pg_server, tiny_store_template, catalog):
    from gis.store.pg import PostgisStore, load_store_into
    from gis.store.store import Store

    url = pg_database(pg_server, "tiny_template")
    target = PostgisStore(url, catalog, create=True)
    load_store_into(Store(tiny_store_template, catalog), target)
    return "tiny_template"


_db_counter = iter(range(1, 10**6))


@pytest.fixture(params=["gpkg", "postgis"])
def tiny_store(request, tiny_store_template, tmp_path, catalog):
    """The tiny store on each back end, fresh for each test: a GeoPackage copy, and a PostGIS database
    made from a template. Every test written against the store interface runs on both."""
    if request.param == "gpkg":
        return request.getfixturevalue("tiny_gpkg")
    from gis.store.pg import PostgisStore

    pg_server = request.getfixturevalue("pg_server")
    template = request.getfixturevalue("pg_tiny_template")
    url = pg_database(pg_server, f"t{next(_db_counter)}", template=template)
    return PostgisStore(url, catalog)


@pytest.fixture
def any_store(tiny_store):
    """The store tests' name for :func:`tiny_store` (both back ends)."""
    return tiny_store


@pytest.fixture(scope="session")
def pg_demo_template(pg_server, tmp_path_factory):
    """The demo district loaded once into PostGIS, as a template database."""
    from gis.store.pg import PostgisStore, load_store_into
    from gis.store.store import Store

    copy = tmp_path_factory.mktemp("demo") / "demo.gpkg"
    shutil.copy(DEMO, copy)
    url = pg_database(pg_server, "demo_template")
    load_store_into(Store(copy), PostgisStore(url, create=True))
    return "demo_template"


@pytest.fixture(params=["gpkg", "postgis"])
def demo_where(request, tmp_path) -> str:
    """A private copy of the demo district on each back end: a GeoPackage path or a postgresql:// URL."""
    if request.param == "gpkg":
        path = tmp_path / "demo.gpkg"
        shutil.copy(DEMO, path)
        return str(path)
    template = request.getfixturevalue("pg_demo_template")
    return pg_database(request.getfixturevalue("pg_server"), f"d{next(_db_counter)}", template=template)


def set_view(evaluate, lat: float, lon: float, zoom: int, map_expr: str = "window.map") -> None:
    """Move a Leaflet map in the browser (``evaluate``: a frame's evaluate) and make sure it moved:
    a setView that arrives while Leaflet still settles its first view can be dropped, so it is
    repeated until the map is at ``zoom``."""
    for _ in range(50):
        evaluate(f"() => {{ {map_expr}.setView([{lat}, {lon}], {zoom}, {{animate: false}}); }}")
        if evaluate(f"() => {map_expr}.getZoom()") == zoom:
            return
        time.sleep(0.1)
    raise AssertionError(f"the map did not move to zoom {zoom}")


def poll(check, timeout: float = 10.0, interval: float = 0.2):
    """``check()``'s first truthy value within ``timeout`` seconds, else its last value: browsers on a
    loaded 2-core machine answer late, and a fixed sleep before an assertion makes a flaky test."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


# ------------------------------------------------------------------ headless Chromium (Debian's)
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def local_only_page(browser, **context):
    """``(context, page)``: a browser page whose requests may only reach localhost (an intranet without
    internet); the others are aborted and recorded in ``page.blocked``. Close the context when done."""
    from urllib.parse import urlparse

    ctx = browser.new_context(**{"locale": "zh-CN", **context})
    blocked = []

    def guard(route):
        url = route.request.url
        if urlparse(url).hostname in LOCAL_HOSTS or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            blocked.append(url)
            route.abort()

    ctx.route("**/*", guard)
    pg = ctx.new_page()
    pg.blocked = blocked
    return ctx, pg


def map_frame(page, timeout=60, min_paths=20):
    """The streamlit-folium iframe once Leaflet has drawn at least ``min_paths`` polygons."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for fr in page.frames:
            try:
                n = fr.evaluate("() => window.map && document.querySelectorAll('path.leaflet-interactive').length")
            except Exception:  # noqa: BLE001 - frames come and go while Streamlit renders
                continue
            if n and n >= min_paths:
                return fr
        page.wait_for_timeout(300)
    raise AssertionError("the map never drew its polygons")


def sign_in(page, url, username, password, path=""):
    """Open ``url + path`` and sign in through the login form (the Chinese labels, the default language)."""
    page.goto(url + path, wait_until="domcontentloaded")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(password)
    page.get_by_role("button", name="登录").click()


def screenshot_dir(default: Path) -> Path:
    """Where a browser test saves its screenshots: ``RENEWAL_SCREENSHOTS`` (docs/screenshots for the README),
    else ``default`` (the test's own temporary folder)."""
    d = Path(os.environ.get("RENEWAL_SCREENSHOTS", default))
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture
def page(browser):
    """A 1,500×950 page limited to localhost (``local_only_page``)."""
    ctx, pg = local_only_page(browser, viewport={"width": 1500, "height": 950})
    yield pg
    ctx.close()


@pytest.fixture
def make_app(demo_where, tmp_path, monkeypatch):
    """A factory of the app through Streamlit's AppTest, on a private copy of the demo district, on each back
    end: ``make_app(user="admin")`` (``user=None``: nobody signed in). ``at.store_where`` opens the same store."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("RENEWAL_DATA_DIR", str(tmp_path))
    for k in ("RENEWAL_STORE", "RENEWAL_LANG", "RENEWAL_DATABASE_URL", "RENEWAL_CONFIG"):
        monkeypatch.delenv(k, raising=False)
    if demo_where.startswith("postgresql://"):
        monkeypatch.setenv("RENEWAL_DATABASE_URL", demo_where)
        where = demo_where
    else:
        shutil.copy(demo_where, tmp_path / "renewal.gpkg")
        where = str(tmp_path / "renewal.gpkg")
    st.cache_resource.clear()
    st.cache_data.clear()

    def make(user: str | None = "admin", timeout: float = 90):
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=timeout)
        at.store_where = where
        if user:
            at.session_state["user"] = user
        return at

    yield make
    st.cache_resource.clear()
    st.cache_data.clear()
