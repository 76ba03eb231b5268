"""Briefing pages and atlases (gis/briefing.py, gis/raster.py, gis/fonts.py, `renewal brief|atlas`).

Rendering is real (our PDF writer, PDFium for PNGs, pypdf and poppler to read them back); rasters are made in code; the demo
district is used from a copy in tmp_path, never from the committed file.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from pypdf import PdfReader
from rasterio.transform import from_origin

from gis.base.errors import InputError, NotFoundError
from gis.base.settings import Settings
from gis.maps.raster import raster_bounds, read_background
from gis.printing import briefing, pagekit

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "data" / "parcels" / "demo.gpkg"
DEMO_RASTER = ROOT / "data" / "raster" / "demo_basemap.tif"
A4 = (841.89, 595.28)  # landscape, points



# ------------------------------------------------------------------ helpers
def squash(text: str) -> str:
    """Extracted text without whitespace: pdf text extraction spaces CJK and numbers unevenly."""
    return re.sub(r"\s+", "", text)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part") or p.suffix in (".pdf", ".png", ".zip"))


def embedded_fonts(reader: PdfReader) -> dict[str, bool]:
    """Font name -> embedded as a CID font program with a ToUnicode map (selectable text), over all pages."""
    out = {}
    for page in reader.pages:
        fonts = page.get("/Resources", {}).get("/Font", {})
        for ref in fonts.values():
            f = ref.get_object()
            desc = f["/DescendantFonts"][0].get_object()["/FontDescriptor"].get_object() if "/DescendantFonts" in f else {}
            out[str(f.get("/BaseFont"))] = (f.get("/Subtype") == "/Type0" and "/ToUnicode" in f
                                            and "/FontFile3" in desc)
    return out


def write_tif(path: Path, x0: float, y0: float, size: int = 64, pixel: float = 10.0, crs="EPSG:4549",
              bands: int = 3, dtype="uint8", overviews=False, tiled=False) -> Path:
    data = (np.indices((size, size)).sum(axis=0) % 251).astype(dtype)
    profile = dict(driver="GTiff", width=size, height=size, count=bands, dtype=dtype,
                   transform=from_origin(x0, y0, pixel, pixel))
    if crs:
        profile["crs"] = crs
    if tiled:
        profile.update(tiled=True, blockxsize=256, blockysize=256, compress="deflate")
    with rasterio.open(path, "w", **profile) as ds:
        for b in range(1, bands + 1):
            ds.write(data, b)
        if overviews:
            ds.build_overviews([2, 4, 8, 16, 32], rasterio.enums.Resampling.average)
    return path


def corrupt_middle(data: bytes) -> bytes:
    """Garbage over the tiles, header and directory left intact: the file opens, its pixels do not read."""
    a, b = len(data) // 4, len(data) * 3 // 4
    return data[:a] + bytes(np.random.default_rng(0).integers(0, 256, b - a, dtype=np.uint8)) + data[b:]


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory):
    """One copy of the demo for the read-only rendering tests of this module."""
    from gis.store.store import Store

    path = tmp_path_factory.mktemp("demo") / "demo.gpkg"
    shutil.copy(DEMO, path)
    return Store(path)


@pytest.fixture(scope="module")
def settings():
    return Settings.load(env={}, classification="内部资料 注意保存")


@pytest.fixture(scope="module")
def raster():
    return DEMO_RASTER if DEMO_RASTER.exists() else None


# ------------------------------------------------------------------ small pure pieces
@pytest.mark.parametrize("max_m, expected", [(0.9, 0.5), (1, 1), (37, 20), (49.9, 20), (50, 50), (730, 500),
                                             (1999, 1000), (2000, 2000), (123456, 100000)])
def test_scale_bar_lengths_are_1_2_5_times_a_power_of_ten(max_m, expected):
    assert pagekit.nice_length(max_m) == pytest.approx(expected)


def test_fit_extent_keeps_the_map_aspect_and_a_minimum_size():
    ext = pagekit.fit_extent((0, 0, 10, 50), 173 / 136, 0.5, 320)
    w, h = ext[2] - ext[0], ext[3] - ext[1]
    assert w / h == pytest.approx(173 / 136) and w >= 320 and h >= 100
    assert (ext[0] + ext[2]) / 2 == pytest.approx(5) and (ext[1] + ext[3]) / 2 == pytest.approx(25)


def test_wrap_breaks_chinese_anywhere_and_latin_at_spaces():
    zh = pagekit.wrap("完成房屋、人口及土地基础数据调查，启动方案编制", 20, 7)
    assert len(zh) > 1 and "".join(zh) == "完成房屋、人口及土地基础数据调查，启动方案编制"
    en = pagekit.wrap("Baseline survey of houses, residents and land completed", 30, 7)
    assert len(en) > 1 and all(not w.startswith(" ") for w in en)
    assert " ".join(en) == "Baseline survey of houses, residents and land completed"


def test_crs_label_names_cgcs2000_and_the_zone():
    assert pagekit.crs_label(4549, "zh") == "CGCS2000 3度带高斯-克吕格 中央经线120°E（EPSG:4549）"
    assert "CM 120°E" in pagekit.crs_label(4549, "en")


# ------------------------------------------------------------------ raster windows
def test_raster_window_in_another_crs_is_warped_onto_the_page_grid(tmp_path):
    # a 4490 (degrees) raster around the tiny store; page in GK metres
    from pyproj import Transformer

    tif = write_tif(tmp_path / "geo.tif", 121.29, 37.43, size=100, pixel=0.0005, crs="EPSG:4490")
    to_gk = Transformer.from_crs(4490, 4549, always_xy=True)
    x0, y0 = to_gk.transform(121.30, 37.40)
    bg = read_background(tif, (x0, y0, x0 + 1000, y0 + 800), 4549, 250, 200)
    assert bg is not None and bg.image.shape[:2] == (200, 250)
    assert bg.extent == pytest.approx((x0, x0 + 1000, y0, y0 + 800))
    # the raster ends at 37.38N: the bottom rows of the page are outside it, so transparent
    assert bg.image.shape[2] in (3, 4)


def test_raster_partly_outside_the_page_is_transparent_there(tmp_path):
    tif = write_tif(tmp_path / "half.tif", 1000, 2000, size=50, pixel=10)  # covers x 1000..1500
    bg = read_background(tif, (1250, 1500, 1750, 2000), 4549, 100, 100)
    assert bg.image.shape == (100, 100, 4)
    assert bg.image[:, :45, 3].all() and not bg.image[:, 55:, 3].any()


def test_raster_outside_the_page_reads_nothing(tmp_path):
    tif = write_tif(tmp_path / "far.tif", 0, 100, size=10)
    assert read_background(tif, (5000, 5000, 6000, 6000), 4549, 50, 50) is None


def test_big_raster_is_read_from_the_overview_that_matches_the_page(tmp_path):
    """The full-resolution pixels are 0 and the overviews 200 (written after them): a page-sized
    read must show 200, i.e. come from an overview, not from the full image resampled."""
    tif = write_tif(tmp_path / "big.tif", 0, 40960, size=4096, pixel=10, overviews=True, tiled=True)
    with rasterio.open(tif, "r+") as ds:
        for b in (1, 2, 3):
            ds.write(np.zeros((4096, 4096), np.uint8), b)
    with rasterio.open(tif, "r+") as ds:  # the overviews keep the old, non-zero pixels
        assert ds.overviews(1) == [2, 4, 8, 16, 32]
    bg = read_background(tif, (0, 0, 40960, 40960), 4549, 400, 400)
    assert bg.image.shape == (400, 400, 3) and bg.image.mean() > 50
    full = read_background(tif, (0, 40000, 960, 40960), 4549, 96, 96)  # 10 m pixels: full resolution
    assert full.image.max() == 0


def test_sixteen_bit_and_grey_rasters_are_stretched_to_rgb(tmp_path):
    tif = write_tif(tmp_path / "u16.tif", 0, 640, size=64, bands=1, dtype="uint16")
    bg = read_background(tif, (0, 0, 640, 640), 4549, 64, 64)
    assert bg.image.dtype == np.uint8 and bg.image.shape == (64, 64, 3)
    assert bg.image.max() == 255 and bg.image.min() == 0


@pytest.mark.parametrize("make, key", [
    (lambda p: p.write_text("not a tiff") and p, "brief.bad_raster"),
    (lambda p: write_tif(p, 0, 640, crs=None), "brief.raster_no_crs"),
    (lambda p: p.with_name("missing.tif"), "brief.bad_raster"),
])
def test_unreadable_rasters_are_input_errors(tmp_path, make, key):
    path = make(tmp_path / "r.tif")
    with pytest.raises(InputError) as e:
        raster_bounds(path, 4549)
    assert e.value.key == key
    assert "底图" in e.value.message("zh") and "raster" in e.value.message("en")


# ------------------------------------------------------------------ fonts
def test_the_shipped_font_subset_renders_chinese_without_tofu(tmp_path):
    """A fresh pip install has no Debian font: the subset in data/fonts carries every page."""
    from gis.printing import pdfwriter

    text = "崖头村2号地块 V01-002 垵塱 示例数据（虚构） 3.42 亩"
    for bold in (False, True):  # bold falls back to the regular face for 垵 and 塱 (not in GB 2312)
        assert all(cid for _, run in pdfwriter.runs(text, bold) for _, cid, _ in run)
    c = pdfwriter.Canvas(300, 100)
    c.text(10, 60, text, 12, bold=True)
    c.text(10, 20, "清表及以后面积占比：35.0%", 9)
    pdfwriter.write_pdf(tmp_path / "f.pdf", [c.record()])
    reader = PdfReader(tmp_path / "f.pdf")
    fonts = embedded_fonts(reader)
    assert fonts and all(fonts.values()) and all("RenewalCJKSC" in name for name in fonts)
    assert "崖头村2号地块" in squash(reader.pages[0].extract_text())
    listing = subprocess.run(["pdffonts", str(tmp_path / "f.pdf")], capture_output=True, text=True)
    assert listing.stderr == "" and listing.stdout.count("CID Type 0C") == 2, listing
    assert (ROOT / "data" / "fonts" / "OFL.txt").exists()


def test_a_whole_page_embeds_only_the_shipped_font(tiny_store, settings, tmp_path):
    """What a bare `pip install -e .` prints: the subset is embedded and the Chinese extracts."""
    briefing.render_parcel_page(tiny_store, "V01-003", tmp_path / "p.pdf", settings=settings)
    reader = PdfReader(tmp_path / "p.pdf")
    names = embedded_fonts(reader)
    assert names and all(names.values()) and all("RenewalCJKSC" in n for n in names), names
    text = squash(reader.pages[0].extract_text())
    assert "东岙村3号地块" in text and "个别户未签约" in text and "内部资料注意保存" in text


# ------------------------------------------------------------------ pages
def test_parcel_page_pdf_has_the_facts_as_real_text(demo_store, settings, raster, tmp_path):
    code = "V07-023"
    p = demo_store.parcel(code)
    out = briefing.render_parcel_page(demo_store, code, tmp_path / "p.pdf", raster=raster, settings=settings)
    reader = PdfReader(out)
    assert len(reader.pages) == 1
    box = reader.pages[0].mediabox
    assert (float(box.width), float(box.height)) == pytest.approx(A4, abs=0.5)
    text = squash(reader.pages[0].extract_text())
    for fragment in (p["name"], code, f"{p['area_mu']:,.2f}亩", f"{p['stage_label']}（{p['stage_date']}）", p["zone_name"],
                     p["kind_label"], p["village_name"], "内部资料注意保存", "示例数据（虚构）", "CGCS2000", "EPSG:4549"):
        assert squash(fragment) in text, fragment
    assert all(embedded_fonts(reader).values()) and any("CJK" in n for n in embedded_fonts(reader))
    assert leftovers(tmp_path) == ["p.pdf"]
    assert os.stat(out).st_mode & 0o044  # an ordinary readable file, not mkstemp's 0600


def test_parcel_page_png_and_a3(demo_store, settings, raster, tmp_path):
    from PIL import Image

    out = briefing.render_parcel_page(demo_store, "V07-023", tmp_path / "p.png", raster=raster, settings=settings)
    img = Image.open(out)
    assert img.size == pytest.approx((297 / 25.4 * 150, 210 / 25.4 * 150), abs=1)
    px = np.asarray(img.convert("RGB"))
    assert px.std() > 20  # a map, not a blank page
    a3 = briefing.render_parcel_page(demo_store, "V07-023", tmp_path / "a3.pdf", paper="A3", raster=None,
                                     settings=settings)
    box = PdfReader(a3).pages[0].mediabox
    assert (float(box.width), float(box.height)) == pytest.approx((1190.55, 841.89), abs=0.5)


@pytest.mark.parametrize("paper", ["A4", "A3"])
def test_facts_keys_and_values_share_their_lines(tiny_store, settings, tmp_path, paper):
    """Keys and values are separate text columns: their baselines must meet on both papers."""
    out = briefing.render_parcel_page(tiny_store, "V01-003", tmp_path / "p.pdf", paper=paper, settings=settings)
    html = subprocess.run(["pdftotext", "-bbox", str(out), "-"], capture_output=True, text=True).stdout
    words = {}
    for y, word in re.findall(r'yMax="([\d.]+)">([^<]+)</word>', html):
        words.setdefault(word, []).append(float(y))
    # (compare CJK words, allow 1.5 pt of 11)
    for key, value in (("类型", "旧村改造地块"), ("卡点原因", "个别户未签约"), ("责任单位", "凤凰街道办事处")):
        assert min(abs(v - words[key][0]) for v in words[value]) < 1.5, (key, value, words[key], words[value])


def test_village_page_has_its_summary(demo_store, settings, raster, tmp_path):
    v = briefing.village_summary(demo_store, "V07")
    name = demo_store.attributes("villages")["V07"]["name"]
    out = briefing.render_village_page(demo_store, name, tmp_path / "v.pdf", raster=raster, settings=settings)
    text = squash(PdfReader(out).pages[0].extract_text())
    assert v["name"] == name and sum(r["parcels"] for r in v["stages"]) == v["parcels"] > 0
    for fragment in (name, "V07", f"{v['area_mu']:,.2f}亩", "当前阶段（全部地块已达）：" + v["stage_label"],
                     f"清表及以后面积占比：{v['cleared_share']:.1%}", "各阶段地块与面积"):
        assert squash(fragment) in text, fragment


def test_pages_render_on_the_tiny_store_with_markup_in_names_as_text(tiny_store, settings, tmp_path):
    """No district raster, no sea or parks: still a page; a name with markup is printed as it is."""
    out = briefing.render_village_page(tiny_store, "V01", tmp_path / "v.pdf", settings=settings)
    assert "<b>东岙村</b>" in squash(PdfReader(out).pages[0].extract_text())
    out = briefing.render_parcel_page(tiny_store, "V01-003", tmp_path / "p.pdf", settings=settings, lang="en")
    text = squash(PdfReader(out).pages[0].extract_text())
    assert "Blockedbecause" in text and "个别户未签约" in text and "Currentstage" in text


# ------------------------------------------------------------------ atlases
def test_villages_atlas_has_cover_index_and_one_page_per_village(demo_store, settings, raster, tmp_path):
    seen = []
    sel = briefing.select_villages(demo_store)
    res = briefing.render_atlas(demo_store, sel, tmp_path / "atlas.pdf", raster=raster, settings=settings,
                                progress=lambda d, n, label: seen.append((d, n)), jobs=2)
    reader = PdfReader(res["pdf"])
    assert res["pages"] == len(reader.pages) == 32
    assert seen[-1] == (32, 32) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    for page in reader.pages:
        assert (float(page.mediabox.width), float(page.mediabox.height)) == pytest.approx(A4, abs=0.5)
    fonts = embedded_fonts(reader)
    assert fonts and all(fonts.values()) and any("CJK" in name for name in fonts)
    assert "目录" in squash(reader.pages[1].extract_text())
    codes = sorted(demo_store.attributes("villages"))
    assert len(codes) == 30
    for i, code in enumerate(codes):
        v = briefing.village_summary(demo_store, code)
        text = squash(reader.pages[2 + i].extract_text())
        for fragment in (v["name"], code, f"{v['area_mu']:,.2f}亩", "当前阶段（全部地块已达）：" + v["stage_label"]):
            assert squash(fragment) in text, (code, fragment)
        assert f"第{3 + i}页/共32页" in text
    first = briefing.village_summary(demo_store, codes[0])["name"]
    assert [o.title for o in reader.outline][:3] == ["封面", "目录", f"{codes[0]} {first}"]
    assert leftovers(tmp_path) == ["atlas.pdf"]


def test_small_parcel_atlas_with_png_zip_in_one_process(tiny_store, settings, tmp_path):
    import zipfile

    sel = briefing.select_parcels(tiny_store, village="V01")
    assert sel.codes == ("V01-001", "V01-002", "V01-003")
    res = briefing.render_atlas(tiny_store, sel, tmp_path / "a.pdf", png_zip=tmp_path / "a.zip", settings=settings,
                                jobs=1)
    assert res["pages"] == len(PdfReader(res["pdf"]).pages) == 5
    names = zipfile.ZipFile(res["png_zip"]).namelist()
    assert names == ["001_cover.png", "002_index1.png", "003_V01-001.png", "004_V01-002.png", "005_V01-003.png"]
    assert leftovers(tmp_path) == ["a.pdf", "a.zip"]


def test_selection_by_zone_and_kind_and_empty_selection(tiny_store):
    assert briefing.select_parcels(tiny_store, zone="南部", kind="park").codes == ("HSR-001",)
    assert briefing.select_villages(tiny_store, zone="south").codes == ("V01",)
    with pytest.raises(InputError):
        briefing.select_villages(tiny_store, zone="north")  # no village there
    with pytest.raises(NotFoundError):
        briefing.select_villages(tiny_store, zone="west")


# ------------------------------------------------------------------ bad inputs leave nothing behind
@pytest.mark.parametrize("case", ["unknown_code", "no_folder", "folder_is_a_file", "out_is_a_folder",
                                  "bad_extension", "not_a_raster", "corrupt_raster", "raster_elsewhere",
                                  "raster_without_crs", "bad_paper"])
def test_bad_inputs_raise_and_leave_no_file(tiny_store, settings, tmp_path, case):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "p.pdf"
    kw = {}
    code = "V01-002"
    if case == "unknown_code":
        code, err = "V99-999", NotFoundError
    elif case == "no_folder":
        out, err = out_dir / "missing" / "p.pdf", InputError
    elif case == "folder_is_a_file":
        (out_dir / "file").write_text("x")
        out, err = out_dir / "file" / "p.pdf", InputError
    elif case == "out_is_a_folder":
        (out_dir / "d.pdf").mkdir()
        out, err = out_dir / "d.pdf", InputError
    elif case == "bad_extension":
        out, err = out_dir / "p.svg", InputError
    elif case == "not_a_raster":
        (tmp_path / "r.tif").write_bytes(b"II*\x00garbage")
        kw, err = {"raster": tmp_path / "r.tif"}, InputError
    elif case == "corrupt_raster":
        tif = write_tif(tmp_path / "r.tif", 121.29, 37.41, size=256, pixel=0.0001, crs="EPSG:4490", tiled=True)
        tif.write_bytes(corrupt_middle(tif.read_bytes()))
        kw, err = {"raster": tif}, InputError
    elif case == "raster_elsewhere":
        kw, err = {"raster": write_tif(tmp_path / "r.tif", 0, 1000)}, InputError
    elif case == "raster_without_crs":
        kw, err = {"raster": write_tif(tmp_path / "r.tif", 0, 1000, crs=None)}, InputError
    elif case == "bad_paper":
        kw, err = {"paper": "B5"}, InputError
    with pytest.raises(err) as e:
        briefing.render_parcel_page(tiny_store, code, out, settings=settings, **kw)
    assert e.value.message("zh") and e.value.message("en") and e.value.message("zh") != e.value.message("en")
    assert [p.name for p in out_dir.rglob("*") if p.is_file() and p.name != "file"] == []


def test_atlas_failing_in_a_worker_leaves_no_file_and_keeps_the_chinese_message(tiny_store, settings, tmp_path):
    """The raster's header reads but its tiles do not: the error comes from a page, in a worker."""
    tif = write_tif(tmp_path / "r.tif", 121.29, 37.43, size=512, pixel=0.0001, crs="EPSG:4490", tiled=True)
    tif.write_bytes(corrupt_middle(tif.read_bytes()))
    raster_bounds(tif, 4549)  # the header still reads: the failure must come from a page
    sel = briefing.AtlasSelection("parcel", ("V01-001", "V01-002", "V01-003", "HSR-001") * 2, {"zh": "测试"})
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(InputError) as e:
        briefing.render_atlas(tiny_store, sel, out / "a.pdf", png_zip=out / "a.zip", raster=tif, settings=settings,
                              jobs=2)
    assert "底图影像无法读取" in e.value.message("zh")
    assert list(out.iterdir()) == []


# ------------------------------------------------------------------ the command line
def run(*args, store=None):
    env = dict(os.environ)
    env.pop("RENEWAL_LANG", None)
    env["RENEWAL_RASTER"] = ""
    env.pop("RENEWAL_TIANDITU_KEY", None)
    cmd = [sys.executable, "-m", "gis.cli"] + (["--store", str(store)] if store else []) + [str(a) for a in args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)


@pytest.fixture
def store_file(tiny_store_template, tmp_path):
    p = tmp_path / "s.gpkg"
    shutil.copy(tiny_store_template, p)
    return p


def test_cli_brief_parcel_and_village(store_file, tmp_path):
    r = run("brief", "V01-002", "-o", tmp_path / "p.png", store=store_file)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["output"] == str(tmp_path / "p.png") and (tmp_path / "p.png").stat().st_size > 10_000
    r = run("brief", "--village", "V01", "-o", tmp_path / "v.pdf", "--paper", "A3", store=store_file)
    assert r.returncode == 0, r.stderr
    box = PdfReader(tmp_path / "v.pdf").pages[0].mediabox
    assert float(box.width) == pytest.approx(1190.55, abs=0.5)


def test_cli_atlas_reports_progress_and_writes_json(store_file, tmp_path):
    r = run("atlas", "--kind", "village", "-o", tmp_path / "a.pdf", "--png-zip", tmp_path / "a.zip", store=store_file)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["pages"] == 5 and Path(res["png_zip"]).exists()
    assert "5/5" in r.stderr


@pytest.mark.parametrize("args, fragment", [
    (("brief", "V99-999", "-o", "{tmp}/x.pdf"), "没有编号为“V99-999”的地块"),
    (("brief", "V01-002", "-o", "{tmp}/missing/x.pdf"), "无法写入"),
    (("brief", "V01-002", "-o", "{tmp}/x.pdf", "--raster", "{tmp}/nope.tif"), "底图影像无法读取"),
    (("brief", "-o", "{tmp}/x.pdf"), "请给出地块编号"),
    (("brief", "V01-002", "--village", "V01", "-o", "{tmp}/x.pdf"), "请给出地块编号"),
    (("brief", "V01-002", "-o", "{tmp}/x.docx"), "文件扩展名"),
    (("atlas", "-o", "{tmp}/x.pdf"), "请指定出图范围"),
    (("atlas", "--zone", "西部", "-o", "{tmp}/x.pdf"), "没有片区"),
    (("atlas", "--villages", "-o", "{tmp}/x.pdf", "--png-zip", "{tmp}/missing/x.zip"), "无法写入"),
    (("brief", "V01-002", "-o", "{tmp}/x.pdf", "--paper", "B5"), "命令参数有误"),
    (("brief", "V01-002", "-o", "{tmp}/x.pdf", "--basemap", "tianditu_img"), "天地图需要密钥"),
    (("brief", "V01-002", "-o", "{tmp}/x.pdf", "--basemap", "amap_road"), "命令参数有误"),
    (("atlas", "--villages", "-o", "{tmp}/x.pdf", "--no-raster", "--basemap", "tianditu_vec"), "只能选一个"),
])
def test_cli_bad_input_exits_2_and_writes_nothing(store_file, tmp_path, args, fragment):
    out = tmp_path / "out"
    out.mkdir()
    r = run(*(a.format(tmp=out) for a in args), store=store_file)
    assert r.returncode == 2, r.stderr
    assert fragment in r.stderr and "Traceback" not in r.stderr
    assert list(out.iterdir()) == []


# ------------------------------------------------------------------ the app
@pytest.fixture
def app_env(tiny_store_template, tmp_path, monkeypatch):
    """The app's settings pointed at a private tiny store, no basemap."""
    import streamlit as st

    shutil.copy(tiny_store_template, tmp_path / "renewal.gpkg")
    monkeypatch.setenv("RENEWAL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("RENEWAL_RASTER", "")
    monkeypatch.delenv("RENEWAL_STORE", raising=False)
    monkeypatch.delenv("RENEWAL_LANG", raising=False)
    st.cache_resource.clear()
    st.cache_data.clear()
    yield tmp_path
    st.cache_resource.clear()
    st.cache_data.clear()


def test_export_page_builds_an_atlas_and_offers_the_download(app_env):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "ui" / "export_page.py"), default_timeout=90).run()
    assert not at.exception, at.exception
    assert at.title[0].value == "导出简报图集"
    assert any("共 3 页" in c.value for c in at.caption)
    at.button(key="export_build").click().run()
    assert not at.exception, at.exception
    assert "图集已生成：3 页" in at.success[0].value
    assert [b.proto.label for b in at.get("download_button")] == ["下载 PDF 图集"]
    at.radio(key="export_what").set_value("filter").run()
    assert "请先在左侧设置筛选条件" in at.info[0].value
    at.sidebar.text_input[0].set_value("V01-00").run()
    assert not at.exception and any("3 个地块" in c.value and "共 5 页" in c.value for c in at.caption)


def test_download_buttons_render_the_page_only_when_clicked(app_env):
    from streamlit.testing.v1 import AppTest

    from ui import downloads

    def script():
        from ui.downloads import parcel_downloads, village_downloads

        parcel_downloads("V01-002")
        village_downloads("V01")

    calls = []
    real = downloads._render
    downloads._render = lambda *a, **k: calls.append(a[2:5]) or real(*a, **k)
    try:
        at = AppTest.from_function(script, default_timeout=60).run()
        assert not at.exception, at.exception
        labels = [b.proto.label for b in at.get("download_button")]
        assert labels[:2] == ["地块简报图 PDF", "地块简报图 PNG"]  # each pair says which page it is
        assert labels[2].endswith(" 旧村改造简报图 PDF") and labels[3].endswith(" 旧村改造简报图 PNG")
        assert calls == []  # nothing rendered until a button is clicked
        make = downloads._deferred("parcel", "V01-002", "pdf")
        data = make()
        assert data.startswith(b"%PDF") and make() is data and len(calls) == 1
        assert downloads._deferred("village", "V01", "png")().startswith(b"\x89PNG")
    finally:
        downloads._render = real
