"""`renewal project …` and `renewal indicators` run as an office would (a subprocess), on both back ends:
the ledger template filled in and imported (all or nothing), a report raising the invested-to-date and
the fixed-asset actual by the same amount, a report above the total refused (exit 2), permissions (exit 3)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from openpyxl import load_workbook

from gis.store import open_store_at

ROOT = Path(__file__).resolve().parent.parent


def run(*args, store=None, env=None):
    e = dict(os.environ)
    for k in ("RENEWAL_LANG", "RENEWAL_PASSWORD", "RENEWAL_TOKEN", "RENEWAL_USER"):
        e.pop(k, None)
    e.update(env or {})
    cmd = [sys.executable, "-m", "gis.cli"] + (["--store", str(store)] if store else []) + list(args)
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=e, timeout=120)


@pytest.fixture
def store_file(tiny_store):
    return tiny_store.path or tiny_store.url


def _fill(template: Path, out: Path, rows) -> Path:
    """The template with its example row replaced by ``rows`` (dicts of header → value)."""
    wb = load_workbook(template)
    ws = wb.worksheets[0]
    headers = [c.value for c in ws[1]]
    ws.delete_rows(2, ws.max_row)
    for r in rows:
        ws.append([r.get(h) for h in headers])
    wb.save(out)
    return out


GOOD = {"项目编号": "XM-101", "项目名称": "测试传感器生产线项目", "项目类型": "产业项目", "主导产业": "电子信息和人工智能",
        "总投资（万元）": 20000, "责任单位": "区城市更新集团", "所在地块": "HSR-001、V01-001", "所属清单": "市重点项目，在建项目清单",
        "项目阶段": "在建", "开工日期": "2026-01-10", "2026年1月计划（万元）": 800, "2026年2月计划（万元）": 900,
        "2026年3月计划（万元）": 1200}


def test_template_import_list_report_and_indicators(store_file, tmp_path):
    out = run("project", "template", "-o", str(tmp_path / "t.xlsx"), "--year", "2026", store=store_file)
    assert out.returncode == 0, out.stderr
    wb = load_workbook(tmp_path / "t.xlsx")
    head = [c.value for c in wb.worksheets[0][1]]
    assert head[:4] == ["项目编号", "项目名称", "项目类型", "主导产业"] and "2026年12月计划（万元）" in head
    assert any("省重点项目" in str(r[1]) for r in wb.worksheets[1].iter_rows(values_only=True))

    bad = _fill(tmp_path / "t.xlsx", tmp_path / "bad.xlsx", [
        GOOD, {**GOOD, "项目编号": "XM-102", "所在地块": "NOPE-1"}, {**GOOD, "项目编号": "XM-103", "总投资（万元）": "abc"}])
    out = run("project", "import", str(bad), "--json", "--year", "2026", store=store_file)
    assert out.returncode == 2
    rejected = json.loads(out.stdout)["rejected"]
    assert [r["row"] for r in rejected] == [3, 4] and "NOPE-1" in rejected[0]["reason"]
    assert "第 3, 4 行" in out.stderr and "rows 3, 4" in out.stderr
    assert json.loads(run("project", "list", "--json", store=store_file).stdout) == []  # nothing landed

    good = _fill(tmp_path / "t.xlsx", tmp_path / "good.xlsx", [GOOD, {**GOOD, "项目编号": "XM-102", "所在地块": "hsr_ai",
                                                                    "所属清单": "省重点项目", "总投资（万元）": 3000}])
    out = run("project", "import", str(good), "--json", store=store_file)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["added"] == 2
    rows = {r["code"]: r for r in json.loads(run("project", "list", "--json", store=store_file).stdout)}
    assert rows["XM-101"]["parcels"] == ["HSR-001", "V01-001"] and rows["XM-101"]["stage"] == "construction"
    assert rows["XM-101"]["lists"] == ["city", "under_construction"] and rows["XM-101"]["planned_year"] == 2900
    only = json.loads(run("project", "list", "--list", "省重点项目", "--json", store=store_file).stdout)
    assert [r["code"] for r in only] == ["XM-102"]

    def fai():
        out = run("indicators", "--year", "2026", "--as-of", "2026-03-31", "--json", store=store_file)
        assert out.returncode == 0, out.stderr
        return next(r for r in json.loads(out.stdout) if r["indicator"] == "fixed_asset_investment")

    before = fai()
    out = run("project", "report", "XM-101", "--date", "2026-03-02", "--invested", "456.78", "--note", "主体施工",
              "--by", "张工", store=store_file)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["invested_to_date"] == 456.78
    after = fai()
    assert after["actual"] == pytest.approx(before["actual"] + 456.78)
    assert after["gap"] == pytest.approx(after["target"] - 456.78)
    rows = {r["code"]: r for r in json.loads(run("project", "list", "--json", store=store_file).stdout)}
    assert rows["XM-101"]["invested_to_date"] == 456.78

    out = run("project", "report", "XM-102", "--date", "2026-03-02", "--invested", "3000.01", "--by", "张工",
              store=store_file)
    assert out.returncode == 2 and "超过总投资" in out.stderr and "above its total" in out.stderr
    out = run("project", "dispatch", "--date", "2026-03-02", "--json", store=store_file)
    t = json.loads(out.stdout)
    assert [r["code"] for r in t["reported"]] == ["XM-101"] and [r["code"] for r in t["missing"]] == ["XM-102"]
    out = run("project", "advance", "XM-101", "--to", "投产", "--date", "2026-03-20", "--by", "张工", store=store_file)
    assert out.returncode == 0 and json.loads(out.stdout)["production_on"] == "2026-03-20"


def test_permissions_on_the_command_line(store_file, tmp_path):
    run("project", "template", "-o", str(tmp_path / "t.xlsx"), store=store_file)
    good = _fill(tmp_path / "t.xlsx", tmp_path / "good.xlsx", [GOOD])
    assert run("project", "import", str(good), store=store_file).returncode == 0
    s = open_store_at(str(store_file))
    for name, role in (("admin", "admin"), ("unit_ed", "editor"), ("viewer", "viewer")):
        s.add_user(name, "secret-pass-1", role, "admin")
    out = run("--operator", "user", "assign", "unit_ed", "--unit", "区城市更新集团", store=store_file)
    assert out.returncode == 0, out.stderr
    env = {"RENEWAL_PASSWORD": "secret-pass-1"}
    refused = run("--as", "viewer", "project", "report", "XM-101", "--date", "2026-03-02", "--invested", "10",
                  store=store_file, env=env)
    assert refused.returncode == 3 and "区城市更新集团" in refused.stderr
    ok = run("--as", "unit_ed", "project", "report", "XM-101", "--date", "2026-03-02", "--invested", "10",
             store=store_file, env=env)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["recorded_by"] == "unit_ed"
