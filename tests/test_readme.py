"""Every command-line example in README.md runs, as written, on a fresh copy of the demo, with the exit
code the README gives it.

The examples are the ```bash blocks outside *Set up* (whose two commands tests/test_packaging.py keeps
in step with CI). A line's expected exit code is written in its comment, ``# exit 3`` (or
``# refused: exit 3``); without one it is 0. ``export VAR=value`` holds for the lines after it, as in
one shell read top to bottom. They run one after another, in README order, in a temporary
working folder whose store is a fresh copy of the demo (``RENEWAL_DATA_DIR``), once on each back end
(the PostgreSQL set-up lines, which name ``postgresql://renewal@dbhost/renewal``, on the PostGIS run,
with an empty database of the test cluster in its place); the demo rebuild writes to a temporary copy,
never to the committed files. The files the examples read (``宗地.zip``, ``地籍.zip``, ``parcels.gpkg``,
``amap.geojson``, ``CBDK.shp``, ``ortho.tif``, ``dom_2025.tif``, ``现场.jpg``, ``纪要.pdf``, ``大图.png``) are made here, in code. ``renewal serve`` is started,
must answer its health check, and must be gone, with everything it started, after one SIGTERM.
"""
from __future__ import annotations

import datetime as dt
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely
from conftest import DEMO, ROOT, pg_database
from pyproj import Transformer
from test_serve import group_alive

from gis.base.gcj02 import gdf_to_gcj02
from gis.demo.evidence import bomb_png, sample_pdf, sample_photo
from gis.devtools.devserver import free_port

README = ROOT / "README.md"
DEMO_RASTER = ROOT / "data" / "raster" / "demo_basemap.tif"
SET_UP = "Set up"
PLACEHOLDER_DB = "postgresql://renewal@dbhost/renewal"
#: what ``--password-stdin`` reads in the examples
STDIN = "zhangwei-2026-pass\n"
DEAD_PROXY = "http://127.0.0.1:9"


@dataclass(frozen=True)
class Example:
    line: int  #: README line number
    section: str
    command: str  #: the command without its comment
    exit_code: int

    def __str__(self) -> str:
        return f"README.md:{self.line}: {self.command}  (expects exit {self.exit_code})"


def split_comment(line: str) -> tuple[str, str]:
    """A shell line's command and its trailing comment: a ``#`` after white space, outside quotes."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip(), line[i + 1:].strip()
    return line.rstrip(), ""


def readme_examples(text: str) -> list[Example]:
    """The command lines of README's bash blocks, outside *Set up*, with their expected exit codes."""
    out, section, fence = [], "", False
    for n, line in enumerate(text.splitlines(), 1):
        if line.startswith("```"):
            fence = not fence and line.strip() == "```bash"
            continue
        if not fence:
            if line.startswith("## "):
                section = line[3:].strip()
            continue
        command, comment = split_comment(line)
        if not command.strip() or section == SET_UP:
            continue
        m = re.search(r"\bexit (\d+)\b", comment)
        out.append(Example(n, section, command.strip(), int(m.group(1)) if m else 0))
    return out


def test_the_readme_examples_are_found():
    examples = readme_examples(README.read_text(encoding="utf-8"))
    assert len(examples) > 30
    def runnable(command: str) -> bool:  # `renewal …`, maybe after VAR=value or `echo … |`, or `export VAR=…`
        return bool(re.match(r"(export [A-Z_]+=\S+$|([A-Z_]+=\S+ )*(echo \S+ \| )?renewal )", command))

    assert all(runnable(e.command) for e in examples), [str(e) for e in examples if not runnable(e.command)]
    assert any(e.exit_code == 3 for e in examples)
    assert split_comment('renewal advance X --note "a # b"   # exit 3') == ('renewal advance X --note "a # b"', "exit 3")
    assert all(runnable(c) for c in ("export RENEWAL_PASSWORD=renewal-admin", "echo pw | renewal user list",
                                     "RENEWAL_PASSWORD=x renewal --as admin user list"))


# ------------------------------------------------------------------ the files the examples read
def _district_boxes(n: int, dx: float = 0.0) -> list:
    """``n`` small squares in the central part of the demo district, clear of one another."""
    x0, y0 = 121.300 + dx, 37.420
    return [shapely.box(x0 + i * 0.002, y0, x0 + i * 0.002 + 0.0012, y0 + 0.0012) for i in range(n)]


def _zipped_shapefile(gdf: gpd.GeoDataFrame, path: Path, stem: str, encoding: str = "utf-8") -> None:
    folder = path.parent / (path.stem + "_shp")
    folder.mkdir()
    gdf.to_file(folder / f"{stem}.shp", engine="pyogrio", encoding=encoding)
    with zipfile.ZipFile(path, "w") as z:
        for p in sorted(folder.iterdir()):
            z.write(p, p.name)
    shutil.rmtree(folder)


def make_zongdi_zip(path: Path) -> None:
    gdf = gpd.GeoDataFrame({"宗地编号": ["ZD-001", "ZD-002", "ZD-003"],
                            "宗地名称": ["示例宗地一", "示例宗地二", "示例宗地三"]},
                           geometry=_district_boxes(3), crs="EPSG:4490")
    _zipped_shapefile(gdf, path, "宗地", "gbk")


def make_cadastre_zip(path: Path) -> None:
    boxes = _district_boxes(4, dx=0.02)
    gdf = gpd.GeoDataFrame({"ZDDM": [f"370602001001GB0000{i}" for i in range(1, 5)],
                            "DLMC": ["城镇住宅用地", "工业用地", "公园与绿地", "农村宅基地"],
                            "QSXZ": ["20", "20", "10", "30"]}, geometry=boxes, crs="EPSG:4490")
    _zipped_shapefile(gdf, path, "地籍")


def make_parcels_gpkg(path: Path) -> None:
    gdf = gpd.GeoDataFrame({"code": ["GK-001", "GK-002"], "name": ["高斯投影地块一", "高斯投影地块二"],
                            "kind": ["landmark", "landmark"]},
                           geometry=_district_boxes(2, dx=0.04), crs="EPSG:4490").to_crs("EPSG:4528")
    gdf.to_file(path, layer="地块", driver="GPKG", engine="pyogrio")


def make_amap_geojson(path: Path) -> None:
    """Parcels as AMap gives them: lon/lat shifted to GCJ-02."""
    gdf = gpd.GeoDataFrame({"code": ["AM-001"], "name": ["高德地图标注地块"]},
                           geometry=_district_boxes(1, dx=0.06), crs="EPSG:4326")
    gdf_to_gcj02(gdf).to_file(path, driver="GeoJSON", engine="pyogrio")


def make_land_contract_shapefile(path: Path) -> None:
    """承包地块 as a land-contract database delivers them: DKBM/DKMC, GBK text, no .cpg, no .prj, Gauss-Krüger
    zone 40 coordinates with the zone prefix (the import recognises all of it)."""
    gdf = gpd.GeoDataFrame({"DKBM": ["3706020012010100001", "3706020012010100002"], "DKMC": ["东洼地", "西岭地"],
                            "FBFMC": ["北马家村股份经济合作社"] * 2},
                           geometry=_district_boxes(2, dx=0.08), crs="EPSG:4490").to_crs("EPSG:4528")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # no CRS to write: no .prj, as delivered
        pyogrio.write_dataframe(gdf.set_crs(None, allow_override=True), path, encoding="GBK")
    path.with_suffix(".cpg").unlink(missing_ok=True)


def make_geotiff(path: Path, size: int = 256) -> None:
    """An RGB GeoTIFF in the local Gauss-Krüger zone over V07-023 and its neighbours."""
    import rasterio
    from rasterio.transform import from_origin

    x, y = Transformer.from_crs(4490, 4528, always_xy=True).transform(121.2383, 37.4294)
    rng = np.random.default_rng(7)
    data = rng.integers(60, 200, size=(3, size, size), dtype=np.uint8)
    with rasterio.open(path, "w", driver="GTiff", width=size, height=size, count=3, dtype="uint8",
                       crs="EPSG:4528", transform=from_origin(x - size, y + size, 4.0, 4.0)) as dst:
        dst.write(data)


def make_site_photo(path: Path) -> None:
    """A site photo with EXIF time, GPS and direction."""
    path.write_bytes(sample_photo(121.2383, 37.4294, dt.datetime(2026, 11, 20, 10, 30), 120.0, serial="SN-0001"))


def make_minutes(path: Path) -> None:
    path.write_bytes(sample_pdf("Villagers' vote minutes", ["In favour: 90 %"]))


def make_bomb_png(path: Path) -> None:
    """A PNG of a hundred bytes declaring 50,000 × 50,000 pixels."""
    path.write_bytes(bomb_png(50_000, 50_000))


FIXTURES = {"宗地.zip": make_zongdi_zip, "地籍.zip": make_cadastre_zip, "parcels.gpkg": make_parcels_gpkg,
            "amap.geojson": make_amap_geojson, "CBDK.shp": make_land_contract_shapefile, "ortho.tif": make_geotiff,
            "dom_2025.tif": lambda p: make_geotiff(p, 1024), "现场.jpg": make_site_photo, "纪要.pdf": make_minutes,
            "大图.png": make_bomb_png}


# ------------------------------------------------------------------ running them
def _serve(example: Example, cwd: Path, env: dict) -> str | None:
    """``renewal serve`` answers its health check, then stops on SIGTERM, leaving nothing behind; else what
    went wrong."""
    port = free_port()
    env = dict(env, RENEWAL_PORT=str(port))
    log = open(cwd / "serve.log", "w")
    proc = subprocess.Popen(["bash", "-c", example.command], cwd=cwd, env=env, stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    return f"{example}: the app did not start\n{(cwd / 'serve.log').read_text()[-3000:]}"
                time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            return f"{example}: still running 30 s after SIGTERM"
        if group_alive(proc.pid):
            return f"{example}: a process outlived SIGTERM"
        return None
    finally:
        if group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


@pytest.fixture(params=["gpkg", "postgis"])
def readme_env(request, tmp_path):
    """A shell environment in which ``renewal`` is this checkout's command line, over a fresh demo store."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "renewal"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m gis.cli "$@"\n')
    script.chmod(0o755)
    demo_dir = tmp_path / "demo"
    demo_dir.mkdir()
    shutil.copy(DEMO, demo_dir / "demo.gpkg")
    shutil.copy(DEMO_RASTER, demo_dir / "demo_basemap.tif")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RENEWAL_")}
    env.update(PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", PYTHONPATH=str(ROOT),
               RENEWAL_DATA_DIR=str(tmp_path / "data"), RENEWAL_DEMO_STORE=str(demo_dir / "demo.gpkg"),
               RENEWAL_RASTER=str(demo_dir / "demo_basemap.tif"),
               # the Tianditu example fetches tiles: through a proxy that is not there, so no request
               # leaves the machine and the page is printed without them, as without internet
               http_proxy=DEAD_PROXY, https_proxy=DEAD_PROXY, HTTP_PROXY=DEAD_PROXY, HTTPS_PROXY=DEAD_PROXY)
    for key in ("no_proxy", "NO_PROXY"):
        env.pop(key, None)
    db = None
    if request.param == "postgis":
        pg = request.getfixturevalue("pg_server")
        template = request.getfixturevalue("pg_demo_template")
        env["RENEWAL_DATABASE_URL"] = pg_database(pg, f"readme_{os.getpid()}", template=template)
        db = pg_database(pg, f"readme_empty_{os.getpid()}")
    work = tmp_path / "work"
    work.mkdir()
    return request.param, work, env, db


@pytest.mark.slow
def test_every_readme_example_runs_with_the_exit_code_it_claims(readme_env):
    backend, work, env, db = readme_env
    failures = []
    for example in readme_examples(README.read_text(encoding="utf-8")):
        command = example.command
        exported = re.fullmatch(r"export ([A-Z_][A-Z0-9_]*)=(.*)", command)
        if exported:  # as in one shell read top to bottom: the variable holds for the lines after it
            env[exported.group(1)] = shlex.split(exported.group(2))[0] if exported.group(2) else ""
            continue
        if PLACEHOLDER_DB in command:
            if db is None:
                continue  # the PostgreSQL set-up examples: on the PostGIS run
            command = command.replace(PLACEHOLDER_DB, db)
        for name, make in FIXTURES.items():
            if name in command.split() and not (work / name).exists():
                make(work / name)
        if re.search(r"\brenewal serve\b", command):
            problem = _serve(Example(example.line, example.section, command, example.exit_code), work, env)
            failures += [problem] if problem else []
            continue
        t0 = time.time()
        res = subprocess.run(["bash", "-c", command], cwd=work, env=env, input=STDIN, capture_output=True,
                             text=True, timeout=600)
        print(f"{time.time() - t0:6.1f} s  exit {res.returncode}  {example}", file=sys.stderr)
        if res.returncode != example.exit_code:
            failures.append(f"{example}: exit {res.returncode} ({backend})\n{res.stderr[-1500:]}")
    assert not failures, "\n\n".join(failures)
