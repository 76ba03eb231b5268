"""The toolkit of printed maps: a page laid out in millimetres, and the pieces of a map.

    load_sheet(store)      what every page of a store version shares, in the local
                           Gauss-Krüger zone (parcels, context layers, drawing paths)
    Page                   an A4/A3 landscape figure: header, footer, text columns
    draw_map, draw_locator, draw_legend, scale_bar, north_arrow, draw_rows, draw_timeline

Drawn with matplotlib's object API (``Figure``; no pyplot state). matplotlib
is slow at two things pages are full of, Text objects and per-artist
bookkeeping, so map labels are outline paths (``label_artist``), table
columns are one Text per run of lines (``Page.lines``), and collections skip
data-limit updates. ``render_context()`` holds the export settings, the
in-memory fonts and the lock that makes renders in one process take turns.
gis/briefing.py composes the briefing pages and atlases from these pieces.
"""
from __future__ import annotations

# Lazy imports, on purpose: matplotlib is imported inside the functions that draw,
# so that the command line and the app start without those heavy libraries.
import math
import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import shapely
from pyproj import Proj

from gis.base import clock
from gis.base.errors import InputError
from gis.base.i18n import t
from gis.base.units import M2_PER_HA, M2_PER_MU, STORE_CRS, gk_epsg
from gis.maps.raster import read_background
from gis.printing import fonts

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


def _where(store) -> str:
    """The store's location, for cache keys (a GeoPackage's path, a PostGIS URL without password)."""
    return getattr(store, "location", None) or str(store.path)


def load_sheet(store) -> Sheet:
    """The shared data of a store at its current data version (cached)."""
    key = (_where(store), store.data_version())
    sheet = _SHEETS.get(key)
    if sheet is None:
        _SHEETS.clear()  # only the current version is worth keeping
        sheet = _SHEETS[key] = _build_sheet(store, key[1])
    return sheet


def _build_sheet(store, version: int) -> Sheet:
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
    arrays = {c: parcels[c].to_numpy() for c in ("code", "color", "village", "blocked", "kind", "stage", "area_m2",
                                                   "stage_date", "blocked_reason", "unit") if c in parcels}
    layers = {name: gdf.to_crs(epsg) for name, gdf in context.items()}
    try:
        conv = float(Proj(f"EPSG:{epsg}").get_factors(lon, lat).meridian_convergence)
    except Exception:  # noqa: BLE001 -- a missing grid only costs the arrow's tilt
        conv = 0.0
    return Sheet(
        path=_where(store), version=version, epsg=epsg, parcels=parcels,
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


def local_name(rec: dict | None, lang: str) -> str:
    if not rec:
        return ""
    return (rec.get("name_en") if lang == "en" else None) or rec.get("name") or ""


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

    @property
    def colon(self) -> str:
        """'：' in Chinese, ': ' in English."""
        return ": " if self.lang == "en" else "："

    def paren(self, text: str) -> str:
        return f" ({text})" if self.lang == "en" else f"（{text}）"

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
                ls = pitch / MM_PER_PT / (size * _line_height_em(weight))  # both scale by k on A3
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
        made = clock.office_today().isoformat()
        c = self.colon
        line1 = f"{self.tr('brief.source')}{c}{source} · {self.tr('brief.crs')}{c}{crs_label(sh.epsg, self.lang)}"
        line2 = f"{self.tr('brief.made')}{c}{made} · {self.tr('brief.made_by')}"
        if self.number:
            line2 += " · " + self.tr("brief.page_of", page=self.number[0], pages=self.number[1])
        room = 272 - text_width_mm(self.classification, 8)  # a long data source must not run into it
        self.lines(10, 200.5, [(wrap(line1, room, 6.5, max_lines=1)[0], GREY, "normal"),
                               (wrap(line2, room, 6.5, max_lines=1)[0], GREY, "normal")], 6.5, 4.0)
        self.text(287, 200.5, self.classification, 8, ha="right", weight="bold")
        if sh.is_demo:
            self.text(287, 204.5, self.tr("brief.demo_mark"), 6.5, ha="right", color=HIGHLIGHT, weight="bold")

    def heading(self, x, y, s):
        self.text(x, y, s, 8, weight="bold")

    def save(self, target, fmt: str, dpi: int = PNG_DPI) -> None:
        if fmt == "pdf":
            self.fig.savefig(target, format="pdf", dpi=IMAGE_DPI, metadata=pdf_metadata(self.lang))
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


def pdf_metadata(lang: str) -> dict:
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


def fmt_mu(m2: float) -> str:
    return f"{m2 / M2_PER_MU:,.2f}"


def area_text(m2: float, lang: str) -> str:
    """'12,345 平方米 / 18.52 亩 / 1.23 公顷'."""
    return t("brief.area_value", lang, m2=f"{m2:,.0f}", mu=fmt_mu(m2), ha=f"{m2 / M2_PER_HA:,.2f}")


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
    """The background under the map, or None.

    ``raster`` is a GeoTIFF path (its window is read by ``gis.raster``) or a
    ``gis.basemaps.ExportBasemap`` (an own raster, or Tianditu tiles fetched
    for the page).
    """
    if raster is None:
        return None
    w = max(1, int(size_mm[0] / 25.4 * IMAGE_DPI))
    h = max(1, int(size_mm[1] / 25.4 * IMAGE_DPI))
    if hasattr(raster, "background"):
        return raster.background(extent, sheet.epsg, w, h)

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


def label_artist(xs, ys, texts, size: float, color: str, halo: float, weight: str = "normal", zorder: float = 10,
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


def add_unscaled(ax, artist):
    """Add a collection without matplotlib recomputing data limits: every map sets its own."""
    return ax.add_collection(artist, autolim=False)


def path_collection(paths, **kw):
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
        add_unscaled(ax, path_collection(sh.layer_paths("sea"), facecolor="#cfe3f3", edgecolor="none", zorder=0))
    alpha = 0.62 if bg is not None else 0.9
    attribution = getattr(raster, "attribution", "")
    if attribution:  # a basemap's source in the map's corner, as on the screen
        note = attribution if bg is not None else page.tr("basemap.export_failed", name=raster.label)
        ax.text(0.995, 0.005, note, transform=ax.transAxes, ha="right", va="bottom", fontsize=5.5 * k, color=INK,
                zorder=20, bbox=dict(boxstyle="square,pad=0.2", fc="white", ec="none", alpha=0.75))

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
        add_unscaled(ax, path_collection(sh.parcel_paths(rows), facecolors=fc, edgecolors="#ffffff",
                             linewidths=0.35 * k, alpha=alpha, zorder=2))
        blocked = rows[sh.col["blocked"][rows]]
        if len(blocked):
            add_unscaled(ax, path_collection(sh.parcel_paths(blocked), facecolor="none", edgecolor=HIGHLIGHT,
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
        add_unscaled(ax, path_collection(paths, facecolor="none", edgecolor=color, linewidths=lw * k,
                             linestyle=ls, zorder=z))
    if focus_village and "villages" in sh.layers:
        vg = sh.layers["villages"]
        idx = np.flatnonzero(vg["code"].to_numpy() == focus_village)
        if len(idx):
            add_unscaled(ax, path_collection([sh.layer_paths("villages")[i] for i in idx], facecolor="none",
                                 edgecolor="white", linewidths=3.2 * k, zorder=6))
            add_unscaled(ax, path_collection([sh.layer_paths("villages")[i] for i in idx], facecolor="none",
                                 edgecolor=VILLAGE_EDGE, linewidths=1.6 * k, zorder=7))
    if focus:
        fp = sh.parcel_paths(sorted(focus))
        add_unscaled(ax, path_collection(fp, facecolor="none", edgecolor="white", linewidths=4.0 * k, zorder=8))
        add_unscaled(ax, path_collection(fp, facecolor="none", edgecolor=HIGHLIGHT, linewidths=2.0 * k, zorder=9))

    # labels: parcels big enough on paper, then village names, then the focus
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
            ax.add_artist(label_artist(xs[inside], ys[inside], labels, 5.6 * k, "#333333", 1.4 * k))
    if "villages" in sh.layers and label_mode != "none":
        vg = sh.layers["villages"]
        hit = [i for i in vg.sindex.query(view, predicate="intersects") if vg["code"].iat[i] != focus_village]
        if hit:
            pts = [shapely.point_on_surface(vg.geometry.iat[i].intersection(view)) for i in hit]
            keep = [(pt, i) for pt, i in zip(pts, hit) if not pt.is_empty]
            ax.add_artist(label_artist([pt.x for pt, _ in keep], [pt.y for pt, _ in keep],
                                        [local_name(sh.villages.get(vg["code"].iat[i]), page.lang) for _, i in keep],
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
    ax.add_artist(label_artist([tip[0]], [tip[1]], ["N"], 9 * k, INK, 0, weight="bold", zorder=20, va="bottom",
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
    ax.add_artist(label_artist([x0 + v for v in marks], [y0 + hbar + 0.8 * k * m_per_mm] * 3, labels, 6 * k,
                                INK, 0, va="bottom", zorder=21))
    ratio = (maxx - minx) / (map_w_mm * k / 1000)
    ratio = round(ratio, -int(math.floor(math.log10(ratio))) + 1) if ratio > 0 else 0
    ax.add_artist(label_artist([x0], [y0 - 1.2 * k * m_per_mm], [f"1:{ratio:,.0f}"], 6 * k, INK, 0, ha="left",
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
        add_unscaled(ax, path_collection(sh.layer_paths("sea", tol), facecolor="#cfe3f3", edgecolor="none"))
    if "zones" in sh.layers:
        zg = sh.layers["zones"]
        fills = [ZONE_FILLS.get(c, "#eeeeee") for c in zg["code"]]
        add_unscaled(ax, path_collection(sh.layer_paths("zones", tol), facecolors=fills, edgecolor="#888888",
                             linewidths=0.4 * k))
        pts = shapely.point_on_surface(zg.geometry.values)
        ax.add_artist(label_artist(shapely.get_x(pts), shapely.get_y(pts),
                                    [local_name(sh.zones.get(c), page.lang) for c in zg["code"]], 6.5 * k, GREY, 0))
    for name, color in (("villages", "#c9b79c"), ("parks", "#cab2d6"), ("devzone", None)):
        if name in sh.layers:
            add_unscaled(ax, path_collection(sh.layer_paths(name, tol), facecolor=color or "none",
                                 edgecolor=PARK_EDGE if name == "devzone" else "none",
                                 linewidths=0.5 * k, linestyle="--"))
    if "district" in sh.layers:
        add_unscaled(ax, path_collection(sh.layer_paths("district", tol), facecolor="none", edgecolor=INK,
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


# =============================================================== helpers
_RENDER_LOCK = threading.RLock()


def _fresh_lock_after_fork() -> None:
    global _RENDER_LOCK
    _RENDER_LOCK = threading.RLock()  # another thread may have held it when an atlas worker forked


os.register_at_fork(after_in_child=_fresh_lock_after_fork)


@contextmanager
def render_context():
    """Export settings for matplotlib, one render at a time in this process.

    matplotlib's settings are global: in the app, two sessions rendering at
    once would swap each other's fonts mid-page (and PdfPages reads them again
    when it closes), so renders in one process take turns."""
    import matplotlib


    with _RENDER_LOCK, matplotlib.rc_context(fonts.rc_params()), fonts.fonts_in_memory():
        yield


