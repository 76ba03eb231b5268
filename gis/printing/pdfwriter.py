"""A small PDF writer made for printed maps: pages drawn straight into content streams.

    Canvas(width_pt, height_pt)     one page: paths, text, images, clipping, in points
                                    from the bottom left (PDF's own space)
    Canvas.record()                 the finished page (a picklable PageRecord): an
                                    atlas's worker processes send these back
    write_pdf(path, records, ...)   one document: each font subset once, bookmarks

Text is set in the shipped CJK font (data/fonts, "Renewal CJK SC", a CID-keyed
CFF font) through a Type 0 font with Identity-H encoding: the glyphs a document
uses are subset once (fontTools) and embedded as CIDFontType0C, with a
ToUnicode map, so text stays selectable and searchable (pdftotext) and fonts
are embedded (pdffonts). Glyph widths come from the font, so alignment is exact.
Raster backgrounds go in as JPEG (DCTDecode), with a soft mask where the raster
does not cover the page.

Why not matplotlib: a page there costs ~0.1 s of Python bookkeeping per page
(Text layout, artists, Type 3 glyph procedures); here a page is a few
milliseconds of string formatting over numpy arrays (bench/briefing.py).
"""
from __future__ import annotations

# Lazy imports, on purpose: PDFium (pypdfium2, a 5 MB library) only where a PNG is made, and
# fontTools' subsetter only for a font that has subroutines (the shipped ones have none).
import io
import os
import struct
import threading
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache

import numpy as np
from fontTools.ttLib import TTFont
from PIL import Image

from gis.printing.fonts import Face, faces, runs

try:  # ISA-L's deflate for PNGs (encode_png): the same zlib stream, ~5x faster than zlib at its fastest level
    from isal import isal_zlib as _DEFLATE
except ImportError:  # a checkout installed before isal became a dependency still prints, a little slower
    _DEFLATE = zlib

MM = 72 / 25.4  # points per millimetre
KAPPA = 0.5522847498  # Bézier control distance of a quarter circle


# =============================================================== a page
@dataclass
class PageRecord:
    """A finished page: its content stream (zlib) and the resources it names."""

    width: float
    height: float
    content: bytes
    images: list = field(default_factory=list)  # [(name, dict entries, data, smask data or None, w, h)]
    alphas: set = field(default_factory=set)  # ints 0..100: /A<n> graphics states
    hatches: set = field(default_factory=set)  # hex colours: /H<rrggbb> tiling patterns
    glyphs: list = field(default_factory=lambda: [{}, {}])  # per face: cid -> code point


NAMED = {"white": "#ffffff", "black": "#000000", "red": "#ff0000", "grey": "#808080", "gray": "#808080"}


@cache
def _rgb(color) -> tuple[float, float, float]:
    """'#rrggbb', '#rgb', a few names, or an (r, g, b) tuple of 0..1."""
    if isinstance(color, str):
        c = NAMED.get(color, color).lstrip("#")
        if len(c) == 3:
            c = "".join(ch * 2 for ch in c)
        return int(c[0:2], 16) / 255, int(c[2:4], 16) / 255, int(c[4:6], 16) / 255
    return tuple(color[:3])


@cache
def _col(color) -> str:
    r, g, b = _rgb(color)
    return f"{r:.3g} {g:.3g} {b:.3g}"


def _hex(color) -> str:
    r, g, b = _rgb(color)
    return f"{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"


DASHES = {"-": "", "solid": "", "--": "[3.7 1.6]", "dashed": "[3.7 1.6]", ":": "[1 1.65]", "dotted": "[1 1.65]",
          "-.": "[6.4 1.6 1 1.6]", "dashdot": "[6.4 1.6 1 1.6]"}  # matplotlib's, per point of line width


def ring_ops(rings: list[np.ndarray]) -> str:
    """Path operators of closed rings (arrays of points, closing point optional)."""
    if not rings:
        return ""
    parts, fmt = [], []
    for r in rings:
        if len(r) > 1 and r[0, 0] == r[-1, 0] and r[0, 1] == r[-1, 1]:
            r = r[:-1]
        if len(r) < 2:
            continue
        parts.append(r)
        fmt.append("%.2f %.2f m" + " %.2f %.2f l" * (len(r) - 1) + " h\n")
    if not parts:
        return ""
    return "".join(fmt) % tuple(np.concatenate(parts).ravel().tolist())


class Canvas:
    """One page being drawn; coordinates in points, origin at the bottom left."""

    def __init__(self, width: float, height: float):
        self.width, self.height = width, height
        self.ops: list[str] = []
        self.images: list = []
        self.alphas: set = set()
        self.hatches: set = set()
        self.glyphs: list = [{}, {}]

    # ---- state
    def save(self) -> None:
        self.ops.append("q\n")

    def restore(self) -> None:
        self.ops.append("Q\n")

    def clip_rect(self, x, y, w, h) -> None:
        self.ops.append(f"{x:.2f} {y:.2f} {w:.2f} {h:.2f} re W n\n")

    def _alpha(self, alpha: float) -> str:
        a = max(0, min(100, round(alpha * 100)))
        if a >= 100:
            return ""
        self.alphas.add(a)
        return f"/A{a} gs "

    def _style(self, fill, stroke, lw, alpha, dash, join) -> str:
        s = self._alpha(alpha)
        if fill is not None:
            s += _col(fill) + " rg "
        if stroke is not None and lw > 0:
            s += f"{_col(stroke)} RG {lw:.3g} w "
            pattern = DASHES.get(dash or "-", "")
            if pattern:
                scaled = " ".join(f"{float(v) * max(lw, 0.5):.2f}" for v in pattern.strip("[]").split())
                s += f"[{scaled}] 0 d "
            if join:
                s += "1 j 1 J "
        return s

    @staticmethod
    def _paint(fill, stroke, lw) -> str:
        if fill is not None and stroke is not None and lw > 0:
            return "B\n"
        if fill is not None:
            return "f\n"
        if stroke is not None and lw > 0:
            return "S\n"
        return "n\n"

    # ---- shapes
    def rings(self, rings, fill=None, stroke=None, lw=0.0, alpha=1.0, dash=None, join=False, evenodd=True) -> None:
        """One path of closed rings (holes included): filled (even-odd) and/or stroked."""
        ops = ring_ops(rings)
        if not ops:
            return
        paint = self._paint(fill, stroke, lw)
        if evenodd and paint in ("B\n", "f\n"):
            paint = paint[0] + "*\n"
        self.ops.append("q " + self._style(fill, stroke, lw, alpha, dash, join) + "\n" + ops + paint + "Q\n")

    def shapes(self, groups, fills, stroke=None, lw=0.0, alpha=1.0, dash=None) -> None:
        """Many shapes (each a list of rings), each with its fill colour: one path per colour."""
        by_colour: dict = {}
        for rings, fc in zip(groups, fills):
            by_colour.setdefault(fc, []).extend(rings)
        for fc, rings in by_colour.items():
            self.rings(rings, fill=fc, stroke=stroke, lw=lw, alpha=alpha, dash=dash)

    def hatch(self, rings, color, stroke=None, lw=0.0) -> None:
        """Rings filled with diagonal hatching (////) in ``color``, optionally outlined."""
        ops = ring_ops(rings)
        if not ops:
            return
        h = _hex(color)
        self.hatches.add(h)
        self.ops.append(f"q /Pattern cs /H{h} scn\n{ops}f*\nQ\n")
        if stroke is not None and lw > 0:
            self.rings(rings, stroke=stroke, lw=lw)

    def rect(self, x, y, w, h, fill=None, stroke=None, lw=0.0, alpha=1.0, dash=None) -> None:
        paint = self._paint(fill, stroke, lw)
        self.ops.append("q " + self._style(fill, stroke, lw, alpha, dash, False)
                        + f"{x:.2f} {y:.2f} {w:.2f} {h:.2f} re {paint}Q\n")

    def line(self, xs, ys, color, lw, dash=None, alpha=1.0) -> None:
        pts = " ".join(f"{x:.2f} {y:.2f} {'m' if i == 0 else 'l'}" for i, (x, y) in enumerate(zip(xs, ys)))
        self.ops.append("q " + self._style(None, color, lw, alpha, dash, False) + pts + " S Q\n")

    def polygon(self, pts, fill=None, stroke=None, lw=0.0, alpha=1.0) -> None:
        self.rings([np.asarray(pts, dtype=float)], fill=fill, stroke=stroke, lw=lw, alpha=alpha, join=True)

    def ellipse(self, cx, cy, rx, ry, fill=None, stroke=None, lw=0.0, alpha=1.0) -> None:
        kx, ky = rx * KAPPA, ry * KAPPA
        p = (f"{cx + rx:.2f} {cy:.2f} m "
             f"{cx + rx:.2f} {cy + ky:.2f} {cx + kx:.2f} {cy + ry:.2f} {cx:.2f} {cy + ry:.2f} c "
             f"{cx - kx:.2f} {cy + ry:.2f} {cx - rx:.2f} {cy + ky:.2f} {cx - rx:.2f} {cy:.2f} c "
             f"{cx - rx:.2f} {cy - ky:.2f} {cx - kx:.2f} {cy - ry:.2f} {cx:.2f} {cy - ry:.2f} c "
             f"{cx + kx:.2f} {cy - ry:.2f} {cx + rx:.2f} {cy - ky:.2f} {cx + rx:.2f} {cy:.2f} c h ")
        self.ops.append("q " + self._style(fill, stroke, lw, alpha, None, False) + p
                        + self._paint(fill, stroke, lw) + "Q\n")

    # ---- text
    def text(self, x, y, s: str, size: float, color="#000000", bold=False, ha="left", va="baseline",
             halo: float = 0.0, halo_color="#ffffff", alpha=1.0, box=None) -> tuple[float, float, float, float]:
        """One line of text; returns its box (x0, y0, x1, y1) in points.

        ``va``: baseline, center, top or bottom (of the font's ascent/descent);
        ``halo``: width in points of an outline drawn under the text (map labels);
        ``box``: (fill colour, padding in points, alpha): a rectangle behind the text.
        """
        s = str(s)
        rs = runs(s, bold)
        width = sum(a for _, run in rs for _, _, a in run) * size
        reg = faces()[0]
        asc, desc = reg.ascent * size, reg.descent * size
        x0 = x - (width / 2 if ha == "center" else width if ha == "right" else 0.0)
        if va == "center":
            base = y - (asc + desc) / 2
        elif va == "top":
            base = y - asc
        elif va == "bottom":
            base = y - desc
        else:
            base = y
        extent = (x0, base + desc, x0 + width, base + asc)
        if not s:
            return extent
        if box is not None:
            fc, pad, balpha = box
            self.rect(x0 - pad, base + desc - pad, width + 2 * pad, asc - desc + 2 * pad, fill=fc, alpha=balpha)
        shows = []
        for f, run in rs:
            used = self.glyphs[f]
            for cp, cid, _ in run:
                if cid not in used:
                    used[cid] = cp
            shows.append(f"/F{f} {size:.2f} Tf <" + "".join(f"{cid:04x}" for _, cid, _ in run) + "> Tj ")
        body = "".join(shows)
        head = f"BT {x0:.2f} {base:.2f} Td "
        out = "q " + self._alpha(alpha)
        if halo > 0:
            out += f"{_col(halo_color)} RG {halo:.2f} w 1 j 1 Tr {head}{body}ET "
        out += f"{_col(color)} rg 0 Tr {head}{body}ET Q\n"
        self.ops.append(out)
        return extent

    # ---- images
    def image(self, rgba: np.ndarray, x, y, w, h, quality: int = 85) -> None:
        """An RGB(A) uint8 image (rows top to bottom) stretched over the rectangle; JPEG inside."""
        img = np.asarray(rgba)
        alpha = None
        if img.ndim == 3 and img.shape[2] == 4:
            a = img[:, :, 3]
            if not (a == 255).all():
                alpha = zlib.compress(np.ascontiguousarray(a).tobytes(), 6)
            img = img[:, :, :3]
        buf = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(img)).save(buf, "JPEG", quality=quality, subsampling=0)
        name = f"Im{len(self.images)}"
        hgt, wid = img.shape[:2]
        self.images.append((name, buf.getvalue(), alpha, wid, hgt))
        self.ops.append(f"q {w:.2f} 0 0 {h:.2f} {x:.2f} {y:.2f} cm /{name} Do Q\n")

    def record(self) -> PageRecord:
        data = "".join(self.ops).encode("latin-1")
        return PageRecord(self.width, self.height, zlib.compress(data, 3), self.images, self.alphas, self.hatches,
                          self.glyphs)


# =============================================================== the document
def _pdf_string(s: str) -> str:
    """A text string (UTF-16BE with BOM, hex)."""
    return "<feff" + s.encode("utf-16-be").hex() + ">"


HATCH_STEP = 4.2  # points between diagonals of a tile (about 3 pt apart across them)


class _Objects:
    def __init__(self):
        self.chunks: list[bytes] = []
        self.offsets: list[int] = []
        self.pos = 0
        self._emit(b"%PDF-1.6\n%\xe2\xe3\xcf\xd3\n")
        self.count = 0

    def _emit(self, b: bytes) -> None:
        self.chunks.append(b)
        self.pos += len(b)

    def reserve(self) -> int:
        self.count += 1
        self.offsets.append(-1)
        return self.count

    def put(self, num: int, body: str, stream: bytes | None = None) -> None:
        self.offsets[num - 1] = self.pos
        if stream is None:
            self._emit(f"{num} 0 obj\n{body}\nendobj\n".encode("latin-1"))
        else:
            self._emit(f"{num} 0 obj\n{body[:-2]} /Length {len(stream)} >>\nstream\n".encode("latin-1"))
            self._emit(stream)
            self._emit(b"\nendstream\nendobj\n")

    def add(self, body: str, stream: bytes | None = None) -> int:
        n = self.reserve()
        self.put(n, body, stream)
        return n

    def finish(self, root: int, info: int) -> bytes:
        xref = self.pos
        lines = [f"xref\n0 {self.count + 1}\n0000000000 65535 f \n"]
        lines += [f"{off:010d} 00000 n \n" for off in self.offsets]
        lines.append(f"trailer\n<< /Size {self.count + 1} /Root {root} 0 R /Info {info} 0 R >>\nstartxref\n{xref}\n%%EOF\n")
        self._emit("".join(lines).encode("latin-1"))
        return b"".join(self.chunks)


def _subset_cff(face: Face, cids: list[int]) -> bytes:
    """The CFF font program of ``face`` with only ``cids`` (and .notdef); CIDs stay as they are.

    The shipped fonts have no subroutines and no hints (data/fonts/make_subset.py),
    so a subset is their charstrings' bytes copied into a new CID-keyed CFF:
    milliseconds (the charstrings are sliced from the file where ``Face.cff_layout``
    says they are), where fontTools' subsetter (re-running every charstring) takes
    about a third of a second per face. A font with more in it goes through fontTools.
    """
    layout = face.cff_layout
    privates = layout["privates"]
    if layout["global_subrs"] or any(set(p) - {"defaultWidthX", "nominalWidthX"} for p in privates):
        return _subset_cff_fonttools(face, cids)
    order = [0] + [c for c in cids if c and c in face.gid]
    gids = [face.gid[c] for c in order]
    strings = _cff_index([b"Adobe", b"Identity"])
    cs = _cff_index([face.charstring(g) for g in gids])
    fdselect = layout["fdselect"]
    fds = b"\x00" + bytes(fdselect[g] for g in gids)
    charset = b"\x00" + b"".join(c.to_bytes(2, "big") for c in order[1:])
    priv = [b"".join(_cff_int(p[k]) + op for k, op in (("defaultWidthX", b"\x14"), ("nominalWidthX", b"\x15"))
                     if k in p) for p in privates]
    name = _cff_index([face.name.encode("ascii")])
    head = b"\x01\x00\x04\x04"
    bbox = b"".join(_cff_int(v) for v in layout["bbox"]) + b"\x05"

    def top_dict(o_charset, o_fdselect, o_cs, o_fdarray) -> bytes:
        return (_cff_int(391) + _cff_int(392) + _cff_int(0) + b"\x0c\x1e" + _cff_int(65535) + b"\x0c\x22" + bbox
                + _cff5(o_charset) + b"\x0f" + _cff5(o_fdselect) + b"\x0c\x25" + _cff5(o_cs) + b"\x11"
                + _cff5(o_fdarray) + b"\x0c\x24")

    top_len = len(_cff_index([top_dict(0, 0, 0, 0)]))
    o_charset = len(head) + len(name) + top_len + len(strings) + 2  # + the empty global subrs
    o_fdselect = o_charset + len(charset)
    o_cs = o_fdselect + len(fds)
    o_fdarray = o_cs + len(cs)
    fd_len = len(_cff_index([_cff5(0) + _cff5(0) + b"\x12" for _ in priv]))
    o_priv, fd_dicts = o_fdarray + fd_len, []
    for pb in priv:
        fd_dicts.append(_cff5(len(pb)) + _cff5(o_priv) + b"\x12")
        o_priv += len(pb)
    return b"".join([head, name, _cff_index([top_dict(o_charset, o_fdselect, o_cs, o_fdarray)]), strings,
                     b"\x00\x00", charset, fds, cs, _cff_index(fd_dicts)] + priv)


def _cff_int(v: int) -> bytes:
    """A CFF DICT integer operand (shortest form)."""
    v = int(v)
    if -107 <= v <= 107:
        return bytes([v + 139])
    if 108 <= v <= 1131:
        v -= 108
        return bytes([(v >> 8) + 247, v & 0xFF])
    if -1131 <= v <= -108:
        v = -v - 108
        return bytes([(v >> 8) + 251, v & 0xFF])
    if -32768 <= v <= 32767:
        return b"\x1c" + v.to_bytes(2, "big", signed=True)
    return _cff5(v)


def _cff5(v: int) -> bytes:
    """A CFF DICT integer in its fixed five-byte form (offsets, so sizes are known beforehand)."""
    return b"\x1d" + int(v).to_bytes(4, "big", signed=True)


def _cff_index(items: list[bytes]) -> bytes:
    if not items:
        return b"\x00\x00"
    offsets = [1]
    for it in items:
        offsets.append(offsets[-1] + len(it))
    size = 1 if offsets[-1] < 1 << 8 else 2 if offsets[-1] < 1 << 16 else 3 if offsets[-1] < 1 << 24 else 4
    return (len(items).to_bytes(2, "big") + bytes([size]) + b"".join(o.to_bytes(size, "big") for o in offsets)
            + b"".join(items))


def _subset_cff_fonttools(face: Face, cids: list[int]) -> bytes:
    from fontTools import subset

    tt = TTFont(str(face.path))
    opts = subset.Options()
    opts.layout_features = []
    opts.notdef_outline = True
    opts.name_IDs = []
    sub = subset.Subsetter(opts)
    sub.populate(glyphs=[".notdef"] + [f"cid{c:05d}" for c in cids if c])
    sub.subset(tt)
    buf = io.BytesIO()
    tt["CFF "].cff.compile(buf, tt)
    return buf.getvalue()


def _tag(cids) -> str:
    """A subset tag (six capitals) that depends on what the subset holds."""
    h = zlib.crc32(",".join(map(str, sorted(cids))).encode())
    return "".join(chr(65 + (h >> (5 * i)) % 26) for i in range(6))


def _font_objects(objs: _Objects, f: int, glyphs: dict[int, int]) -> int:
    face = faces()[f]
    cids = sorted(glyphs)
    cff = _subset_cff(face, cids)
    ff = objs.add("<< /Subtype /CIDFontType0C /Filter /FlateDecode >>", zlib.compress(cff, 6))
    base = f"{_tag(cids)}+{face.name}"
    flags = 4  # symbolic
    desc = objs.add(f"<< /Type /FontDescriptor /FontName /{base} /Flags {flags} /FontBBox [{' '.join(map(str, face.bbox))}]"
                    f" /ItalicAngle 0 /Ascent {round(face.ascent * 1000)} /Descent {round(face.descent * 1000)}"
                    f" /CapHeight {round(face.cap * 1000)} /StemV {120 if f else 80} /FontFile3 {ff} 0 R >>")
    widths = " ".join(f"{c} [{round(face.adv.get(c, 1.0) * 1000)}]" for c in cids)
    cid_font = objs.add(f"<< /Type /Font /Subtype /CIDFontType0 /BaseFont /{base}"
                        f" /CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >>"
                        f" /FontDescriptor {desc} 0 R /DW 1000 /W [{widths}] >>")
    cmap = _to_unicode(glyphs)
    tu = objs.add("<< /Filter /FlateDecode >>", zlib.compress(cmap, 6))
    return objs.add(f"<< /Type /Font /Subtype /Type0 /BaseFont /{base} /Encoding /Identity-H"
                    f" /DescendantFonts [{cid_font} 0 R] /ToUnicode {tu} 0 R >>")


def _to_unicode(glyphs: dict[int, int]) -> bytes:
    items = sorted(glyphs.items())
    out = ["/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n"
           "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n"
           "/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n"
           "1 begincodespacerange\n<0000> <ffff>\nendcodespacerange\n"]
    for i in range(0, len(items), 100):
        chunk = items[i:i + 100]
        out.append(f"{len(chunk)} beginbfchar\n")
        out += [f"<{cid:04x}> <{chr(cp).encode('utf-16-be').hex()}>\n" for cid, cp in chunk]
        out.append("endbfchar\n")
    out.append("endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n")
    return "".join(out).encode("ascii")


def _hatch_pattern(objs: _Objects, h: str) -> int:
    s = HATCH_STEP
    ops = f"{_col('#' + h)} RG 0.6 w " + " ".join(
        f"{o - 1:.2f} -1 m {o + s + 1:.2f} {s + 1:.2f} l" for o in (-s, 0.0, s)) + " S"
    data = ops.encode("latin-1")
    return objs.add(f"<< /Type /Pattern /PatternType 1 /PaintType 1 /TilingType 1 /BBox [0 0 {s} {s}]"
                    f" /XStep {s} /YStep {s} /Resources << >> >>", data)


def write_pdf(out, records: list[PageRecord], title: str = "", outline: list[tuple[str, int]] = (),
              creator: str = "Renewal Atlas (城市更新一张图)") -> None:
    """Write ``records`` as one PDF to ``out`` (a path or a binary file): fonts subset to the
    glyphs of all pages, one bookmark per ``outline`` entry (title, page index)."""
    objs = _Objects()
    catalog, pages_obj = objs.reserve(), objs.reserve()
    glyphs = [{}, {}]
    alphas, hatches = set(), set()
    for r in records:
        for f in (0, 1):
            glyphs[f].update(r.glyphs[f])
        alphas |= r.alphas
        hatches |= r.hatches
    fonts = {f: _font_objects(objs, f, glyphs[f]) for f in (0, 1) if glyphs[f]}
    gs = {a: objs.add(f"<< /Type /ExtGState /ca {a / 100:.2f} /CA {a / 100:.2f} >>") for a in sorted(alphas)}
    pats = {h: _hatch_pattern(objs, h) for h in sorted(hatches)}
    font_res = " ".join(f"/F{f} {n} 0 R" for f, n in fonts.items())
    page_nums = []
    for r in records:
        xobjs = []
        for name, jpeg, alpha, w, h in r.images:
            smask = ""
            if alpha is not None:
                sm = objs.add(f"<< /Type /XObject /Subtype /Image /Width {w} /Height {h} /ColorSpace /DeviceGray"
                              f" /BitsPerComponent 8 /Filter /FlateDecode >>", alpha)
                smask = f" /SMask {sm} 0 R"
            im = objs.add(f"<< /Type /XObject /Subtype /Image /Width {w} /Height {h} /ColorSpace /DeviceRGB"
                          f" /BitsPerComponent 8 /Filter /DCTDecode{smask} >>", jpeg)
            xobjs.append(f"/{name} {im} 0 R")
        content = objs.add("<< /Filter /FlateDecode >>", r.content)
        res = f"/Font << {font_res} >>"
        if r.alphas:
            res += " /ExtGState << " + " ".join(f"/A{a} {gs[a]} 0 R" for a in sorted(r.alphas)) + " >>"
        if r.hatches:
            res += " /Pattern << " + " ".join(f"/H{h} {pats[h]} 0 R" for h in sorted(r.hatches)) + " >>"
        if xobjs:
            res += " /XObject << " + " ".join(xobjs) + " >>"
        page_nums.append(objs.add(f"<< /Type /Page /Parent {pages_obj} 0 R /MediaBox [0 0 {r.width:.2f} {r.height:.2f}]"
                                  f" /Resources << {res} >> /Contents {content} 0 R >>"))
    objs.put(pages_obj, f"<< /Type /Pages /Kids [{' '.join(f'{n} 0 R' for n in page_nums)}] /Count {len(page_nums)} >>")
    extra = ""
    marks = [(t, i) for t, i in outline if 0 <= i < len(page_nums)]
    if marks:
        root = objs.reserve()
        nums = [objs.reserve() for _ in marks]
        for j, ((t, i), n) in enumerate(zip(marks, nums)):
            links = f" /Prev {nums[j - 1]} 0 R" if j else ""
            links += f" /Next {nums[j + 1]} 0 R" if j + 1 < len(nums) else ""
            objs.put(n, f"<< /Title {_pdf_string(t)} /Parent {root} 0 R{links} /Dest [{page_nums[i]} 0 R /XYZ null null null] >>")
        objs.put(root, f"<< /Type /Outlines /First {nums[0]} 0 R /Last {nums[-1]} 0 R /Count {len(nums)} >>")
        extra = f" /Outlines {root} 0 R /PageMode /UseOutlines"
    objs.put(catalog, f"<< /Type /Catalog /Pages {pages_obj} 0 R{extra} >>")
    info = objs.add(f"<< /Title {_pdf_string(title)} /Creator {_pdf_string(creator)}"
                    f" /Producer {_pdf_string('Renewal Atlas')} >>")
    data = objs.finish(catalog, info)
    if hasattr(out, "write"):
        out.write(data)
    else:
        with open(out, "wb") as fh:
            fh.write(data)


def encode_png(rgb: np.ndarray, dpi: int | None = None, deflate=None) -> bytes:
    """An RGB uint8 image (rows top to bottom; rows may be padded, as PDFium's are) as PNG bytes.

    Every row but the first is filtered "Up" (its difference to the row above: one numpy pass), and the
    whole is deflated at the fastest level, by ISA-L when it is installed (``isal``: the same zlib stream,
    ~5x faster), else by zlib. ``dpi`` goes into a pHYs chunk. Measured on an atlas page at 150 dpi
    (1754 x 1241): PIL's encoder at its fastest level took 51 ms, two thirds of it trying all five
    PNG filters on every row; this takes 5 ms (zlib: 23 ms) for a file of the same size (0.67 MB).
    """
    deflate = deflate or _DEFLATE
    h, w = rgb.shape[:2]
    rows = rgb.reshape(h, w * 3)  # a view: each row's pixels are contiguous
    raw = np.empty((h, w * 3 + 1), np.uint8)
    raw[:, 0] = 2  # filter type Up
    raw[0, 0] = 0  # (the first row has none above it: None)
    raw[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=raw[1:, 1:])  # uint8 wraps modulo 256, as PNG's filter arithmetic
    chunks = [_png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))]
    if dpi:
        ppm = round(dpi / 0.0254)
        chunks.append(_png_chunk(b"pHYs", struct.pack(">IIB", ppm, ppm, 1)))
    chunks.append(_png_chunk(b"IDAT", deflate.compress(raw, 1)))
    chunks.append(_png_chunk(b"IEND", b""))
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunks)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))


def render_pngs(pdf, indices: Iterable[int], dpi: int) -> Iterator[tuple[int, bytes]]:
    """(index, PNG bytes) of pages of a PDF (a path or bytes), rasterised by PDFium at ``dpi``, opened once.

    ``indices`` may be a generator: an atlas's processes take the next page from a shared counter.
    PDFium is not thread-safe, and the app's sessions are threads of one process: one thread of a
    process at a time is inside PDFium (``_PDFIUM``); an atlas runs its pages in processes.
    """
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    with _PDFIUM:
        doc = pdfium.PdfDocument(pdf)
    try:
        for i in indices:
            with _PDFIUM:
                page = doc[i]
                try:
                    bitmap = page.render(scale=dpi / 72, fill_color=(255, 255, 255, 255),
                                         force_bitmap_format=pdfium_c.FPDFBitmap_BGR, rev_byteorder=True)
                    try:
                        data = encode_png(bitmap.to_numpy(), dpi)  # RGB, read in place from PDFium's buffer
                    finally:
                        bitmap.close()
                finally:
                    page.close()
            yield i, data
    finally:
        with _PDFIUM:
            doc.close()


_PDFIUM = threading.Lock()


def _new_pdfium_lock() -> None:
    global _PDFIUM
    _PDFIUM = threading.Lock()  # a child forked while another thread rendered must not inherit it held


os.register_at_fork(after_in_child=_new_pdfium_lock)


def render_png(pdf, index: int, out, dpi: int) -> None:
    """Rasterise page ``index`` of a PDF (path or bytes) to a PNG file (PDFium)."""
    for _, data in render_pngs(pdf, [index], dpi):
        with open(out, "wb") as fh:
            fh.write(data)
