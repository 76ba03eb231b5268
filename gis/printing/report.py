"""The dispatch-meeting pack (调度会材料): what changed between two meetings, as PDF, Word or Excel.

Contents: the headline numbers with their change since the last meeting; a map
of what changed; per village and per unit what advanced, what went back and
why; the blocked parcels with their reasons and days blocked; the trend
charts; the period and the data source on every page. A monthly report (月报)
is the same over a month, with a cover.

``build_report`` gathers the figures from the store (a pure replay of the
event log, ``gis.model.timeline``); ``write_report`` writes them in the format
the file name asks for.
"""
# Lazy imports, on purpose: matplotlib, python-docx and openpyxl are imported inside the writers,
# so that the command line and the app start without those heavy libraries.
from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from gis.base import clock
from gis.base.errors import InputError
from gis.base.fileio import atomic_path
from gis.base.i18n import t
from gis.base.sheets import text_sheet
from gis.base.units import M2_PER_MU, gk_epsg
from gis.model.timeline import Moment, changes_between, parse_as_recorded, state_at, trend_by_month
from gis.printing import fonts

FORMATS = (".pdf", ".docx", ".xlsx")
CHANGE_COLORS = {"advanced": "#1a9850", "back": "#d73027", "blocked": "#7b3294", "unblocked": "#4575b4"}


@dataclass
class DispatchReport:
    """Everything a dispatch-meeting pack shows, already labelled in its language."""

    since: dt.date
    until: dt.date
    lang: str
    scope: str
    made: str
    source: str
    demo: bool
    classification: str
    headline: list[tuple[str, str, str]]          # (label, value at the end, change since the start)
    changes: pd.DataFrame                          # one row per parcel and change, labelled
    by_village: pd.DataFrame
    by_unit: pd.DataFrame
    blocked: pd.DataFrame
    trend: pd.DataFrame
    targets: pd.DataFrame = field(default_factory=pd.DataFrame)     # overdue and due-soon targets (status_rows)
    followups: pd.DataFrame = field(default_factory=pd.DataFrame)   # open follow-up orders (督办)
    plan_trend: pd.DataFrame = field(default_factory=pd.DataFrame)  # month, planned, actual (cumulative targets)
    phases: dict[str, tuple[str, str]] = field(default_factory=dict)  # phase key → (label, colour)
    figures: dict[str, bytes] = field(default_factory=dict)  # PNG: "map", "cleared", "phases"
    counts: dict[str, int] = field(default_factory=dict)

    def tr(self, key: str, **params) -> str:
        return t(f"report.{key}", self.lang, **params)

    @property
    def title(self) -> str:
        return self.tr("title_month" if self.is_month else "title")

    @property
    def is_month(self) -> bool:
        """The period is one calendar month: the pack is a monthly report (月报), with a cover."""
        nxt = (self.until + dt.timedelta(days=1))
        return self.since.day == 1 and nxt.day == 1 and (nxt - dt.timedelta(days=1)).month == self.since.month

    @property
    def period(self) -> str:
        return self.tr("period", since=self.since.isoformat(), until=self.until.isoformat())

    @property
    def footer(self) -> str:
        mark = " · " + t("app.demo_mark", self.lang) if self.demo else ""
        return self.tr("footer", period=self.period, source=self.source, made=self.made) + mark


def _mu(m2: float) -> float:
    return round(float(m2) / M2_PER_MU, 1)


def build_report(store, since: dt.date, until: dt.date | None = None, *, zone: str | None = None,
                 unit: str | None = None, village: str | None = None, lang: str = "zh",
                 classification: str = "", progress=None) -> DispatchReport:
    """The figures of a dispatch-meeting pack for ``since``..``until`` (inclusive; default today).

    Raises:
        InputError: ``since`` after ``until``; ``until`` after the office's today.
        NotFoundError: an unknown zone, village or unit.
    """
    today = clock.office_today()
    until = until or today
    if until > today:  # a pack of the future would show today's state under a later date
        raise InputError("report.until_future", until=until.isoformat(), today=today.isoformat())
    if since > until:
        raise InputError("error.bad_period", since=since.isoformat(), until=until.isoformat())
    step = progress or (lambda done, total, label: None)
    parcels = store.parcels(zone=zone, village=village, geometry=True)
    if unit:
        unit = store.unit_name(unit)  # a mistyped unit is refused, not an empty pack
        parcels = parcels[parcels["unit"] == unit]
    events = store.events()
    events = events[events["parcel"].isin(parcels["code"])]
    cat = store.catalog
    step(1, 5, "state")
    start = Moment(as_of=since - dt.timedelta(days=1),
                   as_recorded=parse_as_recorded((since - dt.timedelta(days=1)).isoformat()))
    end = Moment(as_of=until, as_recorded=parse_as_recorded(until.isoformat()))
    table = pd.DataFrame(parcels.drop(columns=parcels.geometry.name))
    before, after = state_at(table, events, cat, start), state_at(table, events, cat, end)
    changes = changes_between(table, events, cat, since, until)
    step(2, 5, "tables")
    names = {tb: store.names(tb) for tb in ("zones", "villages")}
    pick = (lambda tb, c: (names[tb].get(c) or (c, c))[1 if lang == "en" else 0] or c if c else "")
    label = (lambda kind, s: cat.stage_label(kind, s, lang) if isinstance(s, str) else cat.stage_label(kind, None, lang))
    name_of = dict(zip(table["code"], table["name"]))
    ch = changes.copy()
    ch["name"] = ch["code"].map(name_of)
    ch["village_name"] = [pick("villages", v) for v in ch["village"]]
    ch["from_label"] = [label(k, s) for k, s in zip(ch["kind"], ch["from_stage"])]
    ch["to_label"] = [label(k, s) for k, s in zip(ch["kind"], ch["to_stage"])]
    ch["change_label"] = [t(f"report.change_{c}", lang) for c in ch["change"]]

    def summary(col: str, names_of) -> pd.DataFrame:
        if not len(ch):
            return pd.DataFrame(columns=[col, *CHANGE_COLORS])
        g = ch.assign(key=ch[col].fillna("")).pivot_table(index="key", columns="change", values="code",
                                                          aggfunc="count", fill_value=0)
        for c in CHANGE_COLORS:
            if c not in g.columns:
                g[c] = 0
        g = g[list(CHANGE_COLORS)].reset_index()
        g.insert(0, col, [names_of(k) for k in g["key"]])
        return g.drop(columns="key").sort_values(list(CHANGE_COLORS)[:2], ascending=False)

    by_village = summary("village", lambda v: pick("villages", v) or t("report.no_village", lang))
    by_unit = summary("unit", lambda u: u or t("report.no_unit", lang))
    blocked = _blocked_list(after, events, until, lang, pick)
    step(3, 5, "trend")
    trend = trend_by_month(table, events, cat, until=until,
                           since=dt.date(until.year - 1, until.month, 1) if until.month < 12 else dt.date(until.year, 1, 1))
    past = {(k, s.key) for k in cat.kinds for s in cat.pipeline_for(k).stages if s.past_clearance}
    area = table["area_m2"].astype(float).to_numpy()

    def cleared(state) -> float:
        mask = np.fromiter(((k, s) in past for k, s in zip(state["kind"], state["stage"])), bool, len(state))
        return float(area[mask].sum())

    c0, c1 = cleared(before), cleared(after)
    n = {c: int((changes["change"] == c).sum()) for c in CHANGE_COLORS}
    b0, b1 = int(before["blocked"].sum()), int(after["blocked"].sum())
    headline = [
        (t("report.h_parcels", lang), f"{len(table)}", ""),
        (t("report.h_area", lang), f"{_mu(area.sum()):,.1f}", ""),
        (t("report.h_cleared", lang), f"{_mu(c1):,.1f}", f"{_mu(c1 - c0):+,.1f}"),
        (t("report.h_advanced", lang), f"{n['advanced']}", ""),
        (t("report.h_back", lang), f"{n['back']}", ""),
        (t("report.h_blocked", lang), f"{b1}", f"{b1 - b0:+d}"),
    ]
    targets, followups, plan_trend = _plan_parts(store, table, until, zone, unit, village, lang, trend)
    n["overdue"] = int((targets["status"] == "overdue").sum()) if len(targets) else 0
    n["due_soon"] = int((targets["status"] == "due_soon").sum()) if len(targets) else 0
    n["open_followups"] = len(followups)
    n["overdue_followups"] = int(followups["overdue"].sum()) if len(followups) else 0
    headline += [(t("report.h_overdue", lang), f"{n['overdue']}", ""),
                 (t("report.h_due_soon", lang), f"{n['due_soon']}", ""),
                 (t("report.h_followups", lang), f"{n['open_followups']}", "")]
    meta = store.meta()
    scope = "、".join(x for x in (pick("zones", store.zone_code(zone)) if zone else "",
                                  pick("villages", store.village_code(village)) if village else "",
                                  unit or "") if x) or t("report.scope_all", lang)
    rep = DispatchReport(
        since=since, until=until, lang=lang, scope=scope, made=clock.office_now().strftime("%Y-%m-%d %H:%M"),
        source=meta.get("data_source") or store.location, demo=meta.get("demo") == "1",
        classification=classification, headline=headline, changes=ch, by_village=by_village, by_unit=by_unit,
        blocked=blocked, trend=trend, counts={**n, "blocked_now": b1, "parcels": len(table)},
        targets=targets, followups=followups, plan_trend=plan_trend,
        phases={k: (ph.label(lang), ph.color) for k, ph in cat.phases.items()})
    step(4, 5, "figures")
    rep.figures = _figures(rep, parcels, changes)
    step(5, 5, "done")
    return rep


def _plan_parts(store, table: pd.DataFrame, until: dt.date, zone, unit, village, lang: str,
                trend: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """From the plans: the overdue and due-soon targets at ``until`` (most late first), the follow-up
    orders still open then, and planned against actual by month (targets due, targets reached, cumulative)."""
    rows = [r for r in store.status_rows(until, village, zone, unit, lang=lang) if r["status"] != "stalled"]
    allt = pd.DataFrame(rows, columns=["object", "name", "stage_label", "due", "status", "days_late", "days_left",
                                       "reached_on", "unit", "baseline_label"] if not rows else None)
    late = allt[allt["status"].isin(("overdue", "due_soon"))].copy()
    late["status_label"] = [t(f"plans.status_{s}", lang) for s in late["status"]]
    late = late.sort_values(["status", "days_late", "days_left"], ascending=[False, False, True]).reset_index(drop=True)
    scoped = bool(zone or unit or village)
    codes = None
    if scoped:
        codes = set(table["code"]) | {v for c in ("village", "park") if c in table for v in table[c] if v}
    orders = pd.DataFrame(store.followups(open_only=True, unit=unit, as_of=until, codes=codes),
                          columns=["id", "on", "unit", "due", "text", "issued_by", "state", "overdue", "last_text"])
    orders["state_label"] = [t(f"plans.state_{s}", lang) for s in orders["state"]]
    orders = orders.sort_values(["overdue", "due"], ascending=[False, True]).reset_index(drop=True)
    plan = pd.DataFrame(columns=["month", "planned", "actual"])
    if len(allt) and len(trend):
        due = allt["due"].astype(str).str.slice(0, 10)
        reached = allt["reached_on"].dropna().astype(str).str.slice(0, 10)
        plan = pd.DataFrame({"month": trend["month"],
                             "planned": [int((due <= d).sum()) for d in trend["date"]],
                             "actual": [int((reached <= d).sum()) for d in trend["date"]]})
    return late, orders, plan


def _blocked_list(state: pd.DataFrame, events: pd.DataFrame, until: dt.date, lang: str, pick) -> pd.DataFrame:
    """The parcels blocked at the end, with their reason and how many days they have been blocked."""
    b = state[state["blocked"].astype(bool)]
    blocks = events[(events["action"] == "block") & (events["event_date"].astype(str).str.slice(0, 10)
                                                     <= until.isoformat())]
    since = blocks.sort_values("id").drop_duplicates("parcel", keep="last").set_index("parcel")["event_date"]
    out = pd.DataFrame({
        "code": b["code"], "name": b["name"], "village_name": [pick("villages", v) for v in b["village"]],
        "unit": b["unit"], "reason": b["blocked_reason"],
        "since": [str(since.get(c) or "")[:10] for c in b["code"]],
    })
    out["days"] = [(until - dt.date.fromisoformat(s)).days if s else None for s in out["since"]]
    return out.sort_values("days", ascending=False, na_position="last").reset_index(drop=True)


# ------------------------------------------------------------------ figures
def _figures(rep: DispatchReport, parcels, changes: pd.DataFrame) -> dict[str, bytes]:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    out = {}
    with matplotlib.rc_context(fonts.rc_params()), fonts.fonts_in_memory():
        # the map of what changed, in the local Gauss-Krüger zone
        fig = Figure(figsize=(7.0, 5.0), dpi=150)
        ax = fig.add_axes((0, 0, 1, 0.93))
        ax.set_axis_off()
        if len(parcels):
            lon = float(parcels.geometry.union_all().centroid.x)
            local = parcels.to_crs(epsg=gk_epsg(lon))
            local.plot(ax=ax, color="#e0e0e0", edgecolor="#bdbdbd", linewidth=0.2)
            for change, color in CHANGE_COLORS.items():
                sel = local[local["code"].isin(changes.loc[changes["change"] == change, "code"])]
                if len(sel):  # the parcel, and a dot on it: at district scale a parcel is a few pixels
                    sel.plot(ax=ax, color=color, edgecolor="#333333", linewidth=0.3)
                    pts = sel.geometry.representative_point()
                    ax.scatter(pts.x, pts.y, s=28, color=color, edgecolors="white", linewidths=0.8, zorder=5)
            ax.set_aspect("equal")
        handles = [Patch(facecolor=c, label=f"{rep.tr('change_' + k)} {rep.counts.get(k, 0)}")
                   for k, c in CHANGE_COLORS.items()]
        ax.legend(handles=handles, loc="lower right", fontsize=8, frameon=True)
        fig.suptitle(rep.tr("fig_map"), fontsize=11)
        out["map"] = _png(fig)
        tr = rep.trend
        months = list(tr["month"])
        x = np.arange(len(months))
        ticks = x[:: max(1, len(x) // 12)]
        fig = Figure(figsize=(7.0, 3.0), dpi=150)
        ax = fig.add_axes((0.1, 0.2, 0.86, 0.68))
        ax.plot(x, tr["area_mu_cleared"], color="#1a9850", marker="o", markersize=3)
        ax.set_xticks(ticks, [months[i] for i in ticks], rotation=45, fontsize=7)
        ax.set_ylabel(rep.tr("axis_mu"), fontsize=8)
        ax.grid(alpha=0.3)
        ax.set_title(rep.tr("fig_cleared"), fontsize=10)
        out["cleared"] = _png(fig)
        fig = Figure(figsize=(7.0, 3.0), dpi=150)
        ax = fig.add_axes((0.1, 0.2, 0.66, 0.68))
        phases = [c for c in tr.columns if c.startswith("phase_")]
        colors = [rep.phases.get(p.removeprefix("phase_"), ("", "#999999"))[1] for p in phases]
        ax.stackplot(x, *[tr[c] for c in phases], labels=[c.removeprefix("phase_") for c in phases], colors=colors)
        ax.set_xticks(ticks, [months[i] for i in ticks], rotation=45, fontsize=7)
        ax.set_ylabel(rep.tr("axis_parcels"), fontsize=8)
        ax.set_title(rep.tr("fig_phases"), fontsize=10)
        ax.legend(handles=[Patch(facecolor=c, label=rep.phases.get(p.removeprefix("phase_"), (p, ""))[0])
                           for c, p in zip(colors, phases)], loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=7)
        out["phases"] = _png(fig)
        pt = rep.plan_trend
        if len(pt):
            fig = Figure(figsize=(7.0, 3.0), dpi=150)
            ax = fig.add_axes((0.1, 0.2, 0.86, 0.68))
            xp = np.arange(len(pt))
            ax.plot(xp, pt["planned"], color="#4575b4", linestyle="--", marker="o", markersize=3,
                    label=rep.tr("c_planned"))
            ax.plot(xp, pt["actual"], color="#1a9850", marker="o", markersize=3, label=rep.tr("c_actual"))
            tks = xp[:: max(1, len(xp) // 12)]
            ax.set_xticks(tks, [list(pt["month"])[i] for i in tks], rotation=45, fontsize=7)
            ax.set_ylabel(rep.tr("axis_targets"), fontsize=8)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7, loc="upper left")
            ax.set_title(rep.tr("fig_plan"), fontsize=10)
            out["plan"] = _png(fig)
    return out


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


# ------------------------------------------------------------------ tables, labelled
def _tables(rep: DispatchReport) -> list[tuple[str, list[str], list[list]]]:
    """(title, headers, rows) of each table the pack shows, in order."""
    tr = rep.tr
    ch = rep.changes
    change_rows = [[r.change_label, r.code, r.name or "", r.village_name, r.unit or "", r.from_label, r.to_label,
                    str(r.event_date)[:10], r.recorded_by or "", r.why or ""] for r in ch.itertuples()]
    heads = [tr(k) for k in ("c_change", "c_code", "c_name", "c_village", "c_unit", "c_from", "c_to", "c_date",
                             "c_by", "c_why")]
    count_heads = [tr("change_" + k) for k in CHANGE_COLORS]
    return [
        (tr("t_changes"), heads, change_rows),
        (tr("t_by_village"), [tr("c_village"), *count_heads], rep.by_village.values.tolist()),
        (tr("t_by_unit"), [tr("c_unit"), *count_heads], rep.by_unit.values.tolist()),
        (tr("t_blocked"), [tr(k) for k in ("c_code", "c_name", "c_village", "c_unit", "c_reason", "c_since", "c_days")],
         [[r.code, r.name or "", r.village_name, r.unit or "", r.reason or "", r.since,
           "" if r.days is None or pd.isna(r.days) else int(r.days)] for r in rep.blocked.itertuples()]),
        (tr("t_targets"), [tr(k) for k in ("c_object", "c_name", "c_stage", "c_due", "c_status", "c_days_late",
                                          "c_unit")],
         [[r.object, r.name or "", r.stage_label, r.due, r.status_label, int(r.days_late) or "", r.unit or ""]
          for r in rep.targets.itertuples()]),
        (tr("t_followups"), [tr(k) for k in ("c_order", "c_object", "c_unit", "c_due", "c_state", "c_text")],
         [[f"#{r.id}", r.on, r.unit or "", r.due, r.state_label + (tr("overdue_mark") if r.overdue else ""),
           r.text or ""] for r in rep.followups.itertuples()]),
        (tr("t_trend"), [tr("c_month"), tr("axis_mu"), tr("h_advanced"), tr("h_blocked")],
         [[r.month, r.area_mu_cleared, r.advanced, r.blocked] for r in rep.trend.itertuples()]),
        *([(tr("t_plan"), [tr("c_month"), tr("c_planned"), tr("c_actual")],
            [[r.month, r.planned, r.actual] for r in rep.plan_trend.itertuples()])] if len(rep.plan_trend) else []),
    ]


# ------------------------------------------------------------------ writers
def write_report(rep: DispatchReport, out: Path | str) -> dict:
    """Write the pack as ``out``'s suffix says (.pdf, .docx, .xlsx), atomically.
    Returns ``{"file", "format", "pages"|"sections", "counts"}``.

    Raises:
        InputError: an unknown suffix, or a folder that cannot be written.
    """
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in FORMATS:
        raise InputError("report.bad_format", name=out.name, known=", ".join(FORMATS))
    if not out.parent.is_dir():
        raise InputError("brief.unwritable", path=str(out))
    try:
        with atomic_path(out) as tmp:
            written = {".pdf": _write_pdf, ".docx": _write_docx, ".xlsx": _write_xlsx}[suffix](rep, tmp)
    except OSError as e:
        raise InputError("brief.unwritable", path=str(out)) from e
    return {"file": str(out), "format": suffix[1:], **written, "counts": rep.counts}


def _write_xlsx(rep: DispatchReport, path: Path) -> dict:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    ws = wb.active
    ws.title = rep.tr("s_summary")
    ws.append([rep.title])
    ws["A1"].font = Font(bold=True, size=14)
    ws.append([rep.period])
    ws.append([rep.tr("scope", scope=rep.scope)])
    ws.append([])
    ws.append([rep.tr("c_item"), rep.tr("c_value"), rep.tr("c_change_since")])
    for row in rep.headline:
        ws.append([_cell(v) for v in row])
    ws.append([])
    ws.append([rep.footer])
    if rep.classification:
        ws.append([rep.classification])
    sheets = 1
    for title, heads, rows in _tables(rep):
        sh = wb.create_sheet(title[:31])
        sh.append(heads)
        for c in sh[1]:
            c.font = Font(bold=True)
        for r in rows:
            sh.append([_cell(v) for v in r])
        sh.freeze_panes = "A2"
        sheets += 1
    for sheet in wb.worksheets:  # text Excel would run as a formula is written as text (gis.base.sheets)
        text_sheet(sheet)
    wb.save(path)
    return {"sections": sheets}


def _cell(v):
    """A value for a spreadsheet cell: numbers stay numbers, anything else text."""
    if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
        return v.item() if hasattr(v, "item") else v
    return "" if v is None else str(v)


def _write_docx(rep: DispatchReport, path: Path) -> dict:
    from docx import Document
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.oxml.ns import qn
    from docx.shared import Cm, Pt

    doc = Document()
    style = doc.styles["Normal"]
    style.font.name = "宋体"
    style.font.size = Pt(10.5)
    style.element.rPr.rFonts.set(qn("w:eastAsia"), "宋体")
    section = doc.sections[0]
    section.footer.paragraphs[0].text = rep.footer + (f"  {rep.classification}" if rep.classification else "")
    if rep.is_month:
        doc.add_paragraph().add_run("\n" * 6)
        title = doc.add_heading(rep.title, level=0)
        title.alignment = WD_ALIGN_PARAGRAPH.CENTER
        p = doc.add_paragraph(rep.period + "\n" + rep.tr("scope", scope=rep.scope))
        p.alignment = WD_ALIGN_PARAGRAPH.CENTER
        doc.add_page_break()
    else:
        doc.add_heading(rep.title, level=0)
        doc.add_paragraph(rep.period + "    " + rep.tr("scope", scope=rep.scope))
    doc.add_heading(rep.tr("t_headline"), level=1)
    table = doc.add_table(rows=1, cols=3)
    table.style = "Table Grid"
    for c, h in zip(table.rows[0].cells, (rep.tr("c_item"), rep.tr("c_value"), rep.tr("c_change_since"))):
        c.text = h
    for row in rep.headline:
        for c, v in zip(table.add_row().cells, row):
            c.text = v
    sections = 1
    for key in ("map", "cleared", "phases", "plan"):
        if key in rep.figures:
            doc.add_picture(io.BytesIO(rep.figures[key]), width=Cm(15))
    for title, heads, rows in _tables(rep):
        doc.add_heading(title, level=1)
        sections += 1
        if not rows:
            doc.add_paragraph(rep.tr("none"))
            continue
        tb = doc.add_table(rows=1, cols=len(heads))
        tb.style = "Table Grid"
        for c, h in zip(tb.rows[0].cells, heads):
            c.text = str(h)
        for r in rows:
            for c, v in zip(tb.add_row().cells, r):
                c.text = "" if v is None else str(v)
    doc.save(path)
    return {"sections": sections}


def _write_pdf(rep: DispatchReport, path: Path) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.backends.backend_pdf import PdfPages
    from matplotlib.figure import Figure
    from PIL import Image

    width, height = 8.27, 11.69  # A4 portrait, inches
    pages = 0
    with matplotlib.rc_context(fonts.rc_params()), fonts.fonts_in_memory(), PdfPages(path) as pdf:
        def page(landscape: bool = False):
            fig = Figure(figsize=(height, width) if landscape else (width, height))
            fig.text(0.5, 0.02, rep.footer, ha="center", fontsize=6.5, color="#555555")
            if rep.classification:
                fig.text(0.95, 0.975, rep.classification, ha="right", fontsize=7, color="#b2182b")
            return fig

        def done(fig):
            nonlocal pages
            pdf.savefig(fig)
            pages += 1

        if rep.is_month:
            fig = page()
            fig.text(0.5, 0.6, rep.title, ha="center", fontsize=26, weight="bold")
            fig.text(0.5, 0.52, rep.period, ha="center", fontsize=13)
            fig.text(0.5, 0.48, rep.tr("scope", scope=rep.scope), ha="center", fontsize=11)
            done(fig)
        fig = page()
        fig.text(0.06, 0.95, rep.title, fontsize=17, weight="bold")
        fig.text(0.06, 0.925, rep.period + "    " + rep.tr("scope", scope=rep.scope), fontsize=9)
        y = 0.89
        for label, value, change in rep.headline:
            fig.text(0.08, y, label, fontsize=10)
            fig.text(0.55, y, value, fontsize=10, ha="right", weight="bold")
            fig.text(0.58, y, change, fontsize=9, color="#1a9850" if change.startswith("+") else "#d73027")
            y -= 0.019  # nine rows, with the plan's: the map below still clear of them
        for key, box in (("map", (0.06, 0.41, 0.88, 0.31)), ("cleared", (0.06, 0.22, 0.88, 0.19)),
                         ("phases", (0.06, 0.04, 0.88, 0.17))):
            ax = fig.add_axes(box)
            ax.imshow(np.asarray(Image.open(io.BytesIO(rep.figures[key]))))
            ax.set_axis_off()
        done(fig)
        for title, heads, rows in _tables(rep):
            widths = _column_widths(heads, rows)
            per_page = 44 if len(heads) <= 6 else 28
            # planned against actual heads the page of the open orders (both portrait), which then holds fewer rows
            chart = "plan" in rep.figures and title == rep.tr("t_followups")
            first = 20 if chart else per_page
            chunks = [rows[:first]] + [rows[i:i + per_page] for i in range(first, len(rows), per_page)]
            for k, chunk in enumerate(chunks):
                fig = page(landscape=len(heads) > 6)
                top = 0.92
                if chart and k == 0:
                    fig.text(0.06, 0.95, rep.tr("fig_plan"), fontsize=13, weight="bold")
                    ax = fig.add_axes((0.06, 0.57, 0.88, 0.36))
                    ax.imshow(np.asarray(Image.open(io.BytesIO(rep.figures["plan"]))))
                    ax.set_axis_off()
                    top = 0.52
                fig.text(0.06, top + 0.03, title + (f" ({k + 1}/{len(chunks)})" if len(chunks) > 1 else ""),
                         fontsize=13, weight="bold")
                _draw_table(fig, heads, chunk, widths, top=top, empty=rep.tr("none"))
                done(fig)
    return {"pages": pages}


def _column_widths(heads, rows) -> list[float]:
    """Shares of the page width per column, from the longest text in each (CJK counted double)."""
    def w(v) -> int:
        s = "" if v is None else str(v)
        return sum(2 if ord(ch) > 0x2E80 else 1 for ch in s)

    raw = [max([w(h)] + [min(w(r[i]), 28) for r in rows]) + 1 for i, h in enumerate(heads)]
    total = sum(raw)
    return [x / total for x in raw]


def _fit(text: str, points: float, size: float) -> str:
    """``text`` cut (with an ellipsis) to what ``points`` of line hold at font ``size`` (CJK one em, Latin ~0.55)."""
    used = 0.0
    for i, ch in enumerate(text):
        used += size * (1.0 if ord(ch) > 0x2E80 else 0.56)
        if used > points:
            return text[: max(i - 1, 1)] + "…"
    return text


def _draw_table(fig, heads, rows, widths, top: float, empty: str) -> None:
    left, span, line = 0.05, 0.90, 0.019
    size = 7 if len(heads) > 6 else 8
    page_points = fig.get_figwidth() * 72

    def draw(y, values, bold=False):
        x = left
        for v, wdt in zip(values, widths):
            s = "" if v is None else str(v)
            fig.text(x, y, _fit(s, wdt * span * page_points - size * 0.6, size), fontsize=size,
                     weight="bold" if bold else "normal", va="top")
            x += wdt * span

    draw(top, heads, bold=True)
    fig.add_artist(matplotlib_line(fig, left, left + span, top - line * 0.9))
    if not rows:
        fig.text(left, top - 1.5 * line, empty, fontsize=size, va="top", color="#555555")
    for i, r in enumerate(rows):
        draw(top - (i + 1.2) * line, r)


def matplotlib_line(fig, x0: float, x1: float, y: float):
    from matplotlib.lines import Line2D

    return Line2D([x0, x1], [y, y], transform=fig.transFigure, color="#555555", linewidth=0.6)
