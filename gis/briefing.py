"""Briefing maps (地块简报图) and atlases, printed without a desktop GIS.

    render_parcel_page(store, code, out)        one parcel: map, locator, legend, scale
                                                bar, north arrow, facts, stage timeline
    render_village_page(store, village, out)    one village: its parcels by stage, a
                                                summary per stage
    render_atlas(store, selection, out_pdf)     a cover, an index, one page per village
                                                or parcel; optionally a zip of PNGs

Pages are drawn with matplotlib's object API (``Figure``, no pyplot state) in
the local CGCS2000 Gauss-Krüger zone, so that the scale bar is true. What all
pages share (parcels and context layers in metres, their drawing paths, the
locator's outlines) is built once per store version (``load_sheet``). Only
the parcels a page shows are drawn, and only the raster window it shows is
read, at the overview level of the page (``gis.raster``).

Files are written to a temporary file in the target folder, then renamed:
a failure leaves no partial file. The CJK font is embedded as Type 3, so the
text stays selectable (``gis.fonts``).
"""
from __future__ import annotations

import datetime as dt
import gc
import math
import os
import tempfile
import threading
import time
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import shapely

from .errors import InputError, NotFoundError
from .i18n import t
from .pipelines import stage_timeline
from .units import M2_PER_HA, M2_PER_MU, STORE_CRS, gk_epsg

PAPERS = {"A4": (297.0, 210.0), "A3": (420.0, 297.0)}  # landscape, millimetres
FORMATS = ("pdf", "png")
PNG_DPI = 150
IMAGE_DPI = 100  # resolution of a raster background on paper (PNG-compressed in the PDF: the main cost of a page)
MM_PER_PT = 25.4 / 72

HIGHLIGHT = "#d7191c"
ZONE_EDGE = "#2b2b2b"
VILLAGE_EDGE = "#8c510a"
PARK_EDGE = "#6a3d9a"
INK = "#222222"
GREY = "#666666"
RULE = "#bbbbbb"
ZONE_FILLS = {"north": "#dbe9f6", "central": "#fde8cf", "south": "#dcefd8"}

Progress = Callable[[int, int, str], None]


# =============================================================== shared data
@dataclass
class Sheet:
    """What every page of one store version shares, in the page CRS (metres)."""

    path: str
    version: int
    epsg: int
    parcels: object  # GeoDataFrame in EPSG:epsg with phase and color columns
    tree: shapely.STRtree
    row_of: dict[str, int]
    layers: dict[str, object]  # context GeoDataFrames in EPSG:epsg
    zones: dict[str, dict]
    villages: dict[str, dict]
    parks: dict[str, dict]
    meta: dict[str, str]
    is_demo: bool
    convergence: float  # degrees from grid north to true north, anticlockwise
    catalog: object
    col: dict = field(default_factory=dict)  # parcel columns as numpy arrays (GeoDataFrame access is slow)
    _paths: dict = field(default_factory=dict, repr=False)

    def parcel_paths(self, rows) -> list:
        """matplotlib Paths of parcel rows, built once per sheet."""
        out = []
        geoms = self.parcels.geometry.values
        for i in rows:
            p = self._paths.get(i)
            if p is None:
                p = self._paths[i] = _path(geoms[i])
            out.append(p)
        return out

    def layer_paths(self, name: str, tolerance: float = 0.0) -> list:
        key = (name, tolerance)
        if key not in self._paths:
            gdf = self.layers.get(name)
            geoms = [] if gdf is None else gdf.geometry.values
            if tolerance:
                geoms = shapely.simplify(np.asarray(geoms), tolerance, preserve_topology=True)
            self._paths[key] = [_path(g) for g in geoms]
        return self._paths[key]


_SHEETS: dict[tuple[str, int], Sheet] = {}


def load_sheet(store) -> Sheet:
    """The shared data of a store at its current data version (cached)."""
    key = (str(store.path), store.data_version())
    sheet = _SHEETS.get(key)
    if sheet is None:
        _SHEETS.clear()  # only the current version is worth keeping
        sheet = _SHEETS[key] = _build_sheet(store, key[1])
    return sheet


def _build_sheet(store, version: int) -> Sheet:
    from pyproj import Proj

    cat = store.catalog
    context = store.context()
    parcels = store.parcels()
    ref = context.get("district")
    if ref is None or len(ref) == 0:
        ref = parcels
    minx, miny, maxx, maxy = ref.to_crs(STORE_CRS).total_bounds
    lon, lat = (minx + maxx) / 2, (miny + maxy) / 2
    epsg = gk_epsg(lon)
    parcels = parcels.to_crs(epsg).reset_index(drop=True)
    phases = [cat.phase_of(k, s if isinstance(s, str) and s else None) for k, s in zip(parcels["kind"], parcels["stage"])]
    parcels["phase"] = [p.key for p in phases]
    parcels["color"] = [p.color for p in phases]
    parcels["blocked"] = parcels["blocked"].fillna(0).astype(int).astype(bool)
    arrays = {c: parcels[c].to_numpy() for c in ("code", "color", "village", "blocked", "kind", "stage")}
    layers = {name: gdf.to_crs(epsg) for name, gdf in context.items()}
    try:
        conv = float(Proj(f"EPSG:{epsg}").get_factors(lon, lat).meridian_convergence)
    except Exception:  # noqa: BLE001 -- a missing grid only costs the arrow's tilt
        conv = 0.0
    return Sheet(
        path=str(store.path), version=version, epsg=epsg, parcels=parcels,
        tree=shapely.STRtree(parcels.geometry.values),
        row_of={c: i for i, c in enumerate(parcels["code"])},
        layers=layers,
        zones=store.attributes("zones") if "zones" in layers else {},
        villages=store.attributes("villages") if "villages" in layers else {},
        parks=store.attributes("parks") if "parks" in layers else {},
        meta=store.meta(), is_demo=store.is_demo, convergence=conv, catalog=cat, col=arrays,
    )


def _path(geom):
    """One compound matplotlib Path for a (multi)polygon, holes included."""
    from matplotlib.path import Path as MPath

    verts, codes = [], []
    polys = getattr(geom, "geoms", [geom]) if geom is not None else []
    for poly in polys:
        if poly.is_empty or poly.geom_type != "Polygon":
            continue
        for ring in (poly.exterior, *poly.interiors):
            xy = np.asarray(ring.coords)
            if len(xy) < 3:
                continue
            verts.append(xy)
            c = np.full(len(xy), MPath.LINETO, dtype=np.uint8)
            c[0], c[-1] = MPath.MOVETO, MPath.CLOSEPOLY
            codes.append(c)
    if not verts:
        return MPath(np.zeros((1, 2)), [MPath.MOVETO])
    return MPath(np.concatenate(verts), np.concatenate(codes))


def _name(rec: dict | None, lang: str) -> str:
    if not rec:
        return ""
    return (rec.get("name_en") if lang == "en" else None) or rec.get("name") or ""


# =============================================================== output files
def _fmt_of(out: Path, fmt: str | None) -> str:
    f = (fmt or out.suffix.lstrip(".")).lower()
    if f not in FORMATS:
        raise InputError("brief.bad_format", path=str(out), known=", ".join("." + x for x in FORMATS))
    return f


def check_target(out, suffixes: tuple[str, ...] = (".pdf", ".png")) -> Path:
    """An output path whose folder exists and can be written to.

    Raises:
        InputError: wrong extension, missing folder, the path is a folder, or the folder is not writable.
    """
    out = Path(out).expanduser()
    if out.suffix.lower() not in suffixes:
        raise InputError("brief.bad_format", path=str(out), known=", ".join(suffixes))
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir() or out.is_dir() or not os.access(parent, os.W_OK):
        raise InputError("brief.unwritable", path=str(out))
    return out


@contextmanager
def atomic_output(out: Path):
    """A temporary file beside ``out``, renamed to ``out`` on success and removed on failure.

    Raises:
        InputError: the folder cannot be written to.
    """
    try:
        fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".part")
    except OSError as e:
        raise InputError("brief.unwritable", path=str(out)) from e
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private; the result is an ordinary file
        os.replace(tmp, out)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise InputError("brief.unwritable", path=str(out)) from e
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o022


def default_raster(settings) -> Path | None:
    """The configured basemap GeoTIFF if it exists (an unset or missing default means no background)."""
    r = getattr(settings, "raster", None)
    return Path(r) if r and Path(r).is_file() else None


# =============================================================== a page
class Page:
    """An A4 or A3 landscape figure laid out in A4 millimetres from the top left.

    On A3 every position and font size is scaled by √2, so both papers look the same.
    """

    def __init__(self, paper: str, lang: str, classification: str, sheet: Sheet, number: tuple[int, int] | None = None):
        from matplotlib.figure import Figure

        if paper not in PAPERS:
            raise InputError("brief.bad_paper", paper=paper, known=", ".join(PAPERS))
        self.W, self.H = PAPERS[paper]
        self.k = self.W / PAPERS["A4"][0]
        self.lang = lang
        self.sheet = sheet
        self.classification = classification
        self.number = number
        self.fig = Figure(figsize=(self.W / 25.4, self.H / 25.4), dpi=72)

    def tr(self, key: str, **params) -> str:
        return t(key, self.lang, **params)

    # ---- geometry helpers (A4 millimetres, origin top left)
    def fx(self, x):
        return x * self.k / self.W

    def fy(self, y):
        return 1 - y * self.k / self.H

    def axes(self, x, y, w, h, frame=True):
        """Axes for a map, with no ticks (creating them is most of an Axes' cost) and a thin frame."""
        ax = self.fig.add_axes((self.fx(x), self.fy(y + h), w * self.k / self.W, h * self.k / self.H))
        ax.set_axis_off()
        if frame:
            self.box(x, y, w, h, ec=INK, lw=0.6, zorder=30)
        return ax

    def text(self, x, y, s, size=8.0, **kw):
        kw.setdefault("color", INK)
        kw.setdefault("va", "baseline")
        return self.fig.text(self.fx(x), self.fy(y), s, fontsize=size * self.k, **kw)

    def lines(self, x, y, items, size: float, pitch: float, ha: str = "left") -> None:
        """A column of text lines, baselines ``pitch`` mm apart from ``y`` down.

        ``items``: strings or ``(text, color, weight)``. Each run of lines of one
        style is one Text (a Text costs about a millisecond to lay out, a line in
        it much less); its line spacing is set from the font's line height so
        that the baselines fall on the grid.
        """
        styled = [(it, INK, "normal") if isinstance(it, str) else tuple(it) for it in items]
        i = 0
        while i < len(styled):
            j = i
            while j + 1 < len(styled) and styled[j + 1][1:] == styled[i][1:]:
                j += 1
            run = [txt for txt, _, _ in styled[i:j + 1]]
            if any(run):
                color, weight = styled[i][1:]
                ls = pitch / MM_PER_PT / (size * self.k * _line_height_em(weight))
                self.text(x, y + j * pitch, "\n".join(r or " " for r in run), size, color=color, weight=weight,
                          ha=ha, multialignment=ha, linespacing=ls)
            i = j + 1

    def rule(self, x0, y0, x1, y1, color=RULE, lw=0.5, **kw):
        from matplotlib.lines import Line2D

        self.fig.add_artist(Line2D([self.fx(x0), self.fx(x1)], [self.fy(y0), self.fy(y1)],
                                   color=color, linewidth=lw * self.k, **kw))

    def box(self, x, y, w, h, fc="none", ec=INK, lw=0.5, **kw):
        from matplotlib.patches import Rectangle

        self.fig.add_artist(Rectangle((self.fx(x), self.fy(y + h)), w * self.k / self.W, h * self.k / self.H,
                                      transform=self.fig.transFigure, facecolor=fc, edgecolor=ec,
                                      linewidth=lw * self.k, **kw))

    # ---- frame elements
    def header(self, title: str, subtitle: str, doc_kind: str) -> None:
        self.text(10, 13, title, 16, weight="bold")
        self.text(10, 19.5, subtitle, 8.5, color=GREY)
        self.text(287, 12.5, doc_kind, 9, ha="right", color=GREY)
        if self.sheet.is_demo:
            self.text(287, 19.5, self.tr("brief.demo_mark"), 8.5, ha="right", color="white", weight="bold",
                      bbox=dict(boxstyle="square,pad=0.25", fc=HIGHLIGHT, ec="none"))
        self.rule(10, 22.5, 287, 22.5, color=INK, lw=0.8)

    def footer(self) -> None:
        sh = self.sheet
        self.rule(10, 196, 287, 196, color=INK, lw=0.6)
        source = sh.meta.get("data_source") or self.tr("brief.source_unknown")
        made = dt.date.today().isoformat()
        line1 = f"{self.tr('brief.source')}：{source}    {self.tr('brief.crs')}：{crs_label(sh.epsg, self.lang)}"
        line2 = f"{self.tr('brief.made')}：{made}    {self.tr('brief.made_by')}"
        if self.number:
            line2 += "    " + self.tr("brief.page_of", page=self.number[0], pages=self.number[1])
        self.text(10, 200.5, line1, 6.5, color=GREY)
        self.text(10, 204.5, line2, 6.5, color=GREY)
        self.text(287, 200.5, self.classification, 8, ha="right", weight="bold")
        if sh.is_demo:
            self.text(287, 204.5, self.tr("brief.demo_mark"), 6.5, ha="right", color=HIGHLIGHT, weight="bold")

    def heading(self, x, y, s):
        self.text(x, y, s, 8, weight="bold")

    def save(self, target, fmt: str, dpi: int = PNG_DPI) -> None:
        if fmt == "pdf":
            self.fig.savefig(target, format="pdf", dpi=IMAGE_DPI, metadata=_pdf_metadata(self.lang))
        else:
            self.fig.savefig(target, format="png", dpi=dpi)


_LH: dict = {}


def _line_height_em(weight: str) -> float:
    """The font's typographic line height per point of size: what matplotlib multiplies by ``linespacing``."""
    import matplotlib

    key = (tuple(matplotlib.rcParams["font.family"]), weight)
    if key not in _LH:
        from matplotlib.font_manager import FontProperties, findfont, get_font

        font = get_font(findfont(FontProperties(weight=weight)))
        em = font.get_sfnt_table("head")["unitsPerEm"]
        os2 = font.get_sfnt_table("OS/2")
        if os2:
            _LH[key] = (os2["sTypoAscender"] - os2["sTypoDescender"]) / em
        else:
            hhea = font.get_sfnt_table("hhea")
            _LH[key] = (hhea["ascent"] - hhea["descent"]) / em
    return _LH[key]


def _pdf_metadata(lang: str) -> dict:
    return {"Creator": "Renewal Atlas (城市更新一张图)", "Producer": "Renewal Atlas / matplotlib"}


def crs_label(epsg: int, lang: str = "zh") -> str:
    """'CGCS2000 3度带高斯-克吕格 中央经线120°E（EPSG:4549）'."""
    cm = (epsg - 4534 + 25) * 3 if 4534 <= epsg <= 4554 else (epsg - 4513 + 25) * 3
    return t("brief.crs_gk", lang, cm=cm, epsg=epsg)


# =============================================================== text helpers
def _char_w(ch: str) -> float:
    o = ord(ch)
    if o >= 0x2E80 or 0xFF00 <= o <= 0xFFEF:
        return 1.0
    if ch in "il.,:;|!'` ":
        return 0.3
    if ch.isupper() or ch in "mwMW@%":
        return 0.72
    return 0.56


def text_width_mm(s: str, size: float) -> float:
    """An estimate of printed width (CJK full width; Latin about half)."""
    return sum(_char_w(c) for c in s) * size * MM_PER_PT


def wrap(s: str, width_mm: float, size: float, max_lines: int = 6) -> list[str]:
    """Break text into lines that fit ``width_mm`` at ``size`` pt; CJK breaks anywhere, Latin at spaces."""
    s = " ".join(str(s or "").split())
    em = size * MM_PER_PT
    tokens, word = [], ""
    for ch in s:
        if ord(ch) >= 0x2E80:
            if word:
                tokens.append(word)
                word = ""
            tokens.append(ch)
        elif ch == " ":
            tokens.append(word + " ")
            word = ""
        else:
            word += ch
    if word:
        tokens.append(word)
    lines, cur, w = [], "", 0.0
    for tok in tokens:
        tw = sum(_char_w(c) for c in tok) * em
        if cur and w + tw > width_mm and tok.strip():
            lines.append(cur.rstrip())
            cur, w = "", 0.0
            if len(lines) == max_lines:
                break
        cur += tok
        w += tw
    else:
        if cur.strip():
            lines.append(cur.rstrip())
    if len(lines) == max_lines and tokens:
        joined = "".join(lines)
        if len(joined.replace(" ", "")) < len(s.replace(" ", "")):
            lines[-1] = lines[-1][:-1] + "…"
    return lines or [""]


def _fmt_mu(m2: float) -> str:
    return f"{m2 / M2_PER_MU:,.2f}"


def area_text(m2: float, lang: str) -> str:
    """'12,345 平方米 / 18.52 亩 / 1.23 公顷'."""
    return t("brief.area_value", lang, m2=f"{m2:,.0f}", mu=_fmt_mu(m2), ha=f"{m2 / M2_PER_HA:,.2f}")


# =============================================================== map pieces
def fit_extent(bounds, aspect: float, pad: float, min_width: float):
    """Bounds grown by ``pad`` (a share) to at least ``min_width`` metres, with width/height = ``aspect``."""
    minx, miny, maxx, maxy = bounds
    cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
    w = max((maxx - minx) * (1 + 2 * pad), min_width)
    h = max((maxy - miny) * (1 + 2 * pad), min_width / aspect)
    if w / h > aspect:
        h = w / aspect
    else:
        w = h * aspect
    return (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)


def nice_length(max_m: float) -> float:
    """The largest 1, 2 or 5 × 10^n metres not above ``max_m``."""
    if max_m <= 0:
        return 1.0
    n = 10 ** math.floor(math.log10(max_m))
    return max(m * n for m in (1, 2, 5) if m * n <= max_m)


def _fmt_len(m: float, lang: str) -> str:
    if m >= 1000:
        v = m / 1000
        return f"{v:g} km" if lang == "en" else f"{v:g} 千米"
    return f"{m:g} m" if lang == "en" else f"{m:g} 米"


def parcels_in_view(sheet: Sheet, extent) -> np.ndarray:
    """Rows of the parcels that touch the page's extent (the STR-tree: only these are drawn)."""
    rows = sheet.tree.query(shapely.box(*extent), predicate="intersects")
    return np.sort(rows)


def background(raster, sheet: Sheet, extent, size_mm: tuple[float, float]):
    """The raster window under the map (``gis.raster``), or None."""
    if raster is None:
        return None
    from .raster import read_background

    w = max(1, int(size_mm[0] / 25.4 * IMAGE_DPI))
    h = max(1, int(size_mm[1] / 25.4 * IMAGE_DPI))
    return read_background(raster, extent, sheet.epsg, w, h)


_GLYPHS: dict = {}


def _glyph_path(text: str, weight: str):
    """Outline of a short label at 100 pt, centred on its bounding box, and its half size (cached)."""
    import matplotlib

    family = tuple(matplotlib.rcParams["font.family"])
    key = (text, weight, family)
    g = _GLYPHS.get(key)
    if g is None:
        from matplotlib.font_manager import FontProperties
        from matplotlib.textpath import text_to_path

        prop = FontProperties(family=list(family), weight=weight, size=100)
        verts, codes = text_to_path.get_text_path(prop, text)
        verts = np.asarray(verts, dtype=float).reshape(-1, 2)
        half = np.zeros(2)
        if len(verts):
            lo, hi = verts.min(axis=0), verts.max(axis=0)
            verts = verts - (lo + hi) / 2
            half = (hi - lo) / 2
        g = _GLYPHS[key] = (verts, np.asarray(codes, dtype=np.uint8), half)
    return g


def _label_artist(xs, ys, texts, size: float, color: str, halo: float, weight: str = "normal", zorder: float = 10,
                  ha: str = "center", va: str = "center", coords: str = "data", alpha: float = 1.0):
    """Labels drawn as one filled outline (with a white halo when ``halo`` > 0).

    A matplotlib Text costs about a millisecond to lay out and write; a village
    page has a hundred parcel numbers. Drawn as one path they cost next to
    nothing. They are then shapes, not selectable text: map annotations only;
    the page's facts (names, codes, stages, areas) stay real text.
    ``coords``: "data" or "axes" (fractions of the axes).
    """
    art = _Labels(np.asarray(xs, dtype=float), np.asarray(ys, dtype=float), list(texts), size, color, halo,
                  weight, ha, va, coords, alpha)
    art.set_zorder(zorder)
    return art


def _labels_class():
    from matplotlib.artist import Artist
    from matplotlib.colors import to_rgba
    from matplotlib.path import Path as MPath
    from matplotlib.transforms import IdentityTransform

    class Labels(Artist):
        def __init__(self, xs, ys, texts, size, color, halo, weight, ha, va, coords, alpha):
            super().__init__()
            self.xs, self.ys, self.texts = xs, ys, texts
            self.size, self.color, self.halo, self.weight, self.coords, self.alpha_ = size, color, halo, weight, coords, alpha
            self.sx = {"center": 0, "left": 1, "right": -1}[ha]
            self.sy = {"center": 0, "bottom": 1, "top": -1}[va]

        def draw(self, renderer):
            if not self.get_visible() or not len(self.texts):
                return
            ax = self.axes
            tr = ax.transData if self.coords == "data" else ax.transAxes
            anchors = tr.transform(np.column_stack([self.xs, self.ys]))
            scale = self.size / 100 * renderer.points_to_pixels(1.0)
            vs, cs = [], []
            for (px, py), s in zip(anchors, self.texts):
                v, c, half = _glyph_path(s, self.weight)
                if len(v):
                    vs.append(v * scale + (px + self.sx * half[0] * scale, py + self.sy * half[1] * scale))
                    cs.append(c)
            if not vs:
                return
            path = MPath(np.concatenate(vs), np.concatenate(cs))
            gc = renderer.new_gc()
            gc.set_clip_rectangle(ax.bbox)
            gc.set_joinstyle("round")
            gc.set_alpha(self.alpha_)
            if self.halo:
                gc.set_foreground("white")
                gc.set_linewidth(self.halo)
                renderer.draw_path(gc, path, IdentityTransform())
            gc.set_linewidth(0)
            gc.set_foreground(self.color)
            renderer.draw_path(gc, path, IdentityTransform(), to_rgba(self.color, self.alpha_))
            gc.restore()

    return Labels


class _LazyLabels:
    """The Labels artist class, defined on first use (matplotlib is imported lazily)."""

    cls = None

    def __call__(self, *args):
        if _LazyLabels.cls is None:
            _LazyLabels.cls = _labels_class()
        return _LazyLabels.cls(*args)


_Labels = _LazyLabels()


def _palette(img: np.ndarray) -> np.ndarray:
    """The background reduced to 256 colours: matplotlib then stores it as an indexed image,
    about a third of the bytes and of the compression time of full RGB."""
    if img.ndim != 3 or img.shape[2] != 3:
        return img
    from PIL import Image

    q = Image.fromarray(img).quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    return np.asarray(q.convert("RGB"))


def _add(ax, artist):
    """Add a collection without matplotlib recomputing data limits: every map sets its own."""
    return ax.add_collection(artist, autolim=False)


def _collection(paths, **kw):
    from matplotlib.collections import PathCollection

    return PathCollection(paths, **kw)


def draw_map(page: Page, rect, extent, *, raster=None, focus_rows=(), focus_village: str | None = None,
             label_mode: str = "code", dim_others: bool = False):
    """The main map: background, zone/village/park outlines, parcels by stage, labels.

    ``focus_rows`` are highlighted; ``focus_village`` draws that village's boundary
    strongly and (with ``dim_others``) fades the parcels outside it.
    """
    from matplotlib import patheffects

    sh = page.sheet
    k = page.k
    x, y, w, h = rect
    ax = page.axes(x, y, w, h)
    minx, miny, maxx, maxy = extent
    ax.set_xlim(minx, maxx)
    ax.set_ylim(miny, maxy)
    ax.set_aspect("equal", adjustable="box")
    ax.set_facecolor("#f4f1ea")
    bg = background(raster, sh, extent, (w * k, h * k))
    if bg is not None:
        ax.imshow(_palette(bg.image), extent=bg.extent, interpolation="none", zorder=0)
    elif "sea" in sh.layers:
        _add(ax, _collection(sh.layer_paths("sea"), facecolor="#cfe3f3", edgecolor="none", zorder=0))
    alpha = 0.62 if bg is not None else 0.9

    rows = parcels_in_view(sh, extent)
    focus = set(int(r) for r in focus_rows)
    p = sh.parcels
    if len(rows):
        cols = sh.col["color"][rows]
        if dim_others and focus_village:
            inside = sh.col["village"][rows] == focus_village
            fc = [c if i else "#e3e3e3" for c, i in zip(cols, inside)]
        else:
            fc = list(cols)
        _add(ax, _collection(sh.parcel_paths(rows), facecolors=fc, edgecolors="#ffffff",
                                      linewidths=0.35 * k, alpha=alpha, zorder=2))
        blocked = rows[sh.col["blocked"][rows]]
        if len(blocked):
            _add(ax, _collection(sh.parcel_paths(blocked), facecolor="none", edgecolor=HIGHLIGHT,
                                          linewidths=0.5 * k, hatch="////", zorder=3))
    # outlines: parks, villages, zones
    view = shapely.box(*extent)
    for name, color, lw, ls, z in (("parks", PARK_EDGE, 0.8, ":", 4), ("devzone", PARK_EDGE, 1.0, "--", 4),
                                   ("villages", VILLAGE_EDGE, 0.7, "--", 4), ("zones", ZONE_EDGE, 1.4, "-.", 5)):
        gdf = sh.layers.get(name)
        if gdf is None or not len(gdf):
            continue
        hit = gdf.sindex.query(view, predicate="intersects")
        if not len(hit):
            continue
        paths = [sh.layer_paths(name)[i] for i in sorted(hit)]
        _add(ax, _collection(paths, facecolor="none", edgecolor=color, linewidths=lw * k,
                                      linestyle=ls, zorder=z))
    if focus_village and "villages" in sh.layers:
        vg = sh.layers["villages"]
        idx = np.flatnonzero(vg["code"].to_numpy() == focus_village)
        if len(idx):
            _add(ax, _collection([sh.layer_paths("villages")[i] for i in idx], facecolor="none",
                                          edgecolor="white", linewidths=3.2 * k, zorder=6))
            _add(ax, _collection([sh.layer_paths("villages")[i] for i in idx], facecolor="none",
                                          edgecolor=VILLAGE_EDGE, linewidths=1.6 * k, zorder=7))
    if focus:
        fp = sh.parcel_paths(sorted(focus))
        _add(ax, _collection(fp, facecolor="none", edgecolor="white", linewidths=4.0 * k, zorder=8))
        _add(ax, _collection(fp, facecolor="none", edgecolor=HIGHLIGHT, linewidths=2.0 * k, zorder=9))

    # labels: parcels big enough on paper, then village names, then the focus
    halo = [patheffects.withStroke(linewidth=1.6 * k, foreground="white")]
    mm_per_m = w / (maxx - minx)
    if len(rows) and label_mode != "none":
        geoms = p.geometry.values[rows]
        b = shapely.bounds(geoms)
        big = np.minimum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]) * mm_per_m >= (7.0 if label_mode == "code" else 4.5)
        cand = [r for r, ok in zip(rows, big) if ok and r not in focus]
        if label_mode == "number" and focus_village:
            vill = sh.col["village"]
            cand = [r for r in cand if vill[r] == focus_village]
        if len(cand) > 150:
            cand = []
        if cand:
            pts = shapely.point_on_surface(p.geometry.values[cand])
            xs, ys = shapely.get_x(pts), shapely.get_y(pts)
            codes = sh.col["code"][cand]
            inside = (xs > minx) & (xs < maxx) & (ys > miny) & (ys < maxy)
            labels = [c.rsplit("-", 1)[-1] if label_mode == "number" else c for c in codes[inside]]
            ax.add_artist(_label_artist(xs[inside], ys[inside], labels, 5.6 * k, "#333333", 1.4 * k))
    if "villages" in sh.layers and label_mode != "none":
        vg = sh.layers["villages"]
        hit = [i for i in vg.sindex.query(view, predicate="intersects") if vg["code"].iat[i] != focus_village]
        if hit:
            pts = [shapely.point_on_surface(vg.geometry.iat[i].intersection(view)) for i in hit]
            keep = [(pt, i) for pt, i in zip(pts, hit) if not pt.is_empty]
            ax.add_artist(_label_artist([pt.x for pt, _ in keep], [pt.y for pt, _ in keep],
                                        [_name(sh.villages.get(vg["code"].iat[i]), page.lang) for _, i in keep],
                                        8 * k, VILLAGE_EDGE, 1.6 * k, weight="bold", zorder=11))
    for r in sorted(focus):
        pt = p.geometry.values[r].point_on_surface()
        ax.text(pt.x, pt.y, sh.col["code"][r], fontsize=9 * k, ha="center", va="center", color=HIGHLIGHT,
                weight="bold", path_effects=[patheffects.withStroke(linewidth=2.6 * k, foreground="white")],
                zorder=12, clip_on=True)
    north_arrow(page, ax, sh.convergence)
    scale_bar(page, ax, extent, w)
    return ax


def north_arrow(page: Page, ax, convergence: float) -> None:
    """A two-tone arrow in the map's top right, tilted to true north (meridian convergence)."""
    from matplotlib.patches import Polygon
    from matplotlib.transforms import Affine2D

    k = page.k
    # in axes points: place at the top right, 9 mm from the corner
    bbox = ax.get_position()
    wpt, hpt = bbox.width * page.fig.get_figwidth() * 72, bbox.height * page.fig.get_figheight() * 72
    cx, cy = 1 - 9 * k / MM_PER_PT / wpt, 1 - 12 * k / MM_PER_PT / hpt
    s = 4.0 * k / MM_PER_PT  # half-height in points
    rot = Affine2D().rotate_deg(convergence)
    left = np.array([[0, s], [-s * 0.45, -s * 0.7], [0, -s * 0.35]])
    right = left * [-1, 1]
    to_axes = Affine2D().scale(1 / wpt, 1 / hpt).translate(cx, cy)
    for pts, fc in ((left, INK), (right, "white")):
        xy = to_axes.transform(rot.transform(pts))
        ax.add_artist(Polygon(xy, closed=True, transform=ax.transAxes, facecolor=fc, edgecolor=INK,
                             linewidth=0.6 * k, zorder=20))
    tip = to_axes.transform(rot.transform([[0, s * 1.2]]))[0]
    ax.add_artist(_label_artist([tip[0]], [tip[1]], ["N"], 9 * k, INK, 0, weight="bold", zorder=20, va="bottom",
                                coords="axes"))


def scale_bar(page: Page, ax, extent, map_w_mm: float) -> None:
    """A metric bar of a round length (1-2-5 × 10^n m) and the ratio scale, bottom left of the map."""
    from matplotlib.patches import Rectangle

    k = page.k
    minx, miny, maxx, maxy = extent
    m_per_mm = (maxx - minx) / (map_w_mm * k)
    length = nice_length(m_per_mm * 40 * k)  # at most 40 mm on paper
    seg = length / 4
    x0 = minx + 6 * k * m_per_mm
    y0 = miny + 7 * k * m_per_mm
    hbar = 1.3 * k * m_per_mm
    ax.add_artist(Rectangle((x0 - 3 * k * m_per_mm, y0 - 5 * k * m_per_mm), length + 12 * k * m_per_mm,
                           12.5 * k * m_per_mm, facecolor="white", edgecolor="none", alpha=0.8, zorder=19))
    for i in range(4):
        ax.add_artist(Rectangle((x0 + i * seg, y0), seg, hbar, facecolor=INK if i % 2 == 0 else "white",
                               edgecolor=INK, linewidth=0.4 * k, zorder=20))
    marks = (0, length / 2, length)
    labels = [_fmt_len(v, page.lang) if v == length else f"{v / 1000:g}" if length >= 1000 else f"{v:g}"
              for v in marks]
    ax.add_artist(_label_artist([x0 + v for v in marks], [y0 + hbar + 0.8 * k * m_per_mm] * 3, labels, 6 * k,
                                INK, 0, va="bottom", zorder=21))
    ratio = (maxx - minx) / (map_w_mm * k / 1000)
    ratio = round(ratio, -int(math.floor(math.log10(ratio))) + 1) if ratio > 0 else 0
    ax.add_artist(_label_artist([x0], [y0 - 1.2 * k * m_per_mm], [f"1:{ratio:,.0f}"], 6 * k, INK, 0, ha="left",
                                va="top", zorder=21))


def draw_locator(page: Page, rect, extent=None, points=()):
    """The district, its zones and where the main map is."""
    from matplotlib.patches import Rectangle

    sh = page.sheet
    k = page.k
    x, y, w, h = rect
    ax = page.axes(x, y, w, h)
    ax.set_facecolor("#eef4f8")
    tol = 30.0
    if "sea" in sh.layers:
        _add(ax, _collection(sh.layer_paths("sea", tol), facecolor="#cfe3f3", edgecolor="none"))
    if "zones" in sh.layers:
        zg = sh.layers["zones"]
        fills = [ZONE_FILLS.get(c, "#eeeeee") for c in zg["code"]]
        _add(ax, _collection(sh.layer_paths("zones", tol), facecolors=fills, edgecolor="#888888",
                                      linewidths=0.4 * k))
        pts = shapely.point_on_surface(zg.geometry.values)
        ax.add_artist(_label_artist(shapely.get_x(pts), shapely.get_y(pts),
                                    [_name(sh.zones.get(c), page.lang) for c in zg["code"]], 6.5 * k, GREY, 0))
    for name, color in (("villages", "#c9b79c"), ("parks", "#cab2d6"), ("devzone", None)):
        if name in sh.layers:
            _add(ax, _collection(sh.layer_paths(name, tol), facecolor=color or "none",
                                          edgecolor=PARK_EDGE if name == "devzone" else "none",
                                          linewidths=0.5 * k, linestyle="--"))
    if "district" in sh.layers:
        _add(ax, _collection(sh.layer_paths("district", tol), facecolor="none", edgecolor=INK,
                                      linewidths=0.8 * k))
        bounds = sh.layers["district"].total_bounds
    else:
        bounds = sh.parcels.total_bounds
    ext = fit_extent(bounds, w / h, 0.04, 100)
    ax.set_xlim(ext[0], ext[2])
    ax.set_ylim(ext[1], ext[3])
    ax.set_aspect("equal", adjustable="box")
    if extent is not None:
        ex0, ey0, ex1, ey1 = extent
        # a page extent smaller than a few pixels of the locator is shown as a cross-hair box of 3 mm
        min_size = (ext[2] - ext[0]) / (w * k) * 3 * k
        if ex1 - ex0 < min_size:
            cx, cy = (ex0 + ex1) / 2, (ey0 + ey1) / 2
            ex0, ex1, ey0, ey1 = cx - min_size / 2, cx + min_size / 2, cy - min_size / 2, cy + min_size / 2
        ax.add_artist(Rectangle((ex0, ey0), ex1 - ex0, ey1 - ey0, facecolor="none", edgecolor=HIGHLIGHT,
                               linewidth=1.2 * k, zorder=5))
    if len(points):
        pts = np.asarray(points)
        ax.scatter(pts[:, 0], pts[:, 1], s=(3.2 * k) ** 2, c=HIGHLIGHT, edgecolors="white",
                   linewidths=0.5 * k, zorder=6)
    page.text(x + 1.5, y + 4, page.tr("brief.locator"), 6.5, color=GREY,
              bbox=dict(boxstyle="square,pad=0.15", fc="white", ec="none", alpha=0.8))
    return ax


def draw_legend(page: Page, x: float, y: float, w: float, focus_label: str | None) -> float:
    """Stage colours (phases) and line symbols, in two columns; returns the y below it."""
    sh = page.sheet
    page.heading(x, y, page.tr("brief.legend"))
    items = [("fill", ph.color, ph.label(page.lang)) for ph in sh.catalog.phases.values()]
    if focus_label:
        items.append(("focus", HIGHLIGHT, focus_label))
    items += [("hatch", HIGHLIGHT, page.tr("brief.blocked")), ("line-.", ZONE_EDGE, page.tr("brief.zone_line")),
              ("line--", VILLAGE_EDGE, page.tr("brief.village_line"))]
    col_w = w / 2
    rows = math.ceil(len(items) / 2)
    for i, (kind, color, label) in enumerate(items):
        cx = x + (i // rows) * col_w
        cy = y + 3.2 + (i % rows) * 4.0
        if kind == "fill":
            page.box(cx, cy, 6, 2.8, fc=color, ec="#999999", lw=0.3)
        elif kind == "focus":
            page.box(cx, cy, 6, 2.8, fc="none", ec=color, lw=1.6)
        elif kind == "hatch":
            page.box(cx, cy, 6, 2.8, fc="none", ec=color, lw=0.4, hatch="////")
        else:
            page.rule(cx, cy + 1.4, cx + 6, cy + 1.4, color=color, lw=1.2, linestyle=kind[4:])
    for col in range(2):
        page.lines(x + col * col_w + 7.5, y + 5.6, [it[2] for it in items[col * rows:(col + 1) * rows]], 6.5, 4.0)
    return y + 3.2 + rows * 4.0


def draw_rows(page: Page, x: float, y: float, rows, key_w: float, val_w: float, size: float = 7.0,
              pitch: float = 3.9, max_y: float = 193.0) -> float:
    """A key/value table; values wrap. Keys and values go in one text object per column (fast)."""
    keys, vals, colours = [], [], []
    for key, val, *rest in rows:
        if val is None or val == "":
            continue
        lines = wrap(str(val), val_w, size, max_lines=4)
        if y + pitch * (len(keys) + len(lines)) > max_y:
            lines = lines[: max(0, int((max_y - y) / pitch) - len(keys))]
            if not lines:
                break
        keys += [key] + [""] * (len(lines) - 1)
        vals += lines
        colours += [rest[0] if rest else INK] * len(lines)
    for i in range(len(keys)):
        if keys[i] and i:
            page.rule(x, y + i * pitch - 2.9, x + key_w + val_w, y + i * pitch - 2.9, lw=0.3)
    page.lines(x, y, [(kk, GREY, "normal") for kk in keys], size, pitch)
    page.lines(x + key_w, y, [(vv, cc, "normal") for vv, cc in zip(vals, colours)], size, pitch)
    return y + len(keys) * pitch


def draw_timeline(page: Page, x: float, y: float, w: float, steps: list[dict]) -> None:
    """Every stage on one line: done ones filled with their date, the current one ringed, the rest hollow."""
    from matplotlib.patches import Ellipse

    k = page.k
    n = len(steps)
    page.heading(x, y - 9.5, page.tr("brief.timeline"))
    x0, x1 = x + 8, x + w - 8
    ty = y
    gap = (x1 - x0) / max(n - 1, 1)
    cur = next((i for i, s in enumerate(steps) if s["status"] == "current"), -1)
    page.rule(x0, ty, x1, ty, color="#cccccc", lw=1.6)
    if cur >= 0:
        page.rule(x0, ty, x0 + cur * gap, ty, color="#555555", lw=1.6)
    rx, ry = 1.5 * k / page.W, 1.5 * k / page.H
    for i, s in enumerate(steps):
        cx = x0 + i * gap
        status = s["status"]
        fc = s["color"] if status != "ahead" else "white"
        ec = HIGHLIGHT if status == "current" else ("#555555" if status == "done" else "#aaaaaa")
        scale = 1.45 if status == "current" else 1.0
        page.fig.add_artist(Ellipse((page.fx(cx), page.fy(ty)), 2 * rx * scale, 2 * ry * scale,
                                    transform=page.fig.transFigure, facecolor=fc, edgecolor=ec,
                                    linewidth=(1.4 if status == "current" else 0.6) * k, zorder=3))
        above = i % 2 == 0
        ly = ty - 3.2 if above else ty + 5.3
        dy = ty - 6.6 if above else ty + 8.7
        weight = "bold" if status == "current" else "normal"
        color = HIGHLIGHT if status == "current" else (INK if status == "done" else "#888888")
        label = s["label"] + (page.tr("brief.current_mark") if status == "current" else "")
        page.text(cx, ly, label, 6.3, ha="center", weight=weight, color=color)
        if s.get("date"):
            page.text(cx, dy, s["date"], 5.6, ha="center", color=GREY)


# =============================================================== parcel page
def parcel_facts(store, code: str, lang: str = "zh") -> dict:
    """A parcel's record (``Store.parcel``) with its history and stage timeline.

    Raises:
        NotFoundError: unknown code.
    """
    p = store.parcel(code, lang)
    history = store.history(code)
    p["timeline"] = stage_timeline(store.catalog, p["kind"], p["stage"], history, lang)
    p["first_date"] = history[0].event_date if history else None
    p["history"] = history
    return p


def compose_parcel_page(store, code: str, paper: str = "A4", raster=None, lang: str = "zh",
                        classification: str = "", number=None) -> Page:
    """The figure of one parcel's briefing page (not yet saved).

    Raises:
        NotFoundError: unknown code; InputError: unreadable raster.
    """
    sheet = load_sheet(store)
    p = parcel_facts(store, code, lang)
    row = sheet.row_of.get(code)
    if row is None:
        raise NotFoundError("error.no_parcel", code=code)
    page = Page(paper, lang, classification, sheet, number)
    zone = sheet.zones.get(p.get("zone") or "", {})
    roles = (zone.get("roles_en") if lang == "en" else zone.get("roles")) or ""
    strategy = "" if lang == "en" else zone.get("strategy") or ""
    where = p["village_name"] or p["park_name"] or ""
    zone_txt = p["zone_name"] + (f"（{strategy}）" if strategy else "") + (("：" if lang != "en" else ": ") + roles if roles else "")
    subtitle = "  ·  ".join(s for s in (zone_txt, p["kind_label"], where) if s)
    page.header(f"{p['name']}  {code}", subtitle, page.tr("brief.doc_parcel"))

    geom = sheet.parcels.geometry.values[row]
    map_rect = (10, 25, 173, 136)
    extent = fit_extent(geom.bounds, map_rect[2] / map_rect[3], 0.9, 320.0)
    draw_map(page, map_rect, extent, raster=raster, focus_rows=[row], label_mode="code")
    draw_timeline(page, 10, 178, 173, p["timeline"])

    c = geom.centroid
    draw_locator(page, (190, 25, 97, 56), extent, [(c.x, c.y)])
    y = draw_legend(page, 190, 86.5, 97, page.tr("brief.this_parcel"))
    page.heading(190, y + 4, page.tr("brief.facts"))
    paren = " ({})" if lang == "en" else "（{}）"
    stage = p["stage_label"] + (paren.format(p["stage_date"]) if p.get("stage_date") else "")
    upd = " ".join(s for s in ((p.get("updated_at") or "")[:10], p.get("updated_by") or "") if s)
    rows = [
        (page.tr("brief.code"), code),
        (page.tr("brief.area"), area_text(p["area_m2"], lang)),
        (page.tr("brief.zone"), zone_txt),
        (page.tr("brief.kind"), p["kind_label"]),
        (page.tr("brief.village") if p.get("village") else page.tr("brief.park"), where),
        (page.tr("brief.current_stage"), stage, HIGHLIGHT),
        (page.tr("brief.next_stage"), p["next_stage_label"] or page.tr("brief.finished")),
        (page.tr("brief.unit"), p.get("unit")),
        (page.tr("brief.owner"), p.get("owner")),
        (page.tr("brief.land_use"), p.get("land_use")),
        (page.tr("brief.first_date"), p.get("first_date")),
        (page.tr("brief.updated"), upd),
        (page.tr("brief.blocked_reason"), (p.get("blocked_reason") or page.tr("brief.blocked")) if p["blocked"] else None,
         HIGHLIGHT),
        (page.tr("brief.note"), p.get("note")),
    ]
    key_w = max(14.0, max(text_width_mm(r[0], 7.0) for r in rows if r[1]) + 2.5)
    y = draw_rows(page, 190, y + 8.5, rows, key_w=key_w, val_w=96 - key_w)
    draw_history(page, 190, y + 3.5, p, 96)
    page.footer()
    return page


def draw_history(page: Page, x: float, y: float, p: dict, w: float, max_y: float = 192.5) -> None:
    """The latest events of the parcel's log, newest first, as many as fit."""
    pitch = 3.6
    room = int((max_y - y - 4.4) / pitch)
    events = list(reversed(p.get("history") or []))
    if room < 2 or not events:
        return
    cat = page.sheet.catalog
    page.heading(x, y, page.tr("brief.history"))
    lines = []
    for e in events[:room]:
        action = page.tr(f"ui.actions.{e.action}")
        stage = cat.stage_label(p["kind"], e.to_stage, page.lang)
        what = f"{action} → {stage}" if e.action in ("advance", "correction") else action
        who = f" · {e.recorded_by}" if e.recorded_by else ""
        lines.append(wrap(f"{e.event_date}  {what}{who}", w, 6.5, max_lines=1)[0])
    page.lines(x, y + 4.4, [(ln, GREY, "normal") for ln in lines], 6.5, pitch)


def render_parcel_page(store, code: str, out, fmt: str | None = None, paper: str = "A4", raster=None,
                       lang: str = "zh", settings=None, dpi: int = PNG_DPI) -> Path:
    """Write one parcel's briefing page (PDF or PNG, from ``fmt`` or the extension of ``out``).

    ``raster``: a GeoTIFF in any CRS for the background, or None for none.

    Raises:
        NotFoundError: unknown code.
        InputError: bad extension or paper, unwritable path, unreadable raster or one that misses the page.
    """
    out = check_target(out)
    f = _fmt_of(out, fmt)
    settings = settings or _settings()
    _check_raster_covers(raster, store, lambda sh: _parcel_extent(sh, code))
    with _rc():
        page = compose_parcel_page(store, code, paper, raster, lang, settings.classification)
        with atomic_output(out) as tmp:
            page.save(tmp, f, dpi)
    return out


def _parcel_extent(sheet: Sheet, code: str):
    row = sheet.row_of.get(code)
    if row is None:
        raise NotFoundError("error.no_parcel", code=code)
    return fit_extent(sheet.parcels.geometry.values[row].bounds, 173 / 136, 0.9, 320.0)


# =============================================================== village page
def village_summary(store, village: str, lang: str = "zh") -> dict:
    """A village's parcels per stage, shares and blocked parcels, for its page and the index.

    ``stage``/``stage_label``: the stage every parcel of the village has reached
    (its slowest parcel), i.e. where the village as a whole stands.

    Raises:
        NotFoundError: unknown village.
    """
    sheet = load_sheet(store)
    code = store.village_code(village)
    rec = sheet.villages.get(code, {"code": code})
    cat = sheet.catalog
    pipe = cat.pipeline_for("village")
    p = sheet.parcels
    g = p[sheet.col["village"] == code]
    stages = [s if isinstance(s, str) and s else None for s in g["stage"]]
    idx = [pipe.index(s) for s in stages]
    area = g["area_m2"].astype(float).to_numpy()
    total = float(area.sum())
    rows = []
    for i, st in [(-1, None)] + list(enumerate(pipe.stages)):
        sel = np.asarray(idx) == i
        rows.append({
            "key": st.key if st else "not_started",
            "label": cat.stage_label("village", st.key if st else None, lang),
            "color": cat.phase_of("village", st.key if st else None).color,
            "parcels": int(sel.sum()),
            "area_m2": float(area[sel].sum()) if len(area) else 0.0,
        })
    past = np.array([bool(s) and pipe.stage(s).past_clearance for s in stages], dtype=bool)
    signed_i = pipe.index("signing") if "signing" in pipe.keys else len(pipe.keys)
    low = min(idx) if idx else -1
    blocked = g[g["blocked"]]
    reasons = dict(zip(blocked["code"], blocked["blocked_reason"].fillna("")))
    dates = [d for d in g["stage_date"].dropna() if d]
    zone = sheet.zones.get(rec.get("zone") or "", {})
    return {
        "code": code,
        "name": _name(rec, lang) or code,
        "zone": rec.get("zone"),
        "zone_name": _name(zone, lang),
        "zone_strategy": zone.get("strategy", ""),
        "zone_roles": (zone.get("roles_en") if lang == "en" else zone.get("roles")) or "",
        "parcels": len(g),
        "area_m2": total,
        "area_mu": round(total / M2_PER_MU, 2),
        "stages": rows,
        "stage": pipe.keys[low] if low >= 0 else None,
        "stage_label": cat.stage_label("village", pipe.keys[low] if low >= 0 else None, lang),
        "lead_label": cat.stage_label("village", pipe.keys[max(idx)] if idx and max(idx) >= 0 else None, lang),
        "cleared_share": float(area[past].sum()) / total if total else 0.0,
        "signed_share": float(np.mean(np.asarray(idx) >= signed_i)) if idx else 0.0,
        "blocked": reasons,
        "units": sorted({u for u in g["unit"].dropna() if u}),
        "last_date": max(dates) if dates else None,
        "rows": g.index.to_numpy(),
    }


def compose_village_page(store, village: str, paper: str = "A4", raster=None, lang: str = "zh",
                         classification: str = "", number=None) -> Page:
    """The figure of one village's briefing page (not yet saved).

    Raises:
        NotFoundError: unknown village; InputError: unreadable raster.
    """
    sheet = load_sheet(store)
    v = village_summary(store, village, lang)
    page = Page(paper, lang, classification, sheet, number)
    sep = ": " if lang == "en" else "："
    zone_txt = v["zone_name"] + (f"（{v['zone_strategy']}）" if v["zone_strategy"] and lang != "en" else "")
    zone_full = zone_txt + (sep + v["zone_roles"] if v["zone_roles"] else "")
    subtitle = "  ·  ".join(s for s in (zone_full, sheet.catalog.kind("village").label(lang),
                                          page.tr("brief.n_parcels", n=v["parcels"])) if s)
    page.header(f"{v['name']}  {v['code']}", subtitle, page.tr("brief.doc_village"))

    vg = sheet.layers.get("villages")
    vb = None
    if vg is not None:
        hit = vg[vg["code"] == v["code"]]
        if len(hit):
            vb = hit.total_bounds
    if vb is None:
        vb = sheet.parcels.geometry.values[v["rows"]].total_bounds if len(v["rows"]) else sheet.parcels.total_bounds
    map_rect = (10, 25, 173, 136)
    extent = fit_extent(vb, map_rect[2] / map_rect[3], 0.06, 400.0)
    draw_map(page, map_rect, extent, raster=raster, focus_village=v["code"], label_mode="number", dim_others=True)
    draw_area_bar(page, 10, 170, 173, v)

    cx, cy = (extent[0] + extent[2]) / 2, (extent[1] + extent[3]) / 2
    draw_locator(page, (190, 25, 97, 56), extent, [(cx, cy)])
    y = draw_legend(page, 190, 86.5, 97, None)
    y = draw_stage_table(page, 190, y + 4, 97, v)
    page.footer()
    return page


def draw_area_bar(page: Page, x: float, y: float, w: float, v: dict) -> None:
    """The village's area by stage as one stacked bar, with the key shares and blocked parcels."""
    lang = page.lang
    page.heading(x, y, page.tr("brief.progress"))
    facts = [
        page.tr("brief.total_area") + "：" + area_text(v["area_m2"], lang),
        page.tr("brief.overall_stage") + "：" + v["stage_label"],
        page.tr("brief.lead_stage") + "：" + v["lead_label"],
    ]
    page.text(x + 22, y, "    ".join(facts), 7)
    bx, by, bh = x, y + 2.5, 4.2
    total = v["area_m2"] or 1.0
    cur = bx
    for r in v["stages"]:
        if r["area_m2"] <= 0:
            continue
        ww = w * r["area_m2"] / total
        page.box(cur, by, ww, bh, fc=r["color"], ec="white", lw=0.4)
        cur += ww
    shares = [
        page.tr("brief.cleared_share") + f"：{v['cleared_share']:.1%}",
        page.tr("brief.signed_share") + f"：{v['signed_share']:.1%}",
        page.tr("brief.last_date") + f"：{v['last_date'] or '—'}",
    ]
    page.text(x, by + bh + 4.2, "    ".join(shares), 7)
    blocked = v["blocked"]
    if blocked:
        items = [f"{c}（{r}）" if r else c for c, r in blocked.items()]
        text = page.tr("brief.blocked_list", n=len(blocked)) + "：" + "；".join(items)
    else:
        text = page.tr("brief.blocked_none")
    lines = wrap(text, w, 7, max_lines=2)
    for i, ln in enumerate(lines):
        page.text(x, by + bh + 8.4 + i * 3.6, ln, 7, color=HIGHLIGHT if blocked else INK)


def draw_stage_table(page: Page, x: float, y: float, w: float, v: dict) -> float:
    """Parcels and area (亩) per stage of the village pipeline."""
    page.heading(x, y, page.tr("brief.per_stage"))
    y += 4.4
    size, pitch = 6.6, 3.55
    c_stage, c_n, c_mu = x + 5, x + 62, x + 92
    page.text(c_stage, y, page.tr("brief.stage"), size, color=GREY)
    page.text(c_n, y, page.tr("brief.parcels"), size, color=GREY, ha="right")
    page.text(c_mu, y, page.tr("brief.area_mu"), size, color=GREY, ha="right")
    labels, ns, mus = [], [], []
    for i, r in enumerate(v["stages"]):
        yy = y + (i + 1) * pitch
        page.box(x, yy - 2.3, 3.2, 2.4, fc=r["color"], ec="#999999", lw=0.3)
        labels.append(r["label"])
        ns.append(str(r["parcels"]))
        mus.append(_fmt_mu(r["area_m2"]))
    labels.append(page.tr("brief.total"))
    ns.append(str(v["parcels"]))
    mus.append(_fmt_mu(v["area_m2"]))
    n = len(labels)
    style = lambda i, s: (s, INK, "bold" if i == n - 1 else "normal")  # noqa: E731 -- the total row is bold
    page.lines(c_stage, y + pitch, [style(i, s) for i, s in enumerate(labels)], size, pitch)
    page.lines(c_n, y + pitch, [style(i, s) for i, s in enumerate(ns)], size, pitch, ha="right")
    page.lines(c_mu, y + pitch, [style(i, s) for i, s in enumerate(mus)], size, pitch, ha="right")
    page.rule(x, y + (n - 1) * pitch + 1.1, x + w - 2, y + (n - 1) * pitch + 1.1, lw=0.4)
    return y + n * pitch


def render_village_page(store, village: str, out, fmt: str | None = None, paper: str = "A4", raster=None,
                        lang: str = "zh", settings=None, dpi: int = PNG_DPI) -> Path:
    """Write one village's briefing page (PDF or PNG).

    Raises:
        NotFoundError: unknown village.
        InputError: bad extension or paper, unwritable path, unreadable raster or one that misses the page.
    """
    out = check_target(out)
    f = _fmt_of(out, fmt)
    settings = settings or _settings()
    code = store.village_code(village)
    _check_raster_covers(raster, store, lambda sh: _village_bounds(sh, code))
    with _rc():
        page = compose_village_page(store, code, paper, raster, lang, settings.classification)
        with atomic_output(out) as tmp:
            page.save(tmp, f, dpi)
    return out


def _village_bounds(sheet: Sheet, code: str):
    vg = sheet.layers.get("villages")
    if vg is not None and (vg["code"] == code).any():
        return tuple(vg[vg["code"] == code].total_bounds)
    g = sheet.parcels[sheet.parcels["village"] == code]
    return tuple(g.total_bounds) if len(g) else tuple(sheet.parcels.total_bounds)


# =============================================================== atlases
@dataclass(frozen=True)
class AtlasSelection:
    """What an atlas shows: one page per village or per parcel, in this (stable) order."""

    kind: str  # "village" or "parcel"
    codes: tuple[str, ...]
    title: dict  # {"zh": ..., "en": ...}

    def label(self, lang: str) -> str:
        return self.title.get(lang) or self.title.get("zh", "")


def select_villages(store, zone: str | None = None) -> AtlasSelection:
    """Every village (of a zone), by code.

    Raises:
        NotFoundError: unknown zone.
    """
    villages = store.attributes("villages")
    codes = sorted(villages)
    title = {"zh": t("brief.sel_villages", "zh", n=len(codes)), "en": t("brief.sel_villages", "en", n=len(codes))}
    if zone:
        zones = store.names("zones")
        zc = next((c for c, (n, e) in zones.items() if zone in (c, n, e)), None)
        if zc is None:
            raise NotFoundError("error.no_zone", zone=zone, known=", ".join(n for n, _ in zones.values()))
        codes = [c for c in codes if villages[c].get("zone") == zc]
        title = {lg: t("brief.sel_zone_villages", lg, zone=zones[zc][0 if lg == "zh" else 1] or zc, n=len(codes))
                 for lg in ("zh", "en")}
    if not codes:
        raise InputError("brief.empty_selection")
    return AtlasSelection("village", tuple(codes), title)


def select_parcels(store, kind=None, zone=None, village=None, stage=None, search=None,
                   parcels=None) -> AtlasSelection:
    """The parcels a filter selects (as the map's sidebar does), by code.

    ``parcels``: an already loaded parcel table to filter instead of reading the store.

    Raises:
        NotFoundError: unknown zone or village; InputError: unknown kind or an empty result;
        StageTransitionError: unknown stage.
    """
    df = parcels if parcels is not None else store.parcels(geometry=False)
    df = store.filter(df, kind=kind, zone=zone, village=village, stage=stage, search=search)
    codes = tuple(sorted(df["code"]))
    if not codes:
        raise InputError("brief.empty_selection")
    parts = {"zh": [], "en": []}
    for lg in ("zh", "en"):
        if village:
            vc = store.village_code(village)
            parts[lg].append(_name(store.attributes("villages").get(vc), lg))
        if zone:
            zones = store.names("zones")
            zc = next((c for c, (n, e) in zones.items() if zone in (c, n, e)), zone)
            parts[lg].append(zones.get(zc, (zone, zone))[0 if lg == "zh" else 1] or zone)
        if kind:
            parts[lg].append(store.catalog.kind(kind).label(lg))
        if stage:
            parts[lg].append(store.catalog.stage_label(kind or "village", stage, lg) if stage == "not_started"
                             else next(p.stage(stage).label(lg) for p in store.catalog.pipelines.values()
                                       if stage in p.keys))
        if search:
            parts[lg].append(f"“{search}”")
    title = {lg: t("brief.sel_parcels", lg, what=" · ".join(parts[lg]) or t("brief.sel_all", lg), n=len(codes))
             for lg in ("zh", "en")}
    return AtlasSelection("parcel", codes, title)


def _index_rows(store, selection: AtlasSelection, lang: str) -> list[dict]:
    sheet = load_sheet(store)
    rows = []
    if selection.kind == "village":
        for c in selection.codes:
            v = village_summary(store, c, lang)
            rows.append({"code": c, "name": v["name"], "zone": v["zone_name"], "stage": v["stage_label"],
                         "area_m2": v["area_m2"], "n": v["parcels"]})
    else:
        p = sheet.parcels
        cat = sheet.catalog
        for c in selection.codes:
            r = sheet.row_of.get(c)
            if r is None:
                raise NotFoundError("error.no_parcel", code=c)
            kind, st = p["kind"].iat[r], p["stage"].iat[r]
            rows.append({"code": c, "name": p["name"].iat[r],
                         "zone": _name(sheet.zones.get(p["zone"].iat[r] or ""), lang),
                         "stage": cat.stage_label(kind, st if isinstance(st, str) and st else None, lang),
                         "area_m2": float(p["area_m2"].iat[r] or 0), "n": None})
    return rows


INDEX_ROWS_PER_PAGE = 30


def _index_pages(n_items: int) -> int:
    return max(1, math.ceil(n_items / INDEX_ROWS_PER_PAGE))


def atlas_page_count(n_items: int) -> int:
    """Pages of an atlas of ``n_items`` villages or parcels: cover, index pages, one per item."""
    return 1 + _index_pages(n_items) + n_items


def compose_cover(store, selection: AtlasSelection, paper: str, lang: str, classification: str,
                  pages: int) -> Page:
    """Title, date, the set it covers, an overview map with the selection highlighted."""
    sheet = load_sheet(store)
    page = Page(paper, lang, classification, sheet, (1, pages))
    page.text(10, 24, page.tr("brief.atlas_title"), 22, weight="bold")
    page.text(10, 33, selection.label(lang), 12)
    page.text(10, 40, page.tr("brief.cover_made", date=dt.date.today().isoformat(), pages=pages), 8.5, color=GREY)
    if sheet.is_demo:
        page.text(287, 24, page.tr("brief.demo_mark"), 11, ha="right", color="white", weight="bold",
                  bbox=dict(boxstyle="square,pad=0.3", fc=HIGHLIGHT, ec="none"))
    page.rule(10, 44, 287, 44, color=INK, lw=0.8)
    rect = (10, 48, 277, 143)
    x, y, w, h = rect
    ax = page.axes(x, y, w, h)
    ax.set_facecolor("#f4f1ea")
    k = page.k
    if "sea" in sheet.layers:
        _add(ax, _collection(sheet.layer_paths("sea", 10.0), facecolor="#cfe3f3", edgecolor="none"))
    if "zones" in sheet.layers:
        zg = sheet.layers["zones"]
        _add(ax, _collection(sheet.layer_paths("zones", 10.0),
                                      facecolors=[ZONE_FILLS.get(c, "#eeeeee") for c in zg["code"]],
                                      edgecolor="#777777", linewidths=0.6 * k))
    p = sheet.parcels
    if selection.kind == "village" and "villages" in sheet.layers:
        vg = sheet.layers["villages"]
        vrows = [i for i, c in enumerate(vg["code"]) if c in set(selection.codes)]
        _add(ax, _collection([sheet.layer_paths("villages")[i] for i in vrows], facecolor="#f46d43",
                                      edgecolor=VILLAGE_EDGE, linewidths=0.6 * k, alpha=0.8, zorder=3))
        order = {c: i for i, c in enumerate(selection.codes)}
        pts = shapely.point_on_surface(vg.geometry.values[vrows])
        ax.add_artist(_label_artist(shapely.get_x(pts), shapely.get_y(pts),
                                    [str(order[vg["code"].iat[i]] + 1) for i in vrows], 8 * k, INK, 2.2 * k,
                                    weight="bold", zorder=5))
    else:
        rows = [sheet.row_of[c] for c in selection.codes if c in sheet.row_of]
        _add(ax, _collection(sheet.parcel_paths(rows), facecolors=list(p["color"].to_numpy()[rows]),
                                      edgecolor=HIGHLIGHT, linewidths=0.3 * k, zorder=3))
    if "district" in sheet.layers:
        _add(ax, _collection(sheet.layer_paths("district", 10.0), facecolor="none", edgecolor=INK,
                                      linewidths=1.0 * k, zorder=4))
        bounds = sheet.layers["district"].total_bounds
    else:
        bounds = p.total_bounds
    ext = fit_extent(bounds, w / h, 0.03, 100)
    ax.set_xlim(ext[0], ext[2])
    ax.set_ylim(ext[1], ext[3])
    ax.set_aspect("equal", adjustable="box")
    if "zones" in sheet.layers:
        zg = sheet.layers["zones"]
        pts = shapely.point_on_surface(zg.geometry.values)
        labels = [_name(sheet.zones.get(c, {}), lang) + ("" if lang == "en" else f"·{sheet.zones.get(c, {}).get('strategy', '')}")
                  for c in zg["code"]]
        ax.add_artist(_label_artist(shapely.get_x(pts), shapely.get_y(pts), labels, 12 * k, "#555555", 0,
                                    weight="bold", zorder=2, alpha=0.55))
    if selection.kind == "village":
        page.text(x + 2, y + 5, page.tr("brief.cover_numbers"), 7, color=GREY,
                  bbox=dict(boxstyle="square,pad=0.2", fc="white", ec="none", alpha=0.8))
    north_arrow(page, ax, sheet.convergence)
    scale_bar(page, ax, ext, w)
    page.footer()
    return page


def compose_index(store, selection: AtlasSelection, rows: list[dict], part: int, paper: str, lang: str,
                  classification: str, first_item_page: int, pages: int) -> Page:
    """One page of the index: number, code, name, zone, stage, area in 亩, page."""
    sheet = load_sheet(store)
    page = Page(paper, lang, classification, sheet, (2 + part, pages))
    page.header(page.tr("brief.index"), selection.label(lang), page.tr("brief.atlas_title"))
    cols = [(12, "brief.no", "left"), (24, "brief.code", "left"), (50, "brief.name", "left"),
            (120, "brief.zone", "left"), (150, "brief.current_stage", "left"),
            (235, "brief.area_mu", "right"), (270, "brief.page", "right")]
    if selection.kind == "village":
        cols.insert(5, (205, "brief.parcels", "right"))
    y0, pitch = 31.5, 5.2
    for x, key, ha in cols:
        page.text(x, y0, page.tr(key), 7.5, color=GREY, weight="bold", ha=ha)
    page.rule(10, y0 + 1.6, 287, y0 + 1.6, color=INK, lw=0.5)
    start = part * INDEX_ROWS_PER_PAGE
    chunk = rows[start:start + INDEX_ROWS_PER_PAGE]
    columns: dict[int, list[str]] = {x: [] for x, _, _ in cols}
    for i, r in enumerate(chunk):
        n = start + i
        vals = [str(n + 1), r["code"], r["name"], r["zone"], r["stage"]]
        if selection.kind == "village":
            vals.append(str(r["n"]))
        vals += [_fmt_mu(r["area_m2"]), str(first_item_page + n)]
        for (x, _, _), v in zip(cols, vals):
            columns[x].append(v)
        if i % 2 == 1:
            page.box(10, y0 + 2.2 + i * pitch, 277, pitch, fc="#f2f2f2", ec="none")
    for x, _, ha in cols:
        page.lines(x, y0 + pitch + 0.2, columns[x], 7.5, pitch, ha=ha)
    page.footer()
    return page


def compose_item(store, selection: AtlasSelection, code: str, paper: str, raster, lang: str,
                 classification: str, number) -> Page:
    if selection.kind == "village":
        return compose_village_page(store, code, paper, raster, lang, classification, number)
    return compose_parcel_page(store, code, paper, raster, lang, classification, number)


@dataclass
class _Job:
    store: object
    selection: AtlasSelection
    paper: str
    raster: object
    lang: str
    classification: str
    first_page: int
    pages: int
    png_dir: str | None
    dpi: int


_JOB: _Job | None = None  # set before the worker processes fork; they inherit it
_QUEUE = None


class _CarriedError(Exception):
    """A project error on its way back from a worker process: its key and parameters
    survive pickling (a RenewalError would come back with only its English text)."""

    def restore(self):
        from . import errors

        cls = getattr(errors, self.args[0], errors.RenewalError)
        return cls(self.args[1], **self.args[2])


def _render_chunk(args, on_page=None) -> str:
    """Render items [i0, i1) of the selection into one PDF (and PNGs); returns the PDF path.

    In a worker process, each finished page is reported on the queue; in this
    process, to ``on_page(code)``.
    """
    from .errors import RenewalError

    try:
        return _render_items(args, on_page)
    except RenewalError as e:
        if on_page is not None:
            raise
        raise _CarriedError(type(e).__name__, e.key, e.params) from None


def _render_items(args, on_page) -> str:
    from matplotlib.backends.backend_pdf import PdfPages

    i0, i1, pdf_path = args
    job = _JOB
    with _rc(), PdfPages(pdf_path, metadata=_pdf_metadata(job.lang)) as pdf:
        for i in range(i0, i1):
            code = job.selection.codes[i]
            n = job.first_page + i
            page = compose_item(job.store, job.selection, code, job.paper, job.raster, job.lang,
                                job.classification, (n, job.pages))
            pdf.savefig(page.fig, dpi=IMAGE_DPI)
            if job.png_dir:
                page.save(os.path.join(job.png_dir, _png_name(n, code)), "png", job.dpi)
            if on_page is not None:
                on_page(code)
            elif _QUEUE is not None:
                _QUEUE.put((n, code))
    return pdf_path


def _png_name(n: int, code: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in code)
    return f"{n:03d}_{safe}.png"


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def render_atlas(store, selection: AtlasSelection, out_pdf, png_zip=None, paper: str = "A4", raster=None,
                 lang: str = "zh", settings=None, progress: Progress | None = None, jobs: int | None = None,
                 dpi: int = PNG_DPI) -> dict:
    """Write an atlas: a cover, an index, then one page per item of ``selection``, in its order.

    Pages are rendered by up to ``jobs`` processes (default: the CPUs available)
    and merged; ``progress(done, total, label)`` is called after each page.
    Returns ``{"pdf", "png_zip", "pages", "seconds"}``.

    Raises:
        NotFoundError: an unknown code in the selection.
        InputError: bad paper, an unwritable path, an unreadable raster or one outside the selection.
    """
    global _JOB, _QUEUE
    t0 = time.perf_counter()
    out_pdf = check_target(out_pdf, (".pdf",))
    zip_out = check_target(png_zip, (".zip",)) if png_zip else None
    if paper not in PAPERS:
        raise InputError("brief.bad_paper", paper=paper, known=", ".join(PAPERS))
    if not selection.codes:
        raise InputError("brief.empty_selection")
    settings = settings or _settings()
    sheet = load_sheet(store)
    if selection.kind == "village":
        bounds = [_village_bounds(sheet, store.village_code(c)) for c in selection.codes]
    else:
        bounds = [_parcel_extent(sheet, c) for c in selection.codes]
    b = np.asarray(bounds)
    _check_raster_covers(raster, store, lambda sh: (b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max()))
    rows = _index_rows(store, selection, lang)
    n_items = len(selection.codes)
    n_index = _index_pages(n_items)
    first = 2 + n_index
    pages = first - 1 + n_items
    cls = settings.classification
    progress = progress or (lambda done, total, label: None)

    with tempfile.TemporaryDirectory(prefix="renewal-atlas-") as tmpdir:
        png_dir = os.path.join(tmpdir, "png") if zip_out else None
        if png_dir:
            os.mkdir(png_dir)
        _JOB = _Job(store, selection, paper, raster, lang, cls, first, pages, png_dir, dpi)
        workers = max(1, min(jobs or _cpus(), n_items // 4 or 1))
        ranges = _plan(n_items, n_index, workers)
        chunks = [(a, b, os.path.join(tmpdir, f"part{j}.pdf")) for j, (a, b) in enumerate(ranges)]
        front_pdf = os.path.join(tmpdir, "front.pdf")
        done = [0]

        def report(code: str) -> None:
            done[0] += 1
            progress(done[0], pages, code)

        def drain() -> None:
            while _QUEUE is not None and not _QUEUE.empty():
                report(_QUEUE.get()[1])

        def own_pages(code: str) -> None:
            report(code)
            drain()

        try:
            if workers > 1:
                import multiprocessing as mp
                from concurrent.futures import ProcessPoolExecutor

                # fork: the workers inherit the loaded sheet (_JOB) instead of re-reading the store
                ctx = mp.get_context("fork")
                _QUEUE = ctx.SimpleQueue()
                gc.freeze()  # the collector would otherwise touch, and so copy, every inherited object
                with ProcessPoolExecutor(max_workers=len(chunks) - 1, mp_context=ctx) as ex:
                    futures = [ex.submit(_render_chunk, c) for c in chunks[1:]]
                    try:
                        _render_front(store, selection, rows, paper, lang, cls, first, pages, front_pdf,
                                      png_dir, dpi, report)
                        mine = _render_chunk(chunks[0], own_pages) if chunks[0][1] > chunks[0][0] else None
                        while not all(f.done() for f in futures):
                            drain()
                            time.sleep(0.02)
                        drain()
                        parts = ([mine] if mine else []) + [f.result() for f in futures]  # re-raises
                    except _CarriedError as e:
                        ex.shutdown(wait=False, cancel_futures=True)
                        raise e.restore() from None
                    except BaseException:
                        ex.shutdown(wait=False, cancel_futures=True)
                        raise
            else:
                _QUEUE = None
                _render_front(store, selection, rows, paper, lang, cls, first, pages, front_pdf, png_dir, dpi,
                              report)
                parts = [_render_chunk(chunks[0], own_pages)]
        finally:
            _JOB, _QUEUE = None, None
            gc.unfreeze()
        labels = [t("brief.cover", lang), t("brief.index", lang)] + [f"{r['code']} {r['name']}" for r in rows]
        with atomic_output(out_pdf) as tmp:
            _merge([front_pdf] + parts, tmp, labels, n_index, selection.label(lang))
        if zip_out:
            with atomic_output(zip_out) as tmp:
                with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as z:
                    for name in sorted(os.listdir(png_dir)):
                        z.write(os.path.join(png_dir, name), name)
    return {"pdf": str(out_pdf), "png_zip": str(zip_out) if zip_out else None, "pages": pages,
            "seconds": round(time.perf_counter() - t0, 2)}


FRONT_COST = 2.0  # the cover (an overview of the district) in item pages of work, measured
INDEX_COST = 1.5  # an index page


def _plan(n_items: int, n_index: int, workers: int) -> list[tuple[int, int]]:
    """Contiguous item ranges, one per process, in page order; the first is this process's,
    which also renders the cover and index, so it takes that many fewer items."""
    front = FRONT_COST + INDEX_COST * n_index
    share = (n_items + front) / workers
    mine = min(n_items, max(0, round(share - front)))
    rest = np.linspace(mine, n_items, workers).round().astype(int) if workers > 1 else np.array([n_items])
    bounds = [0, mine] + [int(b) for b in rest[1:]] if workers > 1 else [0, n_items]
    return [(bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)]


def _render_front(store, selection, rows, paper, lang, cls, first, pages, path, png_dir, dpi, report) -> None:
    from matplotlib.backends.backend_pdf import PdfPages

    with _rc(), PdfPages(path, metadata=_pdf_metadata(lang)) as pdf:
        cover = compose_cover(store, selection, paper, lang, cls, pages)
        pdf.savefig(cover.fig, dpi=IMAGE_DPI)
        if png_dir:
            cover.save(os.path.join(png_dir, _png_name(1, "cover")), "png", dpi)
        report("")
        for part in range(_index_pages(len(selection.codes))):
            page = compose_index(store, selection, rows, part, paper, lang, cls, first, pages)
            pdf.savefig(page.fig, dpi=IMAGE_DPI)
            if png_dir:
                page.save(os.path.join(png_dir, _png_name(2 + part, f"index{part + 1}")), "png", dpi)
            report("")


def _merge(paths: list[str], out: Path, labels: list[str], n_index: int, title: str) -> None:
    """Concatenate the part PDFs in order, with one bookmark per page."""
    from pypdf import PdfWriter

    writer = PdfWriter()
    for p in paths:
        writer.append(p)
    marks = [labels[0]] + [labels[1]] * n_index + labels[2:]
    for i, label in enumerate(marks):
        if i >= len(writer.pages):
            break
        if i > 0 and i <= n_index and i > 1:
            continue  # one bookmark for the index
        writer.add_outline_item(label, i)
    writer.add_metadata({"/Title": title, "/Creator": "Renewal Atlas (城市更新一张图)"})
    with open(out, "wb") as f:
        writer.write(f)


# =============================================================== helpers
_RENDER_LOCK = threading.RLock()


def _fresh_lock_after_fork() -> None:
    global _RENDER_LOCK
    _RENDER_LOCK = threading.RLock()  # another thread may have held it when an atlas worker forked


os.register_at_fork(after_in_child=_fresh_lock_after_fork)


@contextmanager
def _rc():
    """Export settings for matplotlib, one render at a time in this process.

    matplotlib's settings are global: in the app, two sessions rendering at
    once would swap each other's fonts mid-page (and PdfPages reads them again
    when it closes), so renders in one process take turns."""
    import matplotlib

    from .fonts import fonts_in_memory, rc_params

    with _RENDER_LOCK, matplotlib.rc_context(rc_params()), fonts_in_memory():
        yield


def _settings():
    from .settings import Settings

    return Settings.load()


def _check_raster_covers(raster, store, bounds_of) -> None:
    """Fail early, before anything is drawn, when the raster is unreadable or misses the area.

    Raises:
        InputError: unreadable raster, no CRS, or no overlap with the area to be printed.
    """
    if raster is None:
        return
    from .raster import raster_bounds

    sheet = load_sheet(store)
    rb = raster_bounds(raster, sheet.epsg)
    area = bounds_of(sheet)
    if not shapely.box(*rb).intersects(shapely.box(*area)):
        raise InputError("brief.raster_outside", path=str(raster))
