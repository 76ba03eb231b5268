"""The briefing page of one key project (重点项目简报图): its footprint on the map over the parcels it
stands on, a locator, the facts, the investment curve (plan against actual, cumulative by month) and
its latest reports — drawn with the pieces of ``gis.printing.pagekit`` like the parcel's page.

    render_project_page(store, code, out)   PDF or PNG (from the extension)
"""
from __future__ import annotations

import datetime as dt
import math

import numpy as np
import shapely

from gis.base import clock
from gis.base.errors import NotFoundError
from gis.base.settings import Settings
from gis.model.project_views import format_wan, project_curve, project_stage, reports_latest_first
from gis.printing import briefing
from gis.printing.pagekit import (
    GREY,
    HIGHLIGHT,
    INK,
    PNG_DPI,
    RULE,
    Page,
    draw_legend,
    draw_locator,
    draw_map,
    draw_rows,
    fit_extent,
    load_sheet,
    text_width_mm,
    wrap,
)

MAP_RECT = (10, 25, 173, 112)
CURVE_RECT = (22, 149, 158, 36)  # the plot area (axes inside), A4 mm
PLAN_COLOR, ACTUAL_COLOR = "#9e9e9e", HIGHLIGHT


def _polygon_rings(geom) -> list[np.ndarray]:
    out = []
    for poly in getattr(geom, "geoms", [geom]):
        if poly is None or poly.is_empty or poly.geom_type != "Polygon":
            continue
        out += [shapely.get_coordinates(r) for r in (poly.exterior, *poly.interiors)]
    return out


def project_footprint(store, code: str, epsg: int):
    """The project's footprint (own polygon or the union of its parcels) in the page's CRS, or None.

    Raises:
        NotFoundError: no such project.
    """
    fp = store.project_footprints()
    row = fp[fp["code"] == code]
    if not len(row):
        store.project(code)  # an unknown code raises NotFoundError; a project without land has no footprint
        return None
    geom = row.to_crs(epsg).geometry.iloc[0]
    return None if geom is None or geom.is_empty else geom


def nice_step(raw: float) -> float:
    """A round step (1, 2 or 5 × 10^n) of at least ``raw``: the curve's axis reads 1,000万元, 2,000万元 …"""
    if raw <= 0:
        return 1.0
    e = 10 ** math.floor(math.log10(raw))
    return next(m * e for m in (1, 2, 5, 10) if m * e >= raw)


def draw_curve(page: Page, rect, curve, lang: str) -> None:
    """Cumulative plan (grey, dashed) and actual (red) of a year, with month ticks and a 万元 axis."""
    x, y, w, h = rect
    cv = page.canvas
    most = max(float(curve["planned_cum"].max() or 0), float(curve["actual_cum"].max() or 0), 1.0)
    tick = nice_step(most / 4)
    top = max(tick * math.ceil(most * 1.08 / tick), tick)
    page.box(x, y, w, h, fc="#ffffff", ec=RULE, lw=0.4)
    for i in range(1, int(round(top / tick)) + 1):  # light horizontal grid, labelled on the left
        gy = y + h - h * i * tick / top
        page.rule(x, gy, x + w, gy, color="#e3e3e3", lw=0.3)
        page.text(x - 1.2, gy + 1.0, format_wan(i * tick, lang), 5.2, color=GREY, ha="right")
    step = w / 12

    def xy(i, v):
        return page.px(x + step * (i + 0.5)), page.py(y + h - h * float(v) / top)

    for i, m in enumerate(curve["month"]):
        page.text(x + step * (i + 0.5), y + h + 3.2, m[5:] if lang == "en" else f"{int(m[5:])}月", 5.4,
                  color=GREY, ha="center")
    for col, color, dash in (("planned_cum", PLAN_COLOR, "--"), ("actual_cum", ACTUAL_COLOR, None)):
        pts = [xy(i, v) for i, v in enumerate(curve[col]) if v is not None and v == v]
        if len(pts) >= 2:
            cv.line([p[0] for p in pts], [p[1] for p in pts], color, 1.3 * page.k, dash=dash)
        for px, py in pts:
            cv.ellipse(px, py, 0.9 * page.k, 0.9 * page.k, fill=color, stroke="#ffffff", lw=0.3 * page.k)
    # the key, top left inside the plot
    for j, (col, color, dash) in enumerate((("series_plan", PLAN_COLOR, "--"), ("series_actual", ACTUAL_COLOR, "-"))):
        kx, ky = x + 3 + j * 34, y + 4
        page.rule(kx, ky - 1, kx + 6, ky - 1, color=color, lw=1.3, linestyle=dash)
        page.text(kx + 7.5, ky, page.tr(f"projects_ui.{col}"), 6, color=INK)


def compose_project_page(store, code: str, paper: str = "A4", raster=None, lang: str = "zh",
                         classification: str = "", number=None) -> Page:
    """The figure of one project's briefing page (not yet saved).

    Raises:
        NotFoundError: unknown project; InputError: unreadable raster or bad paper.
    """
    sheet = load_sheet(store)
    p = store.project(code, lang)
    page = Page(paper, lang, classification, sheet, number)
    st = project_stage(sheet.catalog, p.get("stage"), lang)
    subtitle = "  ·  ".join(s for s in (p.get("industry_label"), p.get("kind_label"), st["label"], p.get("unit")) if s)
    page.header(f"{p.get('name') or code}  {code}", subtitle, page.tr("projects_ui.brief_doc"))

    codes, rows = [], []
    for link in p.get("parcels") or []:
        kind, c = ("parcel", link) if isinstance(link, str) else (link.get("object_type"), link.get("code"))
        codes.append(c)
        if kind == "parcel" and c in sheet.row_of:
            rows.append(sheet.row_of[c])
        elif kind in ("village", "site"):  # a project on a whole village or park: its parcels
            col = sheet.parcels["village" if kind == "village" else "park"].to_numpy()
            rows += [int(i) for i in np.flatnonzero(col == c)]
    rows = sorted(set(rows))
    geom = project_footprint(store, code, sheet.epsg)
    if geom is not None:
        bounds = geom.bounds
    elif rows:
        bounds = shapely.union_all(sheet.parcels.geometry.values[rows]).bounds
    else:
        raise NotFoundError("projects_ui.no_footprint", code=code)
    extent = fit_extent(bounds, MAP_RECT[2] / MAP_RECT[3], 0.9, 400.0)
    draw_map(page, MAP_RECT, extent, raster=raster, focus_rows=rows, label_mode="code")
    if geom is not None and p.get("has_footprint"):  # the project's own polygon over the parcels
        view = page.map_view(MAP_RECT, extent)
        view.frame = False
        rings = [r * view.s + np.array([view.ox, view.oy]) for r in _polygon_rings(geom)]
        page.canvas.rings(rings, stroke="#ffffff", lw=3.4 * page.k, join=True)
        page.canvas.rings(rings, stroke=INK, lw=1.4 * page.k, dash="--", join=True)
        view.close()

    # a page of the past (gis/store/asof.py) draws the curve of that day's year, actual up to that day
    today = dt.date.fromisoformat(sheet.meta["as_of"]) if sheet.meta.get("as_of") else clock.office_today()
    curve = project_curve(p, today.year, as_of=today)
    page.heading(10, 144, page.tr("projects_ui.curve", year=today.year))
    draw_curve(page, CURVE_RECT, curve, lang)

    c = shapely.centroid(shapely.box(*bounds))
    draw_locator(page, (190, 25, 97, 50), extent, [(c.x, c.y)])
    y = draw_legend(page, 190, 80, 97, page.tr("projects_ui.brief_focus"))
    page.heading(190, y + 4, page.tr("projects_ui.brief_facts"))
    total, done = p.get("investment_total"), p.get("invested_to_date")
    share = page.paren(f"{100 * done / total:.0f}%") if total and done is not None else ""
    facts = [
        (page.tr("projects_ui.code"), code),
        (page.tr("projects_ui.stage"), st["label"] + (page.paren(p["stage_date"]) if p.get("stage_date") else ""),
         HIGHLIGHT),
        (page.tr("projects_ui.investment_total"), format_wan(total, lang)),
        (page.tr("projects_ui.invested_to_date"), format_wan(done, lang) + share),
        (page.tr("projects_ui.lists"), ("、" if lang != "en" else ", ").join(p.get("list_labels") or p.get("lists") or [])),
        (page.tr("projects_ui.unit"), p.get("unit")),
        (page.tr("projects_ui.investor"), p.get("investor")),
        (page.tr("projects_ui.signed_on"), p.get("signed_on")),
        (page.tr("projects_ui.started_on"), p.get("started_on")),
        (page.tr("projects_ui.parcels"), "、".join(codes) if lang != "en" else ", ".join(codes)),
    ]
    key_w = max(14.0, max(text_width_mm(r[0], 7.0) for r in facts if r[1]) + 2.5)
    y = draw_rows(page, 190, y + 8.5, facts, key_w=key_w, val_w=96 - key_w, max_y=160)
    draw_reports(page, 190, y + 3.5, reports_latest_first(p.get("reports")), 96, lang)
    page.footer()
    return page


def draw_reports(page: Page, x: float, y: float, reports: list[dict], w: float, lang: str, max_y: float = 192.5):
    """The latest reports, newest first, as many as fit; a correction is marked."""
    pitch = 3.6
    room = int((max_y - y - 4.4) / pitch)
    if room < 2 or not reports:
        return
    page.heading(x, y, page.tr("projects_ui.reports"))
    lines = []
    for r in reports[:room]:
        mark = page.tr("projects_ui.brief_correction") if r["is_correction"] else ""
        text = f"{r.get('report_date')}  {format_wan(r.get('invested_wan'), lang)}  {mark}{r.get('note') or ''}"
        lines.append((wrap(text, w, 6.5, max_lines=1)[0], HIGHLIGHT if mark else GREY, "normal"))
    page.lines(x, y + 4.4, lines, 6.5, pitch)


def render_project_page(store, code: str, out, fmt: str | None = None, paper: str = "A4", raster=None,
                        lang: str = "zh", settings=None, dpi: int = PNG_DPI):
    """Write one project's briefing page (PDF or PNG, from ``fmt`` or the extension of ``out``).

    Raises:
        NotFoundError: unknown project, or one with no land.
        InputError: bad extension or paper, unwritable path, unreadable raster.
    """
    out = briefing.check_target(out)
    f = (fmt or out.suffix.lstrip(".")).lower()  # check_target has allowed .pdf and .png only
    settings = settings or Settings.load()
    page = compose_project_page(store, code, paper, raster, lang, settings.classification)
    with briefing.atomic_output(out) as tmp:
        page.save(tmp, f, dpi)
    return out
