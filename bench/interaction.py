"""Benchmark: what a planner's clicks cost, in the browser and on the server (issue 19).

    python3 -m bench.interaction                    # both back ends, 3 rounds (~5 min)
    python3 -m bench.interaction --backend gpkg --reps 5

For each back end the app runs on a copy of the demo (``gis.devtools.devserver``;
PostGIS: a throwaway cluster, ``gis.devtools.pgtest``), and Debian's headless
Chromium does, ``--reps`` times, each in a new session (a new page, signed out first; the browser keeps
its HTTP cache as a planner's does, ``--cold`` for a brand-new profile each round): log in → the map
drawn (``login``); type a parcel's code in the filter → one result, the map
zoomed to it (``filter``); click the parcel → its panel (``click``); open the
panel's 操作 tab (``tab``: its content runs when opened; the bare page has no tabs, so no ratio);
submit the advance → the confirmation (``advance``); open the village board (``board``).
In the same run the same five are done on a bare Streamlit page
(bench/bare_app.py) that only shows the same parcels with st_folium: the floor
Streamlit itself sets.

- ``browser_s``: from the action to its result on screen (median);
- ``server_s``: CPU seconds the app's server process spent on it (from /proc,
  until the process is idle again; median): what a click costs the server;
- ``bare_browser_s``/``bare_server_s``: the same on the bare page;
  ``ratio_bare``: browser_s ÷ bare_browser_s.

One JSON line per interaction and back end; the machine is shared, so compare
the ratios, measured in one run.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

import shapely
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import sync_playwright

from gis.devtools.devserver import free_port, running_app
from gis.store.open import open_store_at

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "data" / "parcels" / "demo.gpkg"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
USER, PASSWORD = "editor_north", "renewal-north"
INTERACTIONS = ("login", "filter", "click", "advance", "board")
TIMEOUT = 60_000  # ms


# ------------------------------------------------------------------ the server's CPU
def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def settled_cpu(pid: int, quiet: float = 0.25, limit: float = 5.0) -> float:
    """The process's CPU seconds once it has stopped using CPU (its rerun is over)."""
    last, deadline = cpu_seconds(pid), time.monotonic() + limit
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = cpu_seconds(pid)
        if now == last:
            return now
        last = now
    return last


@contextmanager
def measured(pid: int, out: dict, name: str):
    """Time the block (browser) and the server's CPU over it (after it settles)."""
    c0 = settled_cpu(pid)
    t0 = time.perf_counter()
    yield
    out.setdefault(name, []).append((time.perf_counter() - t0, settled_cpu(pid) - c0))


# ------------------------------------------------------------------ the map in its iframe
def map_frame(page, min_paths: int = 20, timeout: float = 60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        for fr in page.frames:
            try:
                n = fr.evaluate("() => window.map_ready_n = (document.querySelectorAll("
                                "'path.leaflet-interactive').length)")
            except Exception:  # noqa: BLE001 -- a frame being replaced: look again
                continue
            if n and n >= min_paths:
                return fr
        page.wait_for_timeout(50)
    raise RuntimeError("the map never drew its parcels")


def leaflet_map(frame) -> str:
    """The JS expression of the frame's Leaflet map (the app names it window.map; folium a map_<id>)."""
    return frame.evaluate("() => window.map ? 'window.map' : Object.keys(window).find("
                          "k => k.startsWith('map_') && window[k] && window[k].getZoom)")


def zoomed_to(page, lat: float, lon: float, timeout: float = 60):
    """The map frame once the map has moved so that (lat, lon) is in view at zoom 15 or more: its pixel."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            fr = map_frame(page, 1)
            m = leaflet_map(fr)
            if m and fr.evaluate(f"() => {m}.getZoom() >= 15 && {m}.getBounds().contains([{lat}, {lon}])"):
                xy = fr.evaluate(f"() => {{ const p = {m}.latLngToContainerPoint([{lat}, {lon}]);"
                                 " return [p.x, p.y]; }")
                return xy
        except Exception:  # noqa: BLE001 -- Streamlit replaced the iframe while it reran
            pass
        page.wait_for_timeout(50)
    raise RuntimeError("the map did not zoom to the parcel")


def iframe_box(page):
    return page.locator("iframe[title*='st_folium']").first.bounding_box()


def shown(page, text: str | None = None, selector: str = "body", timeout: int = TIMEOUT) -> None:
    """Wait, checking on every animation frame, until an element of ``selector`` (containing ``text``) is
    on screen. Playwright's ``wait_for`` polls at growing intervals (…, 100, 500 ms), which rounded a
    result that came 0.1 s after the last poll up by up to half a second, on either page."""
    page.wait_for_function(
        """([sel, text]) => [...document.querySelectorAll(sel)].some(e => e.offsetParent !== null
                && (text === null || e.textContent.includes(text)))""",
        arg=[selector, text], polling="raf", timeout=timeout)


# ------------------------------------------------------------------ one round
def browser_context(browser):
    return browser.new_context(viewport={"width": 1500, "height": 950}, locale="zh-CN")


def one_round(browser, url: str, pid: int, parcel, bare: bool, out: dict, ctx=None) -> None:
    """One planner's visit: a new page (a new Streamlit session), signed out first. In ``ctx`` (a browser
    context kept from round to round), the browser keeps its HTTP cache, as an office planner's does: the
    page's hashed script bundles (``Cache-Control: immutable``) come once, not with every round's first
    click on a new kind of element. Without ``ctx`` (``--cold``), a brand-new browser profile each round."""
    own = ctx is None
    ctx = browser_context(browser) if own else ctx
    ctx.clear_cookies()  # the sign-in cookie: every round logs in
    page = ctx.new_page()
    try:
        page.goto(url, wait_until="domcontentloaded")
        page.get_by_label("用户名").fill(USER)
        page.get_by_label("密码").fill(PASSWORD)
        page.wait_for_timeout(300)
        with measured(pid, out, "login"):
            page.get_by_role("button", name="登录").click()
            map_frame(page, 2000)
        pt = shapely.point_on_surface(parcel.geometry)
        box = page.get_by_label("搜索名称或编号")
        box.fill(parcel["code"])
        with measured(pid, out, "filter"):
            box.press("Enter")
            shown(page, "符合条件的地块：1 个", "[data-testid='stCaptionContainer'], p")
            xy = zoomed_to(page, pt.y, pt.x)
        page.wait_for_timeout(800)  # Leaflet settles its view
        with measured(pid, out, "click"):
            for attempt in range(3):  # a click that lands while Streamlit replaces the map's iframe is lost
                xy = zoomed_to(page, pt.y, pt.x)
                frame_box = iframe_box(page)
                page.mouse.click(frame_box["x"] + xy[0], frame_box["y"] + xy[1])
                try:
                    shown(page, parcel["name"], "h1, h2, h3", timeout=TIMEOUT // 3)
                    break
                except PlaywrightTimeout:
                    if attempt == 2:
                        raise
        if not bare:  # the panel's forms are in its third tab, whose content runs when it is opened
            with measured(pid, out, "tab"):
                page.get_by_role("tab", name="操作").click()
                shown(page, "提交", "button")
        shown(page, "提交", "button")
        with measured(pid, out, "advance"):
            page.get_by_role("button", name="提交").click()
            shown(page, f"已将 {parcel['code']} 推进到", "[data-testid='stAlertContentSuccess'], p")
        with measured(pid, out, "board"):
            if bare:
                page.get_by_role("button", name="旧村改造进度").click()
            else:
                page.get_by_role("link", name="旧村改造进度").click()
            shown(page, "30个旧村改造进度", "h1, h2, h3")
            shown(page, None, "[data-testid='stDataFrame']")
    finally:
        page.close()
        if own:
            ctx.close()


# ------------------------------------------------------------------ the two servers
@contextmanager
def app_server(backend: str, work: Path):
    """The app on a private copy of the demo: ``(url, pid, where)``."""
    env = {}
    with ExitStack() as stack:
        if backend == "gpkg":
            shutil.copy(DEMO, work / "renewal.gpkg")
            where = str(work / "renewal.gpkg")
        else:
            from gis.devtools.pgtest import TempPostgres
            from gis.store.pg import PostgisStore, load_store_into
            from gis.store.store import Store

            pg = stack.enter_context(TempPostgres(dbname="bench"))
            copy = work / "source.gpkg"
            shutil.copy(DEMO, copy)
            target = PostgisStore(pg.url, create=True)
            load_store_into(Store(copy), target)
            target.close()
            where = pg.url
            env["RENEWAL_DATABASE_URL"] = where
        app = stack.enter_context(running_app(work, env))
        yield app["url"], app["pid"], where


@contextmanager
def bare_server(where: str, work: Path, stock: bool = False):
    """bench/bare_app.py beside a link to the app's static/ (Streamlit serves the script's folder's)."""
    import subprocess
    import urllib.request

    folder = work / "bare"
    folder.mkdir()
    shutil.copy(ROOT / "bench" / "bare_app.py", folder / "bare_app.py")
    (folder / "static").symlink_to(ROOT / "static")
    port = free_port()
    log = open(work / "bare.log", "w")
    env = dict(os.environ, BARE_STORE=where, PYTHONPATH=str(ROOT))
    # the app's server (ui/serve.py), or ``stock``: ``python -m streamlit``, with its ~40 ms Nagle delay per reply
    launcher = ["-m", "streamlit"] if stock else [str(ROOT / "ui" / "serve.py")]
    proc = subprocess.Popen([sys.executable, *launcher, "run", str(folder / "bare_app.py"),
                             "--server.port", str(port), "--server.headless", "true",
                             "--server.address", "127.0.0.1"], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while True:
            try:
                if urllib.request.urlopen(url + "/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError("bare page did not start: " + (work / "bare.log").read_text()[-2000:]) from None
                time.sleep(0.3)
        yield url, proc.pid
    finally:
        proc.terminate()
        proc.wait(15)
        log.close()


def medians(samples: list[tuple[float, float]]) -> tuple[float, float]:
    return (round(statistics.median(b for b, _ in samples), 3), round(statistics.median(s for _, s in samples), 3))


def run_backend(browser, backend: str, reps: int, stock_bare: bool = False, cold: bool = False) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix=f"bench-interaction-{backend}-") as tmp:
        work = Path(tmp)
        with app_server(backend, work) as (url, pid, where):
            store = open_store_at(where)
            todo = store.parcels(kind="village", zone="north", stage="signing", blocked=False)
            if len(todo) < 2 * reps + 1:
                raise RuntimeError("not enough parcels to advance")
            ours, bare = {}, {}
            ctx = None if cold else browser_context(browser)  # one browser for both pages: each its own cache
            try:
                one_round(browser, url, pid, todo.iloc[0], False, {}, ctx)  # warm-up: caches, the first map
                for i in range(reps):
                    one_round(browser, url, pid, todo.iloc[1 + i], False, ours, ctx)
                with bare_server(where, work, stock_bare) as (burl, bpid):
                    one_round(browser, burl, bpid, todo.iloc[1 + reps], True, {}, ctx)
                    for i in range(reps):
                        one_round(browser, burl, bpid, todo.iloc[2 + reps + i], True, bare, ctx)
            finally:
                if ctx is not None:
                    ctx.close()
    lines = []
    for name in INTERACTIONS:
        b, s = medians(ours[name])
        bb, bs = medians(bare[name])
        lines.append({"interaction": name, "backend": backend, "server_s": s, "browser_s": b,
                      "bare_server_s": bs, "bare_browser_s": bb, "ratio_bare": round(b / bb, 2) if bb else None,
                      "reps": reps, "cache": "cold" if cold else "kept", "load": round(os.getloadavg()[0], 2)})
    b, s = medians(ours["tab"])  # the bare page has no tabs: its panel shows its form at once
    lines.append({"interaction": "tab", "backend": backend, "server_s": s, "browser_s": b, "bare_server_s": None,
                  "bare_browser_s": None, "ratio_bare": None, "reps": reps, "cache": "cold" if cold else "kept",
                  "load": round(os.getloadavg()[0], 2)})
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.interaction", description=__doc__.splitlines()[0])
    ap.add_argument("--backend", choices=("gpkg", "postgis", "both"), default="both")
    ap.add_argument("--reps", type=int, default=3, help="measured rounds per page (after one warm-up)")
    ap.add_argument("--stock-bare", action="store_true",
                    help="run the bare page with `python -m streamlit` rather than the app's server (ui/serve.py)")
    ap.add_argument("--cold", action="store_true",
                    help="a brand-new browser profile each round (no HTTP cache: every script bundle fetched again)")
    args = ap.parse_args(argv)
    backends = ("gpkg", "postgis") if args.backend == "both" else (args.backend,)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for backend in backends:
                for line in run_backend(browser, backend, args.reps, args.stock_bare, args.cold):
                    print(json.dumps(line, ensure_ascii=False), flush=True)
        finally:
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
