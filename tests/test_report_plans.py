"""The dispatch-meeting pack's plan parts (gis/printing/report.py): overdue and due-soon targets and open
follow-up orders in the PDF, the Word file and the workbook, with their counts; planned against actual."""
from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import docx
import openpyxl
from pypdf import PdfReader

from gis.base.clock import office_today
from gis.printing.report import build_report, write_report

ROOT = Path(__file__).resolve().parent.parent
ORDER = "请于月底前化解权属争议"


def _seed(store) -> dt.date:
    today = office_today()
    store.set_target("V01-002", "listed", (today - dt.timedelta(days=5)).isoformat(), "王芳")  # overdue
    store.set_target("V01-001", "survey", (today + dt.timedelta(days=3)).isoformat(), "王芳")  # due soon
    store.set_target("MIN-01", "tenure_check", (today + dt.timedelta(days=200)).isoformat(), "王芳")  # on track
    store.issue_followup("V01-003", None, (today + dt.timedelta(days=10)).isoformat(), ORDER, "王芳")
    closed = store.issue_followup("HSR-001", None, today.isoformat(), "已完成的事项", "王芳")
    store.close_followup(closed["id"], "王芳")
    return today


def test_overdue_targets_and_open_orders_are_in_all_three_formats(tiny_store, tmp_path):
    today = _seed(tiny_store)
    rep = build_report(tiny_store, today - dt.timedelta(days=13), today, classification="内部资料")
    assert rep.counts["overdue"] == 1 and rep.counts["due_soon"] == 1 and rep.counts["open_followups"] == 1
    assert list(rep.targets["object"]) == ["V01-002", "V01-001"]  # the late one first; on-track ones left out
    assert list(rep.followups["on"]) == ["V01-003"]  # the closed order is not open
    # planned against actual: targets due by each month's end (cumulative), reached by then
    assert rep.plan_trend["planned"].iloc[-1] == 1 and rep.plan_trend["actual"].iloc[-1] == 0
    assert "plan" in rep.figures

    out = {s: write_report(rep, tmp_path / f"pack{s}") for s in (".pdf", ".docx", ".xlsx")}
    assert all(o["counts"]["open_followups"] == 1 and o["counts"]["overdue"] == 1 for o in out.values())

    d = docx.Document(tmp_path / "pack.docx")
    heads = [p.text for p in d.paragraphs]
    assert "逾期与临期目标" in heads and "未办结督办事项" in heads
    cells = {c.text for tb in d.tables for row in tb.rows for c in row.cells}
    assert {"V01-002", "逾期", "V01-001", "临期", ORDER, "V01-003"} <= cells and "已完成的事项" not in cells

    pdf = "".join(p.extract_text() for p in PdfReader(tmp_path / "pack.pdf").pages).replace(" ", "")
    assert "逾期与临期目标" in pdf and "V01-002" in pdf and ORDER in pdf and "计划与实际" in pdf

    wb = openpyxl.load_workbook(tmp_path / "pack.xlsx")
    targets = list(wb["逾期与临期目标"].iter_rows(min_row=2, values_only=True))
    assert [(r[0], r[4], r[5]) for r in targets] == [("V01-002", "逾期", 5), ("V01-001", "临期", None)]
    orders = list(wb["未办结督办事项"].iter_rows(min_row=2, values_only=True))
    assert [(r[1], r[5]) for r in orders] == [("V01-003", ORDER)]
    summary = {r[0]: r[1] for r in wb["概况"].iter_rows(values_only=True) if r and r[0]}
    assert summary["逾期目标"] == "1" and summary["未办结督办"] == "1"


def test_a_scoped_pack_keeps_only_the_scope_s_targets_and_orders(tiny_store):
    today = _seed(tiny_store)
    rep = build_report(tiny_store, today - dt.timedelta(days=13), today, zone="北部")
    assert rep.counts["overdue"] == 0 and rep.counts["open_followups"] == 0 and len(rep.targets) == 0
    rep = build_report(tiny_store, today - dt.timedelta(days=13), today, village="V01")
    assert rep.counts["overdue"] == 1 and list(rep.followups["on"]) == ["V01-003"]


def test_cli_report_json_counts_the_plan_parts(tiny_store, tmp_path):
    _seed(tiny_store)
    since = (office_today() - dt.timedelta(days=13)).isoformat()
    res = subprocess.run([sys.executable, "-m", "gis.cli", "--store", tiny_store.where, "report", "--since", since,
                          "-o", str(tmp_path / "r.xlsx"), "--json", "--quiet"],
                         capture_output=True, text=True, cwd=ROOT, timeout=180)
    assert res.returncode == 0, res.stderr
    counts = json.loads(res.stdout)["counts"]
    assert (counts["overdue"], counts["due_soon"], counts["open_followups"]) == (1, 1, 1)
