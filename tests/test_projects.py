"""Key projects (issue 18): the ledger, reports and corrections, permissions, the dispatch table and
the indicators' gap, on both back ends; the pure rules of gis/model/projects.py without a store."""
from __future__ import annotations

import datetime as dt
import shutil

import pandas as pd
import pytest
import shapely
from openpyxl import load_workbook

from gis.base.clock import office_today
from gis.base.errors import ConflictError, InputError, NotFoundError, PermissionRefused, StageTransitionError
from gis.io.exporter import export
from gis.model import projects as pm
from gis.store import open_store_at, schema

DAY = dt.date(2026, 3, 4)  # a Wednesday


def ledger(**over):
    """Two projects on the tiny store: one on a park parcel and a village, one on the whole park site."""
    rows = [
        {"code": "P1", "name": "测试智能终端项目", "kind": "产业项目", "industry": "电子信息和人工智能",
         "investment_total": "10,000", "unit": "区城市更新集团", "lists": "省重点项目、在建项目清单",
         "parcels": "HSR-001,V01", "stage": "开工", "started_on": "2026-02-01",
         "plan": {"2026-01": 500, "2026-02": 500, (2026, 3): 1000}},
        {"code": "P2", "name": "园区配套道路", "kind": "infrastructure", "investment_total": 800, "unit": "区城市更新集团",
         "lists": "to_start", "parcels": "hsr_ai", "plan": {"2026-03": 100}},
    ]
    for r in rows:
        r.update(over.get(r["code"], {}))
    return rows


@pytest.fixture
def projects(tiny_store):
    tiny_store.upsert_projects(ledger(), "规划科")
    return tiny_store


def _fai(rows):
    return next(r for r in rows if r["indicator"] == "fixed_asset_investment")


# ------------------------------------------------------------------ the ledger
def test_ledger_lands_with_lists_parcels_and_plan(projects):
    got = {p["code"]: p for p in projects.projects()}
    assert got["P1"]["industry"] == "electronics_ai" and got["P1"]["kind"] == "industrial"
    assert got["P1"]["lists"] == ["provincial", "under_construction"]
    assert got["P1"]["parcels"] == ["HSR-001", "V01"] and got["P1"]["stage"] == "started"
    assert got["P1"]["investment_total"] == 10000.0 and got["P1"]["planned_year"] == 2000.0
    assert [p["code"] for p in projects.projects(list_name="省重点项目")] == ["P1"]
    assert [p["code"] for p in projects.projects(industry="electronics_ai")] == ["P1"]
    p = projects.project("P1")
    assert [(m["month"], m["planned_wan"]) for m in p["months"]] == [(1, 500.0), (2, 500.0), (3, 1000.0)]
    assert p["events"][0]["action"] == "import" and p["events"][0]["to_stage"] == "started"
    # the same ledger again changes nothing
    again = projects.upsert_projects(ledger(), "规划科")
    assert (again["added"], again["updated"], again["unchanged"]) == (0, 0, 2)
    # a ledger may move a project on, not back (that is a correction with a reason)
    assert projects.upsert_projects(ledger(P1={"stage": "在建"}), "规划科")["updated"] == 1
    assert projects.project("P1")["events"][-1]["from_stage"] == "started"
    with pytest.raises(InputError) as e:
        projects.upsert_projects(ledger(P1={"stage": "签约"}), "规划科")
    assert "更正" in e.value.params["rejected"][0]["reason"]


def test_ledger_import_is_all_or_nothing_and_names_bad_rows(tiny_store):
    rows = ledger(P2={"parcels": "NO-SUCH"}) + [
        {"code": "P3", "name": "", "kind": "public", "investment_total": 100},
        {"code": "P4", "name": "超计划", "kind": "public", "investment_total": 100, "plan": {"2026-05": 150}},
        {"code": "P1", "name": "重复", "kind": "public", "investment_total": 100},
        {"code": "P5", "name": "坏金额", "kind": "public", "investment_total": "十万"},
        {"code": "P6", "name": "坏清单", "kind": "public", "investment_total": 100, "lists": "国家队"},
    ]
    with pytest.raises(InputError) as e:
        tiny_store.upsert_projects(rows, "规划科")
    bad = {r["row"]: r["reason"] for r in e.value.params["rejected"]}
    assert sorted(bad) == [2, 3, 4, 5, 6, 7]
    assert "NO-SUCH" in bad[2] and "缺少" in bad[3] and "超过总投资" in bad[4] and "第 1 行" in bad[5]
    assert "十万" in bad[6] and "国家队" in bad[7] and " / " in bad[7]  # Chinese and English
    assert tiny_store.projects() == []


def test_own_polygon_or_the_parcels_make_the_footprint(tiny_store):
    own = shapely.box(121.35, 37.45, 121.36, 37.46)
    tiny_store.upsert_projects(ledger(P2={"footprint": own, "parcels": ""}), "规划科")
    fp = tiny_store.project_footprints().set_index("code")
    assert fp.crs.to_epsg() == 4490
    assert fp.geometry["P2"].equals(own)
    parcels = tiny_store.parcels().set_index("code")
    under = shapely.union_all([parcels.geometry[c] for c in ("HSR-001", "V01-001", "V01-002", "V01-003")])
    assert fp.geometry["P1"].symmetric_difference(under).area < 1e-12


# ------------------------------------------------------------------ reports
def test_a_report_raises_invested_to_date_and_the_indicator_by_the_same_amount(projects):
    before_p = projects.projects()[0]["invested_to_date"]
    before_i = _fai(pm.indicators(projects, 2026, DAY))["actual"]
    row = projects.report_project("P1", "2026-03-02", 321.5, "张工", note="主体结构施工")
    assert row["invested_to_date"] == before_p + 321.5
    assert projects.projects()[0]["invested_to_date"] == before_p + 321.5
    assert _fai(pm.indicators(projects, 2026, DAY))["actual"] == pytest.approx(before_i + 321.5)
    rep = projects.project_reports("P1")[0]
    assert (rep["recorded_by"], rep["note"], rep["report_date"], rep["superseded"]) == \
        ("张工", "主体结构施工", "2026-03-02", False)


def test_a_report_above_the_total_is_refused_and_writes_nothing(projects):
    projects.report_project("P2", "2026-03-02", 700, "张工")
    version = projects.data_version()
    with pytest.raises(InputError, match="above its total"):
        projects.report_project("P2", "2026-03-03", 100.01, "张工")
    assert projects.data_version() == version and len(projects.project_reports("P2")) == 1
    projects.report_project("P2", "2026-03-03", 100, "张工")  # exactly the total is fine
    with pytest.raises(InputError):
        projects.report_project("P2", "2026-03-04", -5, "张工")
    with pytest.raises(InputError):
        projects.report_project("P2", dt.date.today() + dt.timedelta(days=400), 0, "张工")


def test_a_correction_replaces_the_figure_and_keeps_the_original(projects):
    r = projects.report_project("P1", "2026-03-02", 500, "张工")
    with pytest.raises(InputError):
        projects.report_project("P1", None, 50, "张工", correction_of=r["id"])  # no reason
    c = projects.report_project("P1", None, 50, "张工", correction_of=r["id"], reason="笔误，应为50万元")
    assert c["report_date"] == "2026-03-02" and c["invested_to_date"] == 50
    reps = {x["id"]: x for x in projects.project_reports("P1")}
    assert reps[r["id"]]["superseded"] and not reps[c["id"]]["superseded"]
    assert reps[c["id"]]["correction_of"] == r["id"] and reps[c["id"]]["reason"] == "笔误，应为50万元"
    assert projects.projects()[0]["invested_to_date"] == 50
    assert _fai(pm.indicators(projects, 2026, DAY))["actual"] == 50
    with pytest.raises(ConflictError):
        projects.report_project("P1", None, 60, "张工", correction_of=r["id"], reason="again")
    with pytest.raises(NotFoundError):
        projects.report_project("P2", None, 60, "张工", correction_of=c["id"], reason="另一个项目的")
    # a correction that would go above the total is refused too
    with pytest.raises(InputError, match="above its total"):
        projects.report_project("P1", None, 10001, "张工", correction_of=c["id"], reason="x")


def test_stages_move_one_step_and_set_their_dates(projects):
    p = projects.advance_project("P1", "construction", "2026-03-05", "张工")
    assert p["stage"] == "construction"
    with pytest.raises(StageTransitionError):
        projects.advance_project("P1", "completed", "2026-03-06", "张工")  # a skip
    p = projects.advance_project("P1", "production", "2026-09-01", "张工")
    assert p["production_on"] == "2026-09-01"
    p = projects.advance_project("P1", "started", "2026-09-02", "张工", correction="误报投产")
    assert p["stage"] == "started" and projects.project("P1")["events"][-1]["action"] == "correction"


# ------------------------------------------------------------------ permissions
@pytest.fixture
def with_accounts(projects):
    s = projects
    s.add_user("admin", "admin-secret", "admin", "bootstrap")
    s.add_user("leader", "leader-secret", "leader", "admin")
    s.add_user("unit_ed", "editor-secret", "editor", "admin")
    s.add_user("other_ed", "editor-secret", "editor", "admin")
    s.add_user("viewer", "viewer-secret", "viewer", "admin")
    s.assign("unit_ed", "unit", "区城市更新集团", "admin")
    s.assign("other_ed", "zone", "south", "admin")
    return s


def test_only_the_units_accounts_and_admins_report(with_accounts):
    s = with_accounts
    assert s.report_project("P1", "2026-03-02", 10, "unit_ed")["recorded_by"] == "unit_ed"
    assert s.report_project("P1", "2026-03-02", 10, "admin")["invested_to_date"] == 20
    for who in ("other_ed", "viewer", "leader", "nobody"):
        with pytest.raises(PermissionRefused):
            s.report_project("P1", "2026-03-03", 10, who)
        with pytest.raises(PermissionRefused):
            s.advance_project("P1", "construction", "2026-03-03", who)
    assert s.may_report_project("P1", "unit_ed") and not s.may_report_project("P1", "viewer")
    assert s.projects()[0]["invested_to_date"] == 20
    refused = s.audit(action="project_report", outcome="refused")
    assert len(refused) == 4


def test_only_leaders_and_admins_edit_the_ledger(with_accounts):
    s = with_accounts
    for who in ("unit_ed", "viewer"):
        with pytest.raises(PermissionRefused):
            s.upsert_projects(ledger(P2={"name": "改名"}), who)
    assert s.upsert_projects(ledger(P2={"name": "改名"}), "leader")["updated"] == 1


def test_a_followup_order_on_a_project_goes_to_its_unit(with_accounts):
    s = with_accounts
    f = s.issue_followup("P1", None, office_today().isoformat(), "请加快主体施工，确保月度计划", "leader")
    assert (f["on_type"], f["unit"]) == ("project", "区城市更新集团")
    with pytest.raises(PermissionRefused):
        s.reply_followup(f["id"], "收到", "other_ed")
    assert s.reply_followup(f["id"], "已增加施工班组", "unit_ed")["state"] == "replied"


# ------------------------------------------------------------------ dispatch and indicators
def test_dispatch_table_shows_reports_missing_and_behind(projects):
    projects.report_project("P1", "2026-03-04", 30, "张工", note="钢结构吊装")
    t = pm.dispatch_table(projects, DAY)
    assert [r["code"] for r in t["reported"]] == ["P1"] and t["reported"][0]["note"] == "钢结构吊装"
    assert [r["code"] for r in t["missing"]] == ["P2"]
    # P1 planned 500 + 500 + 1000 × 4/31 by 4 March and did 30: behind; P2 planned 100 × 4/31, did 0: behind
    behind = {r["code"]: r for r in t["behind_plan"]}
    assert behind["P1"]["expected_by_now"] == pytest.approx(1000 + 1000 * 4 / 31)
    assert behind["P1"]["shortfall"] == pytest.approx(1000 + 1000 * 4 / 31 - 30)
    assert t["counts"] == {"dispatched": 2, "reported": 1, "missing": 1, "behind_plan": 2}
    # a Saturday: nothing is due under daily dispatch; a week: any report of Monday to the day counts
    assert pm.dispatch_table(projects, "2026-03-07")["missing"] == []
    weekly = pm.dispatch_table(projects, "2026-03-06", cadence="weekly")
    assert weekly["window"] == ["2026-03-02", "2026-03-06"] and [r["code"] for r in weekly["missing"]] == ["P2"]


def test_fixed_asset_gap_is_target_minus_the_projects_completed_investment(projects):
    projects.report_project("P1", "2026-01-20", 400, "张工")
    projects.report_project("P1", "2026-02-20", 250.5, "张工")
    projects.report_project("P2", "2026-03-02", 80, "张工")
    projects.report_project("P1", "2025-12-31", 1000, "张工", note="2025年结转")  # last year's: not this year's
    rows = pm.indicators(projects, 2026, DAY)
    fai = _fai(rows)
    target = projects.project_config.target(projects.project_config.indicators["fixed_asset_investment"], 2026)
    assert fai["target"] == pytest.approx(target)
    assert fai["actual"] == pytest.approx(400 + 250.5 + 80)
    assert fai["gap"] == pytest.approx(target - (400 + 250.5 + 80))
    assert fai["expected_by"] == "plan"
    assert fai["expected_by_now"] == pytest.approx(1000 + 1000 * 4 / 31 + 100 * 4 / 31)
    cands = {c["code"]: c["could_add"] for c in fai["candidates"]}
    assert cands["P1"] == pytest.approx(2000 - 650.5) and cands["P2"] == pytest.approx(20)
    started = next(r for r in rows if r["indicator"] == "projects_started")
    assert started["actual"] == 1 and started["expected_by"] == "linear"
    assert [c["code"] for c in started["candidates"]] == ["P2"]  # not started yet


# ------------------------------------------------------------------ the pure rules
def test_expected_by_plan_and_linear():
    assert pm.expected_by_plan(300.0, 310.0, 1200.0, 2026, dt.date(2026, 3, 10)) == pytest.approx(300 + 100)
    assert pm.expected_by_plan(300.0, 310.0, 1200.0, 2026, dt.date(2027, 1, 2)) == 1200
    assert pm.expected_by_plan(300.0, 310.0, 1200.0, 2026, dt.date(2025, 12, 2)) == 0
    assert pm.year_share(2026, dt.date(2026, 12, 31)) == 1 and pm.year_share(2026, dt.date(2026, 1, 1)) == 1 / 365
    assert pm.report_window(dt.date(2026, 3, 6), "weekly") == (dt.date(2026, 3, 2), dt.date(2026, 3, 6))


def test_config_names_its_lists_and_targets(tmp_path):
    cfg = pm.load_project_config()
    assert [cfg.lists[k].label_zh for k in ("provincial", "city")] == ["省重点项目", "市重点项目"]
    assert len(cfg.lists) == 5 and cfg.cadence in pm.CADENCES
    assert {i.label_zh for i in cfg.industries.values()} == {"高端装备制造", "核电装备", "节能环保", "宠物用品",
                                                            "电子信息和人工智能"}
    fai = cfg.indicators["fixed_asset_investment"]
    assert cfg.target(fai, 2026) == pytest.approx(fai.years[2026]["previous"] * 1.08)
    bad = tmp_path / "projects.toml"
    bad.write_text((pm.default_layers_dir() / "projects.toml").read_text(encoding="utf-8")
                   .replace('cadence = "daily"', 'cadence = "hourly"'), encoding="utf-8")
    with pytest.raises(InputError, match="hourly"):
        pm.load_project_config(bad)


def test_dispatch_rows_without_a_store():
    cfg = pm.load_project_config()
    r = pd.DataFrame([
        {"code": "A", "name": "a", "unit": "u", "industry": None, "stage": "construction", "investment_total": 1000.0,
         "listed": True, "reports_in_window": 0, "last_report": "2026-03-01", "invested_year": 0.0,
         "planned_before": 0.0, "planned_month": 0.0, "planned_year": 0.0},
        {"code": "B", "name": "b", "unit": "u", "industry": None, "stage": "construction", "investment_total": 400.0,
         "listed": True, "reports_in_window": 0, "last_report": None, "invested_year": 0.0,
         "planned_before": 0.0, "planned_month": 0.0, "planned_year": 0.0},
        {"code": "C", "name": "c", "unit": "u", "industry": None, "stage": "completed", "investment_total": 9000.0,
         "listed": True, "reports_in_window": 0, "last_report": None, "invested_year": 0.0,
         "planned_before": 0.0, "planned_month": 0.0, "planned_year": 0.0},
    ])
    t = pm.dispatch_rows(r, [], cfg, DAY)
    assert [m["code"] for m in t["missing"]] == ["A"] and t["missing"][0]["days_since"] == 3  # B: under 500万


# ------------------------------------------------------------------ the demo
def test_demo_has_projects_on_lists_with_reports(demo_where, tmp_path):
    s = open_store_at(demo_where)
    rows = s.projects()
    assert 55 <= len(rows) <= 70
    assert {x for r in rows for x in r["lists"]} >= {"provincial", "city", "under_construction", "to_start"}
    assert all(r["parcels"] or r["code"] for r in rows)
    day = dt.date(2026, 11, 13)
    assert s.last_report_day() == day
    t = pm.dispatch_table(s, day)
    assert t["reported"] and t["missing"] and t["behind_plan"]
    assert t["counts"]["behind_plan"] < t["counts"]["dispatched"] / 2
    fai = _fai(pm.indicators(s, 2026, day))
    done = sum(r["invested_year"] for r in s.projects(as_of=day))
    assert fai["gap"] == pytest.approx(fai["target"] - done, abs=1e-6)
    fp = s.project_footprints()
    assert len(fp) == len(rows) and fp.geometry.notna().all()


def test_migration_9_applies_to_an_older_store(tiny_store_template, tmp_path, catalog):
    from gis.store.store import Store

    path = tmp_path / "old.gpkg"
    shutil.copy(tiny_store_template, path)
    s = Store(path, catalog)
    assert s.meta()["schema_version"] == str(schema.LATEST)
    assert s.projects() == []


def test_the_ledger_export_gains_a_projects_sheet(projects, tmp_path):
    projects.report_project("P1", "2026-03-02", 321.5, "张工")
    export(projects, "xlsx", tmp_path / "台账.xlsx")
    wb = load_workbook(tmp_path / "台账.xlsx")
    assert wb.sheetnames == ["地块台账", "村庄汇总", "项目台账", "说明"]
    rows = list(wb["项目台账"].iter_rows(values_only=True))
    assert rows[0][:3] == ("项目编号", "项目名称", "项目类型") and "累计完成投资（万元）" in rows[0]
    p1 = next(r for r in rows if r[0] == "P1")
    assert p1[rows[0].index("累计完成投资（万元）")] == 321.5 and p1[rows[0].index("所在地块")] == "HSR-001、V01"
    assert p1[rows[0].index("所属清单")] == "省重点项目、在建项目清单"
    # a filtered export keeps the projects standing on the parcels exported
    export(projects, "xlsx", tmp_path / "some.xlsx", codes=["MIN-01"])
    assert "项目台账" not in load_workbook(tmp_path / "some.xlsx").sheetnames
