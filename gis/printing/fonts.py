"""The CJK font that exported pages use (DESIGN.md section 5): the one shipped in data/fonts.

"Renewal CJK SC" (SIL OFL 1.1, a subset of Noto Sans CJK SC: data/fonts/FONTLOG.md)
is on every install. Two ways to print with it:

- briefing pages and atlases (``gis.printing.pdfwriter``): ``faces()`` gives its
  two faces' metrics; they are CID-keyed CFF fonts without subroutines or hints,
  so a document embeds its subset by copying charstrings;
      faces()              the regular and the bold face (metrics, read once per process)
      runs(text, bold)     text as runs of (face, glyphs): bold falls back to regular
      text_width(text, size, bold)
- matplotlib figures (the dispatch-meeting pack, ``gis.printing.report``):
  ``rc_params()`` and ``fonts_in_memory()``. Debian's Noto Sans CJK is a .ttc
  whose first face is the Japanese one, so the Simplified Chinese face is named
  explicitly; without it the shipped subset is registered with matplotlib. PDFs
  embed the font as Type 3 (``pdf.fonttype`` 3): clean with these CFF fonts in
  poppler, and the text stays selectable and extractable.
"""
from __future__ import annotations

# Lazy imports, on purpose: matplotlib is imported inside the functions that need it,
# so that the command line and the app start without those heavy libraries.
import dataclasses
import io
import os
import pickle
import threading
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import numpy as np
from fontTools.ttLib import TTFont

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


# ------------------------------------------------------------------ the faces, for gis.printing.pdfwriter
FACES = ("Regular", "Bold")  # face index 0, 1: resource names /F0, /F1


class Face:
    """One face of the shipped font: code point -> CID and advance (em).

    Its metrics are read once per font file and kept in the user's cache folder
    (like matplotlib's font list): parsing a 22,000-glyph font costs ~0.1 s of
    every export's start-up. So is where each glyph's charstring lies in the
    file, with the rest that a subset copies (``cff_layout``): a document's subset
    is then bytes sliced from the file's bytes held in memory (forked workers must
    not share a file offset), without parsing the font program (fontTools' CFF
    parser and its import were ~0.1 s of an atlas's last step)."""

    VERSION = 2

    def __init__(self, path: Path):
        self.path = Path(path)
        data = _cached_metrics(self.path, self.VERSION)
        if data is None:
            data = self._read_metrics()
            _store_metrics(self.path, self.VERSION, data)
        self.name, self.ascent, self.descent, self.cap, self.bbox, glyphs, gids, self.cff_layout = data
        self.glyph = {cp: (cid, adv) for cp, cid, adv in glyphs}
        self.gid = dict(gids)
        self.adv = {cid: adv for _, cid, adv in glyphs}
        self._data = None

    def _read_metrics(self) -> tuple:
        data = self.path.read_bytes()
        tt = TTFont(io.BytesIO(data), lazy=True)
        upm = tt["head"].unitsPerEm
        metrics = tt["hmtx"].metrics
        order = {g: i for i, g in enumerate(tt.getGlyphOrder())}
        glyphs, gids = [], [(0, 0)]
        for cp, gname in sorted(tt.getBestCmap().items()):
            if gname.startswith("cid"):
                cid = int(gname[3:])
                glyphs.append((cp, cid, metrics[gname][0] / upm))
                gids.append((cid, order[gname]))
        os2, head = tt["OS/2"], tt["head"]
        bbox = [round(v * 1000 / upm) for v in (head.xMin, head.yMin, head.xMax, head.yMax)]
        return (tt["CFF "].cff.fontNames[0], os2.sTypoAscender / upm, os2.sTypoDescender / upm,
                (getattr(os2, "sCapHeight", 0) or 733) / upm, bbox, glyphs, gids, _cff_layout(tt, data))

    @property
    def data(self) -> bytes:
        """The font file's bytes (read once per process)."""
        if self._data is None:
            self._data = self.path.read_bytes()
        return self._data

    def charstring(self, gid: int) -> bytes:
        """The Type 2 charstring of glyph ``gid``, as it is in the file."""
        starts = self.cff_layout["starts"]
        return self.data[starts[gid]:starts[gid + 1]]


def _cff_layout(tt: TTFont, data: bytes) -> dict:
    """What a CID-keyed CFF subset copies from the font (``gis.printing.pdfwriter``): where each glyph's
    charstring starts in the file (``starts[gid]``, and where the last ends), the font dict of each glyph
    (``fdselect``), the font dicts' private values, the FontBBox and how many global subroutines there are."""
    cff = tt["CFF "].cff
    top = cff.topDictIndex[0]
    base = tt.reader.tables["CFF "].offset + top.rawDict["CharStrings"]  # the CharStrings INDEX, in the file
    count, size = int.from_bytes(data[base:base + 2], "big"), data[base + 2]
    cells = np.frombuffer(data, np.uint8, (count + 1) * size, base + 3).reshape(count + 1, size).astype(np.int64)
    offsets = (cells << (8 * np.arange(size - 1, -1, -1))).sum(axis=1)  # big-endian, 1-based
    starts = base + 3 + (count + 1) * size - 1 + offsets
    return {"starts": starts, "fdselect": bytes(top.FDSelect[g] for g in range(count)),
            "privates": [dict(fd.Private.rawDict) for fd in top.FDArray], "bbox": list(top.FontBBox),
            "global_subrs": len(cff.GlobalSubrs)}


def _metrics_file(path: Path, version: int) -> Path:
    st = path.stat()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "renewal-atlas" / f"{path.stem}-{st.st_size}-{st.st_mtime_ns}-v{version}.pickle"


def _cached_metrics(path: Path, version: int):
    try:
        with open(_metrics_file(path, version), "rb") as f:
            return pickle.load(f)
    except (OSError, pickle.UnpicklingError, EOFError, ValueError):
        return None


def _store_metrics(path: Path, version: int, data: tuple) -> None:
    """Best effort: a read-only home only costs the next start-up the parsing again."""
    target = _metrics_file(path, version)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(f".{os.getpid()}.part")
        with open(tmp, "wb") as f:
            pickle.dump(data, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, target)
    except OSError:
        pass


@cache
def faces() -> tuple[Face, ...]:
    """The regular and the bold face (loaded once; forked workers inherit them)."""
    return tuple(Face(FONT_DIR / f"RenewalCJKSC-{w}.otf") for w in FACES)


def runs(text: str, bold: bool) -> list[tuple[int, list[tuple[int, int, float]]]]:
    """``text`` as runs of (face, [(code point, cid, advance em)]): a character the bold face
    lacks (it holds GB 2312's hanzi only) is taken from the regular face; one neither has
    becomes the .notdef box (cid 0)."""
    reg, bld = faces()
    out: list = []
    for ch in text:
        cp = ord(ch)
        f = 1 if bold else 0
        g = (bld if bold else reg).glyph.get(cp)
        if g is None and bold:
            f, g = 0, reg.glyph.get(cp)
        if g is None:
            g = (0, 1.0) if cp >= 0x2E80 else (0, 0.5)
        if not out or out[-1][0] != f:
            out.append((f, []))
        out[-1][1].append((cp, g[0], g[1]))
    return out


def text_width(text: str, size: float, bold: bool = False) -> float:
    """Width of ``text`` at ``size`` (in the unit of ``size``), from the font's advances."""
    return sum(a for _, run in runs(text, bold) for _, _, a in run) * size
