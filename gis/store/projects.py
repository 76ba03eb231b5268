"""Key projects (重点项目) in the store: the ledger, the lists, the parcels under each, the monthly
plan, the daily reports and the stage events.

Tables (migration 9 in gis/store/schema.py, both back ends):
    projects         one row per project (code UNIQUE), its current stage kept beside its events;
                     an optional own polygon as WKB (``footprint``, EPSG:4490)
    project_lists    (project, list_name): the lists it is on (keys of layers/projects.toml)
    project_parcels  (project, object_type, code): the parcels, sites (parks) or villages it stands on
    project_plan     (project, year, month, planned_wan): the year's investment plan by month
    project_reports  append-only: each report's completed investment (万元, since the last report),
                     output, note, author and record time; a correction names the report it replaces
                     (``correction_of``) with a reason — the original stays, the sums use the latest
    project_events   append-only: stage changes (advance, correction, import)

Rules, decided here:
  * who may import or edit the ledger: an admin or a leader (领导/督查); who may report for a project
    or move its stage: an admin, or an account assigned to the project's responsible unit
    (``assign(user, "unit", UNIT)``); viewers read; a store without accounts records the name given;
  * a report that would take the invested-to-date above the project's total investment is refused
    (InputError), as is a negative amount, a future date or a correction of a report already corrected;
  * every write is audited (refusals too) and bumps the data version.
"""
from __future__ import annotations

import datetime as dt
import math
import re
import sqlite3
from functools import cached_property

import geopandas as gpd
import pandas as pd
import shapely

from gis.base.clock import office_today
from gis.base.errors import ConflictError, InputError, NotFoundError, PermissionRefused, StageTransitionError
from gis.model import projects as model
from gis.model.pipelines import NOT_STARTED
from gis.store.base import parse_date, utcnow_iso
from gis.store.schema import PROJECT_TABLES

PROJECT_FIELDS = ("code", "name", "kind", "industry", "investment_total_wan", "unit", "investor", "signed_on",
                  "started_on", "production_on", "completed_on", "stage", "stage_date", "note", "version",
                  "created_at", "updated_at", "updated_by")
DATE_FIELDS = ("signed_on", "started_on", "production_on", "completed_on")
LEDGER_DATE_ZH = {"signed_on": "签约日期", "started_on": "开工日期", "production_on": "投产日期",
                  "completed_on": "竣工日期"}
#: the date a stage sets when a project reaches it
STAGE_DATES = {"signed": "signed_on", "started": "started_on", "production": "production_on",
               "completed": "completed_on"}
LEDGER_EDITORS = ("admin", "leader")
#: parcel codes, list names: separated by 、，, ; or whitespace in a ledger cell
SEPARATORS = re.compile(r"[、，,;；\s]+")
REPORT_COLUMNS = ("id", "project", "report_date", "invested_wan", "output_wan", "note", "recorded_at",
                  "recorded_by", "correction_of", "reason")
#: the reports that count: those no later report corrects
EFFECTIVE = "NOT EXISTS (SELECT 1 FROM project_reports c WHERE c.correction_of = r.id)"


def _frame(con, sql: str, params: tuple = ()) -> pd.DataFrame:
    cur = con.execute(sql, params)
    if isinstance(cur, sqlite3.Cursor):
        cur.row_factory = None  # plain tuples: several times faster than sqlite3.Row
    names = [d[0] for d in cur.description]
    rows = [tuple(r) for r in cur.fetchall()]
    cols = list(zip(*rows)) if rows else [()] * len(names)
    return pd.DataFrame({n: pd.Series(c, dtype=object) for n, c in zip(names, cols)})


def split_cell(value) -> list[str]:
    """The items of a ledger cell ('P-1、P-2', 'P-1,P-2', a list): stripped, in order, without repeats."""
    items = value if isinstance(value, (list, tuple)) else SEPARATORS.split(str(value or ""))
    out: list[str] = []
    for x in items:
        x = str(x or "").strip()
        if x and x not in out:
            out.append(x)
    return out


#: the largest sum a ledger cell or a report may hold, 万元 (10^8 万元 = 1 万亿元, a trillion yuan): above it
#: the figure is a slip (yuan typed as 万元, a stray exponent), not a project
MAX_WAN = 1e8


def amount(value, field: str, required: bool = False) -> float | None:
    """A sum of money in 万元 from a cell: a number, or text such as '1,200.5'.

    Raises:
        InputError: not a number, not finite (inf, nan), negative, above :data:`MAX_WAN`, or missing when
            required.
    """
    if value is None or (isinstance(value, str) and not value.strip()) or (isinstance(value, float) and value != value):
        if required:
            raise InputError("projects.missing", field=field)
        return None
    try:
        v = float(str(value).replace(",", "").replace("，", "").strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        raise InputError("projects.bad_amount", field=field, value=str(value)) from None
    if not math.isfinite(v):
        raise InputError("ledger.not_finite", field=field, value=str(value))
    if v < 0:
        raise InputError("projects.bad_amount", field=field, value=str(value))
    if v > MAX_WAN:
        raise InputError("ledger.too_large", field=field, value=str(value), max=f"{MAX_WAN:,.0f}")
    return v


def _blank(value) -> bool:
    """A cell left empty (None, '', spaces, a NaN from a table reader)."""
    return value is None or (isinstance(value, str) and not value.strip()) or \
        (isinstance(value, float) and value != value) or (isinstance(value, (list, tuple)) and not value)


class ProjectsMixin:
    """Key projects: ledger, lists, parcels, plan, reports, stages. Mixed into ``Store`` (gis/store/store.py)."""

    @cached_property
    def project_config(self) -> model.ProjectConfig:
        """``layers/projects.toml`` (kinds, industries, lists, dispatch, indicators)."""
        return model.load_project_config()

    @property
    def project_pipeline(self):
        return self.catalog.pipelines["project"]

    @staticmethod
    def project_day(value=None) -> dt.date:
        """A business date (default: the office's today). Raises InputError: not a date."""
        return parse_date(value, today=office_today())

    # ------------------------------------------------------------------ permissions
    def _project_row(self, con, code: str, lock: bool = False) -> dict:
        row = con.execute(f"SELECT {', '.join(PROJECT_FIELDS)} FROM projects WHERE code = ?"
                          + (self._lock if lock else ""), (str(code or "").strip(),)).fetchone()
        if row is None:
            raise NotFoundError("projects.unknown", code=str(code))
        return dict(row)

    def _unit_member(self, con, username: str, unit: str | None) -> bool:
        return bool(unit) and con.execute("SELECT 1 FROM assignments WHERE username = ? AND scope = 'unit' AND code = ?",
                                          (username, unit)).fetchone() is not None

    def _may_report(self, con, user, project: dict) -> bool:
        if user is None or user.role == "admin":
            return True
        return user.role in ("editor", "leader") and self._unit_member(con, user.username, project.get("unit"))

    def _require_report(self, con, user, project: dict) -> None:
        if not self._may_report(con, user, project):
            raise PermissionRefused("projects.refused_report", user=user.username, role=user.role,
                                    code=project["code"], unit=project.get("unit") or "-")

    def may_report_project(self, code: str, username: str | None) -> bool:
        """Whether ``username`` may report for project ``code`` or move its stage (the rule the writes apply).

        Raises:
            NotFoundError: unknown project.
        """
        with self._connect() as con:
            p = self._project_row(con, code)
            if not self._accounts_on(con):
                return True
            user = self._user(con, username) if username else None
            return user is not None and self._may_report(con, user, p)

    # ------------------------------------------------------------------ the ledger
    def _check_project(self, universe: dict, r: dict, seen: dict, existing: dict, stored: dict) -> dict:
        """One ledger row resolved, or its error raised (InputError, NotFoundError).

        For a project already stored a blank cell (or a column the sheet lacks) keeps the stored value, as
        the plan import does: a re-import of a sheet with gaps never wipes facts (``stored``: code ->
        the project's facts, lists, parcels and plan). A new project takes blanks as empty."""
        cfg = self.project_config
        code = str(r.get("code") or "").strip()
        if not code:
            raise InputError("projects.missing", field="项目编号 code")
        if code in seen:
            raise InputError("projects.duplicate_row", code=code, row=seen[code])
        seen[code] = r.get("row")
        old = stored.get(code)
        facts = old["facts"] if old else {}

        def cell(f: str, column: str | None = None):
            v = r.get(f)
            return facts.get(column or f) if _blank(v) and old else v

        name = str(cell("name") or "").strip()
        if not name:
            raise InputError("projects.missing", field="项目名称 name")
        kind = cfg.kind_key(cell("kind"))
        if kind is None:
            raise InputError("projects.missing", field="项目类型 kind")
        given_total = cell("investment_total", "investment_total_wan")
        total = amount(given_total, "总投资 investment_total", required=True)
        if total <= 0:
            raise InputError("ledger.total_not_positive", field="总投资 investment_total", value=str(given_total))
        dates = {}
        for f in DATE_FIELDS:
            v = cell(f)
            dates[f] = parse_date(v).isoformat() if not _blank(v) else None
        self._check_date_order(code, dates)
        stage = self._project_stage(r.get("stage")) if not _blank(r.get("stage")) else None
        was = facts.get("stage")
        if stage is not None and was and self.project_pipeline.index(stage) < self.project_pipeline.index(was):
            # going back is a correction with a reason (advance_project), never a side effect of a ledger
            raise InputError("projects.stage_back", code=code, stage=self.project_stage_label(stage),
                             current=self.project_stage_label(was))
        if _blank(r.get("lists")) and old:
            lists = list(old["lists"])
        else:
            lists = [cfg.list_key(x) for x in split_cell(r.get("lists"))]
        if _blank(r.get("parcels")) and old:
            parcels = list(old["parcels"])
        else:
            parcels = []
            for x in split_cell(r.get("parcels")):
                otype, c, _ = self._resolve_object(universe, x)
                if otype == "project":
                    raise NotFoundError("projects.unknown_parcel", parcel=x)
                parcels.append((otype, c))
        plan: dict = {}
        for key, v in (r.get("plan") or {}).items():
            y, m = (key if isinstance(key, tuple) else tuple(int(p) for p in str(key).split("-")))
            if not (1 <= int(m) <= 12):
                raise InputError("projects.bad_month", month=str(key))
            a = amount(v, f"{y}年{m}月计划 plan {y}-{m:02d}")
            if a is not None:
                plan[(int(y), int(m))] = a
        # the plan of the years the row gives: its months, the stored ones where its cells are blank
        years = {y for y, _ in plan}
        whole = {k: a for k, a in (old["plan"] if old else {}).items() if k[0] in years} | plan
        if sum(whole.values()) > total + 1e-6:
            raise InputError("projects.plan_over_total", code=code, plan=f"{sum(whole.values()):g}", total=f"{total:g}")
        done = existing.get(code, 0.0)
        if total + 1e-6 < done:
            raise InputError("projects.total_below_done", code=code, total=f"{total:g}", done=f"{done:g}")
        fp = r.get("footprint")
        if fp is not None and not isinstance(fp, (bytes, bytearray, memoryview)):
            fp = shapely.to_wkb(fp)
        return {"row": r.get("row"), "code": code, "name": name, "kind": kind,
                "industry": cfg.industry_key(cell("industry")), "investment_total_wan": total,
                "unit": str(cell("unit") or "").strip() or None, "investor": str(cell("investor") or "").strip() or None,
                "note": str(cell("note") or "").strip() or None, "stage": stage, "lists": lists, "parcels": parcels,
                "plan": plan, "footprint": bytes(fp) if fp is not None else None, **dates}

    @staticmethod
    def _check_date_order(code: str, dates: dict) -> None:
        """A project is signed, then started, then in production, then completed: the dates given keep that
        order. Raises InputError: ``ledger.dates_order``, naming both dates."""
        given = [(f, dates[f]) for f in DATE_FIELDS if dates.get(f)]
        for (f0, d0), (f1, d1) in zip(given, given[1:]):
            if d1 < d0:
                raise InputError("ledger.dates_order", code=code, later={"zh": LEDGER_DATE_ZH[f1], "en": f1},
                                 later_date=d1, earlier={"zh": LEDGER_DATE_ZH[f0], "en": f0}, earlier_date=d0)

    def _project_stage(self, value) -> str | None:
        """The stage key a key or a label names (None: not started). Raises InputError: not a project stage."""
        v = str(value or "").strip()
        if not v or v in (NOT_STARTED, self.catalog.phases[NOT_STARTED].label_zh):
            return None
        for s in self.project_pipeline.stages:
            if v.lower() in (s.key, s.label_zh, s.label_en.lower()):
                return s.key
        raise InputError("projects.unknown_stage", stage=v,
                         known="、".join(f"{s.label_zh}（{s.key}）" for s in self.project_pipeline.stages))

    def check_projects(self, rows: list[dict]) -> tuple[list[dict], list[dict]]:
        """Validate ledger rows without writing: ``(valid, rejected)``; a rejected row is
        ``{"row", "code", "reason"}`` with the reason in Chinese and English. Rows marked as the
        template's example (``example``) are neither: the caller leaves them out."""
        with self._connect() as con:
            universe = self._plan_universe(con)
            existing = self._invested_to_date(con)
            stored = {r["code"]: {"facts": dict(r), "lists": [], "parcels": [], "plan": {}} for r in con.execute(
                f"SELECT {', '.join(PROJECT_FIELDS)} FROM projects")}
            for r in con.execute("SELECT project, list_name FROM project_lists ORDER BY project, list_name"):
                stored[r[0]]["lists"].append(r[1])
            for r in con.execute("SELECT project, object_type, code FROM project_parcels ORDER BY project, id"):
                stored[r[0]]["parcels"].append((r[1], r[2]))
            for r in con.execute("SELECT project, year, month, planned_wan FROM project_plan"):
                stored[r[0]]["plan"][(int(r[1]), int(r[2]))] = float(r[3])
        valid, rejected, seen = [], [], {}
        for i, r in enumerate(rows):
            r = {"row": i + 1, **r}
            try:
                valid.append(self._check_project(universe, r, seen, existing, stored))
            except (InputError, NotFoundError) as e:
                rejected.append({"row": r["row"], "code": str(r.get("code") or ""), "reason": e.bilingual()})
        return valid, rejected

    def upsert_projects(self, rows: list[dict], by: str) -> dict:
        """Add or update projects from ledger rows in one transaction: all land, or none.

        A row: code, name, kind, industry, investment_total (万元), unit, investor, signed_on, started_on,
        production_on, completed_on, stage, lists and parcels (lists, or text separated by 、 or ,),
        plan ``{(year, month) or "YYYY-MM": 万元}``, note, footprint (shapely or WKB), row (its number).
        An update replaces the facts, lists, parcels and plan months the row gives; a blank cell (or a
        column left out) keeps the stored value, as the plan import does. A stage that differs from the
        stored one is recorded as an ``import`` event. A row marked ``example`` (the template's example
        row, gis/io/projects_io.py) is skipped and counted.

        Returns ``{"added", "updated", "unchanged", "rejected": [], "examples_skipped", "blank_cells": "kept",
        "data_version"}``.

        Raises:
            InputError: bad rows (``params["rejected"]`` names each with its number and reason); nothing written.
            PermissionRefused: ``by`` is not an admin or a leader.
        """
        by = self._require_author(by)
        examples = sum(1 for r in rows if r.get("example"))
        valid, rejected = self.check_projects([r for r in rows if not r.get("example")])
        if rejected:
            raise InputError("projects.import_rejected", n=len(rejected),
                             rows=", ".join(str(r["row"]) for r in rejected), rejected=rejected)
        now = utcnow_iso()
        added = updated = unchanged = 0
        with self._refusals_logged(by, "project_import", f"{len(valid)} rows"), self._connect(write=True) as con:
            by, user = self._acting(con, by)
            if user is not None and user.role not in LEDGER_EDITORS:
                raise PermissionRefused("projects.refused_ledger", user=user.username, role=user.role)
            old = {r["code"]: dict(r) for r in con.execute(f"SELECT {', '.join(PROJECT_FIELDS)} FROM projects")}
            old_lists = self._pairs(con, "SELECT project, list_name FROM project_lists")
            old_parcels = self._pairs(con, "SELECT project, object_type || ':' || code FROM project_parcels")
            old_plan = {(r[0], int(r[1]), int(r[2])): float(r[3]) for r in con.execute(
                "SELECT project, year, month, planned_wan FROM project_plan")}
            facts = ("code", "name", "kind", "industry", "investment_total_wan", "unit", "investor", *DATE_FIELDS, "note")
            for v in valid:
                code, o = v["code"], old.get(v["code"])
                lists, parcels = sorted(v["lists"]), sorted(f"{t}:{c}" for t, c in v["parcels"])
                plan_old = {(y, m): a for (c, y, m), a in old_plan.items() if c == code and (y, m) in v["plan"]}
                same = o is not None and all(o[f] == v[f] for f in facts) \
                    and (v["stage"] is None or v["stage"] == o["stage"]) \
                    and sorted(old_lists.get(code, [])) == lists and sorted(old_parcels.get(code, [])) == parcels \
                    and plan_old == v["plan"] and (v["footprint"] is None)
                if same:
                    unchanged += 1
                    continue
                vals = [v[f] for f in facts]
                if o is None:
                    con.execute(f"INSERT INTO projects ({', '.join(facts)}, stage, stage_date, footprint, version,"
                                f" created_at, updated_at, updated_by) VALUES ({', '.join('?' * len(facts))},"
                                " ?,?,?,1,?,?,?)",
                                (*vals, v["stage"], self._stage_date(v) if v["stage"] else None, v["footprint"],
                                 now, now, by))
                    added += 1
                else:
                    sets = ", ".join(f"{f} = ?" for f in facts)
                    con.execute(f"UPDATE projects SET {sets}, version = version + 1, updated_at = ?, updated_by = ?"
                                " WHERE code = ?", (*vals, now, by, code))
                    if v["footprint"] is not None:
                        con.execute("UPDATE projects SET footprint = ? WHERE code = ?", (v["footprint"], code))
                    updated += 1
                if v["stage"] is not None and (o is None or v["stage"] != o["stage"]):
                    when = self._stage_date(v)
                    con.execute("UPDATE projects SET stage = ?, stage_date = ? WHERE code = ?", (v["stage"], when, code))
                    con.execute("INSERT INTO project_events (project, action, from_stage, to_stage, event_date,"
                                " recorded_at, recorded_by, note) VALUES (?,?,?,?,?,?,?,?)",
                                (code, "import", (o or {}).get("stage"), v["stage"], when, now, by, None))
                con.execute("DELETE FROM project_lists WHERE project = ?", (code,))
                con.executemany("INSERT INTO project_lists (project, list_name) VALUES (?,?)",
                                [(code, x) for x in v["lists"]])
                con.execute("DELETE FROM project_parcels WHERE project = ?", (code,))
                con.executemany("INSERT INTO project_parcels (project, object_type, code) VALUES (?,?,?)",
                                [(code, t, c) for t, c in v["parcels"]])
                # the months given replace theirs; a blank month keeps what is stored
                con.executemany("DELETE FROM project_plan WHERE project = ? AND year = ? AND month = ?",
                                [(code, y, m) for y, m in sorted(v["plan"])])
                con.executemany("INSERT INTO project_plan (project, year, month, planned_wan) VALUES (?,?,?,?)",
                                [(code, y, m, a) for (y, m), a in sorted(v["plan"].items())])
            if added or updated:
                self._bump(con)
            self._audit(con, by, "project_import", f"{len(valid)} rows", "ok", None,
                        {"added": added, "updated": updated, "unchanged": unchanged})
        return {"added": added, "updated": updated, "unchanged": unchanged, "rejected": [],
                "examples_skipped": examples, "blank_cells": "kept", "data_version": self.data_version()}

    @staticmethod
    def _stage_date(v: dict) -> str:
        """The date a ledger row's stage was reached: the date column of that stage, else the latest date given,
        else today."""
        col = STAGE_DATES.get(v["stage"])
        if col and v.get(col):
            return v[col]
        given = [v[f] for f in DATE_FIELDS if v.get(f)]
        return max(given) if given else office_today().isoformat()

    @staticmethod
    def _pairs(con, sql: str, params: tuple = ()) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for r in con.execute(sql, params):
            out.setdefault(r[0], []).append(r[1])
        return out

    # ------------------------------------------------------------------ reads
    def _invested_to_date(self, con, code: str | None = None, until: str | None = None) -> dict[str, float]:
        sql = f"SELECT r.project, SUM(r.invested_wan) FROM project_reports r WHERE {EFFECTIVE}"
        params: list = []
        if code:
            sql += " AND r.project = ?"
            params.append(code)
        if until:
            sql += " AND r.report_date <= ?"
            params.append(until)
        return {r[0]: float(r[1] or 0) for r in con.execute(sql + " GROUP BY r.project", tuple(params))}

    def project_rollup(self, year: int, as_of=None, window_start=None) -> pd.DataFrame:
        """One row per project with what the dispatch table and the indicators need, summed by the
        database: its facts, ``listed`` (on any list), ``lists`` (keys), ``invested_to_date`` (all
        reports up to ``as_of``), ``invested_year`` and ``output_year`` (reports of ``year`` up to
        ``as_of``), ``reports_in_window`` (reports from ``window_start`` to ``as_of``),
        ``last_report``, and the plan of ``year``: ``planned_year``, ``planned_before`` (the months
        before that of ``as_of``) and ``planned_month`` (the month of ``as_of``). Corrections applied."""
        day = self.project_day(as_of)
        y0 = dt.date(int(year), 1, 1).isoformat()
        hi = day.isoformat()
        w0 = (self.project_day(window_start) if window_start else day).isoformat()
        month = day.month if day.year == int(year) else (13 if day.year > int(year) else 0)
        with self._connect() as con:
            p = _frame(con, "SELECT code, name, kind, industry, investment_total_wan AS investment_total, unit,"
                            " investor, stage, stage_date, signed_on, started_on, production_on, completed_on"
                            " FROM projects ORDER BY code")
            # every report summed in one pass (no anti-join per row), then the few reports a correction
            # replaced subtracted: a correction keeps its original's date, so both land in the same periods
            sums = ("SUM(CASE WHEN {r}.report_date <= ? THEN {r}.invested_wan ELSE 0 END) AS invested_to_date,"
                    " SUM(CASE WHEN {r}.report_date >= ? AND {r}.report_date <= ? THEN {r}.invested_wan ELSE 0 END)"
                    " AS invested_year,"
                    " SUM(CASE WHEN {r}.report_date >= ? AND {r}.report_date <= ? THEN {r}.output_wan ELSE 0 END)"
                    " AS output_year,"
                    " SUM(CASE WHEN {r}.report_date >= ? AND {r}.report_date <= ? THEN 1 ELSE 0 END)"
                    " AS reports_in_window")
            args = (hi, y0, hi, y0, hi, w0, hi)
            r = _frame(con, f"SELECT r.project AS code, {sums.format(r='r')},"
                            " MAX(CASE WHEN r.report_date <= ? THEN r.report_date END) AS last_report"
                            " FROM project_reports r GROUP BY r.project", (*args, hi))
            gone = _frame(con, f"SELECT o.project AS code, {sums.format(r='o')} FROM project_reports c"
                               " JOIN project_reports o ON o.id = c.correction_of"
                               " WHERE c.correction_of IS NOT NULL GROUP BY o.project", args)
            q = _frame(con, "SELECT project AS code, SUM(planned_wan) AS planned_year,"
                            " SUM(CASE WHEN month < ? THEN planned_wan ELSE 0 END) AS planned_before,"
                            " SUM(CASE WHEN month = ? THEN planned_wan ELSE 0 END) AS planned_month"
                            " FROM project_plan WHERE year = ? GROUP BY project", (month, month, int(year)))
            lists = self._pairs(con, "SELECT project, list_name FROM project_lists ORDER BY project, list_name")
        summed = ("invested_to_date", "invested_year", "output_year", "reports_in_window")
        out = p.merge(r, on="code", how="left").merge(q, on="code", how="left")
        out = out.merge(gone.rename(columns={c: c + "_gone" for c in summed}), on="code", how="left")
        for c in ("investment_total", "invested_to_date", "invested_year", "output_year", "reports_in_window",
                  "planned_year", "planned_before", "planned_month") + tuple(c + "_gone" for c in summed):
            out[c] = pd.to_numeric(out[c], errors="coerce").fillna(0.0).astype(float)
        for c in summed:
            out[c] = out[c] - out.pop(c + "_gone")
        out["reports_in_window"] = out["reports_in_window"].round().astype(int)
        out["lists"] = [lists.get(c, []) for c in out["code"]]
        out["listed"] = out["lists"].map(bool)
        out["stage"] = out["stage"].where(out["stage"].notna(), None)
        return out

    def projects(self, list_name: str | None = None, industry: str | None = None, as_of=None,
                 lang: str = "zh") -> list[dict]:
        """The projects, by code: code, name, kind, industry (key and label), investment_total,
        invested_to_date (as of ``as_of``, default today), stage (key and label), parcels, lists, unit.

        Raises:
            InputError: an unknown list or industry.
        """
        cfg = self.project_config
        lk, ik = cfg.list_key(list_name), cfg.industry_key(industry)
        day = self.project_day(as_of)
        r = self.project_rollup(day.year, day)
        with self._connect() as con:
            parcels = self._pairs(con, "SELECT project, code FROM project_parcels ORDER BY project, id")
        if lk:
            r = r[r["lists"].map(lambda xs: lk in xs)]
        if ik:
            r = r[r["industry"] == ik]
        out = []
        for x in r.itertuples():
            out.append({"code": x.code, "name": x.name, "kind": x.kind, "industry": x.industry,
                        "industry_label": cfg.industries[x.industry].label(lang) if x.industry in cfg.industries else None,
                        "investment_total": float(x.investment_total), "invested_to_date": round(float(x.invested_to_date), 2),
                        "invested_year": round(float(x.invested_year), 2), "planned_year": round(float(x.planned_year), 2),
                        "stage": x.stage, "stage_label": self.project_stage_label(x.stage, lang),
                        "parcels": parcels.get(x.code, []), "lists": list(x.lists), "unit": x.unit,
                        "investor": x.investor, "last_report": x.last_report if isinstance(x.last_report, str) else None})
        return out

    def project_stage_label(self, stage: str | None, lang: str = "zh") -> str:
        if not stage:
            return self.catalog.phases[NOT_STARTED].label(lang)
        return self.project_pipeline.stage(stage).label(lang)

    def project(self, code: str, lang: str = "zh", as_of=None, as_recorded=None) -> dict:
        """One project: its facts, lists, parcels, plan and actual by month (of every year it has either),
        reports (newest first, corrections marked) and stage events.

        ``as_of`` (a date) and/or ``as_recorded`` (an aware instant): the project as it stood then —
        only the reports dated by ``as_of`` (and recorded by ``as_recorded``; a correction recorded
        later is not applied yet), the stage of its events by then, and no date later than ``as_of``
        (signed, started, … on a later day had not happened yet).

        Raises:
            NotFoundError: unknown project.
        """
        if as_of is not None or as_recorded is not None:
            return self._project_at(self.project(code, lang), self.project_day(as_of), as_recorded, lang)
        with self._connect() as con:
            p = self._project_row(con, code)
            code = p["code"]
            lists = [r[0] for r in con.execute("SELECT list_name FROM project_lists WHERE project = ? ORDER BY list_name",
                                               (code,))]
            parcels = [{"object_type": r[0], "code": r[1]} for r in con.execute(
                "SELECT object_type, code FROM project_parcels WHERE project = ? ORDER BY id", (code,))]
            plan = {(int(r[0]), int(r[1])): float(r[2]) for r in con.execute(
                "SELECT year, month, planned_wan FROM project_plan WHERE project = ?", (code,))}
            actual: dict = {}
            for r in con.execute(f"SELECT r.report_date, r.invested_wan, r.output_wan FROM project_reports r"
                                 f" WHERE r.project = ? AND {EFFECTIVE}", (code,)):
                k = (int(r[0][:4]), int(r[0][5:7]))
                a = actual.setdefault(k, [0.0, 0.0])
                a[0] += float(r[1] or 0)
                a[1] += float(r[2] or 0)
            events = [dict(r) for r in con.execute(
                "SELECT id, action, from_stage, to_stage, event_date, recorded_at, recorded_by, note, reason"
                " FROM project_events WHERE project = ? ORDER BY id", (code,))]
            fp = con.execute("SELECT footprint FROM projects WHERE code = ?", (code,)).fetchone()[0]
        cfg = self.project_config
        months, cum = [], 0.0
        for k in sorted(set(plan) | set(actual)):
            cum += actual.get(k, [0.0])[0]
            months.append({"year": k[0], "month": k[1], "planned_wan": plan.get(k, 0.0),
                           "invested_wan": round(actual.get(k, [0.0, 0.0])[0], 2),
                           "output_wan": round(actual.get(k, [0.0, 0.0])[1], 2), "invested_cumulative": round(cum, 2)})
        done = sum(a[0] for a in actual.values())
        return {**p, "investment_total": float(p["investment_total_wan"]), "invested_to_date": round(done, 2),
                "kind_label": cfg.kinds[p["kind"]].label(lang) if p["kind"] in cfg.kinds else p["kind"],
                "industry_label": cfg.industries[p["industry"]].label(lang) if p["industry"] in cfg.industries else None,
                "stage_label": self.project_stage_label(p["stage"], lang), "lists": lists,
                "list_labels": [cfg.lists[x].label(lang) if x in cfg.lists else x for x in lists],
                "parcels": parcels, "months": months, "reports": self.project_reports(code), "events": events,
                "has_footprint": fp is not None}

    def _project_at(self, p: dict, day: dt.date, instant, lang: str) -> dict:
        """``project()``'s answer ``p`` rewound to business date ``day`` and record instant ``instant`` (or None)."""
        hi = day.isoformat()

        def recorded(r) -> bool:
            return instant is None or (bool(r.get("recorded_at"))
                                       and pd.Timestamp(r["recorded_at"]) <= pd.Timestamp(instant))

        reports = [dict(r) for r in p["reports"] if str(r["report_date"])[:10] <= hi and recorded(r)]
        corrected = {r["correction_of"] for r in reports if r.get("correction_of") is not None}
        for r in reports:
            r["superseded"] = r["id"] in corrected
        actual: dict = {}
        for r in reports:
            if not r["superseded"]:
                a = actual.setdefault((int(r["report_date"][:4]), int(r["report_date"][5:7])), [0.0, 0.0])
                a[0] += float(r["invested_wan"] or 0)
                a[1] += float(r["output_wan"] or 0)
        months, cum = [], 0.0
        for m in p["months"]:
            k = (m["year"], m["month"])
            cum += actual.get(k, [0.0])[0]
            months.append({**m, "invested_wan": round(actual.get(k, [0.0, 0.0])[0], 2),
                           "output_wan": round(actual.get(k, [0.0, 0.0])[1], 2), "invested_cumulative": round(cum, 2)})
        events = [e for e in p["events"] if str(e["event_date"])[:10] <= hi and recorded(e)]
        stage, stage_date = p["stage"], p["stage_date"]
        if events:  # the last stage event by then (by business date, then as recorded)
            last = max(events, key=lambda e: (str(e["event_date"]), int(e["id"])))
            stage, stage_date = last["to_stage"], last["event_date"]
        elif p["events"] or not (stage_date and str(stage_date)[:10] <= hi):
            stage, stage_date = None, None  # its first stage came later (or when is not known): not started
        dates = {f: (p.get(f) if p.get(f) and str(p[f])[:10] <= hi else None) for f in DATE_FIELDS}
        return {**p, **dates, "stage": stage, "stage_date": stage_date,
                "stage_label": self.project_stage_label(stage, lang), "months": months, "reports": reports,
                "events": events, "invested_to_date": round(sum(a[0] for a in actual.values()), 2)}

    def project_reports(self, code: str | None = None, on=None, since=None, until=None,
                        effective: bool = False) -> list[dict]:
        """Reports, newest first: id, code, name, unit, report_date, invested_wan, output_wan, note,
        recorded_at, recorded_by, correction_of, reason, superseded (a later correction replaced it).
        ``on``: one day; ``since``/``until``: a period; ``effective``: only the reports that count."""
        where, params = [], []
        if code:
            where.append("r.project = ?")
            params.append(str(code).strip())
        if on:
            where.append("r.report_date = ?")
            params.append(self.project_day(on).isoformat())
        if since:
            where.append("r.report_date >= ?")
            params.append(self.project_day(since).isoformat())
        if until:
            where.append("r.report_date <= ?")
            params.append(self.project_day(until).isoformat())
        if effective:
            where.append(EFFECTIVE)
        cols = ", ".join(f"r.{c}" for c in REPORT_COLUMNS)
        sql = (f"SELECT {cols}, p.name, p.unit, CASE WHEN {EFFECTIVE} THEN 0 ELSE 1 END AS superseded"
               " FROM project_reports r JOIN projects p ON p.code = r.project"
               + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY r.report_date DESC, r.id DESC")
        with self._connect() as con:
            rows = [dict(r) for r in con.execute(sql, tuple(params))]
        for r in rows:
            r["code"] = r.pop("project")
            r["id"] = int(r["id"])
            r["invested_wan"] = float(r["invested_wan"])
            r["output_wan"] = None if r["output_wan"] is None else float(r["output_wan"])
            r["superseded"] = bool(r["superseded"])
            r["correction_of"] = None if r["correction_of"] is None else int(r["correction_of"])
        return rows

    def projects_mark(self) -> tuple:
        """What :meth:`project_footprints` reads besides the parcels' geometry, in a few numbers: the day,
        and each project table's rows and largest id (the projects' versions summed, their newest update).
        The same mark, the same footprints: a stage update of a parcel leaves it alone (issue 19)."""
        with self._connect() as con:
            marks = [tuple(con.execute(f'SELECT COUNT(*), COALESCE(MAX(id), 0) FROM "{t}"').fetchone())
                     for t in PROJECT_TABLES]
            own = tuple(con.execute("SELECT COALESCE(SUM(version), 0), MAX(updated_at) FROM projects").fetchone())
        return (self.project_day(None).isoformat(), *(tuple(int(v) for v in m) for m in marks),
                (int(own[0]), own[1]))

    def project_footprints(self) -> gpd.GeoDataFrame:
        """The projects on the map: code, name, stage, industry, investment_total, invested_to_date and the
        geometry — its own polygon, else the union of its parcels (a site: all the park's parcels, or the
        park's outline when it has none; a village: its parcels). EPSG:4490; a project on nothing is left out."""
        day = self.project_day(None)
        r = self.project_rollup(day.year, day)
        with self._connect() as con:
            links = _frame(con, "SELECT project, object_type, code FROM project_parcels ORDER BY id")
            own = {row[0]: self._wkb_blob(row[1]) for row in con.execute(
                "SELECT code, footprint FROM projects WHERE footprint IS NOT NULL")}
            codes = sorted(set(links["code"])) if len(links) else []
            geoms: dict = {}
            if codes:
                marks = ", ".join("?" * len(codes))
                for row in con.execute(f"SELECT code, park, village, geom FROM parcels WHERE code IN ({marks})"
                                       f" OR park IN ({marks}) OR village IN ({marks})", (*codes, *codes, *codes)):
                    g = shapely.from_wkb(self._wkb_of(row[3])) if row[3] is not None else None
                    for key in (("parcel", row[0]), ("site", row[1]), ("village", row[2])):
                        if key[1]:
                            geoms.setdefault(key, []).append(g)
        parks = None
        rows = []
        for x in r.itertuples():
            if x.code in own:
                geom = shapely.from_wkb(own[x.code])
            else:
                mine = links[links["project"] == x.code] if len(links) else links
                parts = [g for t, c in zip(mine["object_type"], mine["code"]) for g in geoms.get((t, c), [])
                         if g is not None]
                if not parts and len(mine) and (mine["object_type"] == "site").any():
                    parks = parks if parks is not None else self.layer("parks").set_index("code")
                    parts = [parks.geometry[c] for c in mine.loc[mine["object_type"] == "site", "code"] if c in parks.index]
                if not parts:
                    continue
                geom = shapely.union_all(parts)
            rows.append({"code": x.code, "name": x.name, "kind": x.kind, "industry": x.industry, "stage": x.stage,
                         "unit": x.unit, "investment_total": float(x.investment_total),
                         "invested_to_date": float(x.invested_to_date), "geometry": geom})
        return gpd.GeoDataFrame(rows, columns=["code", "name", "kind", "industry", "stage", "unit", "investment_total",
                                               "invested_to_date", "geometry"], geometry="geometry", crs="EPSG:4490")

    @staticmethod
    def _wkb_blob(value) -> bytes:
        """A stored footprint as WKB bytes (SQLite gives bytes, PostgreSQL a memoryview)."""
        return bytes(value)

    def project_events(self, code: str) -> list[dict]:
        """A project's stage events, oldest first. Raises NotFoundError: unknown project."""
        return self.project(code)["events"]

    def last_report_day(self) -> dt.date | None:
        """The latest day any project reported for (None: no reports): what a dispatch page may open on
        when nothing has been reported today yet (the demo's reports end on 2026-11-13)."""
        with self._connect() as con:
            row = con.execute("SELECT MAX(report_date) FROM project_reports WHERE report_date <= ?",
                              (office_today().isoformat(),)).fetchone()
        return dt.date.fromisoformat(row[0]) if row and row[0] else None

    def project_reports_count(self) -> int:
        """How many reports the store holds (corrections included)."""
        with self._connect() as con:
            return int(con.execute("SELECT COUNT(*) FROM project_reports").fetchone()[0])

    def _bulk_rows(self, table: str, cols: list[str], rows) -> None:
        """Append many rows to a project table in one transaction, no checks: for the benchmark's
        synthetic ledger (bench/projects.py). PostGIS overrides it with COPY."""
        with self._connect(write=True) as con:
            con.executemany(f'INSERT INTO "{table}" ({", ".join(cols)}) VALUES ({", ".join("?" * len(cols))})', rows)
            self._bump(con)

    # ------------------------------------------------------------------ writes
    def report_project(self, code: str, date, invested_wan, by: str, note: str = "", output_wan=None,
                       correction_of: int | None = None, reason: str | None = None) -> dict:
        """Record a project's report for ``date``: the investment completed since the last report (万元),
        optionally the output, and a progress note. A correction (``correction_of`` = the id of the report
        it replaces, with a ``reason``) keeps that report's date and replaces its figures in every sum.

        Returns the report as stored, with the project's ``invested_to_date`` after it.

        Raises:
            NotFoundError: unknown project or report.
            InputError: a bad, negative, non-finite or absurd amount, a future date or one before the
                project's signing, a correction without a reason or of another project's report, or one that would take the invested-to-date above the total investment.
            ConflictError: the report named was corrected already (correct the latest correction).
            PermissionRefused: ``by`` may not report for this project.
        """
        by = self._require_author(by)
        inv = amount(invested_wan, "完成投资 invested", required=True)
        out = amount(output_wan, "产值 output")
        when = self.project_day(date)
        if when > office_today():
            raise InputError("error.future_date", date=when.isoformat())
        reason = (reason or "").strip() or None
        if correction_of is not None and not reason:
            raise InputError("projects.correction_reason")
        with self._refusals_logged(by, "project_report", str(code)), self._connect(write=True) as con:
            p = self._project_row(con, code, lock=True)
            code = p["code"]
            by, user = self._acting(con, by)
            if user is not None:
                self._require_report(con, user, p)
            if correction_of is None and p["signed_on"] and when.isoformat() < str(p["signed_on"]):
                # no investment before the project exists (a correction keeps its original's date)
                raise InputError("ledger.report_before_signing", code=code, date=when.isoformat(),
                                 signed=str(p["signed_on"]))
            replaced = 0.0
            if correction_of is not None:
                orig = con.execute("SELECT id, project, report_date, invested_wan FROM project_reports WHERE id = ?",
                                   (int(correction_of),)).fetchone()
                if orig is None or orig["project"] != code:
                    raise NotFoundError("projects.unknown_report", id=str(correction_of), code=code)
                if con.execute("SELECT id FROM project_reports WHERE correction_of = ?", (int(correction_of),)).fetchone():
                    raise ConflictError("projects.corrected_already", id=str(correction_of))
                replaced = float(orig["invested_wan"])
                when = dt.date.fromisoformat(orig["report_date"])
            done = self._invested_to_date(con, code).get(code, 0.0)
            after = done - replaced + inv
            total = float(p["investment_total_wan"])
            if after > total + 1e-6:
                raise InputError("projects.over_total", code=code, after=f"{after:,.2f}", total=f"{total:,.2f}",
                                 done=f"{done:,.2f}")
            now = utcnow_iso()
            rid = con.execute("INSERT INTO project_reports (project, report_date, invested_wan, output_wan, note,"
                              " recorded_at, recorded_by, correction_of, reason) VALUES (?,?,?,?,?,?,?,?,?) RETURNING id",
                              (code, when.isoformat(), inv, out, (note or "").strip() or None, now, by,
                               int(correction_of) if correction_of is not None else None, reason)).fetchone()[0]
            self._bump(con)
            row = {"id": int(rid), "code": code, "report_date": when.isoformat(), "invested_wan": inv,
                   "output_wan": out, "note": (note or "").strip() or None, "recorded_at": now, "recorded_by": by,
                   "correction_of": int(correction_of) if correction_of is not None else None, "reason": reason,
                   "invested_to_date": round(after, 2), "investment_total": total}
            self._audit(con, by, "project_correction" if correction_of is not None else "project_report", code, "ok",
                        {"invested_to_date": done}, row, note or reason or "")
        return row

    def advance_project(self, code: str, to_stage: str, date, by: str, note: str = "",
                        correction: str | None = None) -> dict:
        """Move a project to its next stage on ``date`` (signed → procedures → started → construction →
        production → completed); going back or skipping needs a ``correction`` reason. The stage's date
        column (signed_on, started_on, production_on, completed_on) is set to ``date``.

        Raises:
            NotFoundError; PermissionRefused (not the project's unit or an admin);
            StageTransitionError / InputError: an illegal move, a future date, a date before the current stage's.
        """
        by = self._require_author(by)
        when = self.project_day(date)
        target = self._project_stage(to_stage)
        with self._refusals_logged(by, "project_advance", str(code)), self._connect(write=True) as con:
            p = self._project_row(con, code, lock=True)
            by, user = self._acting(con, by)
            if user is not None:
                self._require_report(con, user, p)
            action = self._check_project_move(p, target, when, correction)
            now = utcnow_iso()
            con.execute("INSERT INTO project_events (project, action, from_stage, to_stage, event_date, recorded_at,"
                        " recorded_by, note, reason) VALUES (?,?,?,?,?,?,?,?,?)",
                        (p["code"], action, p["stage"], target, when.isoformat(), now, by, (note or "").strip() or None,
                         (correction or "").strip() or None))
            sets, vals = ["stage = ?", "stage_date = ?"], [target, when.isoformat() if target else None]
            col = STAGE_DATES.get(target)
            if col:
                sets.append(f"{col} = ?")
                vals.append(when.isoformat())
            con.execute(f"UPDATE projects SET {', '.join(sets)}, version = version + 1, updated_at = ?, updated_by = ?"
                        " WHERE code = ?", (*vals, now, by, p["code"]))
            self._bump(con)
            after = self._project_row(con, p["code"])
            self._audit(con, by, "project_" + action, p["code"], "ok", {"stage": p["stage"]}, {"stage": target},
                        note or correction or "")
        return after

    def _check_project_move(self, p: dict, target: str | None, when: dt.date, correction: str | None) -> str:
        pipe = self.project_pipeline
        if when > office_today():
            raise StageTransitionError("error.future_date", date=when.isoformat())
        i_from, i_to = pipe.index(p["stage"]), pipe.index(target)
        name = {"zh": self.project_stage_label(target, "zh"), "en": self.project_stage_label(target, "en")}
        if i_to == i_from:
            raise StageTransitionError("ledger.same_stage", code=p["code"], stage=name)
        if correction is not None and not correction.strip():
            raise StageTransitionError("error.correction_reason")
        if correction:
            return "correction"
        if i_to < i_from:
            raise StageTransitionError("error.backwards", stage=name)
        if i_to > i_from + 1:
            nxt = pipe.keys[i_from + 1]
            raise StageTransitionError("error.skip", stage=name, expected={
                "zh": self.project_stage_label(nxt, "zh"), "en": self.project_stage_label(nxt, "en")})
        if p["stage_date"] and when < dt.date.fromisoformat(p["stage_date"]):
            raise StageTransitionError("error.date_before_current", date=when.isoformat(), current=p["stage_date"])
        return "advance"
