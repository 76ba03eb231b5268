"""Key projects (重点项目): the configuration, the daily dispatch table and the year's indicators.

The rules that need no database live here, over tables the store hands out
(``Store.project_rollup``: one row per project with its sums, computed by the
database with GROUP BY):

* **dispatch** (日调度): every listed project of at least ``threshold_wan`` reports each working
  day (or once a week, by setting); the table shows the reports of the day (or week), the projects
  whose report is missing, and those behind their monthly plan;
* **indicators**: named indicators with a year's target, their actual rolled up from the projects,
  the actual expected by the day (by the projects' monthly plans, or linear over the year — each
  indicator says which), the gap (target − actual) and the projects that could close it
  (缺什么补什么).

Configuration: ``layers/projects.toml`` (kinds, industries, lists, dispatch, indicators); stages:
``[pipelines.project]`` of ``layers/pipelines.toml``.
"""
from __future__ import annotations

import calendar
import datetime as dt
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from gis.base.clock import office_today
from gis.base.errors import InputError
from gis.model.pipelines import default_layers_dir

CADENCES = ("daily", "weekly")
MEASURES = ("invested", "output", "started", "production", "signed")
#: candidates shown per indicator
CANDIDATES = 10


@dataclass(frozen=True)
class Named:
    key: str
    label_zh: str
    label_en: str

    def label(self, lang: str = "zh") -> str:
        return self.label_en if lang == "en" and self.label_en else self.label_zh


@dataclass(frozen=True)
class Industry(Named):
    output_targets: dict = field(default_factory=dict)  # {year: 万元}


@dataclass(frozen=True)
class Indicator(Named):
    measure: str = "invested"
    unit: str = "万元"
    expected: str = "linear"  # "plan" | "linear"
    industry: str | None = None
    rate: float = 1.0
    min_total_wan: float = 0.0
    years: dict = field(default_factory=dict)  # {year: {"target"} | {"previous", "growth"}}


@dataclass(frozen=True)
class ProjectConfig:
    kinds: dict[str, Named]
    industries: dict[str, Industry]
    lists: dict[str, Named]
    indicators: dict[str, Indicator]
    cadence: str = "daily"
    threshold_wan: float = 500.0
    behind_tolerance: float = 0.10
    exempt_stages: tuple = ("completed",)

    @staticmethod
    def _key(table: dict, value, what: str) -> str | None:
        v = str(value or "").strip()
        if not v:
            return None
        for k, n in table.items():
            if v.lower() in (k.lower(), n.label_zh.lower(), n.label_en.lower()):
                return k
        raise InputError("projects.unknown_" + what, value=v,
                         known="、".join(f"{n.label_zh}（{k}）" for k, n in table.items()))

    def kind_key(self, value) -> str | None:
        """The kind a key or label names (None for nothing). Raises InputError: unknown."""
        return self._key(self.kinds, value, "kind")

    def industry_key(self, value) -> str | None:
        return self._key(self.industries, value, "industry")

    def list_key(self, value) -> str | None:
        return self._key(self.lists, value, "list")

    def target(self, ind: Indicator, year: int) -> float | None:
        """The indicator's target for ``year``: ``target``, or ``previous × (1 + growth)``, or (for an
        industry's output) the industry's output target; None when the year has none."""
        y = ind.years.get(year) or ind.years.get(str(year)) or {}
        if "target" in y:
            return float(y["target"])
        if "previous" in y:
            return float(y["previous"]) * (1 + float(y.get("growth", 0)))
        if ind.measure == "output" and ind.industry in self.industries:
            t = self.industries[ind.industry].output_targets
            v = t.get(year, t.get(str(year)))
            return float(v) if v is not None else None
        return None


def load_project_config(path: Path | str | None = None) -> ProjectConfig:
    """Read ``layers/projects.toml``.

    Raises:
        InputError: missing or malformed (an unknown cadence, measure or industry named).
    """
    path = Path(path) if path else default_layers_dir() / "projects.toml"
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
        named = (lambda sect: {k: Named(k, v["label_zh"], v.get("label_en", "")) for k, v in data[sect].items()})
        industries = {k: Industry(k, v["label_zh"], v.get("label_en", ""),
                                  {int(y): float(t) for y, t in v.get("output_targets", {}).items()})
                      for k, v in data["industries"].items()}
        indicators = {}
        for k, v in data.get("indicators", {}).items():
            indicators[k] = Indicator(
                k, v["label_zh"], v.get("label_en", ""), measure=v.get("measure", "invested"),
                unit=v.get("unit", "万元"), expected=v.get("expected", "linear"), industry=v.get("industry"),
                rate=float(v.get("rate", 1.0)), min_total_wan=float(v.get("min_total_wan", 0)),
                years={int(y): dict(t) for y, t in v.get("years", {}).items()})
        d = data.get("dispatch", {})
        cfg = ProjectConfig(kinds=named("kinds"), industries=industries, lists=named("lists"), indicators=indicators,
                            cadence=d.get("cadence", "daily"), threshold_wan=float(d.get("threshold_wan", 500)),
                            behind_tolerance=float(d.get("behind_tolerance", 0.1)),
                            exempt_stages=tuple(d.get("exempt_stages", ["completed"])))
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as e:
        raise InputError("error.bad_catalog", path=str(path), detail=str(e)) from e
    bad = [f"cadence {cfg.cadence}"] if cfg.cadence not in CADENCES else []
    bad += [f"{i.key}: measure {i.measure}" for i in indicators.values() if i.measure not in MEASURES]
    bad += [f"{i.key}: industry {i.industry}" for i in indicators.values()
            if i.industry and i.industry not in industries]
    bad += [f"{i.key}: expected {i.expected}" for i in indicators.values() if i.expected not in ("plan", "linear")]
    if bad:
        raise InputError("error.bad_catalog", path=str(path), detail="; ".join(bad))
    return cfg


# --------------------------------------------------------------------------- dates
def year_bounds(year: int) -> tuple[dt.date, dt.date]:
    return dt.date(year, 1, 1), dt.date(year, 12, 31)


def report_window(day: dt.date, cadence: str) -> tuple[dt.date, dt.date]:
    """The period one report covers: the day itself (daily), or Monday to ``day`` of its week (weekly)."""
    if cadence == "weekly":
        return day - dt.timedelta(days=day.weekday()), day
    return day, day


def due_on(day: dt.date, cadence: str) -> bool:
    """Whether reports are due by ``day``: each working day (daily), or any day of the week (weekly)."""
    return cadence == "weekly" or day.weekday() < 5


def month_share(day: dt.date) -> float:
    """How much of its month ``day`` has run (the plan's current month counts pro rata)."""
    return day.day / calendar.monthrange(day.year, day.month)[1]


def year_share(year: int, day: dt.date) -> float:
    """How much of ``year`` has run by ``day`` (0 before it, 1 after it)."""
    start, end = year_bounds(year)
    if day < start:
        return 0.0
    if day >= end:
        return 1.0
    return ((day - start).days + 1) / ((end - start).days + 1)


def expected_by_plan(planned_before, planned_month, planned_year, year: int, day: dt.date):
    """What the monthly plan expects completed by ``day`` (arrays or numbers): the months before in full,
    the current one pro rata; the whole year once it is over, nothing before it starts."""
    if day.year > year:
        return planned_year
    if day.year < year:
        return planned_year * 0
    return planned_before + planned_month * month_share(day)


# --------------------------------------------------------------------------- dispatch
def _records(df: pd.DataFrame, cols) -> list[dict]:
    out = []
    for r in df[list(cols)].itertuples(index=False):
        out.append({c: (None if v is None or (isinstance(v, float) and np.isnan(v)) else
                        (float(v) if isinstance(v, (float, np.floating)) else
                         int(v) if isinstance(v, (np.integer,)) else v)) for c, v in zip(cols, r)})
    return out


def dispatch_rows(rollup: pd.DataFrame, reports: list[dict], cfg: ProjectConfig, day: dt.date,
                  cadence: str | None = None) -> dict:
    """The dispatch table of ``day`` from a rollup (``Store.project_rollup(day.year, day, window start)``)
    and the reports of the window.

    Returns ``{"day", "cadence", "window": [start, end], "due": bool, "reported": [...], "missing": [...],
    "behind_plan": [...], "counts": {...}}``. ``missing``: dispatched projects (on a list, of at least
    ``threshold_wan``, not in an exempt stage) without a report in the window — empty on a day no
    report is due (a weekend, when daily). ``behind_plan``: dispatched projects whose completed
    investment this year is below ``1 − behind_tolerance`` of what their monthly plan expects by the day.
    """
    cadence = cadence or cfg.cadence
    start, end = report_window(day, cadence)
    r = rollup
    dispatched = (r["listed"].astype(bool) & (r["investment_total"] >= cfg.threshold_wan)
                  & ~r["stage"].isin(list(cfg.exempt_stages)))
    due = due_on(day, cadence)
    missing = r[dispatched & (r["reports_in_window"] == 0)] if due else r.iloc[0:0]
    missing = missing.assign(days_since=pd.Series([(day - dt.date.fromisoformat(x)).days if isinstance(x, str)
                                                   else None for x in missing["last_report"]],
                                                  index=missing.index, dtype=object))
    expected = expected_by_plan(r["planned_before"], r["planned_month"], r["planned_year"], day.year, day)
    behind = dispatched & (expected > 0) & (r["invested_year"] < expected * (1 - cfg.behind_tolerance))
    b = r[behind].assign(expected_by_now=expected[behind], shortfall=(expected - r["invested_year"])[behind],
                         share=(r["invested_year"] / expected.where(expected > 0))[behind])
    b = b.sort_values(["shortfall", "code"], ascending=[False, True])
    base = ["code", "name", "unit", "industry", "stage", "investment_total"]
    return {
        "day": day.isoformat(), "cadence": cadence, "window": [start.isoformat(), end.isoformat()], "due": due,
        "reported": reports,
        "missing": _records(missing.sort_values(["unit", "code"]), base + ["last_report", "days_since"]),
        "behind_plan": _records(b, base + ["planned_year", "expected_by_now", "invested_year", "shortfall", "share"]),
        "counts": {"dispatched": int(dispatched.sum()), "reported": len({x["code"] for x in reports}),
                   "missing": len(missing), "behind_plan": int(behind.sum())},
    }


def dispatch_table(store, day=None, cadence: str | None = None) -> dict:
    """:func:`dispatch_rows` of the store on ``day`` (default: the office's today).

    Raises:
        InputError: not a date, or a day after today (no unit can have reported for it yet: every project
            would show as missing).
    """
    cfg = store.project_config
    day = store.project_day(day)
    if day > office_today():
        raise InputError("ledger.dispatch_future", date=day.isoformat(), today=office_today().isoformat())
    cadence = cadence or cfg.cadence
    start, end = report_window(day, cadence)
    rollup = store.project_rollup(day.year, day, window_start=start)
    reports = store.project_reports(since=start, until=end, effective=True)
    return dispatch_rows(rollup, reports, cfg, day, cadence)


# --------------------------------------------------------------------------- indicators
def _measure(r: pd.DataFrame, ind: Indicator, year: int, as_of: dt.date) -> tuple[pd.Series, pd.Series]:
    """Per project: (its contribution to the indicator's actual, the mask of projects it concerns)."""
    mine = pd.Series(True, index=r.index)
    if ind.industry:
        mine &= r["industry"] == ind.industry
    start, _ = year_bounds(year)
    lo, hi = start.isoformat(), as_of.isoformat()

    def within(col):
        return r[col].fillna("").between(lo, hi) & (r[col].fillna("") != "")

    if ind.measure == "invested":
        value = r["invested_year"].astype(float)
    elif ind.measure == "output":
        value = r["output_year"].astype(float) * ind.rate
    elif ind.measure == "started":
        value = within("started_on").astype(float)
    elif ind.measure == "production":
        value = within("production_on").astype(float)
    else:  # signed
        value = (within("signed_on") & (r["investment_total"] >= ind.min_total_wan)).astype(float)
    return value.where(mine, 0.0), mine


def _candidates(r: pd.DataFrame, ind: Indicator, mine: pd.Series) -> pd.DataFrame:
    """The projects that could close an indicator's gap, with what each could add (``could_add``)."""
    c = r[mine]
    if ind.measure == "invested":
        room = (c["investment_total"] - c["invested_to_date"]).clip(lower=0)
        could = np.minimum((c["planned_year"] - c["invested_year"]).clip(lower=0), room)
        return c.assign(could_add=could)[could > 0].sort_values(["could_add", "code"], ascending=[False, True])
    if ind.measure == "output":
        c = c[c["stage"].isin(["construction", "production"])]
        return c.assign(could_add=np.nan).sort_values(["investment_total", "code"], ascending=[False, True])
    before = {"started": [None, "signed", "procedures"], "production": ["started", "construction"],
              "signed": [None]}[ind.measure]
    c = c[c["stage"].isin([s for s in before if s]) | (c["stage"].isna() if None in before else False)]
    if ind.measure == "signed":
        c = c[c["investment_total"] >= ind.min_total_wan]
    return c.assign(could_add=1.0).sort_values(["investment_total", "code"], ascending=[False, True])


def indicator_rows(rollup: pd.DataFrame, cfg: ProjectConfig, year: int, as_of: dt.date,
                   lang: str = "zh") -> list[dict]:
    """The gap table: for each indicator with a target for ``year`` — indicator, label, unit, target,
    actual (rolled up from the projects to ``as_of``), expected_by_now and ``expected_by`` ("plan":
    the projects' monthly plans; "linear": the target spread over the year), gap (target − actual),
    behind (expected_by_now − actual) and the candidate projects (code, name, unit, could_add)."""
    out = []
    for ind in cfg.indicators.values():
        target = cfg.target(ind, year)
        if target is None:
            continue
        value, mine = _measure(rollup, ind, year, as_of)
        actual = float(value.sum())
        if ind.expected == "plan" and ind.measure == "invested":
            expected = float(expected_by_plan(rollup["planned_before"], rollup["planned_month"],
                                              rollup["planned_year"], year, as_of)[mine].sum())
            how = "plan"
        else:
            expected = target * year_share(year, as_of)
            how = "linear"
        gap = target - actual
        cand = _candidates(rollup, ind, mine) if gap > 0 else rollup.iloc[0:0].assign(could_add=0.0)
        out.append({
            "indicator": ind.key, "label": ind.label(lang), "unit": ind.unit, "measure": ind.measure,
            "industry": ind.industry, "target": target, "actual": actual,
            "expected_by_now": expected, "expected_by": how, "gap": gap,
            "behind": expected - actual, "share": actual / target if target else None,
            "candidates": _records(cand.head(CANDIDATES), ["code", "name", "unit", "stage", "investment_total",
                                                           "could_add"]),
        })
    return out


def indicators(store, year: int | None = None, as_of=None, lang: str = "zh") -> list[dict]:
    """:func:`indicator_rows` of the store: ``as_of`` defaults to today, or the year's last day
    when the year is over."""
    today = store.project_day(None)
    year = int(year or today.year)
    day = store.project_day(as_of) if as_of else min(today, year_bounds(year)[1])
    return indicator_rows(store.project_rollup(year, day), store.project_config, year, day, lang)
