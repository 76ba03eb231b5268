"""Core rules: pipelines, transitions, units, settings, catalogues."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import geopandas as gpd
import pytest
import shapely

from gis.base import i18n
from gis.base.errors import InputError, StageTransitionError, UnknownCRSError
from gis.base.settings import Settings
from gis.base.units import M2_PER_MU, areas_m2, format_area, gk3_zone, gk_epsg
from gis.model.catalog import load_layer_catalog
from gis.model.pipelines import load_catalog

TODAY = dt.date(2026, 11, 28)
D = dt.date.fromisoformat


# ------------------------------------------------------------------ pipelines
def test_default_pipelines_follow_design(catalog):
    assert catalog.pipeline_for("village").keys[0] == "survey"
    assert catalog.pipeline_for("village").keys[-1] == "completed"
    assert len(catalog.pipeline_for("village").stages) == 13
    assert catalog.pipeline_for("park").keys == [
        "layout", "plans_approved", "acquisition", "clearance", "ready", "started", "production"]
    assert catalog.pipeline_for("ministry").keys[0] == "tenure_check"
    assert catalog.pipeline_for("landmark").keys[-1] == "completed"
    assert catalog.pipeline_for("low_efficiency") is catalog.pipeline_for("park")


def test_every_stage_and_phase_has_both_labels(catalog):
    for pipe in catalog.pipelines.values():
        for s in pipe.stages:
            assert s.label_zh and s.label_en, s.key
            assert s.phase in catalog.phases
    for ph in catalog.phases.values():
        assert ph.label_zh and ph.label_en and ph.color.startswith("#")
    for k in catalog.kinds.values():
        assert k.label_zh and k.label_en


def test_next_stage_and_progress(catalog):
    village = catalog.pipeline_for("village")
    assert village.next_stage(None) == "survey"
    assert village.next_stage("signing") == "demolition"
    assert village.next_stage("completed") is None
    assert village.progress(None) == 0
    assert village.progress("completed") == 1


def test_ordinary_advance_is_one_step(catalog):
    assert catalog.check_transition("village", None, "survey", D("2024-01-01"), today=TODAY) == "advance"
    assert catalog.check_transition("village", "signing", "demolition", D("2025-01-01"),
                                    current_date=D("2024-12-01"), today=TODAY) == "advance"


@pytest.mark.parametrize(
    "current,target,date,kwargs,key",
    [
        (None, "bogus", "2024-01-01", {}, "error.unknown_stage"),
        (None, "layout", "2024-01-01", {}, "error.stage_not_in_pipeline"),  # a park stage on a village
        (None, "survey", "2026-12-01", {}, "error.future_date"),
        ("signing", "survey", "2025-01-01", {}, "error.backwards"),
        ("survey", "baseline", "2025-01-01", {}, "error.skip"),
        ("survey", "survey", "2025-01-01", {}, "error.same_stage"),
        ("survey", "survey", "2025-01-01", {"correction": "笔误"}, "error.same_stage"),
        ("survey", "listed", "2024-01-03", {"current_date": D("2024-01-01")}, "error.gate_days"),
        ("plan", "vote", "2025-01-01", {"share": 0.79}, "error.gate_share"),
        ("plan", "vote", "2025-01-01", {}, "error.gate_share"),
        ("demolition", "clearance", "2024-01-01", {"current_date": D("2024-02-01")}, "error.date_before_current"),
        ("signing", "survey", "2025-01-01", {"correction": "   "}, "error.correction_reason"),
    ],
)
def test_illegal_transitions_are_refused(catalog, current, target, date, kwargs, key):
    with pytest.raises(StageTransitionError) as exc:
        catalog.check_transition("village", current, target, D(date), today=TODAY, **kwargs)
    assert exc.value.key == key
    # every refusal reads in both languages, with labels rather than keys
    zh, en = exc.value.message("zh"), exc.value.message("en")
    assert zh != en and "{" not in zh and "{" not in en


def test_gates_pass_when_met(catalog):
    assert catalog.check_transition("village", "survey", "listed", D("2024-01-08"),
                                    current_date=D("2024-01-01"), today=TODAY) == "advance"
    assert catalog.check_transition("village", "plan", "vote", D("2025-01-01"), share=0.8, today=TODAY,
                                    evidence=["document"]) == "advance"


def test_a_stage_that_needs_evidence_refuses_the_advance_without_it(catalog):
    for given in ((), ["photo"]):  # a photo is not the vote's minutes
        with pytest.raises(InputError) as exc:
            catalog.check_transition("village", "plan", "vote", D("2025-01-01"), share=0.8, today=TODAY,
                                     evidence=given)
        assert exc.value.key == "evidence.required"
        assert "村民表决" in exc.value.message("zh") and "Villagers' vote" in exc.value.message("en")
    # a correction passes no gate
    assert catalog.check_transition("village", "signing", "vote", D("2025-01-01"), correction="录错了",
                                    today=TODAY) == "correction"


def test_correction_goes_back_with_a_reason(catalog):
    assert catalog.check_transition("village", "signing", "survey", D("2025-01-01"),
                                    correction="录入错误", today=TODAY) == "correction"


def test_skip_message_names_the_expected_stage(catalog):
    with pytest.raises(StageTransitionError) as exc:
        catalog.check_transition("village", "survey", "plan", D("2025-01-01"), today=TODAY)
    assert "入库" in exc.value.message("zh")
    assert "Listed" in exc.value.message("en")


def test_bad_pipeline_file_is_a_clear_error(tmp_path):
    p = tmp_path / "pipelines.toml"
    p.write_text("[kinds.x]\nlabel_zh='x'\nlabel_en='x'\npipeline='missing'\n[pipelines]\n[phases]\n", encoding="utf-8")
    with pytest.raises(InputError, match="no pipeline missing"):
        load_catalog(p)


# ------------------------------------------------------------------ units
@pytest.mark.parametrize("lon,zone,epsg,prefixed", [
    (121.3, 40, 4549, 4528), (120.0, 40, 4549, 4528), (118.6, 40, 4549, 4528),
    (116.4, 39, 4548, 4527), (75.0, 25, 4534, 4513), (135.0, 45, 4554, 4533), (113.3, 38, 4547, 4526),
])
def test_gk_zone_choice(lon, zone, epsg, prefixed):
    assert gk3_zone(lon) == zone
    assert gk_epsg(lon) == epsg
    assert gk_epsg(lon, prefixed=True) == prefixed


def test_gk_zone_outside_china_is_refused():
    with pytest.raises(UnknownCRSError):
        gk_epsg(2.35)


def test_area_in_mu_of_a_known_polygon():
    # a 100 m × 200 m rectangle drawn in GK zone 40, stored in EPSG:4490: 20,000 m² = 30 亩 = 2 公顷
    square = gpd.GeoSeries([shapely.box(500000, 4140000, 500100, 4140200)], crs=4549).to_crs(4490)
    m2 = areas_m2(gpd.GeoDataFrame(geometry=square))[0]
    assert m2 == pytest.approx(20000, rel=1e-6)
    assert m2 / M2_PER_MU == pytest.approx(30, rel=1e-6)
    assert format_area(m2) == "20,000 平方米（30.00 亩 / 2.00 公顷）"
    assert format_area(m2, "en") == "20,000 m² (30.00 mu / 2.00 ha)"


def test_area_is_not_computed_in_degrees():
    g = gpd.GeoDataFrame(geometry=[shapely.box(121.3, 37.4, 121.31, 37.41)], crs=4490)
    # ~ 884 m × 1112 m; in degrees it would be 1e-4
    assert 9.5e5 < areas_m2(g)[0] < 1.0e6


# ------------------------------------------------------------------ settings
def test_settings_defaults_keep_the_store_out_of_tracked_files():
    s = Settings.load(env={})
    assert s.store_path.parent.name == "var"
    assert s.lang == "zh"
    gitignore = (Path(__file__).resolve().parent.parent / ".gitignore").read_text()
    assert "/var/" in gitignore


def test_settings_from_environment_and_file(tmp_path):
    cfg = tmp_path / "renewal.toml"
    cfg.write_text('lang = "en"\nclassification = "秘密"\n', encoding="utf-8")
    s = Settings.load(env={"RENEWAL_DATA_DIR": str(tmp_path), "RENEWAL_STORE": str(tmp_path / "x.gpkg")})
    assert s.lang == "en" and s.classification == "秘密"
    assert s.store_path == tmp_path / "x.gpkg"
    s = Settings.load(env={"RENEWAL_DATA_DIR": str(tmp_path), "RENEWAL_LANG": "zh"})
    assert s.lang == "zh"  # the environment wins over the file


@pytest.mark.parametrize("text,key", [
    ("lang = 'fr'\n", "error.bad_setting"),
    ("colour = 'red'\n", "error.unknown_setting"),
    ("lang = \n", "error.bad_config"),
])
def test_bad_settings_are_clear_errors(tmp_path, text, key):
    (tmp_path / "renewal.toml").write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as exc:
        Settings.load(env={"RENEWAL_DATA_DIR": str(tmp_path)})
    assert exc.value.key == key


def test_every_setting_is_documented_in_the_readme():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    import dataclasses

    for f in dataclasses.fields(Settings):
        if not f.name.startswith("_"):
            assert f"RENEWAL_{f.name.upper()}" in readme, f.name


# ------------------------------------------------------------------ catalogues
def test_language_catalogues_have_the_same_keys():
    zh, en = i18n.catalogue("zh"), i18n.catalogue("en")
    assert set(zh) == set(en)
    assert all(v.strip() for v in zh.values()) and all(v.strip() for v in en.values())


def test_error_keys_used_in_code_exist():
    import re

    root = Path(__file__).resolve().parent.parent
    used = set()
    for py in list((root / "gis").rglob("*.py")) + list((root / "ui").rglob("*.py")) + [root / "app.py"]:
        used |= set(re.findall(r'"((?:error|ui|board|map|app)\.[a-z_0-9.]+)"', py.read_text(encoding="utf-8")))
    used = {k for k in used if not k.endswith(".py")}
    # keys built at run time
    used |= {f"ui.actions.{a}" for a in ("advance", "correction", "block", "unblock")}
    used |= {f"board.{s}" for s in ("done", "in_progress", "not_started")}
    missing = sorted(k for k in used if k not in i18n.catalogue("zh"))
    assert not missing


def test_layer_catalogue_names_every_planned_layer(catalog):
    cat = load_layer_catalog()
    ids = {lyr.id for lyr in cat.layers}
    assert {"zones", "devzone", "parks", "park_parcels", "low_efficiency", "villages", "village_parcels",
            "ministry", "landmarks", "points", "basemap", "sea", "district"} <= ids
    for lyr in cat.layers:
        assert lyr.label_zh and lyr.label_en
        for k in lyr.kinds:
            catalog.kind(k)
    for g in cat.groups.values():
        assert g.label_zh and g.label_en


def test_duplicate_layer_ids_are_refused(tmp_path):
    p = tmp_path / "catalog.toml"
    p.write_text(
        "[groups.a]\nlabel_zh='a'\nlabel_en='a'\n"
        "[[layers]]\nid='x'\nlabel_zh='x'\nlabel_en='x'\ngroup='a'\nsource='zones'\n"
        "[[layers]]\nid='x'\nlabel_zh='x'\nlabel_en='x'\ngroup='a'\nsource='zones'\n", encoding="utf-8")
    with pytest.raises(InputError, match="duplicate"):
        load_layer_catalog(p)


# ------------------------------------------------------------------ spatial
def test_parcel_index_finds_the_clicked_parcel():
    from gis.model.spatial import ParcelIndex, fit_bounds

    gdf = gpd.GeoDataFrame({"code": ["A", "B"]},
                           geometry=[shapely.box(121.30, 37.40, 121.31, 37.41), shapely.box(121.31, 37.40, 121.32, 37.41)],
                           crs=4490)
    idx = ParcelIndex(gdf)
    assert idx.at(121.305, 37.405) == "A"
    assert idx.at(121.315, 37.405) == "B"
    assert idx.at(121.35, 37.405) is None
    (s, w), (n, e) = fit_bounds(gdf)
    assert s < 37.40 and w < 121.30 and n > 37.41 and e > 121.32
    assert fit_bounds(gdf.iloc[:0]) is None


def test_stage_timeline_marks_done_current_and_ahead(catalog):
    from gis.model.pipelines import stage_timeline

    events = [
        {"action": "advance", "to_stage": "survey", "event_date": "2024-01-01"},
        {"action": "advance", "to_stage": "listed", "event_date": "2024-01-10"},
        {"action": "block", "to_stage": "listed", "event_date": "2024-02-01"},
        {"action": "advance", "to_stage": "baseline", "event_date": "2024-03-01"},
    ]
    tl = stage_timeline(catalog, "village", "baseline", events)
    assert [x["status"] for x in tl[:4]] == ["done", "done", "current", "ahead"]
    assert tl[1]["date"] == "2024-01-10" and tl[2]["date"] == "2024-03-01" and tl[3]["date"] is None
    assert len(tl) == 13
    assert all(x["status"] == "ahead" for x in stage_timeline(catalog, "village", None, []))
    assert stage_timeline(catalog, "park", "layout", [], "en")[0]["label"] == "Layout planned"


def test_stored_utc_stamps_show_in_china_standard_time():
    from gis.base.i18n import local_time

    assert local_time("2026-11-28T16:14:46+00:00") == "2026-11-29 00:14"  # past midnight in Beijing
    assert local_time("2026-11-28T16:14:46") == "2026-11-29 00:14"  # naive stamps are stored UTC
    assert local_time("") == "" and local_time(None) == "" and local_time("昨天") == "昨天"
