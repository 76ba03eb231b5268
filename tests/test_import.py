"""Import: every format, CRS and encoding case, geometry repair, the transaction, and the safety limits.

Fixtures are made in code, around the tiny store's district (121.30–121.32 E,
37.40–37.42 N, Gauss-Krüger zone 40).
"""
from __future__ import annotations

import io
import json
import os
import shutil
import signal
import sqlite3
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import pyproj
import pytest
import shapely

from gis.base.errors import InputError, UnknownCRSError
from gis.io.exporter import export_gpkg
from gis.io.importer import (
    ImportOptions,
    commit_import,
    import_file,
    prepare_import,
    suggest_mapping,
)
from gis.io.readers import detect_encoding
from gis.io.uploads import Upload, ensure_gdal_hardened, stage_files, stage_path
from gis.store.gpkg import gpkg_blobs
from gis.store.store import Store

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "data" / "parcels" / "demo.gpkg"
VALIDATE = Path("/usr/lib/python3/dist-packages/osgeo_utils/samples/validate_gpkg.py")
X0, Y0 = 121.30, 37.40


def box(i, j=0, size=0.0008, x=X0 + 0.0001, y=Y0 + 0.004):
    """A parcel of the test grid: column i, row j, in the south zone, clear of the stored parcels."""
    return shapely.box(x + i * 0.001, y + j * 0.001, x + i * 0.001 + size, y + j * 0.001 + size)


def count(store: Store, table: str = "parcels") -> int:
    with store._connect() as con:
        return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def run_cli(*args, store):
    env = dict(os.environ)
    env.pop("RENEWAL_LANG", None)
    env["RENEWAL_USER"] = "测试员"
    return subprocess.run([sys.executable, "-m", "gis.cli", "--store", str(store), *args],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)


@pytest.fixture
def clean_store(tiny_store, tmp_path, catalog):
    """The tiny store re-exported as GeoPackage 1.2 (what validate_gpkg.py checks), as a working store."""
    path = tmp_path / "clean.gpkg"
    export_gpkg(tiny_store, path)
    return Store(path, catalog)


def geojson_bytes(features, bom=False) -> bytes:
    fc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": props, "geometry": shapely.geometry.mapping(g) if g is not None else None}
        for props, g in features]}
    data = json.dumps(fc, ensure_ascii=False).encode("utf-8")
    return (b"\xef\xbb\xbf" + data) if bom else data


# ------------------------------------------------------------------ formats
def test_bom_geojson_with_chinese_columns_imports_and_derives_zone_and_village(tiny_store):
    village_lot = shapely.box(X0 + 0.0052, Y0 + 0.0005, X0 + 0.0059, Y0 + 0.0015)  # inside village V01
    data = geojson_bytes([({"地块编号": "N-001", "地块名称": "新地块一", "阶段": "签约", "阶段日期": "2025/03/01"}, box(0)),
                          ({"地块编号": "N-002", "地块名称": "东岙村新地块", "阶段": ""}, village_lot)], bom=True)
    v0 = tiny_store.data_version()
    with stage_files([("地块.geojson", data)]) as up:
        plan = prepare_import(tiny_store, up, ImportOptions(kind="village"))
        rep = plan.report
        assert rep["features_read"] == 2 and rep["features_imported"] == 2 and rep["new"] == 2
        assert rep["mapping"]["code"] == "地块编号" and rep["mapping"]["stage"] == "阶段"
        assert rep["crs"] == 4490 and rep["crs_source"] == "guessed" and not rep["crs_confirm"]
        assert rep["encoding"] == "utf-8"
        assert tiny_store.data_version() == v0  # a preview writes nothing
        out = commit_import(tiny_store, plan, by="张伟")
    assert out["committed"] and tiny_store.data_version() == v0 + 1
    p1, p2 = tiny_store.parcel("N-001"), tiny_store.parcel("N-002")
    assert p1["stage"] == "signing" and p1["stage_date"] == "2025-03-01" and p1["zone"] == "south"
    assert p2["stage"] is None and p2["village"] == "V01" and p2["name"] == "东岙村新地块"
    assert abs(p1["area_m2"] - 0.0008 * 111320 * 0.0008 * 111320 * np.cos(np.radians(37.404))) < 60
    [ev] = tiny_store.history("N-001")
    assert (ev.action, ev.from_stage, ev.to_stage, ev.event_date, ev.recorded_by) == (
        "import", None, "signing", "2025-03-01", "张伟")
    assert tiny_store.history("N-002") == []


def gbk_shapefile(folder: Path, with_cpg=False) -> Path:
    gdf = gpd.GeoDataFrame({"宗地编号": ["G-001", "G-002"], "名称": ["凤凰湖东侧地块", "长荣水泥厂旧址"],
                            "责任单位": ["凤凰街道办事处", "区城市更新集团"]},
                           geometry=[box(0), box(1)], crs="EPSG:4490")
    shp = folder / "宗地.shp"
    pyogrio.write_dataframe(gdf, shp, encoding="GBK")
    if not with_cpg:
        shp.with_suffix(".cpg").unlink()
    raw = shp.with_suffix(".dbf").read_bytes()
    assert "凤凰湖".encode("gbk") in raw and "凤凰湖".encode("utf-8") not in raw
    return shp


def zip_of(paths, names=None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for i, p in enumerate(paths):
            zf.write(p, arcname=names[i] if names else Path(p).name)
    return buf.getvalue()


def test_zipped_gbk_shapefile_without_cpg_is_read_as_gb18030(tiny_store, tmp_path):
    shp = gbk_shapefile(tmp_path)
    parts = sorted(tmp_path.glob("宗地.*"))
    assert {p.suffix for p in parts} == {".shp", ".shx", ".dbf", ".prj"}
    with stage_files([("宗地.zip", zip_of(parts))]) as up:
        plan = prepare_import(tiny_store, up, ImportOptions(kind="park"))
        rep = plan.report
        assert (rep["encoding"], rep["encoding_source"]) == ("gb18030", "detected")
        assert rep["mapping"] == {"code": "宗地编号", "name": "名称", "unit": "责任单位"}
        commit_import(tiny_store, plan, by="李娜")
    p = tiny_store.parcel("G-001")
    assert p["name"] == "凤凰湖东侧地块" and p["unit"] == "凤凰街道办事处" and p["kind"] == "park"
    # the override is honoured (and then yields the mojibake that detection avoided)
    with stage_path(shp) as up:
        rep = prepare_import(tiny_store, up, ImportOptions(kind="park", encoding="latin-1",
                                                           mapping={"code": "×ÚµØ±àºÅ"})).report
    assert (rep["encoding"], rep["encoding_source"]) == ("iso8859-1", "user")


def test_detect_encoding_tells_gbk_from_utf8_and_from_noise():
    text = "东岙村 凤凰街道办事处 长荣水泥厂"
    assert detect_encoding(text.encode("utf-8")) == ("utf-8", True)
    assert detect_encoding(text.encode("gbk")) == ("gb18030", True)
    assert detect_encoding(b"plain ascii") == ("utf-8", True)
    assert detect_encoding(bytes(range(0x80, 0x100)) * 4)[1] is False


def gk_gdf(epsg: int, n=3) -> gpd.GeoDataFrame:
    geo = gpd.GeoDataFrame({"code": [f"GK-{i:03d}" for i in range(n)], "name": [f"高斯地块{i}" for i in range(n)]},
                           geometry=[box(i, 1) for i in range(n)], crs="EPSG:4490")
    return geo.to_crs(epsg)


def test_zone_40_gauss_krueger_without_prj_is_recognised_by_its_prefix(tiny_store, tmp_path):
    gdf = gk_gdf(4528)
    assert 40_000_000 < gdf.total_bounds[0] < 41_000_000
    shp = tmp_path / "gk.shp"
    with pytest.warns(UserWarning, match="crs"):
        pyogrio.write_dataframe(gdf.set_crs(None, allow_override=True), shp, encoding="UTF-8")
    assert not shp.with_suffix(".prj").exists()
    rep = import_file(tiny_store, shp, ImportOptions(kind="ministry"), by="王强")
    assert (rep["crs"], rep["crs_source"], rep["crs_confirm"]) == (4528, "guessed", False)
    got = tiny_store.parcels(search="GK-").sort_values("code")
    for g, i in zip(got.geometry, range(3)):
        assert g.symmetric_difference(box(i, 1)).area < 1e-13  # ≈ 0.1 m² of a 6,000 m² parcel


def test_six_digit_eastings_get_the_districts_cm_zone_flagged_for_confirmation(tiny_store, tmp_path):
    gdf = gk_gdf(4549)  # CM 120E: no zone prefix
    assert 100_000 < gdf.total_bounds[0] < 1_000_000
    path = tmp_path / "cm.geojson"
    path.write_bytes(geojson_bytes([(r, g) for r, g in zip(gdf[["code"]].to_dict("records"), gdf.geometry)]))
    rep = import_file(tiny_store, path, ImportOptions(kind="ministry"), dry_run=True)
    assert (rep["crs"], rep["crs_source"], rep["crs_confirm"]) == (4549, "guessed", True)
    assert "4549" in rep["crs_note"]
    # the user can always override (here: wrongly, which the range check catches)
    rep = import_file(tiny_store, path, ImportOptions(kind="ministry", crs="EPSG:4549"), dry_run=True)
    assert (rep["crs"], rep["crs_source"], rep["crs_confirm"]) == (4549, "user", False)
    with pytest.raises(UnknownCRSError) as e:
        import_file(tiny_store, path, ImportOptions(kind="ministry", crs="3857"), dry_run=True)
    assert e.value.key == "import.crs_wrong"


def test_coordinates_that_fit_no_rule_ask_for_a_crs(tiny_store, tmp_path):
    path = tmp_path / "odd.geojson"
    path.write_bytes(geojson_bytes([({"code": "X1"}, shapely.box(1000, 1000, 1100, 1100))]))
    with pytest.raises(UnknownCRSError) as e:
        import_file(tiny_store, path, ImportOptions(kind="village"), dry_run=True)
    assert e.value.key == "import.crs_local_units" and "1050" in e.value.message("zh")


def test_gcj02_coordinates_are_converted_on_request(tiny_store, tmp_path):
    from gis.base.gcj02 import geometries_to_gcj02

    shifted = geometries_to_gcj02(box(5, 2))
    assert 0.001 < shapely.hausdorff_distance(shifted, box(5, 2)) < 0.01  # hundreds of metres
    path = tmp_path / "amap.geojson"
    path.write_bytes(geojson_bytes([({"code": "AMAP-1"}, shifted)]))
    rep = import_file(tiny_store, path, ImportOptions(kind="landmark", gcj02=True), by="张伟")
    assert rep["gcj02"] is True
    got = tiny_store.parcels(search="AMAP-1").geometry.iloc[0]
    assert got.symmetric_difference(box(5, 2)).area < 1e-12


def test_kml_and_kmz_polygons_import_and_points_are_rejected_by_row(tiny_store, tmp_path):
    ring = " ".join(f"{x},{y},0" for x, y in box(2, 2).exterior.coords)
    kml = f"""<?xml version="1.0" encoding="UTF-8"?>
<kml xmlns="http://www.opengis.net/kml/2.2"><Document><name>地块</name>
<Placemark><name>凤凰山北坡</name><ExtendedData><Data name="code"><value>K-001</value></Data></ExtendedData>
<Polygon><outerBoundaryIs><LinearRing><coordinates>{ring}</coordinates></LinearRing></outerBoundaryIs></Polygon></Placemark>
<Placemark><name>标记点</name><ExtendedData><Data name="code"><value>K-002</value></Data></ExtendedData>
<Point><coordinates>121.305,37.405,0</coordinates></Point></Placemark>
</Document></kml>""".encode()
    with stage_files([("地块.kml", kml)]) as up:
        rep = prepare_import(tiny_store, up, ImportOptions(kind="landmark")).report
    assert rep["crs"] == 4326 and rep["crs_source"] == "file"
    assert rep["features_imported"] == 1 and rep["mapping"]["name"] == "Name"
    assert [(r["row"], r["code"], r["reason_key"]) for r in rep["rejected"]] == [(2, "K-002", "import.reject_not_polygon")]
    kmz = io.BytesIO()
    with zipfile.ZipFile(kmz, "w") as zf:
        zf.writestr("doc.kml", kml)
    rep = import_file(tiny_store, _write(tmp_path / "地块.kmz", kmz.getvalue()), ImportOptions(kind="landmark"), by="x")
    assert rep["new"] == 1 and tiny_store.parcel("K-001")["name"] == "凤凰山北坡"


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def dxf_text(entities: list[str]) -> str:
    return "0\nSECTION\n2\nENTITIES\n" + "".join(entities) + "0\nENDSEC\n0\nEOF\n"


def lwpolyline(coords, closed=True) -> str:
    body = "".join(f"10\n{x:.3f}\n20\n{y:.3f}\n" for x, y in coords)
    return f"0\nLWPOLYLINE\n8\n宗地\n90\n{len(coords)}\n70\n{1 if closed else 0}\n{body}"


def text_entity(x, y, s) -> str:
    return f"0\nTEXT\n8\n注记\n10\n{x:.3f}\n20\n{y:.3f}\n40\n2.0\n1\n{s}\n"


def test_dxf_closed_polylines_become_parcels_labelled_by_their_text(tiny_store, tmp_path):
    to_gk = pyproj.Transformer.from_crs(4490, 4528, always_xy=True)
    ents = []
    for i, code in enumerate(["D-001", "D-002"]):
        g = box(i, 3)
        xs, ys = to_gk.transform(*np.array(g.exterior.coords[:-1]).T)
        ents.append(lwpolyline(list(zip(xs, ys))))
        cx, cy = to_gk.transform(g.centroid.x, g.centroid.y)
        ents.append(text_entity(cx, cy, code))
    xs, ys = to_gk.transform(*np.array(box(3, 3).exterior.coords[:-2]).T)
    ents.append(lwpolyline(list(zip(xs, ys)), closed=False))
    path = _write(tmp_path / "宗地图.dxf", dxf_text(ents).encode())
    rep = import_file(tiny_store, path, ImportOptions(kind="park"), by="王强")
    assert rep["crs"] == 4528 and rep["mapping"]["code"] == "标注"
    assert rep["new"] == 2 and [(r["row"], r["reason_key"]) for r in rep["rejected"]] == [(3, "import.reject_open_line")]
    got = tiny_store.parcels(search="D-00").sort_values("code")
    assert list(got["code"]) == ["D-001", "D-002"] and set(got.geom_type) == {"MultiPolygon"}
    assert got.geometry.iloc[0].symmetric_difference(box(0, 3)).area < 1e-11  # DXF kept millimetres


def test_csv_with_wkt_and_csv_with_lonlat(tiny_store, tmp_path):
    rows = "编号,名称,WKT\n" + "".join(f'C-{i},表格地块{i},"{box(i, 4).wkt}"\n' for i in range(2))
    csv_gbk = _write(tmp_path / "表格.csv", rows.encode("gbk"))
    rep = import_file(tiny_store, csv_gbk, ImportOptions(kind="village"), by="x")
    assert rep["new"] == 2 and rep["encoding"] == "gb18030"
    assert tiny_store.parcel("C-1")["name"] == "表格地块1"
    lonlat = _write(tmp_path / "点.csv", "code,lon,lat\nP-1,121.305,37.405\n".encode())
    with pytest.raises(InputError) as e:  # a layer of points: said first, before any row
        import_file(tiny_store, lonlat, ImportOptions(kind="village"), dry_run=True)
    assert e.value.key == "import.no_polygons" and "Point 1" in e.value.message("zh")
    with pytest.raises(InputError) as e:
        import_file(tiny_store, _write(tmp_path / "x.csv", b"a,b\n1,2\n"), ImportOptions(kind="village"))
    assert e.value.key == "import.csv_no_geometry"


def test_geopackage_layer_is_chosen_and_unknown_layers_are_named(tiny_store, tmp_path):
    src = tmp_path / "src.gpkg"
    export_gpkg(tiny_store, src)
    with stage_path(src) as up:
        assert {"parcels", "zones", "villages"} <= set(up.layer_names())
        assert up.layer().name == "parcels"
        with pytest.raises(InputError) as e:
            prepare_import(tiny_store, up, ImportOptions(layer="地块"))
        assert e.value.key == "import.no_such_layer" and "parcels" in e.value.message("zh")


# ------------------------------------------------------------------ geometry and attributes
def test_geometry_is_repaired_or_rejected_with_the_row_named(tiny_store):
    bowtie = shapely.Polygon([(X0 + 0.0001, Y0 + 0.006), (X0 + 0.0009, Y0 + 0.0068), (X0 + 0.0009, Y0 + 0.006),
                              (X0 + 0.0001, Y0 + 0.0068)])
    collapsed = shapely.Polygon([(X0, Y0 + 0.007), (X0 + 0.001, Y0 + 0.007), (X0 + 0.002, Y0 + 0.007)])
    with_z = shapely.Polygon([(x, y, 12.5) for x, y in box(4, 0).exterior.coords])
    feats = [({"code": "R-1"}, box(2, 0)), ({"code": "R-2"}, bowtie), ({"code": "R-3"}, None),
             ({"code": "R-4"}, shapely.LineString([(X0, Y0), (X0 + 0.001, Y0 + 0.001)])),
             ({"code": "R-5"}, collapsed), ({"code": "R-6"}, with_z), ({"code": ""}, box(5, 0)),
             ({"code": "R-7"}, box(6, 0)), ({"code": "R-7"}, box(7, 0))]
    with stage_files([("g.geojson", geojson_bytes(feats))]) as up:
        plan = prepare_import(tiny_store, up, ImportOptions(kind="village"))
    rep = plan.report
    assert rep["features_read"] == 9 and rep["features_imported"] == 3
    assert rep["repaired"] == 1 and rep["repaired_rows"][0]["row"] == 2 and "Self-intersection" in rep["repaired_rows"][0]["reason"]
    assert {r["row"]: r["reason_key"] for r in rep["rejected"]} == {
        3: "import.reject_empty", 4: "import.reject_not_polygon", 5: "import.reject_invalid",
        7: "import.reject_no_code", 8: "import.reject_duplicate", 9: "import.reject_duplicate"}
    assert "8, 9" in next(r["reason"] for r in rep["rejected"] if r["row"] == 8)
    geoms = plan.parcels.set_index("code").geometry
    assert set(plan.parcels.geom_type) == {"MultiPolygon"} and geoms.is_valid.all() and not geoms.has_z.any()
    assert len(geoms["R-2"].geoms) == 2  # the bow-tie's two triangles, polygonal parts only


def test_overlaps_and_parcels_outside_the_district_are_warned(tiny_store):
    a = box(0, 5)
    feats = [({"code": "O-1"}, a), ({"code": "O-2"}, shapely.affinity.translate(a, 0.0004)),
             ({"code": "O-3"}, shapely.box(X0 + 0.03, Y0, X0 + 0.031, Y0 + 0.001)),
             ({"code": "O-4"}, shapely.box(X0 + 0.0195, Y0 + 0.001, X0 + 0.0205, Y0 + 0.002)),
             ({"code": "O-5"}, shapely.box(X0 + 0.0002, Y0 + 0.0002, X0 + 0.0008, Y0 + 0.0008))]  # on V01-001
    with stage_files([("o.geojson", geojson_bytes(feats))]) as up:
        rep = prepare_import(tiny_store, up, ImportOptions(kind="village")).report
    w = {x["key"]: x for x in rep["warnings"]}
    assert w["import.warn_overlap"]["pairs"] == [["O-1", "O-2"]]
    assert w["import.warn_overlap_store"]["pairs"] == [["O-5", "V01-001"]]
    assert w["import.warn_outside"]["codes"] == ["O-3"] and w["import.warn_partly_outside"]["codes"] == ["O-4"]
    assert rep["features_imported"] == 5  # warnings do not block


def test_reimport_updates_geometry_and_attributes_keeps_history_and_records_an_event(tiny_store):
    before = tiny_store.history("V01-003")
    version = tiny_store.parcel("V01-003")["version"]
    feats = [({"code": "V01-003", "name": "东岙村3号地块（调整）", "unit": "新责任单位"}, box(1, 6))]
    with stage_files([("u.geojson", geojson_bytes(feats))]) as up:
        plan = prepare_import(tiny_store, up, ImportOptions())
        assert plan.report["updated"] == 1 and plan.report["new"] == 0
        commit_import(tiny_store, plan, by="赵敏")
    p = tiny_store.parcel("V01-003")
    assert p["name"] == "东岙村3号地块（调整）" and p["unit"] == "新责任单位" and p["version"] == version + 1
    assert p["stage"] == "signing" and p["blocked"] and p["kind"] == "village"  # not in the file: kept
    after = tiny_store.history("V01-003")
    assert after[:-1] == before
    assert (after[-1].action, after[-1].from_stage, after[-1].to_stage, after[-1].recorded_by) == (
        "import", "signing", "signing", "赵敏")
    got = tiny_store.parcels(search="V01-003").geometry.iloc[0]
    assert got.equals(shapely.MultiPolygon([box(1, 6)]))
    assert p["area_m2"] == pytest.approx(tiny_store.parcel("V01-001")["area_m2"] * 0.64, rel=0.01)


def test_stage_labels_kinds_and_unknown_values(tiny_store):
    feats = [({"code": "S-1", "type": "产业园地块", "stage": "两规批准"}, box(0, 7)),
             ({"code": "S-2", "type": "park", "stage": "签约"}, box(1, 7)),
             ({"code": "S-3", "type": "shop", "stage": ""}, box(2, 7)),
             ({"code": "S-4", "type": "", "stage": "layout"}, box(3, 7))]
    with stage_files([("s.geojson", geojson_bytes(feats))]) as up:
        plan = prepare_import(tiny_store, up, ImportOptions())
    rep = plan.report
    assert [(r["row"], r["reason_key"]) for r in rep["rejected"]] == [(3, "import.reject_kind"), (4, "import.reject_no_kind")]
    assert [(w["row"], w["key"]) for w in rep["warnings"] if "row" in w] == [(2, "import.warn_stage")]
    stages = {c: (s if isinstance(s, str) else None) for c, s in zip(plan.parcels["code"], plan.parcels["stage"])}
    assert stages == {"S-1": "plans_approved", "S-2": None}


def test_mapping_suggestions_and_overrides(tiny_store):
    assert suggest_mapping(["OBJECTID", "宗地编号", "权利人", "所属村名", "现状用途", "备注", "Shape_Area"]) == {
        "code": "宗地编号", "owner": "权利人", "village": "所属村名", "land_use": "现状用途", "note": "备注"}
    assert suggest_mapping(["DKBH", "DKMC", "ZRDW"]) == {"code": "DKBH", "name": "DKMC", "unit": "ZRDW"}
    feats = [({"id_a": "M-1", "名称": "甲", "备注": "x"}, box(0, 8))]
    with stage_files([("m.geojson", geojson_bytes(feats))]) as up:
        with pytest.raises(InputError) as e:
            prepare_import(tiny_store, up, ImportOptions(kind="village"))
        assert e.value.key == "import.no_code_column" and "id_a" in e.value.message("zh")
        plan = prepare_import(tiny_store, up, ImportOptions(kind="village", mapping={"code": "id_a", "note": ""}))
        assert plan.report["mapping"] == {"code": "id_a", "name": "名称"}
        with pytest.raises(InputError) as e:
            prepare_import(tiny_store, up, ImportOptions(kind="village", mapping={"code": "nope"}))
        assert e.value.key == "import.no_column"


# ------------------------------------------------------------------ the transaction and the index
def test_gpkg_blob_header():
    [blob] = gpkg_blobs([shapely.MultiPolygon([shapely.box(1, 2, 3, 4)])])
    magic, version, flags, srs = struct.unpack_from("<2sBBi", blob)
    assert (magic, version, flags, srs) == (b"GP", 0, 3, 4490)
    assert struct.unpack_from("<4d", blob, 8) == (1.0, 3.0, 2.0, 4.0)
    assert shapely.from_wkb(blob[40:]).equals(shapely.box(1, 2, 3, 4))


def test_round_trip_through_an_exported_geopackage(tiny_store, tmp_path, catalog):
    tiny_store.advance("V01-002", "listed", "2024-04-01", "王芳", note="公示期满")
    tiny_store.set_blocked("MIN-01", True, "权属争议", "张伟", "2025-01-02")
    exported = tmp_path / "export.gpkg"
    export_gpkg(tiny_store, exported)
    # an empty store with the same context layers
    empty = tmp_path / "empty.gpkg"
    export_gpkg(tiny_store, empty, codes=[])
    target = Store(empty, catalog)
    assert count(target) == 0 and count(target, "stage_events") == 0
    rep = import_file(target, exported, by="导入员")
    assert rep["new"] == 5 and rep["history_events"] == 5 and not rep["rejected"]
    fields = ["code", "name", "kind", "zone", "village", "park", "unit", "owner", "land_use", "stage",
              "stage_date", "blocked", "blocked_reason", "note"]
    a, b = tiny_store.parcels().sort_values("code"), target.parcels().sort_values("code")
    assert a[fields].fillna("").astype(str).values.tolist() == b[fields].fillna("").astype(str).values.tolist()
    assert all(x.equals_exact(y, 1e-12) for x, y in zip(a.geometry, b.geometry))
    assert np.allclose(a["area_m2"], b["area_m2"], rtol=1e-6)
    for code in a["code"]:
        strip = lambda evs: [{k: v for k, v in e.as_dict().items() if k != "id"} for e in evs]  # noqa: E731
        assert strip(tiny_store.history(code)) == strip(target.history(code))
    # importing the same export again changes nothing
    v = target.data_version()
    rep = import_file(target, exported, by="导入员")
    assert (rep["features_imported"], rep["unchanged"]) == (0, 5) and target.data_version() == v
    assert count(target, "stage_events") == count(tiny_store, "stage_events")


def test_import_keeps_the_store_a_valid_geopackage_with_a_correct_spatial_index(clean_store, tmp_path):
    feats = [({"code": f"I-{i}"}, box(i, 9)) for i in range(5)] + [({"code": "V01-001"}, box(0, 10))]
    path = _write(tmp_path / "i.geojson", geojson_bytes(feats))
    rep = import_file(clean_store, path, ImportOptions(kind="village"), by="x")
    assert (rep["new"], rep["updated"]) == (5, 1)
    out = subprocess.run(["/usr/bin/python3", str(VALIDATE), str(clean_store.path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    out = subprocess.run(["ogrinfo", "-ro", "-so", str(clean_store.path), "parcels"], capture_output=True, text=True)
    assert "Feature Count: 10" in out.stdout
    # the R-tree follows moved and new geometries
    minx, miny, maxx, maxy = box(0, 10).bounds
    hit = pyogrio.read_dataframe(clean_store.path, layer="parcels", bbox=(minx, miny, maxx, maxy))
    assert list(hit["code"]) == ["V01-001"]
    old_place = pyogrio.read_dataframe(clean_store.path, layer="parcels", bbox=(X0, Y0, X0 + 0.0009, Y0 + 0.0009))
    assert "V01-001" not in set(old_place["code"])
    with sqlite3.connect(clean_store.path) as con:
        assert con.execute("SELECT count(*) FROM rtree_parcels_geom").fetchone()[0] == 10
        assert con.execute("SELECT feature_count FROM gpkg_ogr_contents WHERE table_name='parcels'").fetchone()[0] == 10
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_failed_write_leaves_nothing_behind(tiny_store, tmp_path):
    feats = [({"code": "F-1", "kind": "village"}, box(0, 11)), ({"code": "F-2", "kind": "village"}, box(1, 11))]
    with stage_files([("f.geojson", geojson_bytes(feats))]) as up:
        plan = prepare_import(tiny_store, up, ImportOptions())
    plan.parcels.loc[1, "stage"] = "not-a-stage"  # slipped past the checks: the store refuses it
    plan.parcels["stage_given"] = True
    plan.fields = plan.fields + ("stage",)
    n, v = count(tiny_store), tiny_store.data_version()
    with pytest.raises(Exception):
        commit_import(tiny_store, plan, by="x")
    assert (count(tiny_store), tiny_store.data_version()) == (n, v)
    with pytest.raises(InputError):
        commit_import(tiny_store, plan, by="")


KILLER = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
import gis.store.base as base
from gis.store import Store, gpkg
from gis.io.importer import ImportOptions, import_file

def register(con):
    gpkg.register_functions(con)
    calls = [0]

    def trace(sql):  # called as each statement runs: stop half-way through the parcel inserts
        if sql.startswith("INSERT INTO parcels"):
            calls[0] += 1
            if calls[0] == 150:
                print("INSIDE", flush=True)
                time.sleep(120)

    con.set_trace_callback(trace)


base.register_functions = register
import_file(Store(sys.argv[2]), sys.argv[3], ImportOptions(kind="village"), by="kill")
print("FINISHED", flush=True)
"""


def test_sigkill_mid_import_leaves_the_store_as_before(clean_store, tmp_path):
    feats = [({"code": f"K-{i:04d}"}, box(i % 19, 12 + i // 19, size=0.0004)) for i in range(300)]
    src = _write(tmp_path / "k.geojson", geojson_bytes(feats))
    def dump():
        with sqlite3.connect(clean_store.path) as con:
            return [con.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in ("parcels", "stage_events", "meta")]

    before = dump()
    n, v = count(clean_store), clean_store.data_version()
    proc = subprocess.Popen([sys.executable, "-c", KILLER, str(ROOT), str(clean_store.path), str(src)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.strip() == "INSIDE", proc.stderr.read()
        # the transaction is open and has written (to the rollback journal, or the WAL)
        assert any(Path(str(clean_store.path) + s).exists() for s in ("-journal", "-wal"))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    # the next connection rolls the hot journal back
    assert (count(clean_store), clean_store.data_version()) == (n, v)
    assert clean_store.parcels(search="K-0").empty
    with sqlite3.connect(clean_store.path) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert dump() == before
    rep = import_file(clean_store, src, ImportOptions(kind="village"), by="again")
    assert rep["new"] == 300


# ------------------------------------------------------------------ safety
def test_gdal_vrt_and_gdalg_drivers_are_off():
    ensure_gdal_hardened()
    drivers = pyogrio.list_drivers()
    assert "OGR_VRT" not in drivers and "GDALG" not in drivers


def test_gdal_hardening_also_works_when_pyogrio_was_imported_first(tmp_path):
    secret = _write(tmp_path / "secret.csv", b"a,b\nSECRET,1\n")
    vrt = _write(tmp_path / "x.vrt", f'<OGRVRTDataSource><OGRVRTLayer name="s"><SrcDataSource>{secret}'
                                     "</SrcDataSource><SrcLayer>secret</SrcLayer></OGRVRTLayer>"
                                     "</OGRVRTDataSource>".encode())
    code = (f"import pyogrio; assert 'OGR_VRT' in pyogrio.list_drivers()\n"
            f"print(len(pyogrio.read_dataframe({str(vrt)!r})))\n"
            f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
            "from gis.io.uploads import ensure_gdal_hardened; ensure_gdal_hardened()\n"
            "assert 'OGR_VRT' not in pyogrio.list_drivers()\n"
            f"try:\n    pyogrio.read_dataframe({str(vrt)!r}); print('READ')\n"
            "except Exception as e:\n    print('REFUSED', type(e).__name__)\n")
    env = {k: v for k, v in os.environ.items() if k != "GDAL_SKIP"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.stdout.split() == ["1", "REFUSED", "DataSourceError"], out.stderr


@pytest.mark.parametrize("declared", ["parcels.geojson", "parcels.kml", "parcels.csv", "parcels.dxf", "parcels.json"])
@pytest.mark.parametrize("target", ["file", "url"])
def test_a_disguised_ogr_vrt_is_refused(tiny_store, tmp_path, declared, target):
    secret = _write(tmp_path / "secret.csv", b"code,WKT\nLEAK,\"POLYGON((121.3 37.4,121.31 37.4,121.31 37.41,121.3 37.4))\"\n")
    src = str(secret) if target == "file" else "/vsicurl/http://127.0.0.1:9/parcels.csv"
    vrt = (f'<OGRVRTDataSource>\n  <OGRVRTLayer name="parcels">\n    <SrcDataSource>{src}</SrcDataSource>\n'
           '    <GeometryField encoding="WKT" field="WKT"/>\n  </OGRVRTLayer>\n</OGRVRTDataSource>\n')
    for prefix in ("", "\ufeff  \n"):
        with pytest.raises(InputError) as e:
            stage_files([(declared, (prefix + vrt).encode())])
        assert e.value.key == "import.vrt_rejected" and declared in e.value.message("zh")
    assert "LEAK" not in tiny_store.parcels(geometry=False)["code"].tolist()


def test_content_must_match_the_declared_format(tmp_path):
    cases = [("a.geojson", b"not json at all"), ("a.shp", b"\x00" * 200), ("a.gpkg", b"SQLite format 3\x00" + b"\x00" * 200),
             ("a.kml", b"<html><body>hi</body></html>"), ("a.dxf", b"hello\nworld\n")]
    for name, data in cases:
        with pytest.raises(InputError) as e:
            stage_files([(name, data)])
        assert e.value.key in ("import.content_mismatch", "import.shp_incomplete"), name
    bomb_xml = b'<?xml version="1.0"?><!DOCTYPE kml [<!ENTITY a "aaaa">]><kml>&a;</kml>'
    with pytest.raises(InputError) as e:
        stage_files([("a.kml", bomb_xml)])
    assert e.value.key == "import.kml_doctype"
    with pytest.raises(InputError) as e:
        stage_files([("a.kml", b'<kml><Document><NetworkLink><Link><href>http://x/y.kml</href></Link></NetworkLink></Document></kml>')])
    assert e.value.key == "import.kml_network"
    with pytest.raises(InputError) as e:
        stage_files([("a.vrt", b"<OGRVRTDataSource/>")])
    assert e.value.key == "import.unsupported"


def test_a_geopackage_with_virtual_tables_is_refused(tiny_store, tmp_path):
    src = tmp_path / "v.gpkg"
    export_gpkg(tiny_store, src)
    with sqlite3.connect(src) as con:
        con.execute("CREATE VIRTUAL TABLE sneaky USING fts5(a)")
    with pytest.raises(InputError) as e:
        stage_path(src)
    assert e.value.key == "import.gpkg_virtual"


def test_upload_size_is_bounded(tmp_path):
    with pytest.raises(InputError) as e:
        stage_files([("big.geojson", b"{" + b" " * 2000 + b"}")], max_bytes=1000)
    assert e.value.key == "import.too_large"
    big = _write(tmp_path / "big.geojson", b"{" + b" " * 2000 + b"}")
    with pytest.raises(InputError) as e:
        stage_path(big, max_bytes=1000)
    assert e.value.key == "import.too_large"


def test_zip_bomb_is_refused_from_the_directory(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.geojson", b"{" + b" " * (3 * 1024 * 1024) + b"}")
    assert len(buf.getvalue()) < 20_000  # 3 MB of spaces squeeze into a few KB
    with pytest.raises(InputError) as e:
        stage_files([("bomb.zip", buf.getvalue())], max_unzipped=1024 * 1024)
    assert e.value.key == "import.zip_bomb"


def test_zip_that_lies_about_its_sizes_is_stopped_while_extracting(tmp_path):
    payload = b"{" + b" " * (3 * 1024 * 1024) + b"}"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.geojson", payload)
    data = bytearray(buf.getvalue())
    # rewrite the uncompressed size in the local header (offset 22) and the central directory (offset 24)
    struct.pack_into("<I", data, 22, 100)
    cd = data.rfind(b"PK\x01\x02")
    struct.pack_into("<I", data, cd + 24, 100)
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
        assert zf.infolist()[0].file_size == 100
    with pytest.raises(InputError) as e:
        stage_files([("liar.zip", bytes(data))], max_unzipped=1024 * 1024)
    # the extractor never writes past a member's declared size (the CRC check then fails too)
    assert e.value.key in ("import.zip_bomb", "import.bad_zip")


def test_zip_members_with_unsafe_paths_or_too_many_members_are_refused(tmp_path):
    for bad in ("../evil.geojson", "a/../../evil.geojson", "/etc/evil.geojson", "C:/evil.geojson", "..\\evil.geojson"):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            info = zipfile.ZipInfo("ok.geojson")
            zf.writestr(info, b'{"type":"FeatureCollection","features":[]}')
            info = zipfile.ZipInfo("placeholder")
            info.filename = bad  # ZipInfo() normalises; the directory keeps what we set
            zf.writestr(info, b"{}")
        with pytest.raises(InputError) as e:
            stage_files([("evil.zip", buf.getvalue())])
        assert e.value.key == "import.zip_bad_member", bad
        assert not (tmp_path.parent / "evil.geojson").exists()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(30):
            zf.writestr(f"f{i}.txt", b"x")
    with pytest.raises(InputError) as e:
        stage_files([("many.zip", buf.getvalue())], max_members=20)
    assert e.value.key == "import.zip_members"


def test_paths_outside_the_private_folder_and_vsi_paths_are_refused(tmp_path):
    with pytest.raises(InputError) as e:
        stage_path("/vsicurl/http://example.com/parcels.geojson")
    assert e.value.key == "import.no_such_file"
    up = Upload(folder=tmp_path / "private")
    up.folder.mkdir()
    for bad in ("/vsizip//tmp/x.zip/a.shp", "/etc/passwd", str(up.folder / ".." / "other.geojson"),
                "GeoJSON:/tmp/a.json", "http://example.com/a.geojson"):
        with pytest.raises(InputError) as e:
            up.inside(Path(bad) if not bad.startswith(("GeoJSON", "http")) else bad)
        assert e.value.key == "import.bad_path", bad
    assert up.inside(up.folder / "a.geojson") == (up.folder / "a.geojson").resolve()
    staged = stage_files([("a.geojson", b'{"type":"FeatureCollection","features":[]}')])
    try:
        assert oct(staged.folder.stat().st_mode & 0o777) == "0o700"
        assert all(r.path.resolve().is_relative_to(staged.folder) for r in staged.layers)
    finally:
        staged.close()
    assert not staged.folder.exists()


def test_loose_shapefile_set_needs_its_dbf(tiny_store, tmp_path):
    shp = gbk_shapefile(tmp_path, with_cpg=True)
    rep = import_file(tiny_store, shp, ImportOptions(kind="park"), dry_run=True)
    assert (rep["encoding"], rep["encoding_source"]) == ("gbk", "cpg") and rep["features_imported"] == 2
    shp.with_suffix(".dbf").unlink()
    with pytest.raises(InputError) as e:
        import_file(tiny_store, shp, ImportOptions(kind="park"), dry_run=True)
    assert e.value.key == "import.shp_incomplete"


# ------------------------------------------------------------------ command line
def test_cli_import_reports_json_and_refuses_bad_files(clean_store, tmp_path):
    feats = [({"宗地号": "CLI-1", "名称": "命令行地块"}, box(0, 13)), ({"宗地号": "CLI-2"}, None)]
    src = _write(tmp_path / "c.geojson", geojson_bytes(feats))
    out = run_cli("import", str(src), "--kind", "village", "--dry-run", "--json", store=clean_store.path)
    assert out.returncode == 0, out.stderr
    rep = json.loads(out.stdout)
    for key in ("features_read", "features_imported", "repaired", "rejected", "crs", "crs_source", "encoding"):
        assert key in rep
    assert (rep["features_read"], rep["features_imported"], rep["crs"], rep["crs_source"]) == (2, 1, 4490, "guessed")
    assert rep["rejected"] == [{"row": 2, "code": "CLI-2", "reason_key": "import.reject_empty", "reason": "几何为空"}]
    assert clean_store.parcels(search="CLI-").empty
    out = run_cli("import", str(src), "--kind", "village", "--crs", "EPSG:4490", "--map", "code=宗地号",
                  "--map", "name=", "--json", store=clean_store.path)
    assert out.returncode == 0, out.stderr
    rep = json.loads(out.stdout)
    assert rep["committed"] and rep["crs_source"] == "user" and rep["mapping"] == {"code": "宗地号"}
    assert clean_store.parcel("CLI-1")["name"] == "CLI-1"
    assert clean_store.history("CLI-1") == []
    vrt = _write(tmp_path / "evil.geojson", b"<OGRVRTDataSource><OGRVRTLayer name='a'/></OGRVRTDataSource>")
    out = run_cli("import", str(vrt), "--json", store=clean_store.path)
    assert out.returncode == 2 and out.stdout == "" and "OGR VRT" in out.stderr and "Traceback" not in out.stderr
    out = run_cli("import", str(src), "--kind", "nope", store=clean_store.path)
    assert out.returncode == 2 and "nope" in out.stderr


# ------------------------------------------------------------------ the page
def _page_script():
    """Runs ui/import_page.py with st.file_uploader answering with the test's files (AppTest cannot upload)."""
    import runpy

    import streamlit as st

    class Uploaded:
        def __init__(self, name, data):
            self.name, self.size, self.file_id, self._data = name, len(data), name, data

        def getvalue(self):
            return self._data

    files = st.session_state.get("_test_files")
    real = st.file_uploader
    st.file_uploader = lambda *a, **k: [Uploaded(n, d) for n, d in files] if files else None
    try:
        runpy.run_path(st.session_state["_page"], run_name="__main__")
    finally:
        st.file_uploader = real


def test_import_page_checks_previews_and_commits(tmp_path, monkeypatch):
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    shutil.copy(DEMO, tmp_path / "renewal.gpkg")
    monkeypatch.setenv("RENEWAL_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("RENEWAL_STORE", raising=False)
    monkeypatch.delenv("RENEWAL_LANG", raising=False)
    st.cache_resource.clear()
    lot = shapely.box(121.3, 37.40, 121.3008, 37.4008)
    bad = shapely.Polygon([(121.31, 37.41), (121.3108, 37.4108), (121.3108, 37.41), (121.31, 37.4108)])
    files = [("地块.geojson", geojson_bytes([({"编号": "UI-1", "名称": "<b>界面</b>地块"}, lot),
                                             ({"编号": "UI-2"}, bad), ({"编号": "UI-3"}, None)]))]
    at = AppTest.from_function(_page_script, default_timeout=90)
    at.session_state["_page"] = str(ROOT / "ui" / "import_page.py")
    at.session_state["user"] = "admin"
    at.session_state["_test_files"] = files
    try:
        at.run()
        assert not at.exception and not at.error, (at.exception, at.error)
        assert at.title[0].value == "数据导入导出"
        mapping = {s.label: s.value for s in at.selectbox if s.key and s.key.startswith("imp_map_")}
        assert mapping["地块编号"] == "编号" and mapping["名称"] == "名称"
        at.button(key="imp_check").click().run()
        assert not at.exception and not at.error, (at.exception, at.error)
        metrics = {m.label: m.value for m in at.metric}
        assert (metrics["读取要素"], metrics["新增"], metrics["已修复"], metrics["已拒绝"]) == ("3", "2", "1", "1")
        assert any("几何为空" in str(df.value.values) for df in at.dataframe)
        at.button(key="imp_commit").click().run()
        assert not at.exception, at.exception
        assert "新增 2 宗" in at.success[0].value
        s = Store(tmp_path / "renewal.gpkg")
        assert s.parcel("UI-1")["name"] == "<b>界面</b>地块" and s.history("UI-2") == []
    finally:
        st.cache_resource.clear()


def test_accounts_an_editor_imports_only_in_their_zone_and_the_import_is_audited(tmp_path, catalog):
    from gis.base.errors import PermissionRefused

    path = tmp_path / "demo.gpkg"
    shutil.copy(DEMO, path)
    store = Store(path, catalog)
    assert store.accounts_enabled()
    zones = store.layer("zones").set_index("code")
    north, south = (zones.geometry[z].representative_point() for z in ("north", "south"))
    lot = lambda p: shapely.box(p.x - 0.0002, p.y - 0.0002, p.x + 0.0002, p.y + 0.0002)  # noqa: E731
    src = _write(tmp_path / "z.geojson", geojson_bytes([({"code": "AC-N"}, lot(north)), ({"code": "AC-S"}, lot(south))]))
    n, v = count(store), store.data_version()
    with pytest.raises(PermissionRefused):
        import_file(store, src, ImportOptions(kind="landmark"), by="editor_north")
    assert (count(store), store.data_version()) == (n, v)
    assert store.audit(actor="editor_north", action="import")["outcome"].tolist() == ["refused"]
    rep = import_file(store, src, ImportOptions(kind="landmark"), by="admin")
    assert rep["new"] == 2 and store.audit(actor="admin", action="import")["outcome"].tolist() == ["ok"]
