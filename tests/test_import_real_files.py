"""Real files from other systems (issue 14): curves and surfaces, the national standards' field codes,
DataV/AMap GCJ-02 data, honest messages for drawings and line layers, areas far from the district.

Fixtures are made in code around the tiny store's district (121.30–121.32 E, 37.40–37.42 N, GK zone 40);
curved GeoPackages are written by GDAL itself from WKT (shapely cannot hold a curve).
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import subprocess
import sys
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import pyproj
import pytest
import shapely
from pyogrio.raw import read_arrow
from pyogrio.raw import write as write_raw

from gis.base.errors import InputError, UnknownCRSError
from gis.io.importer import ImportOptions, import_file, prepare_import
from gis.io.uploads import stage_files

ROOT = Path(__file__).resolve().parent.parent
X0, Y0 = 121.30, 37.40
TO_GK = pyproj.Transformer.from_crs(4490, 4528, always_xy=True)


def box(i, j=0, size=0.0008):
    return shapely.box(X0 + 0.0001 + i * 0.001, Y0 + 0.004 + j * 0.001,
                       X0 + 0.0001 + i * 0.001 + size, Y0 + 0.004 + j * 0.001 + size)


def circle_wkt(cx, cy, r, curve="CURVEPOLYGON"):
    """A circle as one CircularString (lon/lat), inside a CurvePolygon or a MultiSurface."""
    ring = f"CIRCULARSTRING({cx - r} {cy}, {cx} {cy + r}, {cx + r} {cy}, {cx} {cy - r}, {cx - r} {cy})"
    return f"CURVEPOLYGON({ring})" if curve == "CURVEPOLYGON" else f"MULTISURFACE(CURVEPOLYGON({ring}))"


def half_disc_wkt(x, y, r):
    """A half disc: an arc and its chord, as a CompoundCurve."""
    return (f"CURVEPOLYGON(COMPOUNDCURVE(CIRCULARSTRING({x - r} {y}, {x} {y + r}, {x + r} {y}),"
            f"({x + r} {y}, {x - r} {y})))")


def write_csv(path: Path, header, rows) -> Path:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    w.writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8")
    return path


def curved_gpkg(path: Path, rows: list[tuple], fields=("code",)) -> Path:
    """A GeoPackage whose features are what the WKT (each row's last item) says, curves and all: GDAL
    writes the blobs; ``fields`` name the rows' other items."""
    src = write_csv(path.with_suffix(".src.csv"), [*fields, "WKT"], rows)
    _, table = read_arrow(src)
    wkb = np.array(table.column(table.num_columns - 1).to_pylist(), dtype=object)
    data = [np.array([v or None for v in table.column(f).to_pylist()], dtype=object) for f in fields]
    with warnings.catch_warnings():  # "Registering non-standard gpkg_geom_TIN extension": as ArcGIS would
        warnings.simplefilter("ignore", RuntimeWarning)
        write_raw(path, geometry=wkb, field_data=data, fields=list(fields), geometry_type="Unknown", crs="EPSG:4490",
                  driver="GPKG", layer="宗地")
    return path


# ------------------------------------------------------------------ 1. curves and surfaces
def test_a_curved_geopackage_imports_with_its_curves_linearised_and_counted(tiny_store, tmp_path):
    cx, cy, r = X0 + 0.0055, Y0 + 0.012, 0.0003  # about 27 m across in latitude
    vertical = ("POLYHEDRALSURFACE Z (((121.31 37.41 0, 121.311 37.41 0, 121.311 37.41 10, 121.31 37.41 10,"
                " 121.31 37.41 0)))")
    tin = "TIN Z (((121.3031 37.4051 0, 121.3039 37.4051 1, 121.3039 37.4059 2, 121.3031 37.4051 0)))"
    path = curved_gpkg(tmp_path / "arcgis.gpkg", [
        ("ARC-1", circle_wkt(cx, cy, r)), ("ARC-2", circle_wkt(cx + 0.002, cy, r, "MULTISURFACE")),
        ("ARC-3", half_disc_wkt(cx + 0.004, cy, r)), ("PLAIN", box(0).wkt), ("TIN-1", tin), ("WALL", vertical)])
    assert pyogrio.read_info(path)["geometry_type"] == "Unknown"
    rep = import_file(tiny_store, path, ImportOptions(kind="landmark"), by="王强")
    assert (rep["features_read"], rep["new"], rep["linearised"], rep["surfaces"]) == (6, 5, 3, 1)
    assert [(r["row"], r["reason_key"]) for r in rep["rejected"]] == [(6, "import.reject_surface")]
    w = {x["key"]: x for x in rep["warnings"]}
    assert w["import.linearised"]["count"] == 3 and "0.5°" in w["import.linearised"]["message"]
    arc = tiny_store.parcel("ARC-1")
    exact = math.pi * (r * 111_000) * (r * 111_000 * math.cos(math.radians(cy)))  # an ellipse in metres
    assert arc["area_m2"] == pytest.approx(exact, rel=0.01)
    stored = tiny_store.parcels(search="ARC-").set_index("code").geometry
    ring = np.asarray(stored["ARC-1"].geoms[0].exterior.coords)
    radius = np.hypot(ring[:, 0] - cx, ring[:, 1] - cy)
    assert len(ring) > 500 and radius.max() - radius.min() < r * 1e-4  # ~3 mm on 30 m: a cadastral circle
    half = stored["ARC-3"].area / stored["ARC-1"].area
    assert half == pytest.approx(0.5, abs=1e-3)
    assert tiny_store.parcel("TIN-1")["area_m2"] == pytest.approx(0.5 * (0.0008 * 111_000) * (0.0008 * 88_400), rel=0.02)


def test_curves_in_csv_wkt_import_and_a_bad_row_is_rejected_not_a_traceback(tiny_store, tmp_path):
    cx, cy, r = X0 + 0.0055, Y0 + 0.012, 0.0003
    path = write_csv(tmp_path / "曲线.csv", ["编号", "WKT"], [
        ("C-1", half_disc_wkt(cx, cy, r)), ("C-2", circle_wkt(cx + 0.002, cy, r, "MULTISURFACE")),
        ("C-3", f"CIRCULARSTRING({cx} {cy}, {cx + r} {cy + r}, {cx + 2 * r} {cy})"), ("C-4", "CURVEPOLYGON(("),
        ("C-5", box(0).wkt),
        ("C-6", "TIN Z (((121.3031 37.4051 0, 121.3039 37.4051 1, 121.3039 37.4059 2, 121.3031 37.4051 0)))")])
    rep = import_file(tiny_store, path, ImportOptions(kind="landmark"), by="王强")
    assert (rep["new"], rep["linearised"], rep["surfaces"]) == (4, 3, 1)
    assert {r["row"]: r["reason_key"] for r in rep["rejected"]} == {3: "import.reject_not_polygon",
                                                                    4: "import.reject_bad_geometry"}
    assert tiny_store.parcel("C-2")["area_m2"] > 2 * tiny_store.parcel("C-1")["area_m2"] * 0.99


def run_cli(*args, store):
    env = dict(os.environ, RENEWAL_USER="测试员")
    env.pop("RENEWAL_LANG", None)
    return subprocess.run([sys.executable, "-m", "gis.cli", "--store", str(store), *args],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=180)


def test_no_odd_file_ends_in_a_traceback_on_the_command_line(tiny_gpkg, tmp_path):
    odd = {
        "curves.csv": ("code,WKT\nQ-1,\"" + half_disc_wkt(X0 + 0.005, Y0 + 0.01, 0.0003) + "\"\n").encode(),
        "broken.csv": b'code,WKT\nQ-2,"CURVEPOLYGON(COMPOUNDCURVE(CIRCULARSTRING(1 2, 3"\n',
        "lines.geojson": json.dumps({"type": "FeatureCollection", "features": [
            {"type": "Feature", "properties": {"name": "路"}, "geometry": shapely.geometry.mapping(
                shapely.LineString([(X0, Y0), (X0 + 0.01, Y0 + 0.01)]))}]}).encode(),
        "drawing.dxf": ("0\nSECTION\n2\nENTITIES\n0\nLWPOLYLINE\n8\n0\n90\n4\n70\n1\n"
                        "10\n3.4\n20\n5.2\n10\n13.4\n20\n5.2\n10\n13.4\n20\n15.2\n10\n3.4\n20\n15.2\n"
                        "0\nENDSEC\n0\nEOF\n").encode(),
    }
    codes = {}
    for name, data in odd.items():
        (tmp_path / name).write_bytes(data)
        for cmd in (["import", str(tmp_path / name), "--kind", "village", "--dry-run", "--json"],
                    ["--as", "admin", "cadastre", "import", str(tmp_path / name), "--dry-run", "--json"]):
            res = run_cli(*cmd, store=tiny_gpkg.path)
            assert "Traceback" not in res.stderr, res.stderr
            codes[(name, cmd[0])] = res.returncode
    assert codes[("curves.csv", "import")] == 0 and codes[("curves.csv", "--as")] == 0
    assert set(codes.values()) <= {0, 2}
    res = run_cli("import", str(tmp_path / "lines.geojson"), "--kind", "village", "--dry-run", store=tiny_gpkg.path)
    assert res.returncode == 2 and "没有面要素" in res.stderr and "LineString 1" in res.stderr
    res = run_cli("import", str(tmp_path / "drawing.dxf"), "--kind", "village", "--dry-run", store=tiny_gpkg.path)
    assert res.returncode == 2 and "本地绘图单位" in res.stderr and "经纬度（" not in res.stderr


# ------------------------------------------------------------------ 5. honest messages
def geojson(features) -> bytes:
    return json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": p, "geometry": shapely.geometry.mapping(g)} for p, g in features]},
        ensure_ascii=False).encode()


@pytest.mark.parametrize("geoms", [[shapely.Point(X0 + 0.001, Y0 + 0.001)] * 2,
                                   [shapely.LineString([(X0, Y0), (X0 + 0.001, Y0)]), shapely.Point(X0, Y0)]])
def test_a_point_or_line_layer_is_refused_as_holding_no_polygons_before_any_column_check(tiny_store, geoms):
    with stage_files([("线.geojson", geojson([({"名称": "无编号"}, g) for g in geoms]))]) as up:
        with pytest.raises(InputError) as e:
            prepare_import(tiny_store, up, ImportOptions(kind="village"))
    assert e.value.key == "import.no_polygons"
    assert geoms[0].geom_type in e.value.message("zh") and "no polygons" in e.value.message("en")


def test_cad_drawing_units_are_called_drawing_units_not_longitude_latitude(tiny_store, tmp_path):
    dxf = tmp_path / "宗地图.dxf"
    body = "".join(f"10\n{x}\n20\n{y}\n" for x, y in [(3.4, 5.2), (13.4, 5.2), (13.4, 15.2), (3.4, 15.2)])
    dxf.write_text("0\nSECTION\n2\nENTITIES\n0\nLWPOLYLINE\n8\n0\n90\n4\n70\n1\n" + body + "0\nENDSEC\n0\nEOF\n")
    with pytest.raises(UnknownCRSError) as e:
        import_file(tiny_store, dxf, ImportOptions(kind="park"), dry_run=True)
    assert e.value.key == "import.crs_local_units" and "8.400" in e.value.message("zh")


# ------------------------------------------------------------------ 2. the national standards' field codes
def delivered_shapefile(folder: Path, name: str, columns: dict, geoms) -> Path:
    """A shapefile as offices deliver it: GBK text, no .cpg, no .prj, GK zone 40 coordinates with the prefix."""
    gdf = gpd.GeoDataFrame(columns, geometry=list(geoms), crs="EPSG:4490").to_crs(4528)
    shp = folder / f"{name}.shp"
    with pytest.warns(UserWarning):  # no CRS written: no .prj
        pyogrio.write_dataframe(gdf.set_crs(None, allow_override=True), shp, encoding="GBK")
    shp.with_suffix(".cpg").unlink(missing_ok=True)
    assert not shp.with_suffix(".prj").exists() and not shp.with_suffix(".cpg").exists()
    return shp


def area_m2(g) -> float:
    return abs(pyproj.Geod(ellps="GRS80").geometry_area_perimeter(g)[0])


def test_a_land_contract_shapefile_with_dkbm_dkmc_imports_with_no_map(tiny_store, tmp_path):
    """农村土地承包经营权确权登记数据库 承包地块: DKBM, DKMC, FBFMC, SCMJ (m²), SCMJM (亩), BSM."""
    geoms = [box(i, 2) for i in range(3)]
    shp = delivered_shapefile(tmp_path, "CBDK", {
        "BSM": ["1", "2", "3"], "DKBM": ["3706020012010100001", "3706020012010100002", "3706020012010100003"],
        "DKMC": ["东洼地", "西岭地", "南河滩"], "FBFMC": ["东岙村股份经济合作社"] * 3,
        "SCMJ": [area_m2(g) for g in geoms[:2]] + [area_m2(geoms[2]) * 1.3],
        "SCMJM": [area_m2(g) / 666.67 for g in geoms]}, geoms)
    rep = import_file(tiny_store, shp, ImportOptions(kind="village"), by="王强")
    assert rep["mapping"] == {"code": "DKBM", "name": "DKMC", "owner": "FBFMC", "area": "SCMJ"}
    assert (rep["new"], rep["crs"], rep["encoding"]) == (3, 4528, "gb18030")
    p = tiny_store.parcel("3706020012010100002")
    assert (p["name"], p["owner"]) == ("西岭地", "东岙村股份经济合作社")
    [w] = [x for x in rep["warnings"] if x["key"] == "import.warn_area"]
    assert w["codes"] == ["3706020012010100003"] and "SCMJ" in w["message"]


def test_a_sandiao_land_survey_layer_maps_code_owner_land_use_village_and_area(tiny_store, tmp_path):
    """第三次全国国土调查 地类图斑 (DLTB): BSM, TBBH, DLBM, DLMC, QSXZ, QSDWMC, ZLDWMC, TBMJ."""
    village_lot = shapely.box(X0 + 0.0052, Y0 + 0.0005, X0 + 0.0059, Y0 + 0.0015)  # inside village V01
    geoms = [village_lot, box(0, 3)]
    shp = delivered_shapefile(tmp_path, "DLTB", {
        "BSM": ["370602000000001", "370602000000002"], "TBBH": ["12", "12"], "DLBM": ["0702", "0101"],
        "DLMC": ["农村宅基地", "水田"], "QSXZ": ["30", "30"], "QSDWMC": ["东岙村民委员会"] * 2,
        "ZLDWMC": ["东岙村民委员会"] * 2, "TBMJ": [area_m2(g) for g in geoms]}, geoms)
    rep = import_file(tiny_store, shp, ImportOptions(kind="village"), by="王强")
    assert rep["mapping"] == {"code": "BSM", "village": "ZLDWMC", "owner": "QSDWMC", "land_use": "DLMC",
                              "area": "TBMJ"}
    assert rep["new"] == 2 and not [w for w in rep["warnings"] if w["key"].startswith("import.warn_area")]
    p = tiny_store.parcel("370602000000001")
    assert (p["land_use"], p["owner"], p["village"]) == ("农村宅基地", "东岙村民委员会", "V01")


def test_a_cadastral_database_layer_maps_zddm_qlrmc_tdyt_and_an_area_in_mu_is_named(tiny_store, tmp_path):
    """地籍数据库 宗地 (ZD): ZDDM, DJH, QLRMC, TDYT, ZDMJ — here, wrongly, in 亩."""
    geoms = [box(i, 4) for i in range(2)]
    delivered_shapefile(tmp_path, "ZD", {
        "ZDDM": ["370602003010GB00001", "370602003010GB00002"], "DJH": ["3010-1", "3010-2"],
        "QLRMC": ["烟台市某某有限公司", "某某街道办事处"], "TDYT": ["工业用地", "机关团体用地"],
        "ZDMJ": [area_m2(g) / 666.67 for g in geoms]}, geoms)
    with stage_files([(p.name, p) for p in sorted(tmp_path.glob("ZD.*"))]) as up:
        rep = prepare_import(tiny_store, up, ImportOptions(kind="park")).report
    assert rep["mapping"] == {"code": "ZDDM", "owner": "QLRMC", "land_use": "TDYT", "area": "ZDMJ"}
    assert rep["features_imported"] == 2 and "import.warn_area_mu" in {w["key"] for w in rep["warnings"]}


def test_xzq_admin_units_and_committee_names_find_their_village(tiny_store, tmp_path):
    village_lot = shapely.box(X0 + 0.0052, Y0 + 0.0005, X0 + 0.0059, Y0 + 0.0015)
    data = geojson([({"DKBM": "A-1", "XZQDM": "370602001001", "XZQMC": "Dong'ao"}, village_lot)])
    with stage_files([("x.geojson", data)]) as up:
        rep = prepare_import(tiny_store, up, ImportOptions(kind="village")).report
    assert rep["mapping"] == {"code": "DKBM", "village": "XZQMC"} and rep["warnings"] == []


# ------------------------------------------------------------------ 4. GCJ-02 from AMap / DataV
def datav_geojson() -> tuple[bytes, shapely.Polygon]:
    """A DataV.GeoAtlas-style boundary: GCJ-02 coordinates, adcode/center/centroid/acroutes properties."""
    from gis.base.gcj02 import geometries_to_gcj02

    true = box(5, 2)
    shifted = geometries_to_gcj02(true)
    props = {"adcode": 370602001, "name": "某街道", "center": [121.305, 37.406], "centroid": [121.305, 37.406],
             "childrenNum": 0, "level": "street", "acroutes": [100000, 370000, 370600], "编号": "DV-1"}
    return geojson([(props, shifted)]), true


def test_a_datav_geojson_gets_a_gcj02_hint_and_is_moved_only_with_gcj02(tiny_store, tmp_path):
    data, true = datav_geojson()
    path = tmp_path / "datav.geojson"
    path.write_bytes(data)
    rep = import_file(tiny_store, path, ImportOptions(kind="landmark"), dry_run=True)
    [w] = [x for x in rep["warnings"] if x["key"] == "import.warn_gcj02"]
    assert set(w["properties"]) == {"adcode", "center", "centroid", "acroutes", "childrenNum"}
    assert "--gcj02" in w["message"] and rep["gcj02"] is False and rep["gcj02_suggested"]
    assert shapely.hausdorff_distance(shapely.box(*rep["bounds"]), true) > 0.002  # as read: ~450 m off
    rep = import_file(tiny_store, path, ImportOptions(kind="landmark", gcj02=True), by="张伟")
    assert rep["gcj02"] is True and "import.warn_gcj02" not in {x["key"] for x in rep["warnings"]}
    got = tiny_store.parcels(search="DV-1").geometry.iloc[0]
    assert shapely.hausdorff_distance(got, true) < 1e-7  # back on CGCS2000, to a centimetre


def test_an_ordinary_lonlat_file_gets_no_gcj02_hint(tiny_store):
    with stage_files([("p.geojson", geojson([({"code": "N-1", "center": "x"}, box(0))]))]) as up:
        rep = prepare_import(tiny_store, up, ImportOptions(kind="village")).report
    assert rep["gcj02_suggested"] == [] and rep["warnings"] == []


def test_the_data_page_ticks_gcj02_for_a_datav_file_and_the_planner_confirms(tmp_path, monkeypatch):
    import shutil

    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from tests.test_import import _page_script

    shutil.copy(ROOT / "data" / "parcels" / "demo.gpkg", tmp_path / "renewal.gpkg")
    monkeypatch.setenv("RENEWAL_DATA_DIR", str(tmp_path))
    for k in ("RENEWAL_STORE", "RENEWAL_LANG", "RENEWAL_DATABASE_URL", "RENEWAL_CONFIG"):
        monkeypatch.delenv(k, raising=False)
    st.cache_resource.clear()
    at = AppTest.from_function(_page_script, default_timeout=90)
    at.session_state["_page"] = str(ROOT / "ui" / "import_page.py")
    at.session_state["user"] = "admin"
    at.session_state["_test_files"] = [("datav.geojson", datav_geojson()[0])]
    try:
        at.run()
        assert not at.exception and not at.error, (at.exception, at.error)
        [box_] = [c for c in at.checkbox if c.key and c.key.startswith("imp_gcj02_")]
        assert box_.value is True and any("adcode" in c.value and "高德" in c.value for c in at.caption)
        at.button(key="imp_check").click().run()
        assert not at.exception and not at.error, (at.exception, at.error)
        assert not any("450" in m.value for m in at.markdown)  # converted: no warning
        box_ = next(c for c in at.checkbox if c.key and c.key.startswith("imp_gcj02_"))
        box_.uncheck().run()  # the planner says no: it stays as read, and the report says what that means
        at.button(key="imp_check").click().run()
        assert any("450" in m.value and "gcj02" in m.value for m in at.markdown)
    finally:
        st.cache_resource.clear()


# ------------------------------------------------------------------ 7. areas far from the district
def test_areas_far_from_the_district_are_computed_in_their_own_zone(tiny_store):
    """A Xinjiang-wide file: Kashgar (zone 25), Urumqi (29), beside the district (40). One zone for all
    would put Kashgar's parcel 7.8 % off."""
    geod = pyproj.Geod(ellps="GRS80")
    lots = {"KS-1": shapely.box(75.99, 39.47, 76.0, 39.48), "UR-1": shapely.box(87.60, 43.80, 87.61, 43.81),
            "HOME": box(0)}
    with stage_files([("xj.geojson", geojson([({"code": c}, g) for c, g in lots.items()]))]) as up:
        plan = prepare_import(tiny_store, up, ImportOptions(kind="landmark", derive=False))
    got = dict(zip(plan.parcels["code"], plan.parcels["area_m2"]))
    for code, g in lots.items():
        assert got[code] == pytest.approx(abs(geod.geometry_area_perimeter(g)[0]), rel=5e-4), code
    one_zone = gpd.GeoSeries(list(lots.values()), crs=4490).to_crs(4549).area.to_numpy()  # the district's zone
    assert one_zone[0] / got["KS-1"] - 1 > 0.07


def test_areas_outside_every_zone_are_ellipsoidal():
    from gis.base.units import areas_m2

    far = [shapely.box(10.0, 50.0, 10.01, 50.01), shapely.box(121.3, 37.4, 121.31, 37.41), None]
    a = areas_m2(gpd.GeoSeries(far, crs=4490))
    assert a[0] == pytest.approx(abs(pyproj.Geod(ellps="GRS80").geometry_area_perimeter(far[0])[0]), rel=1e-9)
    assert a[1] == pytest.approx(abs(pyproj.Geod(ellps="GRS80").geometry_area_perimeter(far[1])[0]), rel=5e-4)
    assert np.isnan(a[2])
