"""What plans, status filters and follow-up orders check before they act (the CLI review, items 8–10, 13,
16, 18, 20, 23): unknown baselines and units, plan dates as offices write them, the template's example
rows, follow-up targets and due dates, whole-English refusals, strict JSON. Store tests on both back ends."""
from __future__ import annotations

import datetime as dt
import io
import json
import math
import re
import shutil

import numpy as np
import pandas as pd
import pytest
from openpyxl import load_workbook

from gis.base.clock import office_today
from gis.base.errors import ConflictError, InputError, NotFoundError, PermissionRefused
from gis.cli.common import finite_json, print_json
from gis.devtools.devserver import running_app
from gis.io import plans_io
from gis.model.plans import PlanDateError, parse_plan_date
from gis.store.open import open_store_at
from tests.conftest import DEMO, screenshot_dir, sign_in
from tests.test_plans_cli import run

CJK = re.compile(r"[\u4e00-\u9fff]")


def strict_json(text: str):
    """``json.loads`` that refuses NaN and Infinity, as other programs' JSON readers do."""
    def refuse(token):
        raise ValueError(f"invalid JSON number {token}")
    return json.loads(text, parse_constant=refuse)


# ------------------------------------------------------------------ no store
@pytest.mark.parametrize("text, day", [
    ("2026-12-31", dt.date(2026, 12, 31)), ("2026-1-5", dt.date(2026, 1, 5)), ("2026/12/31", dt.date(2026, 12, 31)),
    ("2026.12.31", dt.date(2026, 12, 31)), ("2026年12月31日", dt.date(2026, 12, 31)), (" 2026/1/5 ", dt.date(2026, 1, 5)),
    ("2026-12-31 00:00:00", dt.date(2026, 12, 31)), (dt.datetime(2026, 3, 1, 0, 0), dt.date(2026, 3, 1)),
    (dt.date(2026, 3, 1), dt.date(2026, 3, 1))])
def test_plan_dates_in_the_forms_offices_write(text, day):
    assert parse_plan_date(text) == day


@pytest.mark.parametrize("text, reason", [
    ("12/31/2026", "ambiguous"), ("31/12/2026", "ambiguous"), ("1/5/26", "ambiguous"), ("05.01.2026", "ambiguous"),
    ("46387", "serial"), ("46387.0", "serial"), ("2026/02/30", "invalid"), ("2026-13-01", "invalid"),
    ("tomorrow", "invalid"), ("2026-12-31 13:30", "invalid")])
def test_plan_dates_that_are_refused_say_why(text, reason):
    with pytest.raises(PlanDateError) as exc:
        parse_plan_date(text)
    assert exc.value.reason == reason


def test_json_output_never_carries_nan_or_infinity(capsys):
    obj = {"note": float("nan"), "total": float("inf"), "rows": [np.float64("-inf"), np.float32("nan"), 1.5,
                                                                  np.int64(3), (pd.NA, pd.NaT)], "ok": "x"}
    assert finite_json(obj) == {"note": None, "total": None, "rows": [None, None, 1.5, 3, [None, None]], "ok": "x"}
    print_json(obj)
    assert strict_json(capsys.readouterr().out)["rows"][3] == 3


def _template_rows(store, lang="zh"):
    data = plans_io.template_bytes(store, lang)
    return data, plans_io.read_plan_rows(data, "plan.xlsx")


# ------------------------------------------------------------------ the store, both back ends
@pytest.fixture
def office(any_store):
    """The tiny store with an admin, a leader and a viewer."""
    any_store.add_user("admin", "admin-secret", "admin", "bootstrap")
    any_store.add_user("leader", "leader-secret", "leader", "admin")
    any_store.add_user("viewer", "viewer-secret", "viewer", "admin")
    return any_store


def test_a_mistyped_baseline_is_refused_not_created(any_store):
    v0 = any_store.data_version()
    for call in (lambda: any_store.set_target("V01-002", "listed", "2026-12-31", "王芳", baseline="anual"),
                 lambda: any_store.set_targets([{"object": "V01-002", "stage": "listed", "due": "2026-12-31"}],
                                               "王芳", baseline="nope"),
                 lambda: any_store.status_rows(baseline="nope"),
                 lambda: any_store.baseline_name("nope")):
        with pytest.raises(NotFoundError) as exc:
            call()
        assert exc.value.exit_code == 2 and "renewal plan baseline" in exc.value.message("en")
    assert any_store.plan_baselines() == [] and any_store.data_version() == v0
    # the built-in ones are made on first use; an added one is then known
    any_store.set_target("V01-002", "listed", "2026-12-31", "王芳", baseline="commitment")
    any_store.add_baseline("冲刺", "王芳", start="2026/12/01", end="2026年12月31日")
    any_store.set_target("V01-002", "listed", "2026-12-20", "王芳", baseline="冲刺")
    assert {b["name"]: b["targets"] for b in any_store.plan_baselines()} == {"commitment": 1, "冲刺": 1}
    assert [b["end_date"] for b in any_store.plan_baselines() if b["name"] == "冲刺"] == ["2026-12-31"]
    assert any_store.status_rows(baseline="冲刺")[0]["due"] == "2026-12-20"


def test_unit_filters_must_name_a_known_unit(any_store):
    any_store.set_target("V01-002", "listed", "2026-12-31", "王芳")
    assert any_store.unit_names() == ["凤凰街道办事处", "区城市更新集团", "区自然资源局"]
    assert [r["object"] for r in any_store.status_rows(unit="凤凰街道办事处") if r["status"] != "stalled"] == ["V01-002"]
    with pytest.raises(NotFoundError) as exc:
        any_store.status_rows(unit="火星办")
    assert "凤凰街道办事处" in exc.value.message("zh")
    with pytest.raises(NotFoundError) as exc:  # a part of a unit's name: the refusal points at it
        any_store.unit_name("凤凰街道")
    assert exc.value.params["known"]["zh"] == "凤凰街道办事处"


def test_dates_as_excel_writes_them_are_stored_as_dates(any_store):
    row = any_store.set_target("V01-002", "listed", "2026/12/31", "王芳")
    assert row["due_date"] == "2026-12-31"
    out = any_store.set_targets([{"row": 2, "object": "V01-001", "stage": "survey", "due": "2026.1.5"},
                                 {"row": 3, "object": "V01-003", "stage": "survey", "due": dt.date(2026, 2, 1)}],
                                "王芳")
    assert out["added"] == 2
    due = dict(zip(any_store.plan_targets()["object"], any_store.plan_targets()["due_date"]))
    assert due == {"V01-001": "2026-01-05", "V01-002": "2026-12-31", "V01-003": "2026-02-01"}
    with pytest.raises(InputError) as exc:
        any_store.set_target("V01-002", "listed", "12/31/2026", "王芳")
    assert "ambiguous" in exc.value.message("en") and "年份开头" in exc.value.message("zh")
    with pytest.raises(InputError) as exc:  # one bad row of an import: "Row 3 … is", not "1 rows … (rows 3)"
        any_store.set_targets([{"row": 3, "object": "V01-001", "stage": "survey", "due": "46387"}], "王芳")
    assert exc.value.message("en") == "Row 3 of the plan is wrong; nothing was imported"
    assert "Excel" in exc.value.params["rejected"][0]["reason"]


def test_set_target_returns_plain_values(any_store):
    row = any_store.set_target("V01-002", "listed", "2026-12-31", "王芳")
    assert row["note"] is None and row["reason"] is None and isinstance(row["revision"], int)
    assert not any(isinstance(v, float) and math.isnan(v) for v in row.values())


def test_the_templates_example_rows_are_not_imported(any_store):
    for lang in ("zh", "en"):
        data, rows = _template_rows(any_store, lang)
        assert len(rows) == 2 and all(r["example"] for r in rows)
        ws = load_workbook(io.BytesIO(data)).worksheets[0]
        assert all(c.font.color.rgb.endswith("808080") for c in ws[2])  # shown grey
    # a planner fills in rows below the examples (or copies the sheet), and imports
    wb = load_workbook(io.BytesIO(data))
    wb.worksheets[0].append(["V01-003", "survey", dt.datetime(2026, 12, 31), "", "整理后填写"])
    buf = io.BytesIO()
    wb.save(buf)
    rows = plans_io.read_plan_rows(buf.getvalue(), "plan.xlsx")
    out = any_store.set_targets(rows, "王芳")
    assert (out["added"], out["skipped_examples"]) == (1, 2)
    assert list(any_store.plan_targets()["object"]) == ["V01-003"]
    # a template handed out before the marks: its village example said 示例行…
    old = [{"row": 2, "object": "V01", "stage": "签约", "due": "2026-12-31", "note": "示例行：整村目标，可删除"}]
    assert plans_io.read_plan_rows(_csv(old), "plan.csv")[0]["example"]


def _csv(rows) -> bytes:
    lines = ["对象编号,目标阶段,计划完成日期,责任单位,备注"] + [
        ",".join(str(r.get(k, "")) for k in ("object", "stage", "due", "unit", "note")) for r in rows]
    return ("\r\n".join(lines) + "\r\n").encode("utf-8-sig")


def test_refusals_are_english_in_their_english_part(office):
    with pytest.raises(PermissionRefused) as exc:
        office.set_targets([{"row": 2, "object": "V01-002", "stage": "listed", "due": "2026-12-31"}], "viewer")
    assert exc.value.message("en") == "Row 2: User viewer (viewer) may not plan 'V01-002'"
    assert exc.value.message("zh").startswith("第 2 行：")
    with pytest.raises(PermissionRefused) as exc:  # one target set by hand: no row number
        office.set_target("V01-002", "listed", "2026-12-31", "viewer")
    assert "Row" not in exc.value.bilingual() and "行" not in exc.value.message("zh")
    with pytest.raises(InputError) as exc:
        office.set_target("V01-001", "layout", "2026-12-31", "leader")  # a park stage on a village parcel
    assert not CJK.search(exc.value.message("en").replace("layout", ""))


def test_a_followup_names_an_existing_target_and_a_due_date_ahead(office):
    today = office_today()
    due = (today + dt.timedelta(days=7)).isoformat()
    office.set_target("V01", "签约", "2026-12-31", "leader")
    f = office.issue_followup("V01-003", None, due, "签约滞后", "leader", target="annual/Dong'ao/签约")
    assert f["target"] == "annual/V01/signing"  # stored by code and stage key
    assert office.issue_followup("V01", None, today, "x", "leader", target="annual/V01/signing")["due"] == \
        today.isoformat()
    n = len(office.followups())
    for target, error, words in (("garbage", InputError, "baseline/object/stage"),
                                 ("anual/V01/signing", NotFoundError, "No plan baseline"),
                                 ("annual/V01/demolition", NotFoundError, "No target"),
                                 ("annual/NOPE/signing", NotFoundError, "NOPE"),
                                 ("annual/V01/拆迁", InputError, "pipeline")):
        with pytest.raises(error) as exc:
            office.issue_followup("V01-003", None, due, "x", "leader", target=target)
        assert words in exc.value.message("en"), exc.value.message("en")
    with pytest.raises(InputError, match="shares no parcel"):  # about another object than the order
        office.issue_followup("HSR-001", None, due, "x", "leader", target="annual/V01/signing")
    with pytest.raises(InputError) as exc:
        office.issue_followup("V01-003", None, "1990-01-01", "x", "leader")
    assert "before today" in exc.value.message("en") and exc.value.exit_code == 2
    assert len(office.followups()) == n


def test_repeating_a_finished_action_is_a_conflict_that_says_so(office):
    f = office.issue_followup("V01-003", None, office_today(), "签约滞后", "leader")
    office.close_followup(f["id"], "leader")
    with pytest.raises(ConflictError) as exc:
        office.close_followup(f["id"], "leader")
    assert exc.value.exit_code == 4
    assert "already 'Closed'" in exc.value.message("en") and "closed" not in exc.value.message("zh")
    assert "已办结" in exc.value.message("zh") and "无需再次办结" in exc.value.message("zh")
    with pytest.raises(ConflictError) as exc:
        office.return_followup(f["id"], "请补充", "leader")
    assert exc.value.message("en") == f"Order #{f['id']} is 'Closed': cannot 'send back'"
    office.adopt_baseline("annual", "leader")
    with pytest.raises(ConflictError) as exc:
        office.adopt_baseline("annual", "leader")
    assert exc.value.exit_code == 4 and "already adopted" in exc.value.message("en")
    assert "by leader" in exc.value.message("en") and "T" not in exc.value.params["at"]  # Beijing time, not ISO


# ------------------------------------------------------------------ the command line
@pytest.fixture
def store_file(tiny_store):
    return tiny_store.path or tiny_store.url


def test_cli_plan_json_is_strict_and_filters_are_checked(store_file, tmp_path):
    out = run("plan", "template", "-o", str(tmp_path / "plan.xlsx"), store=store_file)
    assert out.returncode == 0, out.stderr
    out = run("plan", "import", str(tmp_path / "plan.xlsx"), "--json", "--by", "王芳", store=store_file)
    assert out.returncode == 0, out.stderr
    assert strict_json(out.stdout)["added"] == 0 and strict_json(out.stdout)["skipped_examples"] == 2
    assert "示例" in out.stderr and "Example rows" in out.stderr
    out = run("plan", "set", "V01", "--stage", "签约", "--due", "2026/12/31", "--by", "王芳", store=store_file)
    assert out.returncode == 0, out.stderr
    assert strict_json(out.stdout)["note"] is None and strict_json(out.stdout)["due_date"] == "2026-12-31"
    (tmp_path / "p.csv").write_text("对象编号,目标阶段,计划完成日期\nV01-001,意愿征询,2026/12/31\n", encoding="utf-8")
    for args in (("plan", "set", "V01", "--stage", "签约", "--due", "2026-12-31", "--baseline", "anual"),
                 ("plan", "import", str(tmp_path / "p.csv"), "--baseline", "nope"),
                 ("plan", "list", "--baseline", "nope"), ("status", "--baseline", "nope"),
                 ("status", "--unit", "不存在单位"), ("followup", "list", "--unit", "火星办"),
                 ("report", "--since", "2026-11-01", "--unit", "火星办", "-o", str(tmp_path / "r.xlsx"))):
        out = run(*args, "--by", "王芳", store=store_file) if args[0] == "plan" and args[1] != "list" \
            else run(*args, store=store_file)
        assert out.returncode == 2, (args, out.stderr)
        assert "错误 Error" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "r.xlsx").exists()
    assert [b["name"] for b in strict_json(run("plan", "baselines", store=store_file).stdout)] == ["annual"]
    out = run("plan", "import", str(tmp_path / "p.csv"), "--json", "--by", "王芳", store=store_file)
    assert out.returncode == 0, out.stderr
    assert strict_json(out.stdout)["added"] == 1


def test_cli_says_what_is_missing_to_prove_who_acts(store_file):
    s = open_store_at(str(store_file))
    s.add_user("admin", "office-secret", "admin", "bootstrap")
    s.add_user("leader", "office-secret", "leader", "admin")
    write = ("plan", "set", "V01", "--stage", "签约", "--due", "2026-12-31")
    out = run(*write, store=store_file)
    assert out.returncode == 3 and "?" not in out.stderr.split("Error:")[1][:3]
    assert "--as" in out.stderr and "RENEWAL_PASSWORD" in out.stderr and "say who acts" in out.stderr
    out = run(*write, store=store_file, env={"RENEWAL_PASSWORD": "office-secret"})
    assert out.returncode == 3 and "--as NAME is missing" in out.stderr and "Wrong" not in out.stderr
    out = run("--as", "leader", *write, store=store_file, env={"RENEWAL_PASSWORD": "office-secret"})
    assert out.returncode == 0, out.stderr
    act = (lambda *a: run("--as", "leader", *a, store=store_file, env={"RENEWAL_PASSWORD": "office-secret"}))
    past = (office_today() - dt.timedelta(days=1)).isoformat()
    out = act("followup", "add", "--on", "V01", "--due", past, "--text", "x")
    assert out.returncode == 2 and "before today" in out.stderr
    out = act("followup", "add", "--on", "V01", "--due", "2099/1/5", "--text", "x", "--target", "annual/V01/签约")
    assert out.returncode == 0, out.stderr
    fid = strict_json(out.stdout)["id"]
    assert strict_json(out.stdout)["target"] == "annual/V01/signing"
    assert act("followup", "close", str(fid)).returncode == 0
    out = act("--lang", "en", "followup", "close", str(fid))
    assert out.returncode == 4 and "already 'Closed'" in out.stderr and "“closed”" not in out.stderr
    out = act("plan", "adopt", "annual")
    assert out.returncode == 0, out.stderr
    out = act("plan", "adopt", "annual")
    assert out.returncode == 4 and "already adopted" in out.stderr


# ------------------------------------------------------------------ the plan page (real app, headless Chromium)
@pytest.mark.browser
@pytest.mark.slow
def test_the_plan_page_imports_a_template_without_its_examples(tmp_path, page):
    shutil.copy(DEMO, tmp_path / "renewal.gpkg")
    store = open_store_at(str(tmp_path / "renewal.gpkg"))
    template = tmp_path / "计划表模板.xlsx"
    template.write_bytes(plans_io.template_bytes(store, "zh"))
    before = len(store.plan_targets())
    with running_app(tmp_path) as app:
        sign_in(page, app["url"], "leader", "renewal-leader")
        page.get_by_role("link", name="计划与督办").click()
        page.get_by_text("计划表导入导出").wait_for(timeout=60000)
        page.get_by_text("计划表导入导出").click()
        page.locator("input[type=file]").last.set_input_files(str(template))
        page.get_by_role("button", name="导入").wait_for(timeout=30000)
        page.get_by_role("textbox", name="修改原因（计划已确认下达，修改须填写）").last.fill("调度会研究调整")
        page.get_by_role("button", name="导入").click()
        flash = page.get_by_text("已跳过模板示例行 2 行")
        flash.wait_for(timeout=60000)
        assert "新增 0 项" in flash.inner_text()
        flash.scroll_into_view_if_needed()
        page.wait_for_timeout(800)
        page.screenshot(path=str(screenshot_dir(tmp_path) / "plan_import_examples.png"))
        page.set_viewport_size({"width": 390, "height": 844})
        page.wait_for_timeout(1500)
        flash.scroll_into_view_if_needed()
        page.screenshot(path=str(screenshot_dir(tmp_path) / "plan_import_examples_phone.png"))
    assert len(open_store_at(str(tmp_path / "renewal.gpkg")).plan_targets()) == before
