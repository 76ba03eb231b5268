"""The PNG atlas (`renewal atlas --png-zip`): the PNG encoder of gis/printing/pdfwriter.py, and the pages of the
atlas's own PDF rasterised by PDFium in all the atlas's processes.

Rendering is real (our PDF writer, PDFium); PNGs are read back with PIL; images and stores are made in code.
"""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
import pytest
from PIL import Image
from pypdf import PdfReader

from gis.base.settings import Settings
from gis.printing import briefing, pdfwriter

ROOT = Path(__file__).resolve().parent.parent
A4_150 = (1754, 1241)  # A4 landscape at 150 dpi, in pixels (PDFium rounds 1754.0 x 1240.2 up)
CODES = ("V01-001", "V01-002", "V01-003", "HSR-001") * 2  # eight pages of items: enough for two processes


@pytest.fixture
def settings():
    return Settings.load(env={}, classification="内部资料")


def decode(data: bytes) -> np.ndarray:
    im = Image.open(io.BytesIO(data))
    assert im.format == "PNG" and im.mode == "RGB"
    return np.asarray(im)


# ------------------------------------------------------------------ the encoder
@pytest.mark.parametrize("deflate", [zlib, pdfwriter._DEFLATE], ids=["zlib", "default"])
def test_encoded_png_decodes_to_the_same_pixels(deflate):
    rng = np.random.default_rng(7)
    img = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    img[10:20] = (255, 255, 255)  # flat rows, as on a page's margins
    img[:, 5] = img[:, 6]
    assert np.array_equal(decode(pdfwriter.encode_png(img, deflate=deflate)), img)


def test_encoder_reads_padded_rows_in_place_and_records_the_resolution():
    """PDFium's rows are padded to four bytes: the encoder takes such a view as it is."""
    rng = np.random.default_rng(8)
    wide = rng.integers(0, 256, (9, 7 * 3 + 3), dtype=np.uint8)  # each row 3 bytes longer than its pixels
    img = np.lib.stride_tricks.as_strided(wide, shape=(9, 7, 3), strides=(wide.strides[0], 3, 1))
    assert not img.flags.c_contiguous
    data = pdfwriter.encode_png(img, dpi=150)
    assert np.array_equal(decode(data), img)
    assert Image.open(io.BytesIO(data)).info["dpi"] == pytest.approx((150, 150), abs=0.05)
    one_row = np.ascontiguousarray(img[:1])
    assert np.array_equal(decode(pdfwriter.encode_png(one_row)), one_row)


def test_the_faster_encoder_keeps_the_pixels_pil_wrote(tiny_store, settings, tmp_path):
    """A page as PDFium rasterises it, encoded the way pages were before (PIL) and now: the same pixels."""
    briefing.render_parcel_page(tiny_store, "V01-002", tmp_path / "p.pdf", settings=settings)
    doc = pdfium.PdfDocument(tmp_path / "p.pdf")
    bitmap = doc[0].render(scale=150 / 72, fill_color=(255, 255, 255, 255),
                           force_bitmap_format=pdfium_c.FPDFBitmap_BGR, rev_byteorder=True)
    buf = io.BytesIO()
    bitmap.to_pil().save(buf, "PNG", compress_level=1)
    before = decode(buf.getvalue())
    doc.close()
    (_, now), = pdfwriter.render_pngs(tmp_path / "p.pdf", [0], 150)
    assert before.shape == (A4_150[1], A4_150[0], 3)
    assert np.array_equal(decode(now), before)
    assert (before < 128).any() and (before == 255).any()  # a real page: ink and paper


# ------------------------------------------------------------------ the atlas
def atlas_pngs(store, settings, out, jobs, **kw) -> tuple[dict, dict[str, bytes]]:
    out.mkdir()
    sel = briefing.AtlasSelection("parcel", CODES, {"zh": "测试"})
    res = briefing.render_atlas(store, sel, out / "a.pdf", png_zip=out / "a.zip", settings=settings, jobs=jobs, **kw)
    with zipfile.ZipFile(res["png_zip"]) as z:
        return res, {n: z.read(n) for n in z.namelist()}


def test_png_zip_has_every_page_of_the_pdf_in_order_at_150_dpi(tiny_store, settings, tmp_path):
    res, pngs = atlas_pngs(tiny_store, settings, tmp_path / "out", jobs=2)
    pages = len(PdfReader(res["pdf"]).pages)
    assert res["pages"] == pages == 10 == len(pngs)
    names = list(pngs)
    assert names[:3] == ["001_cover.png", "002_index1.png", "003_V01-001.png"]
    assert names[-1] == "010_HSR-001.png" and names == sorted(names)
    for name, data in pngs.items():
        im = Image.open(io.BytesIO(data))
        assert im.size == A4_150 and im.mode == "RGB", name
    # each PNG is its page of the PDF: page 4 rasterised again equals the zip's fourth image
    (_, page4), = pdfwriter.render_pngs(res["pdf"], [3], 150)
    assert np.array_equal(decode(page4), decode(pngs[names[3]]))
    assert not np.array_equal(decode(pngs[names[3]]), decode(pngs[names[4]]))  # different parcels
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.pdf", "a.zip"]  # no temporary file left


def test_parallel_and_serial_png_atlases_are_the_same_bytes(tiny_store, settings, tmp_path):
    _, serial = atlas_pngs(tiny_store, settings, tmp_path / "one", jobs=1)
    _, parallel = atlas_pngs(tiny_store, settings, tmp_path / "two", jobs=2)
    assert list(serial) == list(parallel)
    assert all(serial[n] == parallel[n] for n in serial)


def test_png_atlas_at_another_resolution(tiny_store, settings, tmp_path):
    _, pngs = atlas_pngs(tiny_store, settings, tmp_path / "out", jobs=2, dpi=72)
    assert {Image.open(io.BytesIO(d)).size for d in pngs.values()} == {(842, 596)}


def test_pages_are_shared_out_until_none_is_left():
    """The counter the processes share hands out each page once, to whichever asks first."""
    import multiprocessing as mp

    counter = mp.get_context("fork").Value("i", 0)
    first, second = briefing._taken(counter, 5), briefing._taken(counter, 5)
    taken = [next(first), next(second), next(second), next(first), next(first)]
    assert taken == [0, 1, 2, 3, 4]
    assert list(first) == [] and list(second) == []
    assert list(briefing._taken(None, 3)) == [0, 1, 2]  # one process: every page, in order


def test_the_atlas_command_leaves_quickly_with_its_output_and_the_store_whole(tiny_store, tmp_path):
    """`renewal atlas` ends with os._exit (no interpreter teardown): its JSON and progress still come out
    whole, both files are in place, a GeoPackage store has no write-ahead log left beside it, and a
    database store's connections are closed first (the server sees no broken connection)."""
    out = tmp_path / "out"
    out.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RENEWAL_")}
    env["RENEWAL_RASTER"] = ""
    r = subprocess.run([sys.executable, "-m", "gis.cli", "--store", tiny_store.where, "atlas", "--kind", "village",
                        "-o", str(out / "a.pdf"), "--png-zip", str(out / "a.zip")],
                       capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["pages"] == 5 and "5/5" in r.stderr and "Error" not in r.stderr
    assert len(PdfReader(out / "a.pdf").pages) == 5
    assert len(zipfile.ZipFile(out / "a.zip").namelist()) == 5
    assert sorted(p.name for p in out.iterdir()) == ["a.pdf", "a.zip"]
    if not tiny_store.where.startswith("postgres"):
        store = Path(tiny_store.where)
        assert sorted(p.name for p in store.parent.iterdir() if p.name.startswith(store.name)) == [store.name]


def test_pages_rasterised_from_threads_at_once_come_out_whole(tiny_store, settings, tmp_path):
    """The app's sessions are threads of one process, and PDFium is not thread-safe: renders take turns."""
    from concurrent.futures import ThreadPoolExecutor

    briefing.render_parcel_page(tiny_store, "V01-002", tmp_path / "p.pdf", settings=settings)
    (_, alone), = pdfwriter.render_pngs(tmp_path / "p.pdf", [0], 72)
    with ThreadPoolExecutor(4) as ex:
        pngs = list(ex.map(lambda _: dict(pdfwriter.render_pngs(tmp_path / "p.pdf", [0, 0], 72))[0], range(8)))
    assert all(p == alone for p in pngs)
