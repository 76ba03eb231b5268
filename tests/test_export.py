"""Exports: GeoPackage (valid, every layer, Chinese intact), GeoJSON, zipped Shapefile, the ledger."""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pyogrio
import pytest
from openpyxl import load_workbook

from gis.base.errors import InputError
from gis.io.exporter import SHP_FIELDS, export, export_bytes, export_filename

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "data" / "parcels" / "demo.gpkg"
VALIDATE = Path("/usr/lib/python3/dist-packages/osgeo_utils/samples/validate_gpkg.py")


def test_geopackage_has_every_layer_the_stage_and_the_events(tiny_store, tmp_path):
    tiny_store.advance("V01-002", "listed", "2024-04-01", "王芳", note="公示期满")
    out = tmp_path / "全部.gpkg"
    summary = export(tiny_store, "gpkg", out)
    assert summary["parcels"] == 5 and summary["events"] == 4
    layers = dict(pyogrio.list_layers(out))
    assert {"district", "zones", "villages", "parks", "parcels", "stage_events", "meta"} <= set(layers)
    assert layers["parcels"] == "MultiPolygon" and layers["stage_events"] is None
    parcels = pyogrio.read_dataframe(out, layer="parcels").set_index("code")
    assert parcels.crs.to_epsg() == 4490
    assert parcels.loc["V01-002", "stage"] == "listed" and parcels.loc["V01-002", "stage_label"] == "入库（标图建库）"
    assert parcels.loc["V01-001", "name"] == "东岙村1号地块" and parcels.loc["MIN-01", "kind_label"] == "部委闲置用地"
    events = pyogrio.read_dataframe(out, layer="stage_events")
    assert events["note"].tolist()[-1] == "公示期满"
    meta = dict(pyogrio.read_dataframe(out, layer="meta")[["key", "value"]].values)
    assert meta["demo"] == "1" and meta["exported_parcels"] == "5" and "schema_version" not in meta
    assert "users" not in layers and "audit" not in layers  # accounts never leave the store


def test_geopackage_passes_gdals_validator_and_ogrinfo_reads_chinese(tiny_store, tmp_path):
    out = tmp_path / "v.gpkg"
    export(tiny_store, "gpkg", out, codes=["V01-001", "HSR-001"])
    res = subprocess.run(["/usr/bin/python3", str(VALIDATE), str(out)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    res = subprocess.run(["ogrinfo", "-ro", "-al", "-q", str(out), "parcels"], capture_output=True, text=True)
    assert "东岙村1号地块" in res.stdout and "产业园1号地块" in res.stdout and "V01-002" not in res.stdout


@pytest.mark.slow
def test_geopackage_opens_in_qgis_with_chinese_intact(tiny_store, tmp_path):
    out = tmp_path / "q.gpkg"
    export(tiny_store, "gpkg", out)
    code = (
        "import sys\n"
        "from qgis.core import QgsApplication, QgsVectorLayer\n"
        "app = QgsApplication([], False); app.initQgis()\n"
        f"lyr = QgsVectorLayer({str(out)!r} + '|layername=parcels', 'p', 'ogr')\n"
        "assert lyr.isValid()\n"
        "print(lyr.featureCount(), lyr.crs().authid())\n"
        "print(sorted(f['name'] for f in lyr.getFeatures())[0])\n"
        f"ev = QgsVectorLayer({str(out)!r} + '|layername=stage_events', 'e', 'ogr')\n"
        "print(ev.isValid(), ev.featureCount())\n"
    )
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    res = subprocess.run(["/usr/bin/python3", "-c", code], capture_output=True, text=True, env=env, timeout=120)
    lines = res.stdout.split("\n")
    assert lines[:3] == ["5 EPSG:4490", "东岙村1号地块", "True 3"], res.stdout + res.stderr


def test_geojson_is_rfc7946_with_labels(tiny_store, tmp_path):
    out = tmp_path / "p.geojson"
    export(tiny_store, "geojson", out, codes=["V01-003"])
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["type"] == "FeatureCollection" and "crs" not in doc and len(doc["features"]) == 1
    props = doc["features"][0]["properties"]
    assert props["code"] == "V01-003" and props["stage_label"] == "签约" and props["blocked"] == 1
    assert doc["features"][0]["geometry"]["type"] == "MultiPolygon"


@pytest.mark.parametrize("encoding, cpg, codec", [(None, "UTF-8", "utf-8"), ("gbk", "GBK", "gbk")])
def test_zipped_shapefile_has_a_cpg_and_short_field_names(tiny_store, tmp_path, encoding, cpg, codec):
    out = tmp_path / "p.zip"
    summary = export(tiny_store, "shp", out, encoding=encoding)
    with zipfile.ZipFile(out) as zf:
        names = sorted(zf.namelist())
        assert names == ["parcels.cpg", "parcels.dbf", "parcels.prj", "parcels.shp", "parcels.shx",
                         "parcels_fields.csv"]
        assert zf.read("parcels.cpg").decode().strip() == cpg
        dbf = zf.read("parcels.dbf")
        assert "东岙村1号地块".encode(codec) in dbf
        if codec == "gbk":
            assert dbf[29] == 0x4D  # code page 936 for software that ignores .cpg
        zf.extractall(tmp_path / "x")
    assert summary["encoding"] == (encoding or "utf-8")
    assert all(len(v) <= 10 for v in SHP_FIELDS.values())
    back = pyogrio.read_dataframe(tmp_path / "x" / "parcels.shp")
    assert all(len(c.encode()) <= 10 for c in back.columns)
    assert set(back["name"]) >= {"东岙村1号地块", "某部委闲置地"} and back.crs.to_epsg() == 4490
    assert "stage_lbl" in back.columns and "blk_reason" in back.columns


def test_long_text_is_cut_at_a_character_boundary_for_dbf(tiny_store, tmp_path):
    tiny_store.set_blocked("V01-001", True, "权属争议" * 40, "张伟", "2025-01-02")
    out = tmp_path / "p.zip"
    summary = export(tiny_store, "shp", out, encoding="gbk")
    assert summary["truncated_values"] == 1
    with zipfile.ZipFile(out) as zf:
        zf.extractall(tmp_path / "x")
    back = pyogrio.read_dataframe(tmp_path / "x" / "parcels.shp").set_index("code")
    assert back.loc["V01-001", "blk_reason"] == ("权属争议" * 40)[:127]


def test_ledger_spreadsheet(tiny_store, tmp_path):
    tiny_store.advance("V01-002", "listed", "2024-04-01", "王芳")
    out = tmp_path / "台账.xlsx"
    summary = export(tiny_store, "xlsx", out)
    assert summary["parcels"] == 5 and summary["villages"] == 1
    wb = load_workbook(out)
    assert wb.sheetnames == ["地块台账", "村庄汇总", "说明"]
    ws = wb["地块台账"]
    headers = [c.value for c in ws[1]]
    assert headers[:8] == ["地块编号", "地块名称", "类型", "片区", "所属村", "面积（平方米）", "面积（亩）", "当前阶段"]
    assert "意愿征询日期" in headers and "入库（标图建库）日期" in headers and "规划布局日期" in headers
    assert headers[-5:] == ["责任单位", "是否卡点", "卡点原因", "最后变更时间", "最后变更人"]
    assert ws.freeze_panes == "A2"
    assert ws.column_dimensions["B"].width >= 14 and ws.column_dimensions["A"].width >= 8
    rows = {r[0].value: r for r in ws.iter_rows(min_row=2)}
    v2 = rows["V01-002"]
    col = {h: i for i, h in enumerate(headers)}
    assert v2[col["当前阶段"]].value == "入库（标图建库）"
    survey = v2[col["意愿征询日期"]]
    assert survey.is_date and survey.value.date() == dt.date(2024, 3, 1) and survey.number_format == "yyyy-mm-dd"
    assert v2[col["入库（标图建库）日期"]].value.date() == dt.date(2024, 4, 1)
    assert v2[col["基础数据调查日期"]].value is None  # not reached yet
    assert isinstance(v2[col["最后变更时间"]].value, dt.datetime)
    assert rows["V01-003"][col["是否卡点"]].value == "是" and rows["V01-003"][col["卡点原因"]].value == "个别户未签约"
    assert rows["V01-001"][col["所属村"]].value == "<b>东岙村</b>"  # data, not markup
    area = rows["V01-001"][col["面积（亩）"]]
    assert isinstance(area.value, float) and area.value == pytest.approx(rows["V01-001"][col["面积（平方米）"]].value / 666.6667, rel=1e-3)
    vs = wb["村庄汇总"]
    assert [c.value for c in vs[1]][:4] == ["村编号", "所属村", "片区", "地块数"] and vs.freeze_panes == "A2"
    assert vs["A2"].value == "V01" and vs["D2"].value == 3 and vs["F2"].number_format == "0.0%"
    about = {r[0].value: r[1].value for r in wb["说明"].iter_rows()}
    assert about["注意"] == "示例数据（虚构）" and about["数据来源"] == "测试数据"


def test_ledger_in_english_and_filtered(tiny_store, tmp_path):
    out = tmp_path / "l.xlsx"
    export(tiny_store, "xlsx", out, codes=["HSR-001"], lang="en")
    ws = load_workbook(out)["Parcels"]
    assert ws.max_row == 2 and ws["A1"].value == "Code" and ws["A2"].value == "HSR-001"
    headers = [c.value for c in ws[1]]
    assert "Layout planned date" in headers and "Willingness survey date" not in headers  # only the park pipeline


def test_bad_requests_are_clear_errors(tiny_store, tmp_path):
    tmp_path = tmp_path / "out"
    tmp_path.mkdir()
    for kwargs, key in (({"fmt": "pdf"}, "export.bad_format"), ({"fmt": "shp", "encoding": "latin1"}, "export.bad_encoding"),
                        ({"fmt": "gpkg", "codes": []}, "export.nothing")):
        with pytest.raises(InputError) as e:
            export(tiny_store, kwargs.pop("fmt"), tmp_path / "x", **kwargs)
        assert e.value.key == key
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_bytes_for_download_buttons(tiny_store):
    data = export_bytes(tiny_store, "shp", ["V01-001"])
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert "parcels.shp" in zf.namelist()
    assert export_bytes(tiny_store, "xlsx")[:2] == b"PK"
    assert export_filename("xlsx", when=dt.date(2026, 1, 2)) == "城市更新台账_2026-01-02.xlsx"
    assert export_filename("shp", "en", dt.date(2026, 1, 2)) == "renewal_parcels_2026-01-02.zip"


def test_cli_export_with_a_filter(tiny_store, tmp_path):
    store = tiny_store.path or tiny_store.url  # a fresh copy for this test on either back end
    out = tmp_path / "v.gpkg"
    env = {k: v for k, v in os.environ.items() if k != "RENEWAL_LANG"}
    res = subprocess.run([sys.executable, "-m", "gis.cli", "--store", str(store), "export", "--format", "gpkg",
                          "-o", str(out), "--kind", "village"], capture_output=True, text=True, cwd=ROOT, env=env)
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["parcels"] == 3 and summary["events"] == 2
    assert sorted(pyogrio.read_dataframe(out, layer="parcels")["code"]) == ["V01-001", "V01-002", "V01-003"]
    res = subprocess.run([sys.executable, "-m", "gis.cli", "--store", str(store), "export", "-o", str(tmp_path / "x.pdf")],
                         capture_output=True, text=True, cwd=ROOT, env=env)
    assert res.returncode == 2 and "pdf" in res.stderr and "Traceback" not in res.stderr


def test_demo_round_trip_gives_back_parcels_stages_and_history(tmp_path, catalog):
    """Export the demo, import it into an empty store: same parcels, stages and history."""
    from gis.io.importer import import_file
    from gis.store.store import Store

    demo = tmp_path / "demo.gpkg"
    shutil.copy(DEMO, demo)
    src = Store(demo, catalog)
    exported = tmp_path / "export.gpkg"
    export(src, "gpkg", exported)
    empty = tmp_path / "empty.gpkg"
    from gis.io.exporter import export_gpkg

    export_gpkg(src, empty, codes=[])
    target = Store(empty, catalog)
    rep = import_file(target, exported, by="导入员")
    n = len(src.parcels(geometry=False))
    assert rep["new"] == n and not rep["rejected"] and rep["crs_source"] == "file"
    cols = ["code", "name", "kind", "zone", "village", "park", "unit", "stage", "stage_date", "blocked"]
    a = src.parcels(geometry=False).sort_values("code")[cols].fillna("").astype(str).values.tolist()
    b = target.parcels(geometry=False).sort_values("code")[cols].fillna("").astype(str).values.tolist()
    assert a == b
    ev_cols = ["parcel", "action", "from_stage", "to_stage", "event_date", "recorded_at", "recorded_by", "note", "reason"]
    ea = src.events().sort_values("id")[ev_cols].fillna("").astype(str).values.tolist()
    eb = target.events().sort_values("id")[ev_cols].fillna("").astype(str).values.tolist()
    assert ea == eb


# ------------------------------------------------------------------ issue 14: exports other software reads right
def test_geopackage_dates_are_date_and_datetime_fields(tiny_store, tmp_path):
    tiny_store.advance("V01-002", "listed", "2024-04-01", "王芳", note="公示期满")
    out = tmp_path / "d.gpkg"
    export(tiny_store, "gpkg", out)
    res = subprocess.run(["ogrinfo", "-so", str(out), "parcels"], capture_output=True, text=True)
    assert "stage_date: Date" in res.stdout and "updated_at: DateTime" in res.stdout, res.stdout
    back = pyogrio.read_dataframe(out, layer="parcels").set_index("code")
    assert str(back.loc["V01-002", "stage_date"])[:10] == "2024-04-01"
    assert back["updated_at"].notna().any() and str(back["updated_at"].dtype).startswith("datetime64")


def test_a_geopackage_of_parcels_without_any_stage_date_still_has_a_date_field(tiny_store, tmp_path):
    out = tmp_path / "n.gpkg"
    export(tiny_store, "gpkg", out, codes=["MIN-01"])
    res = subprocess.run(["ogrinfo", "-so", str(out), "parcels"], capture_output=True, text=True)
    assert "stage_date: Date" in res.stdout, res.stdout


def test_the_shapefile_zip_maps_its_short_field_names_back(tiny_store, tmp_path):
    out = tmp_path / "p.zip"
    summary = export(tiny_store, "shp", out, encoding="gbk")
    with zipfile.ZipFile(out) as zf:
        assert summary["field_table"] in zf.namelist()
        text = zf.read(summary["field_table"]).decode("utf-8-sig")
    rows = {r[0]: r[1:] for r in csv.reader(io.StringIO(text))}
    assert rows["Shapefile 字段"] == ["完整字段名", "含义"]
    assert rows["blk_reason"] == ["blocked_reason", "卡点原因"] and rows["stage_lbl"] == ["stage_label", "当前阶段"]
    assert set(rows) - {"Shapefile 字段"} == set(SHP_FIELDS.values())


def test_the_ledger_names_the_imported_sources_not_only_the_demo_mark(tiny_store, tmp_path):
    from gis.io.importer import ImportOptions, import_file

    src = tmp_path / "宗地2026.geojson"
    src.write_text(json.dumps({"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {
        "code": "IMP-1"}, "geometry": {"type": "Polygon", "coordinates": [[[121.3001, 37.404], [121.3009, 37.404],
                                                                            [121.3009, 37.4048], [121.3001, 37.404]]]}}]}))
    import_file(tiny_store, src, ImportOptions(kind="landmark"), by="张伟")
    out = tmp_path / "l.xlsx"
    export(tiny_store, "xlsx", out)
    about = {r[0].value: r[1].value for r in load_workbook(out)["说明"].iter_rows()}
    assert "宗地2026.geojson（" in about["数据来源"] and "张伟" in about["数据来源"]
    assert "示例数据（虚构）：未经导入的地块" in about["数据来源"] and about["注意"] != "示例数据（虚构）"
