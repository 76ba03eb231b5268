"""A key project's briefing page (gis/printing/project_brief.py): `renewal brief --project CODE` writes a
one-page PDF (or PNG) with the project's name, facts, curve and reports in selectable text, on both back
ends; a wrong request writes nothing and exits 2."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gis.printing.project_brief import nice_step, render_project_page
from gis.store.open import open_store_at

ROOT = Path(__file__).resolve().parent.parent


def run(*args, store=None):
    e = {k: v for k, v in os.environ.items() if k not in ("RENEWAL_LANG", "RENEWAL_PASSWORD", "RENEWAL_TOKEN")}
    cmd = [sys.executable, "-m", "gis.cli"] + (["--store", str(store)] if store else []) + list(args)
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=e, timeout=180)


def _text(pdf: Path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout


def test_the_curve_s_axis_steps_are_round():
    assert [nice_step(x) for x in (0.7, 1, 1.3, 3, 7, 420, 2600)] == [1, 1, 2, 5, 10, 500, 5000]


def test_a_project_page_from_the_command_line(demo_where, tmp_path):
    s = open_store_at(demo_where)
    p = s.project(max(s.projects(), key=lambda x: x["investment_total"])["code"])
    out = tmp_path / "project.pdf"
    r = run("brief", "--project", p["code"], "--no-raster", "-o", str(out), store=demo_where)
    assert r.returncode == 0, r.stderr
    text = _text(out)
    assert p["name"] in text and "重点项目简报图" in text and "示例数据" in text
    assert "投资计划与完成" in text and "项目信息" in text and p["unit"] in text
    latest = p["reports"][0]["report_date"]
    assert latest in text  # its latest report, newest first
    info = subprocess.run(["pdfinfo", str(out)], capture_output=True, text=True, check=True).stdout
    assert re.search(r"^Pages:\s+1$", info, re.M), info


def test_a_project_page_in_english_and_as_png(demo_where, tmp_path):
    s = open_store_at(demo_where)
    code = s.projects()[0]["code"]
    pdf = render_project_page(s, code, tmp_path / "p.pdf", lang="en", raster=None)
    assert "Key project briefing" in _text(pdf) and "Project facts" in _text(pdf)
    png = render_project_page(s, code, tmp_path / "p.png", raster=None, dpi=60)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("args", [("--project", "NO-SUCH"), ("--project", "XM-001", "V01-001")])
def test_a_wrong_request_writes_nothing(demo_where, tmp_path, args):
    out = tmp_path / "x.pdf"
    r = run("brief", *args, "--no-raster", "-o", str(out), store=demo_where)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert not out.exists() and "Traceback" not in r.stderr
