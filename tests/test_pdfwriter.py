"""The font subsets of gis/printing/pdfwriter.py: charstrings sliced from the shipped font's file where the
cached layout (gis/printing/fonts.py ``Face.cff_layout``) says they are, checked against fontTools' own parse."""
from __future__ import annotations

import io

import pytest
from fontTools.cffLib import CFFFontSet
from fontTools.ttLib import TTFont

from gis.printing import fonts, pdfwriter


@pytest.fixture(scope="module", params=[0, 1], ids=["regular", "bold"])
def face_and_cff(request):
    face = fonts.faces()[request.param]
    return face, TTFont(io.BytesIO(face.path.read_bytes()), lazy=True)["CFF "].cff


def test_the_layout_finds_every_charstring_where_fonttools_reads_it(face_and_cff):
    face, cff = face_and_cff
    top = cff.topDictIndex[0]
    index = top.CharStrings.charStringsIndex
    n = len(index)
    assert len(face.cff_layout["starts"]) == n + 1 and len(face.cff_layout["fdselect"]) == n
    for gid in list(range(0, n, 97)) + [n - 1]:
        assert face.charstring(gid) == index[gid].bytecode, gid
        assert face.cff_layout["fdselect"][gid] == top.FDSelect[gid]
    assert face.cff_layout["bbox"] == list(top.FontBBox)
    assert face.cff_layout["global_subrs"] == len(cff.GlobalSubrs) == 0


def test_a_subset_holds_the_glyphs_asked_for_with_their_outlines(face_and_cff):
    face, cff = face_and_cff
    text = "旧村改造简报图 V05 东岙村 1:4,500"
    cids = sorted({cid for _, run in fonts.runs(text, bold=False) for _, cid, _ in run})
    sub = CFFFontSet()
    sub.decompile(io.BytesIO(pdfwriter._subset_cff(face, cids)), None)
    top = sub.topDictIndex[0]
    assert top.ROS == ("Adobe", "Identity", 0)
    assert top.charset == [".notdef"] + [f"cid{c:05d}" for c in cids if c]
    orig = cff.topDictIndex[0].CharStrings.charStringsIndex
    for i, cid in enumerate(c for c in cids if c):
        assert top.CharStrings.charStringsIndex[i + 1].bytecode == orig[face.gid[cid]].bytecode, cid


def test_metrics_and_layout_come_back_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    path = fonts.FONT_DIR / "RenewalCJKSC-Bold.otf"
    made = fonts.Face(path)  # parses the font, writes the cache
    assert list(tmp_path.rglob("*-v2.pickle"))
    monkeypatch.setattr(fonts.Face, "_read_metrics", lambda self: pytest.fail("the cache was not used"))
    cached = fonts.Face(path)
    assert cached.glyph == made.glyph and (cached.cff_layout["starts"] == made.cff_layout["starts"]).all()
    assert cached.charstring(5) == made.charstring(5)
