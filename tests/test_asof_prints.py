"""Prints and exports of a past date (gis/store/asof.py): a briefing page, an atlas, the ledger and the map
exports as of a business date (or as recorded at an instant) show the stages of then and say "截至 D"."""
from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import openpyxl
import pyogrio
import pytest
from pypdf import PdfReader

from gis.base import clock
from gis.io.exporter import export
from gis.model.timeline import Moment, parse_as_recorded
from gis.printing.briefing import render_atlas, render_parcel_page, render_village_page, select_parcels
from gis.store.asof import StoreAt, store_at

ROOT = Path(__file__).resolve().parent.parent
UTC = dt.timezone.utc
D = dt.date(2024, 4, 1)


@pytest.fixture
def advanced(tiny_store, monkeypatch):
    """V01-002 advanced from 意愿征询 (survey) to 入库 (listed) on D, recorded that day."""
    monkeypatch.setattr(clock, "utcnow", lambda: dt.datetime(2024, 4, 1, 2, tzinfo=UTC))
    tiny_store.advance("V01-002", "listed", D.isoformat(), "王芳", today=D)
    monkeypatch.undo()
    return tiny_store


def _pdf_text(path) -> str:
    return "".join(p.extract_text() for p in PdfReader(path).pages).replace(" ", "")


def test_the_view_answers_as_of_and_now_is_the_store_itself(advanced):
    assert store_at(advanced, Moment()) is advanced
    before = store_at(advanced, Moment(as_of=D - dt.timedelta(days=1)))
    on = store_at(advanced, Moment(as_of=D))
    assert isinstance(before, StoreAt)
    assert before.parcel("V01-002")["stage"] == "survey" and on.parcel("V01-002")["stage"] == "listed"
    assert set(before.parcels(stage="survey", geometry=False)["code"]) == {"V01-002"}
    assert before.parcels(stage="listed", geometry=False).empty
    assert [e.to_stage for e in before.history("V01-002")] == ["survey"]
    assert before.meta()["as_of"] == "2024-03-31" and "as_of" not in advanced.meta()
    # as recorded before the advance was entered: the earlier stage, even as of D
    rec = store_at(advanced, Moment(as_of=D, as_recorded=parse_as_recorded("2024-03-31")))
    assert rec.parcel("V01-002")["stage"] == "survey" and rec.meta()["as_recorded"] == "2024-03-31 23:59"


def test_brief_and_atlas_as_of_the_day_before_show_the_earlier_stage_and_say_so(advanced, tmp_path):
    before = store_at(advanced, Moment(as_of=D - dt.timedelta(days=1)))
    render_parcel_page(before, "V01-002", tmp_path / "before.pdf")
    render_parcel_page(advanced, "V01-002", tmp_path / "now.pdf")
    old, now = _pdf_text(tmp_path / "before.pdf"), _pdf_text(tmp_path / "now.pdf")
    assert "截至2024-03-31" in old and "截至" not in now
    assert "意愿征询（2024-03-01）" in old and "入库（标图建库）（2024-04-01）" in now
    render_village_page(before, "V01", tmp_path / "village.pdf")
    assert "截至2024-03-31" in _pdf_text(tmp_path / "village.pdf")
    sel = select_parcels(before, stage="survey")
    assert sel.codes == ("V01-002",)
    out = render_atlas(before, sel, tmp_path / "atlas.pdf", jobs=1)
    text = _pdf_text(out["pdf"])
    assert text.count("截至2024-03-31") >= out["pages"] and "意愿征询" in text


def test_exports_as_of_carry_the_stages_of_then_and_the_date(advanced, tmp_path):
    before = store_at(advanced, Moment(as_of=D - dt.timedelta(days=1)))
    out = export(before, "xlsx", tmp_path / "ledger.xlsx", lang="zh")
    assert out["as_of"] == "2024-03-31"
    wb = openpyxl.load_workbook(tmp_path / "ledger.xlsx")
    rows = {r[0]: r for r in wb.worksheets[0].iter_rows(min_row=2, values_only=True)}
    assert rows["V01-002"][7] == "意愿征询"
    about = dict(wb.worksheets[-1].iter_rows(values_only=True))
    assert about["数据截至"] == "2024-03-31" and "截至 2024-03-31" in about["标题"]
    assert export(advanced, "xlsx", tmp_path / "now.xlsx").get("as_of") is None

    export(before, "gpkg", tmp_path / "p.gpkg")
    gp = pyogrio.read_dataframe(tmp_path / "p.gpkg", layer="parcels")
    assert gp.set_index("code").loc["V01-002", "stage"] == "survey"
    meta = dict(pyogrio.read_dataframe(tmp_path / "p.gpkg", layer="meta")[["key", "value"]].values)
    assert meta["as_of"] == "2024-03-31"
    ev = pyogrio.read_dataframe(tmp_path / "p.gpkg", layer="stage_events")
    assert "listed" not in set(ev["to_stage"])  # the events of then only

    export(before, "geojson", tmp_path / "p.geojson")
    gj = json.loads((tmp_path / "p.geojson").read_text(encoding="utf-8"))
    assert gj["description"] == "截至 2024-03-31"
    assert {f["properties"]["code"]: f["properties"]["stage"] for f in gj["features"]}["V01-002"] == "survey"

    export(before, "shp", tmp_path / "p.zip")
    with zipfile.ZipFile(tmp_path / "p.zip") as z:
        assert "截至 2024-03-31" in z.read("parcels_as_of.txt").decode("utf-8-sig")
    export(before, "csv", tmp_path / "p.csv")
    assert "意愿征询" in (tmp_path / "p.csv").read_text(encoding="utf-8-sig")


def _cli(where, *args):
    return subprocess.run([sys.executable, "-m", "gis.cli", "--store", str(where), *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=180)


def test_cli_brief_export_and_status_as_of(demo_where, tmp_path):
    """On the demo: V07-023's last advance on D; brief and export as of D-1 show the stage it came from."""
    hist = json.loads(_cli(demo_where, "history", "V07-023", "--json").stdout)
    last = [e for e in hist if e["action"] == "advance"][-1]
    day_before = (dt.date.fromisoformat(last["event_date"][:10]) - dt.timedelta(days=1)).isoformat()
    res = _cli(demo_where, "brief", "V07-023", "--as-of", day_before, "--no-raster", "-o", str(tmp_path / "b.pdf"))
    assert res.returncode == 0, res.stderr
    text = _pdf_text(tmp_path / "b.pdf")
    from gis.model.pipelines import load_catalog
    cat = load_catalog()
    assert f"截至{day_before}" in text and cat.stage_label("village", last["from_stage"], "zh") + "（" in text
    res = _cli(demo_where, "export", "--village", "V07", "--as-of", day_before, "-o", str(tmp_path / "l.xlsx"))
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["as_of"] == day_before
    ws = openpyxl.load_workbook(tmp_path / "l.xlsx").worksheets[0]
    row = next(r for r in ws.iter_rows(min_row=2, values_only=True) if r[0] == "V07-023")
    assert row[7] == cat.stage_label("village", last["from_stage"], "zh")
    res = _cli(demo_where, "status", "--as-of", day_before, "--as-recorded", day_before, "--json")
    assert res.returncode == 0, res.stderr
    assert isinstance(json.loads(res.stdout), list)
    res = _cli(demo_where, "atlas", "--village", "V07", "--as-of", "soon", "-o", str(tmp_path / "a.pdf"))
    assert res.returncode == 2 and "YYYY-MM-DD" in res.stderr and not (tmp_path / "a.pdf").exists()
