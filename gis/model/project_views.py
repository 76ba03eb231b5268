"""What the projects' pages, map layer and briefing page show, as pure functions over the store's
records (``Store.project``, ``Store.projects``, ``gis.model.projects``): the investment curve (plan
against actual, cumulative by month), the amounts in 万元/亿元, a marker's size, a stage's colour,
the indicator board's rows. No store, no streamlit: tested with rows made in code.
"""
from __future__ import annotations

import datetime as dt
import math

import pandas as pd

from gis.base.errors import StageTransitionError
from gis.base.i18n import t
from gis.model.pipelines import NOT_STARTED, Catalog

PIPELINE = "project"  # layers/pipelines.toml [pipelines.project]
WAN_PER_YI = 10000.0  # 1 亿元 = 10,000 万元

#: a marker's radius on the map, in pixels: the smallest project, the biggest
RADIUS_MIN, RADIUS_MAX = 5.0, 22.0


# --------------------------------------------------------------- amounts
def format_wan(amount, lang: str = "zh") -> str:
    """An amount in 万元 as offices write it: ``3,200万元``, ``5.20亿元`` from 1 亿 on;
    in English in million yuan (1 万元 = 0.01 m): ``32.0 m yuan``. None/NaN → ``—``."""
    if amount is None or (isinstance(amount, float) and math.isnan(amount)):
        return "—"
    v = float(amount)
    if lang == "en":
        return t("projects_ui.amount_m", lang, value=f"{v / 100:,.1f}")
    if abs(v) >= WAN_PER_YI:
        return t("projects_ui.amount_yi", lang, value=f"{v / WAN_PER_YI:,.2f}")
    # a day's report of 12.5 万元 keeps its half; whole amounts and big ones read without decimals
    return t("projects_ui.amount_wan", lang, value=f"{v:,.0f}" if v == round(v) or abs(v) >= 1000 else f"{v:,.1f}")


def marker_radius(investment, largest) -> float:
    """The radius (px) of a project's circle: its area ∝ the investment (radius ∝ √investment), so that a
    project of 10 亿 reads as ten of 1 亿; between RADIUS_MIN and RADIUS_MAX."""
    try:
        v, top = max(float(investment or 0), 0.0), float(largest or 0)
    except (TypeError, ValueError):
        return RADIUS_MIN
    if top <= 0 or math.isnan(v) or math.isnan(top):
        return RADIUS_MIN
    return round(RADIUS_MIN + (RADIUS_MAX - RADIUS_MIN) * math.sqrt(min(v / top, 1.0)), 1)


# --------------------------------------------------------------- stages
def project_stage(catalog: Catalog, stage: str | None, lang: str = "zh") -> dict:
    """``{"key", "label", "phase", "color"}`` of a project's stage in the project pipeline, coloured by its
    phase (the map's one legend serves parcels and projects). An unknown stage is shown as itself, grey."""
    pipe = catalog.pipelines.get(PIPELINE)
    if not stage or stage == NOT_STARTED or pipe is None:
        ph = catalog.phases[NOT_STARTED]
        return {"key": stage or NOT_STARTED, "label": stage or ph.label(lang), "phase": ph.key, "color": ph.color}
    try:
        s = pipe.stage(stage)
    except StageTransitionError:  # a stage outside the pipeline (a bad row already stored): shown, marked
        ph = catalog.phases[NOT_STARTED]
        return {"key": stage, "label": f"{stage}（?）", "phase": ph.key, "color": ph.color}
    ph = catalog.phases[s.phase]
    return {"key": stage, "label": s.label(lang), "phase": ph.key, "color": ph.color}


def project_stages(catalog: Catalog, lang: str = "zh") -> list[dict]:
    """Every stage of the project pipeline in order, as :func:`project_stage` gives them."""
    pipe = catalog.pipelines.get(PIPELINE)
    return [project_stage(catalog, k, lang) for k in (pipe.keys if pipe else [])]


# --------------------------------------------------------------- monthly figures
def _month_key(row) -> str | None:
    """'YYYY-MM' of a month given as a dict (year+month, or month 'YYYY-MM', or a date) or a string."""
    if isinstance(row, (dt.date, dt.datetime)):
        return f"{row.year:04d}-{row.month:02d}"
    if isinstance(row, str):
        return row[:7] if len(row) >= 7 else None
    if isinstance(row, dict):
        if row.get("year") is not None and row.get("month") is not None and not isinstance(row.get("month"), str):
            return f"{int(row['year']):04d}-{int(row['month']):02d}"
        for k in ("month", "report_date", "date"):
            if row.get(k) is not None:
                return _month_key(row[k] if not isinstance(row[k], str) else row[k])
    return None


def monthly(values, value_keys=("planned_wan", "invested_wan", "amount_wan", "value", "wan")) -> dict[str, float]:
    """``{"YYYY-MM": 万元}`` from a store's monthly figures in any of their shapes: a dict already keyed
    by month, or rows (dicts) with ``year``+``month`` or ``month``/``report_date`` and a value field.
    Several rows of one month add up (reports of one month)."""
    out: dict[str, float] = {}
    if values is None:
        return out
    if isinstance(values, pd.DataFrame):
        values = values.to_dict("records")
    if isinstance(values, dict):
        items = [(_month_key(k) if not isinstance(k, int) else None, v) for k, v in values.items()]
    else:
        items = []
        for r in values:
            v = next((r[k] for k in value_keys if isinstance(r, dict) and r.get(k) is not None), None)
            items.append((_month_key(r), v))
    for m, v in items:
        if m is None or v is None:
            continue
        try:
            f = float(v)
        except (TypeError, ValueError):
            continue
        if not math.isnan(f):
            out[m] = out.get(m, 0.0) + f
    return out


def project_curve(project: dict, year: int, as_of: dt.date | None = None) -> pd.DataFrame:
    """:func:`investment_curve` of a project record (``Store.project``: ``months`` with ``planned_wan``
    and ``invested_wan``, or separate ``plan``/``actual``)."""
    months = project.get("months")
    if months is not None:
        return investment_curve(monthly(months, ("planned_wan",)), monthly(months, ("invested_wan",)), year, as_of)
    return investment_curve(project.get("plan"), project.get("actual"), year, as_of)


def investment_curve(plan, actual, year: int, as_of: dt.date | None = None) -> pd.DataFrame:
    """Plan against actual of one year, month by month, and cumulative.

    ``plan``/``actual``: monthly figures in 万元 (see :func:`monthly`). Columns: ``month`` ('YYYY-MM'),
    ``planned``, ``actual``, ``planned_cum``, ``actual_cum`` (None after the month of ``as_of``: the line
    stops at today rather than running flat into the future), ``gap_cum`` (actual − plan, to date).
    """
    p, a = monthly(plan), monthly(actual)
    months = [f"{year:04d}-{m:02d}" for m in range(1, 13)]
    last = f"{as_of.year:04d}-{as_of.month:02d}" if as_of else None
    rows, pc, ac = [], 0.0, 0.0
    for m in months:
        pc += p.get(m, 0.0)
        ac += a.get(m, 0.0)
        future = last is not None and m > last
        rows.append({"month": m, "planned": p.get(m, 0.0), "actual": None if future else a.get(m, 0.0),
                     "planned_cum": round(pc, 2), "actual_cum": None if future else round(ac, 2),
                     "gap_cum": None if future else round(ac - pc, 2)})
    return pd.DataFrame(rows)


def curve_long(curve: pd.DataFrame, lang: str = "zh") -> pd.DataFrame:
    """The curve in long form for a chart: ``month``, ``series`` (计划累计/实际累计), ``wan``."""
    names = {"planned_cum": t("projects_ui.series_plan", lang), "actual_cum": t("projects_ui.series_actual", lang)}
    long = curve.melt(id_vars=["month"], value_vars=list(names), var_name="series", value_name="wan")
    long["series"] = long["series"].map(names)
    return long.dropna(subset=["wan"]).reset_index(drop=True)


# --------------------------------------------------------------- reports and indicators
def reports_latest_first(reports) -> list[dict]:
    """A project's reports newest first (by business date, then by when recorded), each with
    ``is_correction`` (it corrects an earlier report: shown marked)."""
    rows = [dict(r) for r in (reports or [])]
    for r in rows:
        r["is_correction"] = bool(r.get("correction_of"))
        r["superseded"] = bool(r.get("superseded"))  # a later correction replaced it: it no longer counts
    return sorted(rows, key=lambda r: (str(r.get("report_date") or ""), str(r.get("recorded_at") or ""),
                                       r.get("id") or 0), reverse=True)


def board_rows(indicators: list[dict], lang: str = "zh") -> pd.DataFrame:
    """The indicator board as a table: indicator, unit, target, actual, expected by now, gap (target −
    actual), behind_by (expected by now − actual: positive when behind), the share done and the candidate
    projects named (code and name)."""
    rows = []
    for r in indicators or []:
        target = _num(r.get("target"))
        actual = _num(r.get("actual"))
        expected = _num(r.get("expected_by_now"))
        cands = r.get("candidates") or []
        names = [" ".join(x for x in (c.get("code"), c.get("name")) if x) if isinstance(c, dict) else str(c)
                 for c in cands]
        behind_by = _num(r.get("behind"))
        if behind_by is None and expected is not None and actual is not None:
            behind_by = round(expected - actual, 2)
        rows.append({
            "indicator": r.get("label") or r.get("name") or r.get("indicator"),
            "key": r.get("indicator"),
            "unit": r.get("unit") or "",
            "target": target, "actual": actual, "expected_by_now": expected,
            "gap": _num(r.get("gap")) if r.get("gap") is not None else (
                round(target - actual, 2) if target is not None and actual is not None else None),
            "behind_by": behind_by,
            "done_share": round(100 * actual / target, 1) if target and actual is not None else None,
            "behind": bool(behind_by is not None and behind_by > 0),
            "candidates": ("; " if lang == "en" else "；").join(n for n in names if n),
        })
    return pd.DataFrame(rows, columns=["indicator", "key", "unit", "target", "actual", "expected_by_now", "gap",
                                       "behind_by", "done_share", "behind", "candidates"])


def bullet_long(board: pd.DataFrame, lang: str = "zh") -> pd.DataFrame:
    """The board as shares of each indicator's target (a bullet chart: target = 100 %), long form:
    ``indicator``, ``measure`` (实际/应完成), ``share`` (%)."""
    out = []
    for r in board.itertuples(index=False):
        if not r.target:
            continue
        for name, v in (("actual", r.actual), ("expected_by_now", r.expected_by_now)):
            if v is not None and not (isinstance(v, float) and math.isnan(v)):
                out.append({"indicator": r.indicator, "measure": t(f"projects_ui.col_{name}", lang),
                            "share": round(100 * float(v) / float(r.target), 1)})
    return pd.DataFrame(out, columns=["indicator", "measure", "share"])


def _num(v):
    if v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f
