"""Briefing maps (地块简报图) and atlases, printed without a desktop GIS.

    render_parcel_page(store, code, out)        one parcel: map, locator, legend, scale
                                                bar, north arrow, facts, stage timeline
    render_village_page(store, village, out)    one village: its parcels by stage, a
                                                summary per stage
    render_atlas(store, selection, out_pdf)     a cover, an index, one page per village
                                                or parcel; optionally a zip of PNGs

Pages are drawn in the local CGCS2000 Gauss-Krüger zone, so that the scale
bar is true, with the pieces in ``gis.printing.pagekit``: what all pages share is
built once per store version (``load_sheet``); only the parcels a page shows are
drawn, and only the raster window it shows is read, at the overview level of
the page (``gis.maps.raster``). Pages are written by ``gis.printing.pdfwriter``
(text in the shipped CJK font, embedded as a subset: selectable); a PNG is the
PDF page rasterised by PDFium.

Files are written to a temporary file in the target folder, then renamed:
a failure leaves no partial file.
"""
from __future__ import annotations

import gc
import math
import os
import re
import tempfile
import time
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import shapely

from gis.base import clock, errors
from gis.base.errors import InputError, NotFoundError, RenewalError
from gis.base.fileio import atomic_path
from gis.base.i18n import t
from gis.base.settings import Settings
from gis.base.units import M2_PER_MU
from gis.maps.raster import raster_bounds
from gis.model.pipelines import stage_timeline
from gis.printing import pdfwriter
from gis.printing.pagekit import (  # some re-exported: the benchmark draws with them
    FORMATS,
    GREY,
    HIGHLIGHT,
    INK,
    PAPERS,
    PNG_DPI,
    VILLAGE_EDGE,
    ZONE_FILLS,
    Page,
    Sheet,
    area_text,
    draw_legend,
    draw_locator,
    draw_map,
    draw_rows,
    draw_timeline,
    fit_extent,
    flat_rings,
    fmt_mu,
    load_sheet,
    local_name,
    map_labels,
    north_arrow,
    parcels_in_view,
    pinned_sheet,
    scale_bar,
    text_width_mm,
    wrap,
)
from gis.printing.photos import compose_photo_page, draw_latest_photo, site_photos

Progress = Callable[[int, int, str], None]

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
        with atomic_path(out) as tmp:
            yield tmp
    except OSError as e:
        raise InputError("brief.unwritable", path=str(out)) from e


def default_raster(settings) -> Path | None:
    """The configured basemap GeoTIFF if it exists (an unset or missing default means no background)."""
    r = getattr(settings, "raster", None)
    return Path(r) if r and Path(r).is_file() else None


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
    plan = store.parcel_plan(code, lang=lang)
    p["plan"], p["plan_status"] = plan_line(plan, lang), (plan[0]["status"] if plan else None)
    return p


def plan_line(rows: list[dict], lang: str = "zh") -> str | None:
    """The parcel's first target (the first baseline's) as one line: planned against actual."""
    if not rows:
        return None
    r = rows[0]
    if r["status"] in ("done", "done_late"):
        state = t("plans.brief_reached", lang, date=r["reached_on"] or "", status=t(f"plans.status_{r['status']}", lang))
    elif r["status"] == "overdue":
        state = t("plans.brief_late", lang, days=r["days_late"])
    else:
        state = t(f"plans.status_{r['status']}", lang)
    whose = "" if r["object_type"] == "parcel" else (f" ({r['object_label']})" if lang == "en" else f"（{r['object_label']}）")
    return t("plans.brief_line", lang, baseline=r["baseline_label"] + whose, stage=r["stage_label"], due=r["due"],
             state=state)


def compose_parcel_page(store, code: str, paper: str = "A4", raster=None, lang: str = "zh",
                        classification: str = "", number=None, photo=True) -> Page:
    """The figure of one parcel's briefing page (not yet saved).

    ``photo``: show the parcel's latest site photo (if it has one) as an inset in the map's lower right
    corner; True looks it up, an Attachment is that photo, False or None shows none.

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
    if photo is True:
        photo = (site_photos(store, [code]).get(code) or [None])[0]
    if photo:
        draw_latest_photo(page, store, code, photo)
    draw_timeline(page, 10, 178, 173, p["timeline"])

    c = geom.centroid
    draw_locator(page, (190, 25, 97, 56), extent, [(c.x, c.y)])
    y = draw_legend(page, 190, 86.5, 97, page.tr("brief.this_parcel"))
    page.heading(190, y + 4, page.tr("brief.facts"))
    paren = " ({})" if lang == "en" else "（{}）"
    stage = p["stage_label"] + (paren.format(p["stage_date"]) if p.get("stage_date") else "")
    upd = " ".join(s for s in ((p.get("updated_at") or "")[:10], p.get("updated_by") or "") if s)
    # a page of the past: a fact whose value then is not kept says so (gis/store/asof.py), never today's value
    unknown = set(p.get("unknown_then") or ())
    then = (lambda field, value: (page.tr("brief.unknown_then"), GREY) if field in unknown else (value,))
    rows = [
        (page.tr("brief.code"), code),
        (page.tr("brief.area"), area_text(p["area_m2"], lang)),
        (page.tr("brief.zone"), zone_txt),
        (page.tr("brief.kind"), p["kind_label"]),
        (page.tr("brief.village") if p.get("village") else page.tr("brief.park"), where),
        (page.tr("brief.current_stage"), stage, HIGHLIGHT),
        (page.tr("brief.next_stage"), p["next_stage_label"] or page.tr("brief.finished")),
        (page.tr("plans.brief_plan"), p.get("plan"), *((HIGHLIGHT,) if p.get("plan_status") == "overdue" else ())),
        (page.tr("brief.unit"), p.get("unit")),
        (page.tr("brief.owner"), *then("owner", p.get("owner"))),
        (page.tr("brief.land_use"), *then("land_use", p.get("land_use"))),
        (page.tr("brief.first_date"), p.get("first_date")),
        (page.tr("brief.updated"), *then("updated_at", upd)),
        (page.tr("brief.blocked_reason"), (p.get("blocked_reason") or page.tr("brief.blocked")) if p["blocked"] else None,
         HIGHLIGHT),
        (page.tr("brief.note"), *then("note", p.get("note"))),
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
        stage = cat.stage_label_or_key(p["kind"], e.to_stage, page.lang)  # a bad stored event: shown, marked
        what = f"{action} → {stage}" if e.action in ("advance", "correction") else action
        who = f" · {e.recorded_by}" if e.recorded_by else ""
        lines.append(wrap(f"{e.event_date}  {what}{who}", w, 6.5, max_lines=1)[0])
    page.lines(x, y + 4.4, [(ln, GREY, "normal") for ln in lines], 6.5, pitch)


def render_parcel_page(store, code: str, out, fmt: str | None = None, paper: str = "A4", raster=None,
                       lang: str = "zh", settings=None, dpi: int = PNG_DPI, photo: bool = True) -> Path:
    """Write one parcel's briefing page (PDF or PNG, from ``fmt`` or the extension of ``out``).

    ``raster``: a GeoTIFF in any CRS for the background, or None for none. ``photo``: the latest site
    photo as an inset, when the parcel has one.

    Raises:
        NotFoundError: unknown code.
        InputError: bad extension or paper, unwritable path, unreadable raster or one that misses the page.
    """
    out = check_target(out)
    f = _fmt_of(out, fmt)
    settings = settings or _settings()
    _check_raster_covers(raster, store, lambda sh: _parcel_extent(sh, code))
    page = compose_parcel_page(store, code, paper, raster, lang, settings.classification, photo=photo)
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
    code = village if village in sheet.villages else store.village_code(village)
    rec = sheet.villages.get(code, {"code": code})
    cat = sheet.catalog
    pipe = cat.pipeline_for("village")
    col = sheet.col
    sel_rows = np.flatnonzero(col["village"] == code)
    stages = [s if isinstance(s, str) and s else None for s in col["stage"][sel_rows]]
    idx = [pipe.index(s) for s in stages]
    area = col["area_m2"][sel_rows].astype(float)
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
    blocked = sel_rows[col["blocked"][sel_rows]]
    reasons = {col["code"][r]: (col["blocked_reason"][r] if isinstance(col["blocked_reason"][r], str) else "")
               for r in blocked}
    dates = [d for d in col["stage_date"][sel_rows] if isinstance(d, str) and d]
    units = {u for u in col["unit"][sel_rows] if isinstance(u, str) and u}
    zone = sheet.zones.get(rec.get("zone") or "", {})
    return {
        "code": code,
        "name": local_name(rec, lang) or code,
        "zone": rec.get("zone"),
        "zone_name": local_name(zone, lang),
        "zone_strategy": zone.get("strategy", ""),
        "zone_roles": (zone.get("roles_en") if lang == "en" else zone.get("roles")) or "",
        "parcels": len(sel_rows),
        "area_m2": total,
        "area_mu": round(total / M2_PER_MU, 2),
        "stages": rows,
        "stage": pipe.keys[low] if low >= 0 else None,
        "stage_label": cat.stage_label("village", pipe.keys[low] if low >= 0 else None, lang),
        "lead_label": cat.stage_label("village", pipe.keys[max(idx)] if idx and max(idx) >= 0 else None, lang),
        "cleared_share": float(area[past].sum()) / total if total else 0.0,
        "signed_share": float(np.mean(np.asarray(idx) >= signed_i)) if idx else 0.0,
        "blocked": reasons,
        "units": sorted(units),
        "last_date": max(dates) if dates else None,
        "rows": sel_rows,
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
    subtitle = "  ·  ".join(s for s in (zone_full, page.tr("brief.village_kind"),
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
        page.tr("brief.total_area") + page.colon + area_text(v["area_m2"], lang),
        page.tr("brief.overall_stage") + page.colon + v["stage_label"],
        page.tr("brief.lead_stage") + page.colon + v["lead_label"],
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
        page.tr("brief.cleared_share") + page.colon + f"{v['cleared_share']:.1%}",
        page.tr("brief.signed_share") + page.colon + f"{v['signed_share']:.1%}",
        page.tr("brief.last_date") + page.colon + f"{v['last_date'] or '—'}",
    ]
    page.text(x, by + bh + 4.2, "    ".join(shares), 7)
    blocked = v["blocked"]
    if blocked:
        items = [c + page.paren(r) if r else c for c, r in blocked.items()]
        text = page.tr("brief.blocked_list", n=len(blocked)) + page.colon + ("; " if lang == "en" else "；").join(items)
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
        mus.append(fmt_mu(r["area_m2"]))
    labels.append(page.tr("brief.total"))
    ns.append(str(v["parcels"]))
    mus.append(fmt_mu(v["area_m2"]))
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
    #: what the selection was made of, for file names: {"zh": ["V07", "签约"], "en": [...]} (empty: everything)
    parts: dict = field(default_factory=dict)

    def label(self, lang: str) -> str:
        return self.title.get(lang) or self.title.get("zh", "")


_FILE_UNSAFE = re.compile(r'[\\/:*?"<>|“”\s]+')


def atlas_filename(selection: AtlasSelection, day, ext: str = "pdf", lang: str = "zh") -> str:
    """A download name that says what the atlas holds: ``旧村改造图集_全部村_2026-12-01.pdf``,
    ``地块图集_V07_签约_2026-12-01.pdf`` (``day``: the office's date)."""
    village = selection.kind == "village"
    head = t("ux.atlas_villages" if village else "ux.atlas_parcels", lang)
    parts = list((selection.parts or {}).get(lang) or (selection.parts or {}).get("zh") or [])
    if not parts:
        parts = [t("ux.atlas_all_villages" if village else "ux.atlas_all_parcels", lang)]
    name = "_".join(p for p in (_FILE_UNSAFE.sub("_", str(x)).strip("_") for x in (head, *parts)) if p)
    return f"{name}_{day.isoformat()}.{ext}"


def select_villages(store, zone: str | None = None) -> AtlasSelection:
    """Every village (of a zone), by code.

    Raises:
        NotFoundError: unknown zone.
    """
    villages = store.attributes("villages")
    codes = sorted(villages)
    title = {"zh": t("brief.sel_villages", "zh", n=len(codes)), "en": t("brief.sel_villages", "en", n=len(codes))}
    parts: dict = {}
    if zone:
        zones = store.names("zones")
        zc = store.zone_code(zone)
        codes = [c for c in codes if villages[c].get("zone") == zc]
        title = {lg: t("brief.sel_zone_villages", lg, zone=zones[zc][0 if lg == "zh" else 1] or zc, n=len(codes))
                 for lg in ("zh", "en")}
        parts = {lg: [zones[zc][0 if lg == "zh" else 1] or zc] for lg in ("zh", "en")}
    if not codes:
        raise InputError("brief.empty_selection")
    return AtlasSelection("village", tuple(codes), title, parts)


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
    files = {"zh": [], "en": []}  # the same, with the village by its code (V07): shorter file names
    for lg in ("zh", "en"):
        if village:
            vc = store.village_code(village)
            parts[lg].append(local_name(store.attributes("villages").get(vc), lg))
            files[lg].append(vc)
        if zone:
            zones = store.names("zones")
            zc = store.code_of("zones", zone) or zone
            parts[lg].append(zones.get(zc, (zone, zone))[0 if lg == "zh" else 1] or zone)
        if kind:
            parts[lg].append(store.catalog.kind(kind).label(lg))
        if stage:
            parts[lg].append(store.catalog.stage_label(kind or "village", stage, lg) if stage == "not_started"
                             else next(p.stage(stage).label(lg) for p in store.catalog.pipelines.values()
                                       if stage in p.keys))
        if search:
            parts[lg].append(f"“{search}”")
        files[lg] += parts[lg][1:] if village else parts[lg]
    title = {lg: t("brief.sel_parcels", lg, what=" · ".join(parts[lg]) or t("brief.sel_all", lg), n=len(codes))
             for lg in ("zh", "en")}
    return AtlasSelection("parcel", codes, title, files)


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
                         "zone": local_name(sheet.zones.get(p["zone"].iat[r] or ""), lang),
                         "stage": cat.stage_label(kind, st if isinstance(st, str) and st else None, lang),
                         "area_m2": float(p["area_m2"].iat[r] or 0), "n": None})
    return rows


INDEX_ROWS_PER_PAGE = 30


def _index_pages(n_items: int) -> int:
    return max(1, math.ceil(n_items / INDEX_ROWS_PER_PAGE))


def atlas_page_count(n_items: int, photo_pages: int = 0) -> int:
    """Pages of an atlas of ``n_items`` villages or parcels: cover, index pages, one per item (and
    ``photo_pages``, one per parcel with site photos)."""
    return 1 + _index_pages(n_items) + n_items + photo_pages


def compose_cover(store, selection: AtlasSelection, paper: str, lang: str, classification: str,
                  pages: int) -> Page:
    """Title, date, the set it covers, an overview map with the selection highlighted."""
    sheet = load_sheet(store)
    page = Page(paper, lang, classification, sheet, (1, pages))
    page.text(10, 24, page.tr("brief.atlas_title"), 22, weight="bold")
    page.text(10, 33, selection.label(lang), 12)
    made = page.tr("brief.cover_made", date=clock.office_today().isoformat(), pages=pages)
    page.text(10, 40, " · ".join(s for s in (page.as_of_text(), made) if s), 8.5, color=GREY)
    if sheet.is_demo:
        page.text(287, 24, page.tr("brief.demo_mark"), 11, ha="right", color="white", weight="bold",
                  bbox=(HIGHLIGHT, 0.3, 1.0))
    page.rule(10, 44, 287, 44, color=INK, lw=0.8)
    rect = (10, 48, 277, 143)
    x, y, w, h = rect
    k = page.k
    p = sheet.parcels
    rows = None
    if selection.kind == "village" and "villages" in sheet.layers:
        bounds = sheet.layers["district"].total_bounds if "district" in sheet.layers else p.total_bounds
        ext = fit_extent(bounds, w / h, 0.03, 100)
    else:
        # parcels: the map frames the selection (a village's parcels would be a speck on the district)
        rows = np.array([sheet.row_of[c] for c in selection.codes if c in sheet.row_of], dtype=int)
        ext = fit_extent(shapely.total_bounds(p.geometry.values[rows]), w / h, 0.12, 1500.0)
    view = page.map_view(rect, ext)
    cv = view.canvas
    if "sea" in sheet.layers:
        cv.rings(flat_rings(view.rings(sheet.layer_rings("sea", 10.0))), fill="#cfe3f3")
    if "zones" in sheet.layers:
        zg = sheet.layers["zones"]
        for rings, fc in zip(view.rings(sheet.layer_rings("zones", 10.0)), zg["code"]):
            cv.rings(rings, fill=ZONE_FILLS.get(fc, "#eeeeee"), stroke="#777777", lw=0.6 * k)
        pts = shapely.point_on_surface(zg.geometry.values)
        labels = [local_name(sheet.zones.get(c, {}), lang) + ("" if lang == "en" else f"·{sheet.zones.get(c, {}).get('strategy', '')}")
                  for c in zg["code"]]
        map_labels(view, shapely.get_x(pts), shapely.get_y(pts), labels, 12 * k, "#555555", 0, weight="bold", alpha=0.55)
    numbers = None
    if rows is None:
        vg = sheet.layers["villages"]
        vrows = [i for i, c in enumerate(vg["code"]) if c in set(selection.codes)]
        cv.rings(flat_rings(view.rings([sheet.layer_rings("villages")[i] for i in vrows])), fill="#f46d43",
                 stroke=VILLAGE_EDGE, lw=0.6 * k, alpha=0.8)
        order = {c: i for i, c in enumerate(selection.codes)}
        pts = shapely.point_on_surface(vg.geometry.values[vrows])
        numbers = (shapely.get_x(pts), shapely.get_y(pts), [str(order[vg["code"].iat[i]] + 1) for i in vrows])
    else:
        around = np.setdiff1d(parcels_in_view(sheet, ext), rows)
        cv.shapes(view.rings(sheet.parcel_rings(around)), ["#e6e6e6"] * len(around), stroke="#ffffff", lw=0.3 * k)
        cv.shapes(view.rings(sheet.parcel_rings(rows)), list(sheet.col["color"][rows]), stroke="#ffffff", lw=0.3 * k)
        if "villages" in sheet.layers:
            cv.rings(flat_rings(view.rings(sheet.layer_rings("villages"))), stroke=VILLAGE_EDGE, lw=0.6 * k, dash="--")
    if "district" in sheet.layers:
        cv.rings(flat_rings(view.rings(sheet.layer_rings("district", 10.0))), stroke=INK, lw=1.0 * k)
    if numbers is not None:
        map_labels(view, *numbers, 8 * k, INK, 2.2 * k, weight="bold")
    north_arrow(page, view, sheet.convergence)
    scale_bar(page, view, ext, w)
    view.close()
    if selection.kind == "village":
        page.text(x + 2, y + 5, page.tr("brief.cover_numbers"), 7, color=GREY,
                  bbox=("#ffffff", 0.2, 0.8))
    page.footer()
    return page


def compose_index(store, selection: AtlasSelection, rows: list[dict], part: int, paper: str, lang: str,
                  classification: str, first_item_page, pages: int) -> Page:
    """One page of the index: number, code, name, zone, stage, area in 亩, page.

    ``first_item_page``: the page of the first item (items follow one a page), or the list of each item's page.
    """
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
        at = first_item_page[n] if isinstance(first_item_page, list) else first_item_page + n
        vals += [fmt_mu(r["area_m2"]), str(at)]
        for (x, _, _), v in zip(cols, vals):
            columns[x].append(v)
        if i % 2 == 1:
            page.box(10, y0 + 2.2 + i * pitch, 277, pitch, fc="#f2f2f2", ec="none")
    for x, _, ha in cols:
        page.lines(x, y0 + pitch + 0.2, columns[x], 7.5, pitch, ha=ha)
    page.footer()
    return page


def compose_item(store, selection: AtlasSelection, code: str, paper: str, raster, lang: str,
                 classification: str, number, photos: dict | None = None, what: str = "item") -> Page:
    """An atlas page of ``code``: its briefing page (``what="item"``) or its photo page (``"photos"``).

    ``photos``: the site photos of the atlas's parcels, looked up once for the whole atlas (None: each page
    looks up its own)."""
    if what == "photos":
        return compose_photo_page(store, code, (photos or {}).get(code, []), paper, lang, classification, number)
    if selection.kind == "village":
        return compose_village_page(store, code, paper, raster, lang, classification, number)
    photo = True if photos is None else ((photos.get(code) or [None])[0] or False)
    return compose_parcel_page(store, code, paper, raster, lang, classification, number, photo=photo)


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
    pages_of: list = field(default_factory=list)   # the atlas's item pages in order: (code, "item" | "photos")
    photos: dict | None = None                     # {parcel code: its site photos}, looked up once


_JOB: _Job | None = None  # set before the worker processes fork; they inherit it
_QUEUE = None  # pages composed by the workers, for the progress: (page number, code)
# What the processes share out (multiprocessing Values: each takes the next one when it is free): the next
# item page to compose, and the next page of the PDF to rasterise
_NEXT_ITEM = None
_NEXT_PAGE = None


class _CarriedError(Exception):
    """A project error on its way back from a worker process: its key and parameters
    survive pickling (a RenewalError would come back with only its English text)."""

    def restore(self):
        cls = getattr(errors, self.args[0], errors.RenewalError)
        return cls(self.args[1], **self.args[2])


def _compose_share(_=None) -> list:
    """A worker's part of the item pages: [(item index, page record)], items taken from the shared counter
    as it finishes the last; each finished page is reported on the queue."""
    try:
        return _compose_items(_taken(_NEXT_ITEM, len(_JOB.pages_of)), None)
    except RenewalError as e:
        raise _CarriedError(type(e).__name__, e.key, e.params) from None


def _compose_items(items, on_page) -> list:
    """[(i, record)] of the item pages ``items`` (indices into the job's pages), reported to ``on_page(code)``
    in this process, else on the queue."""
    job = _JOB
    records = []
    for i in items:
        code, what = job.pages_of[i]
        n = job.first_page + i
        page = compose_item(job.store, job.selection, code, job.paper, job.raster, job.lang,
                            job.classification, (n, job.pages), job.photos, what)
        records.append((i, page.record()))
        if on_page is not None:
            on_page(code)
        elif _QUEUE is not None:
            _QUEUE.put((n, code))
    return records


def _write_pngs(pdf, indices, names: list[str], png_dir: str, dpi: int) -> int:
    """Rasterise pages ``indices`` of the atlas's PDF (a path) into ``png_dir``, as ``names``; returns how many."""
    done = 0
    for i, data in pdfwriter.render_pngs(pdf, indices, dpi):
        with open(os.path.join(png_dir, names[i]), "wb") as fh:
            fh.write(data)
        done += 1
    return done


def _taken(counter, n: int):
    """Indices below ``n`` taken one by one from ``counter``, which the atlas's processes share, until none
    is left (all of them, in order, without a counter: one process)."""
    if counter is None:
        yield from range(n)
        return
    while True:
        with counter.get_lock():
            i = counter.value
            counter.value = i + 1
        if i >= n:
            return
        yield i


def _raster_share(args) -> int:
    """A worker's part of the PNGs: pages taken from the shared counter as it finishes the last."""
    pdf, names, png_dir, dpi = args
    return _write_pngs(pdf, _taken(_NEXT_PAGE, len(names)), names, png_dir, dpi)


def _png_names(pages_of: list, n_index: int, first: int) -> list[str]:
    """The zip's file names of the atlas's pages, in page order."""
    names = [_png_name(1, "cover")] + [_png_name(2 + p, f"index{p + 1}") for p in range(n_index)]
    return names + [_png_name(first + i, code if what == "item" else f"{code}_photos")
                    for i, (code, what) in enumerate(pages_of)]


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
                 dpi: int = PNG_DPI, photos: bool = False) -> dict:
    """Write an atlas: a cover, an index, then one page per item of ``selection``, in its order.

    Each parcel's page shows its latest site photo; with ``photos``, a parcel with site photos also gets a
    page of them, right after its own (a parcel atlas; the index gives each parcel's first page).

    Pages are composed by up to ``jobs`` processes (default: the CPUs available)
    and written as one PDF (each font subset once); with ``png_zip``, the pages
    of that PDF are then rasterised (PDFium, at ``dpi``) by the same processes,
    each taking the next page when it is free, into a zip of PNGs.
    ``progress(done, total, label)`` is called after each page is composed.
    Returns ``{"pdf", "png_zip", "pages", "seconds"}``.

    Raises:
        NotFoundError: an unknown code in the selection.
        InputError: bad paper, an unwritable path, an unreadable raster or one outside the selection.
    """
    t0 = time.perf_counter()
    out_pdf = check_target(out_pdf, (".pdf",))
    zip_out = check_target(png_zip, (".zip",)) if png_zip else None
    if paper not in PAPERS:
        raise InputError("brief.bad_paper", paper=paper, known=", ".join(PAPERS))
    if not selection.codes:
        raise InputError("brief.empty_selection")
    settings = settings or _settings()
    with pinned_sheet(store):
        return _render_atlas(store, selection, out_pdf, zip_out, paper, raster, lang, settings, progress, jobs,
                             dpi, t0, photos)


def _render_atlas(store, selection, out_pdf, zip_out, paper, raster, lang, settings, progress, jobs, dpi,
                  t0, photos=False) -> dict:
    global _JOB
    sheet = load_sheet(store)
    if selection.kind == "village":
        bounds = [_village_bounds(sheet, c if c in sheet.villages else store.village_code(c))
                  for c in selection.codes]
    else:
        bounds = [_parcel_extent(sheet, c) for c in selection.codes]
    b = np.asarray(bounds)
    _check_raster_covers(raster, store, lambda sh: (b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max()))
    n_items = len(selection.codes)
    n_index = _index_pages(n_items)
    first = 2 + n_index
    site = site_photos(store, selection.codes) if selection.kind == "parcel" else None
    pages_of = []
    for c in selection.codes:
        pages_of.append((c, "item"))
        if photos and site and site.get(c):
            pages_of.append((c, "photos"))
    item_pages = [first + i for i, (_, what) in enumerate(pages_of) if what == "item"]
    pages = first - 1 + len(pages_of)
    cls = settings.classification
    pdfwriter.faces()  # read once here: the workers inherit them

    _JOB = _Job(store, selection, paper, raster, lang, cls, first, pages, pages_of, site)
    workers = max(1, min(jobs or _cpus(), len(pages_of) // 4 or 1))
    try:
        with tempfile.TemporaryDirectory(prefix="renewal-atlas-") as png_dir, _workers(workers) as ex:
            records, rows = _compose(ex, workers, store, selection, paper, lang, cls, item_pages, pages,
                                     progress or (lambda done, total, label: None))
            with atomic_output(out_pdf) as tmp:
                _write_atlas(records, tmp, rows, selection, lang, [p - 1 for p in item_pages])
                del records
                if zip_out:
                    names = _png_names(pages_of, n_index, first)
                    _rasterise(ex, workers, tmp, names, png_dir, dpi)
                    with atomic_output(zip_out) as ztmp:
                        with zipfile.ZipFile(ztmp, "w", compression=zipfile.ZIP_STORED) as z:
                            for name in names:
                                z.write(os.path.join(png_dir, name), name)
    finally:
        _JOB = None
    return {"pdf": str(out_pdf), "png_zip": str(zip_out) if zip_out else None, "pages": pages,
            "seconds": round(time.perf_counter() - t0, 2)}


@contextmanager
def _workers(n: int):
    """``n - 1`` forked worker processes beside this one (None when ``n`` is 1).

    Forked, so that they inherit the loaded sheet and fonts (``_JOB``) instead of re-reading the store.
    On an error the pool is shut down without waiting for its queued work.
    """
    global _QUEUE, _NEXT_ITEM, _NEXT_PAGE
    if n <= 1:
        yield None
        return
    # Lazy imports, on purpose: a one-process atlas (a page or two, the app's small selections) never
    # starts a pool, and these modules are not otherwise needed by the command line.
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    ctx = mp.get_context("fork")
    _QUEUE, _NEXT_ITEM, _NEXT_PAGE = ctx.SimpleQueue(), ctx.Value("i", 0), ctx.Value("i", 0)
    gc.freeze()  # the collector would otherwise touch, and so copy, every inherited object
    try:
        with ProcessPoolExecutor(max_workers=n - 1, mp_context=ctx) as ex:
            try:
                yield ex
            except BaseException as e:
                for counter in (_NEXT_ITEM, _NEXT_PAGE):  # the workers take nothing more
                    counter.value = 1 << 30
                ex.shutdown(wait=False, cancel_futures=True)
                if isinstance(e, _CarriedError):
                    raise e.restore() from None
                raise
    finally:
        _QUEUE, _NEXT_ITEM, _NEXT_PAGE = None, None, None
        gc.unfreeze()


def _compose(ex, workers, store, selection, paper, lang, cls, item_pages, pages, progress) -> tuple[list, list]:
    """Every page's record, in order, and the index's rows. The workers start on the item pages at once;
    this process does the cover and the index, then joins them: each process takes the next item when it
    is free (pages differ in cost, a process's first page warms its raster reader, and other work on the
    machine slows one process more than another)."""
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

    futures = [ex.submit(_compose_share) for _ in range(workers - 1)] if ex is not None else []
    rows = _index_rows(store, selection, lang)  # while the workers start
    front = _render_front(store, selection, rows, paper, lang, cls, item_pages, pages, report)
    items = _compose_items(_taken(_NEXT_ITEM, len(_JOB.pages_of)), own_pages)  # no counter: one process
    while not all(f.done() for f in futures):
        drain()
        time.sleep(0.01)
    drain()
    for f in futures:
        items += f.result()  # re-raises
    items.sort(key=lambda r: r[0])
    if [i for i, _ in items] != list(range(len(_JOB.pages_of))):
        raise RuntimeError(f"{len(items)} of {len(_JOB.pages_of)} atlas pages composed")
    return front + [r for _, r in items], rows


def _rasterise(ex, workers: int, pdf, names: list[str], png_dir: str, dpi: int) -> None:
    """Every page of the atlas's PDF (a path) as a PNG in ``png_dir``: with workers, each process, this one
    too, takes the next page from a shared counter when it is free (pages differ in cost, and other work
    on the machine slows one process more than another)."""
    futures = [ex.submit(_raster_share, (str(pdf), names, png_dir, dpi)) for _ in range(workers - 1)] if ex else []
    done = _write_pngs(pdf, _taken(_NEXT_PAGE, len(names)), names, png_dir, dpi)
    done += sum(f.result() for f in futures)  # re-raises
    if done != len(names):
        raise RuntimeError(f"{done} of {len(names)} atlas pages rasterised")


def _render_front(store, selection, rows, paper, lang, cls, first, pages, report) -> list:
    """The cover and the index pages, as page records."""
    out = [compose_cover(store, selection, paper, lang, cls, pages).record()]
    report("")
    for part in range(_index_pages(len(selection.codes))):
        out.append(compose_index(store, selection, rows, part, paper, lang, cls, first, pages).record())
        report("")
    return out


def _write_atlas(records: list, path: str, rows: list[dict], selection, lang: str, item_index: list[int]) -> None:
    """The atlas PDF: every page, one bookmark each for the cover, the index and every item (``item_index``:
    each item's page, from 0)."""
    outline = [(t("brief.cover", lang), 0), (t("brief.index", lang), 1)]
    outline += [(f"{r['code']} {r['name']}", item_index[i]) for i, r in enumerate(rows)]
    pdfwriter.write_pdf(path, records, title=selection.label(lang), outline=outline)


def _settings():
    return Settings.load()


def _check_raster_covers(raster, store, bounds_of) -> None:
    """Fail early, before anything is drawn, when the raster is unreadable or misses the area.

    Raises:
        InputError: unreadable raster, no CRS, or no overlap with the area to be printed.
    """
    if hasattr(raster, "background"):  # a basemap: its own raster is checked, tiles are fetched per page
        raster = raster.raster
    if raster is None:
        return
    sheet = load_sheet(store)
    rb = raster_bounds(raster, sheet.epsg)
    area = bounds_of(sheet)
    if not shapely.box(*rb).intersects(shapely.box(*area)):
        raise InputError("brief.raster_outside", path=str(raster))
