"""Project ledger input checks (review items 8, 11, 12, 13, 20), on both back ends: non-finite and absurd
amounts refused, dates checked against each other and the project's signing, a re-import with blank cells
keeping what is stored, the template's example row skipped and counted, the project's own wording."""
from __future__ import annotations

import datetime as dt
import io

import pytest
from openpyxl import load_workbook

from gis.base.clock import office_today
from gis.base.errors import InputError, StageTransitionError
from gis.io import projects_io
from gis.model import projects as pm


def ledger(**over):
    rows = [{"code": "P1", "name": "测试智能终端项目", "kind": "产业项目", "industry": "电子信息和人工智能",
             "investment_total": "10,000", "unit": "区城市更新集团", "investor": "某科技有限公司",
             "lists": "省重点项目、在建项目清单", "parcels": "HSR-001,V01", "stage": "开工",
             "signed_on": "2025-12-01", "started_on": "2026-02-01", "note": "一期",
             "plan": {"2026-01": 500, "2026-02": 500, (2026, 3): 1000}}]
    for r in rows:
        r.update(over.get(r["code"], {}))
    return rows


@pytest.fixture
def projects(tiny_store):
    tiny_store.upsert_projects(ledger(), "规划科")
    return tiny_store


def _reason(store, rows) -> str:
    with pytest.raises(InputError) as e:
        store.upsert_projects(rows, "规划科")
    return e.value.params["rejected"][0]["reason"]


# ------------------------------------------------------------------ 8: inf, nan, absurd amounts
@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "Infinity", float("inf"), 1e300, "1e300"])
def test_a_non_finite_or_absurd_total_is_refused(tiny_store, value):
    reason = _reason(tiny_store, ledger(P1={"investment_total": value}))
    assert "总投资" in reason and ("不是有效数字" in reason or "超过上限" in reason)
    assert " / " in reason and ("not a valid number" in reason or "above the limit" in reason)
    assert tiny_store.projects() == []


@pytest.mark.parametrize("value", ["inf", "nan", 1e300])
def test_a_non_finite_or_absurd_report_or_plan_is_refused(projects, value):
    with pytest.raises(InputError) as e:
        projects.report_project("P1", "2026-03-02", value, "张工")
    assert e.value.key in ("ledger.not_finite", "ledger.too_large")
    assert projects.project("P1")["reports"] == []
    reason = _reason(projects, ledger(P1={"plan": {"2026-04": value}}))
    assert "计划" in reason
    # what the store holds stays valid JSON: no Infinity anywhere
    assert all(abs(p["investment_total"]) < 1e9 for p in projects.projects())


def test_a_total_of_zero_says_it_must_be_greater_than_zero(tiny_store):
    reason = _reason(tiny_store, ledger(P1={"investment_total": 0}))
    assert "须大于 0" in reason and "must be greater than 0" in reason and "非负" not in reason


# ------------------------------------------------------------------ 11: dates against each other
def test_a_ledger_row_signed_after_it_started_is_refused(tiny_store):
    reason = _reason(tiny_store, ledger(P1={"signed_on": "2026-03-01", "started_on": "2026-02-01"}))
    assert "开工日期（2026-02-01）早于签约日期（2026-03-01）" in reason and "started_on (2026-02-01)" in reason
    reason = _reason(tiny_store, ledger(P1={"production_on": "2026-01-15"}))  # in production before it started
    assert "投产日期" in reason


def test_a_re_import_is_checked_against_the_stored_dates(projects):
    # the sheet gives only the start: it is checked against the signing already stored
    reason = _reason(projects, ledger(P1={"signed_on": "", "started_on": "2025-11-01"}))
    assert "早于签约日期（2025-12-01）" in reason


def test_a_report_before_the_signing_is_refused(projects):
    with pytest.raises(InputError) as e:
        projects.report_project("P1", "1990-01-01", 1, "张工")
    assert e.value.key == "ledger.report_before_signing" and "2025-12-01" in e.value.bilingual()
    assert projects.project("P1")["reports"] == []
    assert projects.report_project("P1", "2025-12-01", 1, "张工")["invested_to_date"] == 1  # the day itself is fine


def test_a_dispatch_table_of_a_future_day_is_refused(projects):
    with pytest.raises(InputError) as e:
        pm.dispatch_table(projects, "9999-12-31")
    assert e.value.key == "ledger.dispatch_future"
    assert pm.dispatch_table(projects, office_today())["day"] == office_today().isoformat()


# ------------------------------------------------------------------ 12: blanks keep what is stored
def test_a_re_import_with_blank_cells_changes_nothing(projects):
    before = projects.project("P1")
    blank = {"code": "P1", "name": "", "kind": "", "industry": "", "investment_total": "", "unit": "", "investor": "",
             "lists": "", "parcels": "", "stage": "", "signed_on": "", "started_on": "", "production_on": None,
             "note": "  ", "plan": {}}
    out = projects.upsert_projects([blank], "规划科")
    assert (out["added"], out["updated"], out["unchanged"]) == (0, 0, 1) and out["blank_cells"] == "kept"
    after = projects.project("P1")
    for f in ("name", "kind", "industry", "investment_total", "unit", "investor", "signed_on", "started_on", "stage",
              "note", "lists", "parcels", "months", "events"):
        assert after[f] == before[f], f
    # a row with a few cells filled changes those only; a blank month keeps its plan
    out = projects.upsert_projects([{**blank, "investor": "新投资主体", "plan": {"2026-02": 600}}], "规划科")
    assert out["updated"] == 1
    after = projects.project("P1")
    assert after["investor"] == "新投资主体" and after["started_on"] == "2026-02-01"
    assert after["parcels"] == before["parcels"] and after["lists"] == before["lists"]
    assert [(m["month"], m["planned_wan"]) for m in after["months"]] == [(1, 500.0), (2, 600.0), (3, 1000.0)]


def test_a_blank_sheet_cell_read_from_xlsx_keeps_the_stored_value(projects):
    data = projects_io.template_bytes(projects, year=2026)
    wb = load_workbook(io.BytesIO(data))
    ws = wb.worksheets[0]
    head = [c.value for c in ws[1]]
    ws.delete_rows(2, ws.max_row)
    ws.append(["P1" if h == "项目编号" else None for h in head])
    buf = io.BytesIO()
    wb.save(buf)
    rows = projects_io.read_project_rows(buf.getvalue(), "p.xlsx")
    assert projects.upsert_projects(rows, "规划科")["unchanged"] == 1
    assert projects.project("P1")["parcels"] == [{"object_type": "parcel", "code": "HSR-001"},
                                                 {"object_type": "village", "code": "V01"}]


def test_a_new_project_still_needs_its_required_cells(tiny_store):
    assert "项目名称" in _reason(tiny_store, ledger(P1={"name": ""}))


# ------------------------------------------------------------------ 13: the template's example row
def test_the_template_unchanged_imports_nothing_and_says_so(tiny_store):
    rows = projects_io.read_project_rows(projects_io.template_bytes(tiny_store, year=2026), "projects.xlsx")
    assert [r["code"] for r in rows if r.get("example")] == ["XM-EX01"]
    out = tiny_store.upsert_projects(rows, "规划科")
    assert out["examples_skipped"] == 1 and out["added"] == 0 and tiny_store.projects() == []
    # in English too; a row the planner filled in (renamed) is data
    en = projects_io.read_project_rows(projects_io.template_bytes(tiny_store, "en", 2026), "projects.xlsx")
    assert en[0].get("example")
    real = [{**rows[0], "name": "真实项目"}]
    real[0].pop("example")
    assert not projects_io.is_example(real[0])
    assert tiny_store.upsert_projects(real, "规划科")["added"] == 1


# ------------------------------------------------------------------ 20: the project's own words
def test_advancing_to_the_stage_it_is_at_names_the_project(projects):
    with pytest.raises(StageTransitionError) as e:
        projects.advance_project("P1", "开工", dt.date(2026, 3, 5), "张工")
    assert e.value.message("zh") == "项目“P1”已处于阶段“开工”" and "地块" not in e.value.bilingual()
    assert "Project 'P1' is at stage 'Started' already" in e.value.bilingual()
