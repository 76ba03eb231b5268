"""The CJK font that exported pages use (DESIGN.md section 5).

Debian's Noto Sans CJK is a .ttc whose first face is the Japanese one, so the
Simplified Chinese face is named explicitly. When it is not installed (a bare
``pip install -e .``), the subset shipped under ``data/fonts`` ("Renewal CJK
SC", SIL OFL 1.1) is registered with matplotlib and used instead. PDFs embed
the font as Type 3 (``pdf.fonttype`` 3): clean with these CFF fonts in
poppler, and the text stays selectable and extractable.
"""
from __future__ import annotations

# Lazy imports, on purpose: matplotlib is imported inside the functions that need it,
# so that the command line and the app start without those heavy libraries.
import dataclasses
import io
import os
import threading
from contextlib import contextmanager
from functools import cache
from pathlib import Path

from gis.base.errors import InputError
from gis.base.settings import ROOT

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
    params = {
        "font.family": families + ["DejaVu Sans"],
        "pdf.fonttype": 3,
        "text.parse_math": False,  # a "$" in a village name or a note is text, not TeX
        "axes.unicode_minus": False,
        "pdf.compression": 3,
        # hinting only sharpens small text on screens; PDF text is vector, and
        # skipping it makes laying out each line of CJK text ~40 % cheaper
        "text.hinting": "no_hinting",
        "hatch.linewidth": 0.6,
        "savefig.facecolor": "white",
    }
    import matplotlib

    if tuple(int(x) for x in matplotlib.__version__.split(".")[:2]) < (3, 11):
        params["text.hinting_factor"] = 1  # deprecated in 3.11 (which lays text out unscaled), gone in 3.13
    return params


# ------------------------------------------------------------------ fonts read from memory
# matplotlib's FreeType wrapper reads a font file through Python: a seek and a
# read per access, i.e. hundreds of system calls for each line of CJK text
# (the CFF outlines of a 20 MB .ttc are spread over the file). It opens the
# file with ``io.open``, looked up at that moment, so while exports render,
# font files are served from bytes kept in memory: the same fonts, the same
# file names (matplotlib keys fonts by name), about a third of the time per
# line. Other files pass straight through.
_FONT_SUFFIXES = (".ttc", ".otf", ".ttf")
_FONT_BYTES: dict[str, bytes] = {}
_REAL_OPEN = io.open
_PATCH_LOCK = threading.Lock()
_depth = 0
_cleared = False


class _FontBytes(io.BytesIO):
    """An in-memory font file that still answers to its file name (``FT2Font.fname``)."""

    def __init__(self, data: bytes, name: str):
        super().__init__(data)
        self.name = name


def _open(file, mode="r", *args, **kwargs):
    if mode == "rb" and not args and not kwargs and isinstance(file, (str, os.PathLike)):
        path = os.fspath(file)
        if path.lower().endswith(_FONT_SUFFIXES):
            data = _FONT_BYTES.get(path)
            if data is None:
                with _REAL_OPEN(path, "rb") as f:
                    data = _FONT_BYTES[path] = f.read()
            return _FontBytes(data, path)
    return _REAL_OPEN(file, mode, *args, **kwargs)


@contextmanager
def fonts_in_memory():
    """While inside, FreeType fonts that matplotlib opens are read from memory (re-entrant)."""
    global _depth, _cleared
    from matplotlib import font_manager

    with _PATCH_LOCK:
        if _depth == 0:
            io.open = _open
        _depth += 1
        if not _cleared and hasattr(font_manager, "_get_font"):
            font_manager._get_font.cache_clear()  # fonts opened earlier from files reopen from memory
            _cleared = True
    try:
        yield
    finally:
        with _PATCH_LOCK:
            _depth -= 1
            if _depth == 0:
                io.open = _REAL_OPEN


def _reset_after_fork() -> None:
    global _cleared
    _cleared = False  # matplotlib empties its font cache in a forked child


os.register_at_fork(after_in_child=_reset_after_fork)
