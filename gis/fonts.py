"""The CJK font that exported pages use (DESIGN.md section 5).

Debian's Noto Sans CJK is a .ttc whose first face is the Japanese one, so the
Simplified Chinese face is named explicitly. When it is not installed (a bare
``pip install -e .``), the subset shipped under ``data/fonts`` ("Renewal CJK
SC", SIL OFL 1.1) is registered with matplotlib and used instead. PDFs embed
the font as Type 3 (``pdf.fonttype`` 3): clean with these CFF fonts in
poppler, and the text stays selectable and extractable.
"""
from __future__ import annotations

import dataclasses
from functools import cache
from pathlib import Path

from .errors import InputError
from .settings import ROOT

FONT_DIR = ROOT / "data" / "fonts"
SYSTEM_FAMILY = "Noto Sans CJK SC"
SHIPPED_FAMILY = "Renewal CJK SC"
# The shipped bold face holds GB 2312's hanzi only. matplotlib falls back along
# the family list at the same weight, so the regular face is also listed under
# a second family name: bold text with a rarer character (垵, 塱) then takes it
# from the regular face instead of printing a box.
FALLBACK_FAMILY = "Renewal CJK SC Fallback"


@cache
def cjk_family(prefer_system: bool = True) -> str:
    """The font family for Chinese text: the system's Noto Sans CJK SC, else the shipped subset.

    Raises:
        InputError: neither is available (the checkout lost ``data/fonts``).
    """
    from matplotlib import font_manager

    fm = font_manager.fontManager
    if prefer_system and any(f.name == SYSTEM_FAMILY for f in fm.ttflist):
        return SYSTEM_FAMILY
    if not any(f.name == SHIPPED_FAMILY for f in fm.ttflist):
        files = sorted(Path(FONT_DIR).glob("RenewalCJKSC-*.otf"))
        if not files:
            raise InputError("brief.no_font", path=str(FONT_DIR))
        for f in files:
            fm.addfont(str(f))
        regular = [f for f in fm.ttflist if f.name == SHIPPED_FAMILY and f.fname.endswith("-Regular.otf")]
        fm.ttflist.extend(dataclasses.replace(f, name=FALLBACK_FAMILY) for f in regular[:1])
    return SHIPPED_FAMILY


def rc_params(prefer_system: bool = True) -> dict:
    """matplotlib settings for an export: the CJK font embedded as Type 3, no mathtext in user text."""
    family = cjk_family(prefer_system)
    families = [family, FALLBACK_FAMILY] if family == SHIPPED_FAMILY else [family]
    return {
        "font.family": families + ["DejaVu Sans"],
        "pdf.fonttype": 3,
        "text.parse_math": False,  # a "$" in a village name or a note is text, not TeX
        "axes.unicode_minus": False,
        "pdf.compression": 3,
        # hinting only sharpens small text on screens; PDF text is vector, and
        # skipping it makes laying out each line of CJK text ~40 % cheaper
        "text.hinting": "no_hinting",
        "text.hinting_factor": 1,
        "hatch.linewidth": 0.6,
        "savefig.facecolor": "white",
    }
