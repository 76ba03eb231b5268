"""Make the CJK fonts shipped in this folder from Noto Sans CJK SC (SIL OFL 1.1).

Exports (briefing pages and atlases) must show Chinese on a machine where
only ``pip install -e .`` was run: no Debian font package. So the project
ships a subset of Noto Sans CJK SC, renamed "Renewal CJK SC" (a Modified
Version under the OFL; see OFL.txt and FONTLOG.md):

- ``RenewalCJKSC-Regular.otf``: every ideograph of the CJK Unified Ideographs
  block (U+4E00–9FFF, 20,902 characters: all of GB 2312 and GBK's hanzi, and so
  all but about two hundred rare characters of the 通用规范汉字表), every other
  character of GB 2312 (punctuation, symbols, kana, Greek, Cyrillic, box
  drawing), ASCII, Latin-1, general punctuation, arrows, geometric shapes,
  CJK symbols and punctuation, full-width forms. About 5 MB.
- ``RenewalCJKSC-Bold.otf``: the same minus the ideographs outside GB 2312
  (6,763 hanzi): used for titles, which fall back to the regular face for a
  rarer character. About 1.5 MB.

Run once, by a developer, on a machine with Debian's ``fonts-noto-cjk``
(needs fontTools, a dependency of the project)::

    python data/fonts/make_subset.py

At run time the full Noto Sans CJK SC is preferred when it is installed
(``gis/fonts.py``); these files are the fallback.
"""
from __future__ import annotations

import sys
from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTCollection

HERE = Path(__file__).resolve().parent
SOURCE = "/usr/share/fonts/opentype/noto/NotoSansCJK-{weight}.ttc"
SC_FACE = 2  # faces of the Debian .ttc: JP, KR, SC, TC, HK, then the Mono ones
FAMILY = "Renewal CJK SC"


def gb2312() -> set[int]:
    out = set()
    for hi in range(0xA1, 0xF8):
        for lo in range(0xA1, 0xFF):
            try:
                out.add(ord(bytes([hi, lo]).decode("gb2312")))
            except UnicodeDecodeError:
                pass
    return out


def common_ranges() -> set[int]:
    ranges = [(0x20, 0x7E), (0xA0, 0xFF), (0x2000, 0x206F), (0x2070, 0x209F), (0x2100, 0x214F),
              (0x2150, 0x218F), (0x2190, 0x21FF), (0x2460, 0x24FF), (0x2500, 0x257F),
              (0x25A0, 0x25FF), (0x2600, 0x26FF), (0x3000, 0x303F), (0xFF00, 0xFFEF)]
    return {c for a, b in ranges for c in range(a, b + 1)}


def rename(font, weight: str) -> None:
    """Give the subset its own name (it is a Modified Version) and keep the notices."""
    ps = f"RenewalCJKSC-{weight}"
    names = {1: FAMILY, 2: weight, 3: f"{ps};subset of NotoSansCJKsc-{weight}", 4: f"{FAMILY} {weight}",
             6: ps, 16: FAMILY, 17: weight}
    table = font["name"]
    table.names = [n for n in table.names if n.nameID not in names]
    for nid, text in names.items():
        table.setName(text, nid, 3, 1, 0x409)
        table.setName(text, nid, 1, 0, 0)
    desc = ("Subset of Noto Sans CJK SC (Adobe, Google) made for Renewal Atlas exports; "
            "SIL Open Font License 1.1")
    table.setName(desc, 10, 3, 1, 0x409)
    cff = font["CFF "].cff
    cff.fontNames = [ps]
    top = cff.topDictIndex[0]
    for attr, val in (("FullName", f"{FAMILY} {weight}"), ("FamilyName", FAMILY)):
        if hasattr(top, attr):
            setattr(top, attr, val)
    if hasattr(top, "CIDFontName"):
        top.CIDFontName = ps


def make(weight: str, all_hanzi: bool) -> Path:
    font = TTCollection(SOURCE.format(weight=weight)).fonts[SC_FACE]
    chars = gb2312() | common_ranges()
    if all_hanzi:
        chars |= set(range(0x4E00, 0xA000))
    opts = subset.Options()
    opts.layout_features = []  # no vertical forms or ligatures: horizontal map text only
    opts.name_IDs = ["*"]
    opts.name_languages = ["*"]
    opts.notdef_outline = True
    opts.hinting = False  # PDF viewers hint glyphs themselves
    # no subroutines: gis/printing/pdfwriter.py subsets a document's glyphs by copying
    # their charstrings, in milliseconds (fontTools' subsetter takes ~0.3 s a face)
    opts.desubroutinize = True
    sub = subset.Subsetter(opts)
    sub.populate(unicodes=sorted(chars))
    sub.subset(font)
    rename(font, weight)
    out = HERE / f"RenewalCJKSC-{weight}.otf"
    font.save(out)
    return out


if __name__ == "__main__":
    for weight, all_hanzi in (("Regular", True), ("Bold", False)):
        path = make(weight, all_hanzi)
        print(path, path.stat().st_size, file=sys.stderr)
