"""A delivered cadastre into the store: messy files in, the map's classes out, on both back ends."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import geopandas as gpd
import pyogrio
import pytest
import shapely

from gis.base.errors import InputError, PermissionRefused, UnknownCRSError
from gis.io.cadastre_import import CadastreOptions, import_cadastre, land_use_class, owner_type_of
from gis.store.open import cadastre_at, cadastre_key, cadastre_parcel, open_store_at
from tests.test_cli import DEMO_PASSWORDS

ROOT = Path(__file__).resolve().parent.parent
X0, Y0 = 121.30, 37.40  # the tiny store's corner (tests/conftest.py)


def square(i, j=0, size=0.001):
    return shapely.box(X0 + i * size, Y0 + j * size, X0 + (i + 1) * size, Y0 + (j + 1) * size)


def delivered_shapefile(folder: Path) -> Path:
    """What a land bureau sends: a zipped shapefile, GBK attributes and no .cpg, zone-40 Gauss-Krüger
    coordinates with the zone prefix and no .prj, national field names, a bow-tie, a null shape, a repeated code."""
    bowtie = shapely.Polygon([(X0 + 0.002, Y0), (X0 + 0.003, Y0 + 0.001), (X0 + 0.003, Y0), (X0 + 0.002, Y0 + 0.001)])
    gdf = gpd.GeoDataFrame({
        "ZDDM": ["990101003010JC00001", "990101003010GB00002", "990101003010JC00003", "990101003010GB00004",
                 "990101003010JC00005", "990101003010GB00002"],
        "DLMC": ["城镇住宅用地", "工业用地", "水田", "0810", "旱地", "旱地"],
        "QSXZ": ["20", "10", "集体土地所有权", "国有土地所有权", "30", "10"],
    }, geometry=[square(0), square(1), bowtie, square(3, 3), None, square(0, 2)], crs="EPSG:4490").to_crs(4528)
    shp = folder / "宗地.shp"
    with pytest.warns(UserWarning):  # no CRS written: the file has no .prj, as many delivered ones
        pyogrio.write_dataframe(gdf.set_crs(None, allow_override=True), shp, encoding="GBK")
    shp.with_suffix(".cpg").unlink(missing_ok=True)
    assert not shp.with_suffix(".prj").exists()
    out = folder / "宗地.zip"
    with zipfile.ZipFile(out, "w") as zf:
        for p in sorted(folder.glob("宗地.*")):
            if p.suffix != ".zip":
                zf.write(p, p.name)
    return out


def test_class_and_ownership_from_names_and_codes():
    assert [land_use_class(v) for v in ("住宅用地", "城镇住宅用地", "0701", "071", "07", "1004", "果园", "湿地??")] == \
        ["住宅用地", "住宅用地", "住宅用地", "住宅用地", "住宅用地", "交通运输用地", "园地", "湿地??"]
    assert [owner_type_of(v) for v in ("10", "国有土地所有权", "集体", "其他", None)] == \
        ["国有土地所有权", "国有土地所有权", "集体", "其他", ""]


def test_a_delivered_shapefile_becomes_the_cadastre(tiny_store, tmp_path):
    src = delivered_shapefile(tmp_path)
    dry = import_cadastre(tiny_store, src, dry_run=True)
    assert cadastre_key(tiny_store) is None  # a dry run writes nothing
    assert (dry["crs"], dry["crs_source"], dry["encoding"], dry["encoding_source"]) == (4528, "guessed", "gb18030",
                                                                                      "detected")
    assert dry["mapping"] == {"code": "ZDDM", "land_use": "DLMC", "owner_type": "QSXZ"}
    assert (dry["features_read"], dry["features_imported"], dry["repaired"]) == (6, 3, 1)
    assert sorted((r["row"], r["reason"]) for r in dry["rejected"]) == [
        (2, "地块编号 990101003010GB00002 在文件中重复（第 2, 6 行）"), (5, "几何为空"),
        (6, "地块编号 990101003010GB00002 在文件中重复（第 2, 6 行）")]
    rep = import_cadastre(tiny_store, src, by="李娜")
    assert rep["dry_run"] is False and rep["parcels"] == 3 and cadastre_key(tiny_store)
    home = cadastre_at(tiny_store, X0 + 0.0005, Y0 + 0.0005)
    assert (home["code"], home["land_use"], home["owner_type"]) == ("990101003010JC00001", "住宅用地", "国有土地使用权")
    assert home["area_m2"] == pytest.approx(shapely.area(square(0)) * 111_320 * 88_500, rel=0.02)  # ≈ 9,850 m²
    paddy = cadastre_parcel(tiny_store, "990101003010JC00003")
    assert paddy["land_use"] == "耕地" and paddy["geometry"].is_valid and paddy["geometry"].geom_type == "MultiPolygon"
    assert tiny_store.audit(action="cadastre")["actor"].tolist() == ["李娜"]


def test_bad_cadastre_files_are_refused_and_change_nothing(tiny_store, tmp_path):
    no_code = tmp_path / "n.geojson"
    gpd.GeoDataFrame({"名称": ["甲"]}, geometry=[square(0)], crs=4490).to_file(no_code)
    far = tmp_path / "far.geojson"
    gpd.GeoDataFrame({"宗地代码": ["A"]}, geometry=[shapely.box(10, 50, 10.001, 50.001)], crs=4490).to_file(far)
    for path, opts, err, zh in ((no_code, None, InputError, "没有找到地块编号列"),
                                (far, None, UnknownCRSError, "不在中国范围内"),
                                (no_code, CadastreOptions(mapping={"code": "BSM"}), InputError, "没有列“BSM”")):
        with pytest.raises(err) as e:
            import_cadastre(tiny_store, path, opts)
        assert zh in e.value.message("zh") and e.value.message("en") != e.value.message("zh")
    assert cadastre_key(tiny_store) is None


def test_only_an_admin_replaces_the_cadastre_of_a_store_with_accounts(demo_where, tmp_path):
    store = open_store_at(demo_where)
    src = delivered_shapefile(tmp_path)
    for who in ("viewer", "editor_north", "nobody"):
        with pytest.raises(PermissionRefused):
            import_cadastre(store, src, by=who)
    assert cadastre_key(store) is None
    assert sorted(store.audit(action="cadastre", outcome="refused")["actor"]) == ["editor_north", "nobody", "viewer"]
    import_cadastre(store, src, by="admin")
    assert cadastre_parcel(store, "990101003010GB00004")["land_use"] == "公共管理与公共服务用地"


def test_cli_cadastre_import(demo_where, tmp_path):
    src = delivered_shapefile(tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("RENEWAL_LANG", "RENEWAL_DATA_DIR")}
    env["RENEWAL_DATA_DIR"] = str(tmp_path / "work")

    def run(*args):  # as a demo account, proved by its published demo password
        login = {"RENEWAL_PASSWORD": DEMO_PASSWORDS[args[1]]} if args[0] == "--as" else {}
        return subprocess.run([sys.executable, "-m", "gis.cli", "--store", demo_where, *args],
                              capture_output=True, text=True, cwd=ROOT, env={**env, **login}, timeout=300)

    r = run("--as", "viewer", "cadastre", "import", str(src))
    assert r.returncode == 3 and "不是管理员" in r.stderr and "Traceback" not in r.stderr
    r = run("--as", "admin", "cadastre", "import", str(src), "--map", "code=NOPE")
    assert r.returncode == 2 and "NOPE" in r.stderr and "Traceback" not in r.stderr
    r = run("--as", "admin", "cadastre", "import", str(src), "--json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["features_imported"] == 3 and rep["crs"] == 4528 and rep["tiles"].startswith("cadastre_")
    assert (ROOT / "static" / "generated" / rep["tiles"] / "manifest.json").exists() or \
        (ROOT / "static" / "generated" / rep["tiles"]).is_dir()


def test_the_data_page_checks_and_replaces_the_cadastre(tmp_path, monkeypatch):
    import shutil

    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from tests.test_import import _page_script

    shutil.copy(ROOT / "data" / "parcels" / "demo.gpkg", tmp_path / "renewal.gpkg")
    monkeypatch.setenv("RENEWAL_DATA_DIR", str(tmp_path))
    for k in ("RENEWAL_STORE", "RENEWAL_LANG", "RENEWAL_DATABASE_URL", "RENEWAL_CONFIG"):
        monkeypatch.delenv(k, raising=False)
    src = delivered_shapefile(tmp_path / "in" if (tmp_path / "in").mkdir() is None else tmp_path)
    st.cache_resource.clear()
    at = AppTest.from_function(_page_script, default_timeout=90)
    at.session_state["_page"] = str(ROOT / "ui" / "import_page.py")
    at.session_state["_test_files"] = [(src.name, src.read_bytes())]
    try:
        for user in ("viewer", "admin"):
            at.session_state["user"] = user
            at.run()
            assert not at.exception, at.exception
            mapping = {s.label: s.value for s in at.selectbox if s.key and s.key.startswith("cad_map_")}
            assert mapping == {"宗地代码": "ZDDM", "地类": "DLMC", "权属性质": "QSXZ"}
            at.button(key="cad_check").click().run()
            assert not at.exception, at.exception
            metrics = {m.label: m.value for m in at.metric}
            assert (metrics["将写入"], metrics["已修复"], metrics["已拒绝"]) == ("3", "1", "3")
            assert any("EPSG\\:4528" in m.value and "按坐标推测" in m.value for m in at.markdown)
            at.button(key="cad_commit").click().run()
            assert not at.exception, at.exception
            if user == "viewer":  # the store refuses; the page says so, in Chinese, without a traceback
                assert any("不是管理员" in e.value for e in at.error)
                assert cadastre_key(open_store_at(str(tmp_path / "renewal.gpkg"))) is None
        assert "地籍已更新：3 宗" in at.success[0].value
        assert cadastre_parcel(open_store_at(str(tmp_path / "renewal.gpkg")), "990101003010JC00001")["land_use"] == "住宅用地"
    finally:
        st.cache_resource.clear()


# ------------------------------------------------------------------ issue 14: real deliveries
@pytest.mark.parametrize("code, label, owner", [
    ("10", "国有土地所有权", "国有"), ("20", "国有土地使用权", "国有"), ("30", "集体土地所有权", "集体"),
    ("31", "集体土地所有权（村民小组）", "集体"), ("32", "集体土地所有权（村集体经济组织）", "集体"),
    ("33", "集体土地所有权（乡集体经济组织）", "集体"), ("34", "集体土地所有权（其他农民集体经济组织）", "集体"),
    ("40", "集体土地使用权", "集体")])
def test_qsxz_codes_are_read_from_the_land_survey_table_not_from_their_first_digit(code, label, owner):
    from gis.store.cadastre import QSXZ_OF, describe_cadastre

    assert owner_type_of(code) == owner_type_of(label) == owner_type_of(float(code)) == label
    assert QSXZ_OF[label] == code and label.startswith(owner)  # the label keeps its code and its owner
    d = describe_cadastre({"code": "X", "owner_type": label, "area_m2": 1.0})
    assert d["qsxz"] == code and d["owner_type_label"] == f"{label}（{code}）"
    assert describe_cadastre({"code": "X", "owner_type": label}, "en")["owner_type_label"].endswith(f" ({code})")


def survey_layer(folder: Path, **columns) -> Path:
    """A land-survey layer as delivered: national field names, GBK, no .cpg, no .prj, GK zone 40 with prefix."""
    n = len(next(iter(columns.values())))
    gdf = gpd.GeoDataFrame(columns, geometry=[square(i, 4) for i in range(n)], crs="EPSG:4490").to_crs(4528)
    shp = folder / "DLTB.shp"
    with pytest.warns(UserWarning):
        pyogrio.write_dataframe(gdf.set_crs(None, allow_override=True), shp, encoding="GBK")
    shp.with_suffix(".cpg").unlink(missing_ok=True)
    return shp


def test_a_sandiao_land_survey_layer_becomes_the_cadastre_by_its_field_codes(tiny_store, tmp_path):
    """三调 地类图斑 (DLTB): BSM, TBBH, DLBM, DLMC, QSXZ, QSDWMC, ZLDWMC, TBMJ."""
    shp = survey_layer(tmp_path, BSM=["1001", "1002", "1003"], TBBH=["1", "2", "1"], DLBM=["0101", "0702", "1006"],
                       DLMC=["水田", "农村宅基地", "农村道路"], QSXZ=["30", "32", "20"],
                       QSDWMC=["东岙村民委员会", "东岙村民委员会", "凤凰街道"], ZLDWMC=["东岙村", "东岙村", "东岙村"],
                       TBMJ=[9850.0, 9850.0, 9850.0])
    rep = import_cadastre(tiny_store, shp, by="李娜")
    assert rep["mapping"] == {"code": "BSM", "land_use": "DLMC", "owner_type": "QSXZ"}  # TBBH repeats by village
    assert rep["features_imported"] == 3 and rep["encoding"] == "gb18030"
    got = {c: cadastre_parcel(tiny_store, c) for c in ("1001", "1002", "1003")}
    assert [(p["land_use"], p["owner_type"]) for p in got.values()] == [
        ("耕地", "集体土地所有权"), ("住宅用地", "集体土地所有权（村集体经济组织）"), ("交通运输用地", "国有土地使用权")]


def test_a_land_contract_layer_with_dkbm_and_only_codes(tiny_store, tmp_path):
    """农村土地承包经营权 承包地块 (CBDK): DKBM, DKMC, SYQXZ, TDYT …; land use given as a code only."""
    shp = survey_layer(tmp_path, DKBM=["3701020012010100001", "3701020012010100002"], DKMC=["东洼", "西洼"],
                       SYQXZ=["31", "30"], DLBM=["0103", "0201"], SCMJ=[9850.0, 9850.0])
    rep = import_cadastre(tiny_store, shp, dry_run=True)
    assert rep["mapping"] == {"code": "DKBM", "land_use": "DLBM", "owner_type": "SYQXZ"}
    assert rep["land_use"] == {"耕地": 1, "园地": 1} and rep["warnings"] == []


def test_the_cadastre_report_warns_as_the_parcel_import_does_and_reads_curves(tiny_store, tmp_path):
    from tests.test_import_real_files import circle_wkt, curved_gpkg

    inside = (X0 + 0.0055, Y0 + 0.0055)
    path = curved_gpkg(tmp_path / "zd.gpkg", [
        ("990101003010JC00001", "旱地", circle_wkt(*inside, 0.0003)), ("990101003010JC00002", "", square(1, 1).wkt),
        ("990101003010GB00003", "工业用地", shapely.box(X0 + 0.05, Y0, X0 + 0.051, Y0 + 0.001).wkt)],  # 4 km east
        fields=("ZDDM", "DLMC"))
    rep = import_cadastre(tiny_store, path, dry_run=True)
    assert (rep["features_imported"], rep["linearised"]) == (3, 1)
    w = {x["key"]: x for x in rep["warnings"]}
    assert w["import.warn_outside"]["codes"] == ["990101003010GB00003"]
    assert w["cadastre.warn_empty_land_use"]["codes"] == ["990101003010JC00002"]
    assert w["import.linearised"]["count"] == 1
