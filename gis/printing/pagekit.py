"""The toolkit of printed maps: a page laid out in millimetres, and the pieces of a map.

    load_sheet(store)      what every page of a store version shares, in the local
                           Gauss-Krüger zone (parcels, context layers, their rings)
    Page                   an A4/A3 landscape page: header, footer, text columns, maps
    draw_map, draw_locator, draw_legend, scale_bar, north_arrow, draw_rows, draw_timeline

Pages are drawn straight into PDF content streams by ``gis.pdfwriter`` (no
matplotlib): text is real text in the embedded CJK font, shapes are paths
formatted from numpy arrays, a raster background is one JPEG. A PNG is the PDF
page rasterised (PDFium). gis/briefing.py composes the briefing pages and
atlases from these pieces.
"""
from __future__ import annotations

import io
import math
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
from gis.model.timeline import as_of_text
from gis.printing import pdfwriter
from gis.printing.pdfwriter import MM, Canvas

PAPERS = {"A4": (297.0, 210.0), "A3": (420.0, 297.0)}  # landscape, millimetres
FORMATS = ("pdf", "png")
PNG_DPI = 150
IMAGE_DPI = 100  # resolution of a raster background on paper (JPEG in the PDF)
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
    _rings: dict = field(default_factory=dict, repr=False)

    def parcel_rings(self, rows) -> list[list[np.ndarray]]:
        """The rings (exterior and holes, arrays of metres) of parcel rows, built once per sheet."""
        out = []
        geoms = self.parcels.geometry.values
        for i in rows:
            r = self._rings.get(int(i))
            if r is None:
                r = self._rings[int(i)] = _rings(geoms[i])
            out.append(r)
        return out

    def layer_rings(self, name: str, tolerance: float = 0.0) -> list[list[np.ndarray]]:
        """The rings of each feature of a context layer (simplified by ``tolerance`` metres)."""
        key = (name, tolerance)
        if key not in self._rings:
            gdf = self.layers.get(name)
            geoms = [] if gdf is None else gdf.geometry.values
            if tolerance:
                geoms = shapely.simplify(np.asarray(geoms), tolerance, preserve_topology=True)
            self._rings[key] = [_rings(g) for g in geoms]
        return self._rings[key]


_SHEETS: dict[tuple[str, int], Sheet] = {}


def _where(store) -> str:
    """The store's location, for cache keys (a GeoPackage's path, a PostGIS URL without password)."""
    # a view of the store at a past moment (gis.store.asof) draws other stages: its own key
    return (getattr(store, "location", None) or str(store.path)) + getattr(store, "moment_key", "")


_PINNED: list = []  # the sheet an atlas is printed from (see pinned_sheet)


def load_sheet(store) -> Sheet:
    """The shared data of a store at its current data version (cached)."""
    if _PINNED and _PINNED[-1].path == _where(store):
        return _PINNED[-1]
    key = (_where(store), store.data_version())
    sheet = _SHEETS.get(key)
    if sheet is None:
        _SHEETS.clear()  # only the current version is worth keeping
        sheet = _SHEETS[key] = _build_sheet(store, key[1])
    return sheet


@contextmanager
def pinned_sheet(store):
    """While inside, ``load_sheet(store)`` gives the sheet loaded on entry without asking the
    store for its version each time: an atlas is printed from one version (its workers
    inherit the pin)."""
    sheet = load_sheet(store)
    _PINNED.append(sheet)
    try:
        yield sheet
    finally:
        _PINNED.remove(sheet)


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


def _rings(geom) -> list[np.ndarray]:
    """The rings of a (multi)polygon, holes included, as arrays of coordinates."""
    out = []
    polys = getattr(geom, "geoms", [geom]) if geom is not None else []
    for poly in polys:
        if poly.is_empty or poly.geom_type != "Polygon":
            continue
        for ring in (poly.exterior, *poly.interiors):
            xy = shapely.get_coordinates(ring)
            if len(xy) >= 3:
                out.append(xy)
    return out


def local_name(rec: dict | None, lang: str) -> str:
    if not rec:
        return ""
    return (rec.get("name_en") if lang == "en" else None) or rec.get("name") or ""


# =============================================================== a page
class Page:
    """An A4 or A3 landscape page laid out in A4 millimetres from the top left.

    On A3 every position and font size is scaled by √2, so both papers look the same.
    Everything is drawn in call order (later over earlier).
    """

    def __init__(self, paper: str, lang: str, classification: str, sheet: Sheet, number: tuple[int, int] | None = None):
        if paper not in PAPERS:
            raise InputError("brief.bad_paper", paper=paper, known=", ".join(PAPERS))
        self.W, self.H = PAPERS[paper]
        self.k = self.W / PAPERS["A4"][0]
        self.lang = lang
        self.sheet = sheet
        self.classification = classification
        self.number = number
        self.canvas = Canvas(self.W * MM, self.H * MM)

    def tr(self, key: str, **params) -> str:
        return t(key, self.lang, **params)

    @property
    def colon(self) -> str:
        """'：' in Chinese, ': ' in English."""
        return ": " if self.lang == "en" else "："

    def paren(self, text: str) -> str:
        return f" ({text})" if self.lang == "en" else f"（{text}）"

    # ---- geometry helpers (A4 millimetres, origin top left -> PDF points, origin bottom left)
    def px(self, x: float) -> float:
        return x * self.k * MM

    def py(self, y: float) -> float:
        return (self.H - y * self.k) * MM

    def text(self, x, y, s, size=8.0, color=INK, weight="normal", ha="left", va="baseline", bbox=None, alpha=1.0):
        """Text at A4 millimetres; ``bbox``: (fill colour, padding in em, alpha) behind it."""
        box = None
        if bbox is not None:
            box = (bbox[0], bbox[1] * size * self.k, bbox[2])
        return self.canvas.text(self.px(x), self.py(y), s, size * self.k, color=color, bold=weight == "bold",
                                ha=ha, va=va, box=box, alpha=alpha)

    def lines(self, x, y, items, size: float, pitch: float, ha: str = "left") -> None:
        """A column of text lines, baselines ``pitch`` mm apart from ``y`` down.

        ``items``: strings or ``(text, color, weight)``.
        """
        for i, it in enumerate(items):
            txt, color, weight = (it, INK, "normal") if isinstance(it, str) else tuple(it)
            if txt:
                self.text(x, y + i * pitch, txt, size, color=color, weight=weight, ha=ha)

    def rule(self, x0, y0, x1, y1, color=RULE, lw=0.5, linestyle="-"):
        self.canvas.line([self.px(x0), self.px(x1)], [self.py(y0), self.py(y1)], color, lw * self.k, dash=linestyle)

    def box(self, x, y, w, h, fc="none", ec=INK, lw=0.5, hatch=None):
        fill = None if fc in (None, "none") else fc
        stroke = None if ec in (None, "none") else ec
        x0, y0, ww, hh = self.px(x), self.py(y + h), w * self.k * MM, h * self.k * MM
        if hatch:
            ring = np.array([[x0, y0], [x0 + ww, y0], [x0 + ww, y0 + hh], [x0, y0 + hh]])
            self.canvas.hatch([ring], ec or HIGHLIGHT, stroke=stroke, lw=lw * self.k)
        else:
            self.canvas.rect(x0, y0, ww, hh, fill=fill, stroke=stroke, lw=lw * self.k)

    def map_view(self, rect, extent) -> MapView:
        """A map in ``rect`` (A4 mm) showing ``extent`` (metres): drawing inside is clipped to it."""
        return MapView(self, rect, extent)

    # ---- frame elements
    def header(self, title: str, subtitle: str, doc_kind: str) -> None:
        self.text(10, 13, title, 16, weight="bold")
        self.text(10, 19.5, subtitle, 8.5, color=GREY)
        as_of = self.as_of_text()
        self.text(287, 12.5, doc_kind + (f" · {as_of}" if as_of else ""), 9, ha="right", color=GREY)
        if self.sheet.is_demo:
            self.text(287, 19.5, self.tr("brief.demo_mark"), 8.5, ha="right", color="white", weight="bold",
                      bbox=(HIGHLIGHT, 0.25, 1.0))
        self.rule(10, 22.5, 287, 22.5, color=INK, lw=0.8)

    def footer(self) -> None:
        sh = self.sheet
        self.rule(10, 196, 287, 196, color=INK, lw=0.6)
        source = sh.meta.get("data_source") or self.tr("brief.source_unknown")
        made = clock.office_today().isoformat()
        c = self.colon
        line1 = f"{self.tr('brief.source')}{c}{source} · {self.tr('brief.crs')}{c}{crs_label(sh.epsg, self.lang)}"
        line2 = f"{self.tr('brief.made')}{c}{made} · {self.tr('brief.made_by')}"
        as_of = self.as_of_text()
        if as_of:
            line2 = f"{as_of} · {line2}"
        if self.number:
            line2 += " · " + self.tr("brief.page_of", page=self.number[0], pages=self.number[1])
        room = 272 - text_width_mm(self.classification, 8)  # a long data source must not run into it
        self.lines(10, 200.5, [(wrap(line1, room, 6.5, max_lines=1)[0], GREY, "normal"),
                               (wrap(line2, room, 6.5, max_lines=1)[0], GREY, "normal")], 6.5, 4.0)
        self.text(287, 200.5, self.classification, 8, ha="right", weight="bold")
        if sh.is_demo:
            self.text(287, 204.5, self.tr("brief.demo_mark"), 6.5, ha="right", color=HIGHLIGHT, weight="bold")

    def as_of_text(self) -> str:
        """"截至 2026-06-15" (with "按 … 的记录" when as recorded) for a page of the past; "" for now."""
        return as_of_text(self.sheet.meta, self.lang)

    def heading(self, x, y, s):
        self.text(x, y, s, 8, weight="bold")

    # ---- output
    def record(self) -> pdfwriter.PageRecord:
        return self.canvas.record()

    def save(self, target, fmt: str, dpi: int = PNG_DPI) -> None:
        """Write the page as a one-page PDF, or as a PNG at ``dpi``."""
        title = _pdf_title(self)
        if fmt == "pdf":
            pdfwriter.write_pdf(target, [self.record()], title=title)
        else:
            buf = io.BytesIO()
            pdfwriter.write_pdf(buf, [self.record()], title=title)
            pdfwriter.render_png(buf.getvalue(), 0, target, dpi)


def _pdf_title(page: Page) -> str:
    return page.tr("brief.atlas_title")


class MapView:
    """A map on a page: its rectangle in points and the metres it shows (north up, one scale).

    Created by ``Page.map_view``; everything drawn until ``close()`` is clipped to the
    rectangle; ``close()`` draws the frame.
    """

    def __init__(self, page: Page, rect, extent, frame: bool = True):
        x, y, w, h = rect
        self.page, self.canvas, self.frame = page, page.canvas, frame
        self.x0, self.y0 = page.px(x), page.py(y + h)
        self.w, self.h = w * page.k * MM, h * page.k * MM
        minx, miny, maxx, maxy = extent
        self.extent = extent
        self.s = min(self.w / (maxx - minx), self.h / (maxy - miny))  # points per metre
        # like an equal-aspect axes: the extent centred in the rectangle
        self.ox = self.x0 + (self.w - (maxx - minx) * self.s) / 2 - minx * self.s
        self.oy = self.y0 + (self.h - (maxy - miny) * self.s) / 2 - miny * self.s
        self.canvas.save()
        self.canvas.clip_rect(self.x0, self.y0, self.w, self.h)

    def pt(self, x, y):
        """Metres -> page points (scalars or arrays)."""
        return np.asarray(x) * self.s + self.ox, np.asarray(y) * self.s + self.oy

    def rings(self, groups) -> list[list[np.ndarray]]:
        """Rings in metres (a list per shape) -> rings in points."""
        s, o = self.s, np.array([self.ox, self.oy])
        return [[r * s + o for r in g] for g in groups]

    def axes_pt(self, fx, fy):
        """Fractions of the rectangle (0..1 from the bottom left) -> page points."""
        return self.x0 + fx * self.w, self.y0 + fy * self.h

    def background(self, fill) -> None:
        self.canvas.rect(self.x0, self.y0, self.w, self.h, fill=fill)

    def close(self) -> None:
        self.canvas.restore()
        if self.frame:
            self.canvas.rect(self.x0, self.y0, self.w, self.h, stroke=INK, lw=0.6 * self.page.k)


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




def flat_rings(groups) -> list[np.ndarray]:
    """The rings of several shapes as one list (to draw them as one path)."""
    return [r for g in groups for r in g]


def map_labels(view: MapView, xs, ys, texts, size: float, color: str, halo: float, weight: str = "normal",
            alpha: float = 1.0, ha: str = "center", va: str = "center") -> None:
    """Map labels at metre positions: real text (selectable), with a white halo of ``halo`` points."""
    px, py = view.pt(np.asarray(xs, dtype=float), np.asarray(ys, dtype=float))
    for x, y, s in zip(np.atleast_1d(px), np.atleast_1d(py), texts):
        view.canvas.text(float(x), float(y), s, size, color=color, bold=weight == "bold", ha=ha, va=va, halo=halo,
                         alpha=alpha)


def draw_map(page: Page, rect, extent, *, raster=None, focus_rows=(), focus_village: str | None = None,
             label_mode: str = "code", dim_others: bool = False) -> MapView:
    """The main map: background, zone/village/park outlines, parcels by stage, labels.

    ``focus_rows`` are highlighted; ``focus_village`` draws that village's boundary
    strongly and (with ``dim_others``) fades the parcels outside it.
    """
    sh = page.sheet
    k = page.k
    x, y, w, h = rect
    view = page.map_view(rect, extent)
    cv = view.canvas
    minx, miny, maxx, maxy = extent
    bg = background(raster, sh, extent, (w * k, h * k))
    if bg is not None:
        l, r, b, t_ = bg.extent
        x0, y0 = view.pt(l, b)
        x1, y1 = view.pt(r, t_)
        cv.image(bg.image, float(x0), float(y0), float(x1 - x0), float(y1 - y0))
    elif "sea" in sh.layers:
        cv.rings(flat_rings(view.rings(sh.layer_rings("sea"))), fill="#cfe3f3")
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
        cv.shapes(view.rings(sh.parcel_rings(rows)), fc, stroke="#ffffff", lw=0.35 * k, alpha=alpha)
        blocked = rows[sh.col["blocked"][rows]]
        if len(blocked):
            cv.hatch(flat_rings(view.rings(sh.parcel_rings(blocked))), HIGHLIGHT, stroke=HIGHLIGHT, lw=0.5 * k)
    # outlines: parks, villages, zones
    box = shapely.box(*extent)
    for name, color, lw, ls in (("parks", PARK_EDGE, 0.8, ":"), ("devzone", PARK_EDGE, 1.0, "--"),
                                ("villages", VILLAGE_EDGE, 0.7, "--"), ("zones", ZONE_EDGE, 1.4, "-.")):
        gdf = sh.layers.get(name)
        if gdf is None or not len(gdf):
            continue
        hit = gdf.sindex.query(box, predicate="intersects")
        if not len(hit):
            continue
        rings = sh.layer_rings(name)
        cv.rings(flat_rings(view.rings([rings[i] for i in sorted(hit)])), stroke=color, lw=lw * k, dash=ls)
    if focus_village and "villages" in sh.layers:
        vg = sh.layers["villages"]
        idx = np.flatnonzero(vg["code"].to_numpy() == focus_village)
        if len(idx):
            rings = flat_rings(view.rings([sh.layer_rings("villages")[i] for i in idx]))
            cv.rings(rings, stroke="white", lw=3.2 * k, join=True)
            cv.rings(rings, stroke=VILLAGE_EDGE, lw=1.6 * k, join=True)
    if focus:
        rings = flat_rings(view.rings(sh.parcel_rings(sorted(focus))))
        cv.rings(rings, stroke="white", lw=4.0 * k, join=True)
        cv.rings(rings, stroke=HIGHLIGHT, lw=2.0 * k, join=True)

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
            map_labels(view, xs[inside], ys[inside], labels, 5.6 * k, "#333333", 1.4 * k)
    if "villages" in sh.layers and label_mode != "none":
        vg = sh.layers["villages"]
        hit = [i for i in vg.sindex.query(box, predicate="intersects") if vg["code"].iat[i] != focus_village]
        if hit:
            pts = [shapely.point_on_surface(vg.geometry.iat[i].intersection(box)) for i in hit]
            keep = [(pt, i) for pt, i in zip(pts, hit) if not pt.is_empty]
            map_labels(view, [pt.x for pt, _ in keep], [pt.y for pt, _ in keep],
                    [local_name(sh.villages.get(vg["code"].iat[i]), page.lang) for _, i in keep],
                    8 * k, VILLAGE_EDGE, 1.6 * k, weight="bold")
    for r in sorted(focus):
        pt = p.geometry.values[r].point_on_surface()
        map_labels(view, [pt.x], [pt.y], [sh.col["code"][r]], 9 * k, HIGHLIGHT, 2.6 * k, weight="bold")
    north_arrow(page, view, sh.convergence)
    scale_bar(page, view, extent, w)
    attribution = getattr(raster, "attribution", "")
    if attribution:  # a basemap's source in the map's corner, as on the screen
        note = attribution if bg is not None else page.tr("basemap.export_failed", name=raster.label)
        ax, ay = view.axes_pt(0.995, 0.005)
        cv.text(ax, ay, note, 5.5 * k, color=INK, ha="right", va="bottom", box=("#ffffff", 0.2 * 5.5 * k, 0.75))
    view.close()
    return view


def north_arrow(page: Page, view: MapView, convergence: float) -> None:
    """A two-tone arrow in the map's top right, tilted to true north (meridian convergence)."""
    k = page.k
    cx, cy = view.x0 + view.w - 9 * k * MM, view.y0 + view.h - 12 * k * MM
    s = 4.0 * k * MM  # half-height in points
    a = math.radians(convergence)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    left = np.array([[0, s], [-s * 0.45, -s * 0.7], [0, -s * 0.35]])
    right = left * [-1, 1]
    for pts, fc in ((left, INK), (right, "white")):
        xy = pts @ rot.T + (cx, cy)
        view.canvas.polygon(xy, fill=fc, stroke=INK, lw=0.6 * k)
    tip = np.array([0, s * 1.2]) @ rot.T + (cx, cy)
    view.canvas.text(float(tip[0]), float(tip[1]), "N", 9 * k, color=INK, bold=True, ha="center", va="bottom")


def scale_bar(page: Page, view: MapView, extent, map_w_mm: float) -> None:
    """A metric bar of a round length (1-2-5 × 10^n m) and the ratio scale, bottom left of the map."""
    k = page.k
    cv = view.canvas
    minx, miny, maxx, maxy = extent
    m_per_mm = (maxx - minx) / (map_w_mm * k)
    length = nice_length(m_per_mm * 40 * k)  # at most 40 mm on paper
    seg = length / 4
    x0 = minx + 6 * k * m_per_mm
    y0 = miny + 7 * k * m_per_mm
    hbar = 1.3 * k * m_per_mm

    def rect(x, y, w, h, **kw):
        (a, b), (c, d) = view.pt(x, y), view.pt(x + w, y + h)
        cv.rect(float(a), float(b), float(c - a), float(d - b), **kw)

    rect(x0 - 3 * k * m_per_mm, y0 - 5 * k * m_per_mm, length + 12 * k * m_per_mm, 12.5 * k * m_per_mm,
         fill="#ffffff", alpha=0.8)
    for i in range(4):
        rect(x0 + i * seg, y0, seg, hbar, fill=INK if i % 2 == 0 else "#ffffff", stroke=INK, lw=0.4 * k)
    marks = (0, length / 2, length)
    labels = [_fmt_len(v, page.lang) if v == length else f"{v / 1000:g}" if length >= 1000 else f"{v:g}"
              for v in marks]
    map_labels(view, [x0 + v for v in marks], [y0 + hbar + 0.8 * k * m_per_mm] * 3, labels, 6 * k, INK, 0,
            va="bottom")
    ratio = (maxx - minx) / (map_w_mm * k / 1000)
    ratio = round(ratio, -int(math.floor(math.log10(ratio))) + 1) if ratio > 0 else 0
    map_labels(view, [x0], [y0 - 1.2 * k * m_per_mm], [f"1:{ratio:,.0f}"], 6 * k, INK, 0, ha="left", va="top")


def draw_locator(page: Page, rect, extent=None, points=()) -> MapView:
    """The district, its zones and where the main map is."""
    sh = page.sheet
    k = page.k
    x, y, w, h = rect
    if "district" in sh.layers:
        bounds = sh.layers["district"].total_bounds
    else:
        bounds = sh.parcels.total_bounds
    ext = fit_extent(bounds, w / h, 0.04, 100)
    view = page.map_view(rect, ext)
    cv = view.canvas
    tol = 30.0
    if "sea" in sh.layers:
        cv.rings(flat_rings(view.rings(sh.layer_rings("sea", tol))), fill="#cfe3f3")
    zone_labels = None
    if "zones" in sh.layers:
        zg = sh.layers["zones"]
        fills = [ZONE_FILLS.get(c, "#eeeeee") for c in zg["code"]]
        for rings, fc in zip(view.rings(sh.layer_rings("zones", tol)), fills):
            cv.rings(rings, fill=fc, stroke="#888888", lw=0.4 * k)
        pts = shapely.point_on_surface(zg.geometry.values)
        zone_labels = (shapely.get_x(pts), shapely.get_y(pts), [local_name(sh.zones.get(c), page.lang) for c in zg["code"]])
    for name, color in (("villages", "#c9b79c"), ("parks", "#cab2d6"), ("devzone", None)):
        if name in sh.layers:
            rings = flat_rings(view.rings(sh.layer_rings(name, tol)))
            if color:
                cv.rings(rings, fill=color)
            else:
                cv.rings(rings, stroke=PARK_EDGE, lw=0.5 * k, dash="--")
    if "district" in sh.layers:
        cv.rings(flat_rings(view.rings(sh.layer_rings("district", tol))), stroke=INK, lw=0.8 * k)
    if zone_labels is not None:
        map_labels(view, *zone_labels, 6.5 * k, GREY, 0)
    if extent is not None:
        ex0, ey0, ex1, ey1 = extent
        # a page extent smaller than a few pixels of the locator is shown as a cross-hair box of 3 mm
        min_size = (ext[2] - ext[0]) / (w * k) * 3 * k
        if ex1 - ex0 < min_size:
            cx, cy = (ex0 + ex1) / 2, (ey0 + ey1) / 2
            ex0, ex1, ey0, ey1 = cx - min_size / 2, cx + min_size / 2, cy - min_size / 2, cy + min_size / 2
        (a, b), (c, d) = view.pt(ex0, ey0), view.pt(ex1, ey1)
        cv.rect(float(a), float(b), float(c - a), float(d - b), stroke=HIGHLIGHT, lw=1.2 * k)
    for px, py in points:
        a, b = view.pt(px, py)
        cv.ellipse(float(a), float(b), 1.6 * k, 1.6 * k, fill=HIGHLIGHT, stroke="#ffffff", lw=0.5 * k)
    view.close()
    page.text(x + 1.5, y + 4, page.tr("brief.locator"), 6.5, color=GREY, bbox=("#ffffff", 0.15, 0.8))
    return view


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
    """A key/value table; values wrap."""
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
    r = 1.5 * k * MM
    for i, s in enumerate(steps):
        cx = x0 + i * gap
        status = s["status"]
        fc = s["color"] if status != "ahead" else "#ffffff"
        ec = HIGHLIGHT if status == "current" else ("#555555" if status == "done" else "#aaaaaa")
        scale = 1.45 if status == "current" else 1.0
        page.canvas.ellipse(page.px(cx), page.py(ty), r * scale, r * scale, fill=fc, stroke=ec,
                            lw=(1.4 if status == "current" else 0.6) * k)
        above = i % 2 == 0
        ly = ty - 3.2 if above else ty + 5.3
        dy = ty - 6.6 if above else ty + 8.7
        weight = "bold" if status == "current" else "normal"
        color = HIGHLIGHT if status == "current" else (INK if status == "done" else "#888888")
        label = s["label"] + (page.tr("brief.current_mark") if status == "current" else "")
        page.text(cx, ly, label, 6.3, ha="center", weight=weight, color=color)
        if s.get("date"):
            page.text(cx, dy, s["date"], 5.6, ha="center", color=GREY)
