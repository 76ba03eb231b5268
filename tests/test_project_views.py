"""What the projects' pages, map layer, briefing page and ledger sheet compute from project records,
with rows made in code (gis/model/project_views.py, gis/maps/mapview.py add_projects)."""
from __future__ import annotations

import datetime as dt
import json
import re

import geopandas as gpd
import pytest
import shapely

from gis.maps.mapview import PROJECTS_GROUP, build_map, project_props
from gis.model.project_views import (
    RADIUS_MAX,
    RADIUS_MIN,
    board_rows,
    bullet_long,
    curve_long,
    format_wan,
    investment_curve,
    marker_radius,
    monthly,
    project_curve,
    project_stage,
    reports_latest_first,
)


def test_amounts_read_as_offices_write_them():
    assert format_wan(3200) == "3,200万元" and format_wan(12.5) == "12.5万元" and format_wan(12.0) == "12万元"
    assert format_wan(52000) == "5.20亿元"
    assert format_wan(3200, "en") == "32.0 m yuan"
    assert format_wan(None) == "—" and format_wan(float("nan")) == "—"


def test_a_circle_s_area_follows_the_investment():
    assert marker_radius(100, 100) == RADIUS_MAX
    assert marker_radius(0, 100) == RADIUS_MIN
    quarter = marker_radius(25, 100)  # a quarter of the money: half the way in radius (area ∝ investment)
    assert quarter == pytest.approx(RADIUS_MIN + (RADIUS_MAX - RADIUS_MIN) / 2, abs=0.1)
    assert marker_radius(None, 0) == RADIUS_MIN and marker_radius(500, 100) == RADIUS_MAX


def test_monthly_figures_in_each_shape_the_store_may_give():
    rows = [{"year": 2026, "month": 1, "planned_wan": 100}, {"year": 2026, "month": 2, "planned_wan": 50.5}]
    assert monthly(rows) == {"2026-01": 100.0, "2026-02": 50.5}
    assert monthly({"2026-03": 7}) == {"2026-03": 7.0}
    reports = [{"report_date": "2026-03-02", "invested_wan": 10}, {"report_date": "2026-03-20", "invested_wan": 5},
               {"report_date": "2026-04-01", "invested_wan": None}]
    assert monthly(reports) == {"2026-03": 15.0}


def test_the_curve_is_cumulative_and_stops_at_today():
    plan = {f"2026-{m:02d}": 100 for m in range(1, 13)}
    actual = [{"month": "2026-01", "invested_wan": 80}, {"month": "2026-02", "invested_wan": 90},
              {"month": "2026-03", "invested_wan": 40}]
    c = investment_curve(plan, actual, 2026, as_of=dt.date(2026, 3, 15))
    assert list(c["planned_cum"][:3]) == [100, 200, 300] and c["planned_cum"].iloc[-1] == 1200
    assert list(c["actual_cum"][:3]) == [80, 170, 210]
    assert c["actual_cum"][3:].isna().all()  # the future is not drawn flat
    assert c["gap_cum"].iloc[2] == -90
    months = [{"year": 2026, "month": m, "planned_wan": 100, "invested_wan": 50 if m < 3 else 0}
              for m in range(1, 13)]
    same = project_curve({"months": months}, 2026, as_of=dt.date(2026, 2, 1))
    assert list(same["actual_cum"][:2]) == [50, 100] and same["planned_cum"].iloc[1] == 200
    long = curve_long(c)
    assert set(long["series"]) == {"计划累计", "实际累计"} and len(long) == 12 + 3


def test_a_project_s_stage_takes_its_phase_colour(catalog):
    pipe = catalog.pipelines.get("project")
    if pipe is None:  # before the project pipeline exists: every project is grey, its key shown
        assert project_stage(catalog, "started")["phase"] == "not_started"
        return
    for key in pipe.keys:
        s = project_stage(catalog, key)
        assert s["color"] == catalog.phases[pipe.stage(key).phase].color and s["label"] != key
    assert project_stage(catalog, "no_such")["label"] == "no_such（?）"
    assert project_stage(catalog, None)["phase"] == "not_started"


def test_reports_latest_first_with_corrections_marked():
    rows = reports_latest_first([
        {"id": 1, "report_date": "2026-11-01", "recorded_at": "2026-11-01T02:00:00+00:00", "invested_wan": 10},
        {"id": 3, "report_date": "2026-11-02", "recorded_at": "2026-11-02T02:00:00+00:00", "invested_wan": 5},
        {"id": 2, "report_date": "2026-11-01", "recorded_at": "2026-11-03T02:00:00+00:00", "invested_wan": 8,
         "correction_of": 1, "reason": "数字有误"},
    ])
    assert [r["id"] for r in rows] == [3, 2, 1]
    assert [r["is_correction"] for r in rows] == [False, True, False]


def test_the_board_names_the_gap_and_the_projects_that_could_close_it():
    board = board_rows([
        {"indicator": "fai", "label": "固定资产投资", "unit": "万元", "target": 1000, "actual": 500,
         "expected_by_now": 750, "gap": 500, "candidates": [{"code": "P01", "name": "甲"}, {"code": "P02"}]},
        {"indicator": "started", "label": "新开工项目", "target": 0, "actual": 3, "expected_by_now": None,
         "gap": None, "candidates": []},
    ])
    assert board["done_share"].iloc[0] == 50.0 and bool(board["behind"].iloc[0])
    assert board["gap"].iloc[0] == 500 and board["behind_by"].iloc[0] == 250
    assert board["candidates"].iloc[0] == "P01 甲；P02"
    long = bullet_long(board)
    assert list(long["share"]) == [50.0, 75.0]  # an indicator without a target has no bar


def _footprints():
    return gpd.GeoDataFrame(
        {"code": ["P01", "P02"], "name": ["<img src=x onerror=alert(1)>一号项目", "{{ 7*7 }}二号"],
         "stage": ["started", None], "investment_total": [120000.0, 800.0]},
        geometry=[shapely.box(121.30, 37.40, 121.31, 37.41), shapely.box(121.32, 37.40, 121.33, 37.41)],
        crs="EPSG:4490")


def test_project_properties_carry_the_click_code_size_and_colour(catalog):
    props = project_props(_footprints(), catalog)
    assert [p["layer"] for p in props] == [PROJECTS_GROUP] * 2
    assert [p["code"] for p in props] == ["P01", "P02"]
    assert props[0]["radius"] == RADIUS_MAX and props[1]["radius"] < props[0]["radius"]
    assert props[0]["investment"] == "12.00亿元"


def test_the_projects_group_is_switchable_and_its_text_inert(catalog):
    html = build_map({}, None, catalog, projects=_footprints()).get_root().render()
    assert json.dumps("重点项目（圆圈大小示投资额）") in html  # its own group in the layer switcher
    assert re.search(r'RenewalAtlas\.track\([^)]*"projects": feature_group_', html)  # switched off stays off
    assert "<img src=x" not in html
    assert "{{ 7*7 }}" not in html and "49二号" not in html  # a Jinja tag in a name is not run
    dec = json.JSONDecoder()
    starts = [m.start() for m in re.finditer(r'\{"type":"FeatureCollection"', html)]
    feats = [f for i in starts for f in dec.raw_decode(html, i)[0]["features"]]
    points = [f for f in feats if f["geometry"]["type"] == "Point"]
    assert sorted(f["properties"]["code"] for f in points) == ["P01", "P02"]
    assert "circle" in html  # the legend's circle item
