"""The gis functions behind the map page, the parcel panel and the audit page (issue 13): what a
click may pick, the state a rerun keeps, the forms a user is shown, the tables as planners read them."""
from __future__ import annotations

import json

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from gis.base.units import crs_label
from gis.io.importer import ImportOptions, prepare_import
from gis.io.uploads import stage_files
from gis.maps.mapstate import MapState
from gis.maps.mapview import build_map, restore_group
from gis.model.catalog import load_layer_catalog
from gis.model.history import HISTORY_COLUMNS, audit_labels, audit_table, history_labels, history_table
from gis.model.spatial import ParcelIndex, containing_names
from gis.store.base import StageEvent

X0, Y0 = 121.30, 37.40


# ------------------------------------------------------------------ what a click may pick
def test_a_click_picks_only_what_the_map_draws():
    gdf = gpd.GeoDataFrame({"code": ["A", "B", "C"], "kind": ["village", "village", "park"]},
                           geometry=[shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1), shapely.box(0, 0, 0.5, 0.5)],
                           crs=4490)
    idx = ParcelIndex(gdf)
    assert idx.at(0.2, 0.2) == "C"  # the smallest under the point
    assert idx.at(0.2, 0.2, kinds={"village"}) == "A"  # parks switched off
    assert idx.at(1.5, 0.5, codes={"A"}) is None  # B is filtered out: not drawn, not picked
    assert idx.at(0.7, 0.5, codes=("A",)) == "A"
    assert idx.at(0.2, 0.2, codes={"A", "C"}, kinds={"park"}) == "C"
    assert idx.at(0.2, 0.2, codes=set(), kinds=None) is None


def test_layer_groups_say_which_kinds_are_drawn_and_name_kinds():
    layers = load_layer_catalog()
    assert layers.drawn_kinds() == {"village", "park", "low_efficiency", "ministry", "landmark"}
    assert layers.drawn_kinds({"villages", "landmarks"}) == {"park", "low_efficiency", "ministry"}
    aliases = layers.kind_aliases()
    assert aliases["重点片区和地标"] == "landmark" and aliases["Landmark sites"] == "landmark"
    assert aliases["30个旧村改造"] == "village"
    assert "经济开发区和产业园" not in aliases  # parks and low-efficiency land: no one kind


# ------------------------------------------------------------------ the state a rerun keeps
def _report(groups: dict, lat=37.45, lng=121.3, zoom=15):
    entries = [{"name": k, "url": "ratlas:on" if on else "ratlas:off"} for k, on in groups.items()]
    entries.append({"name": "view", "url": "ratlas:view", "lat": lat, "lng": lng, "zoom": zoom})
    entries.append({"name": "wms", "url": "http://example/wms"})  # not ours: ignored
    return {"last_clicked": None, "selected_layers": entries}


def test_map_state_reads_reports_and_restores_the_view_unless_a_new_result_is_fitted():
    state = MapState()
    assert state.read(None) is False and state.read({"selected_layers": None}) is False
    first = state.restore(None)
    assert first == {"hidden": [], "fit": False, "token": state.token}  # nothing known: the map's own view
    assert state.read(_report({"zones": False, "villages": True, "cadastre": False}))
    assert state.hidden == {"zones", "cadastre"} and not state.shows("zones") and state.shows("villages")
    assert state.center == (37.45, 121.3) and state.zoom == 15
    assert state.read(_report({"zones": False, "villages": True, "cadastre": False})) is False  # the same report
    kept = state.restore(None)
    assert kept["hidden"] == ["cadastre", "zones"] and kept["fit"] is False
    assert kept["center"] == [37.45, 121.3] and kept["zoom"] == 15
    bounds = [[37.40, 121.20], [37.41, 121.21]]
    fitted = state.restore(bounds)  # a new filter result: fit it, once
    assert fitted["fit"] is True and "center" not in fitted and fitted["hidden"] == ["cadastre", "zones"]
    assert state.restore(bounds)["fit"] is False  # the same result again (a click, a panel): keep the view
    assert state.restore([[37.40, 121.20], [37.42, 121.22]])["fit"] is True
    assert state.restore(None)["fit"] is False  # the filter cleared: stay where the planner is
    assert state.restore(bounds)["fit"] is True  # the same filter once more: fitted again
    # the report of a map that was switched back on
    assert state.read(_report({"zones": True, "villages": True, "cadastre": True}, zoom=12.5))
    assert state.hidden == frozenset() and state.zoom == 12.5


def test_the_map_reports_its_groups_and_restores_them_outside_its_script(tiny_store):
    from streamlit_folium import _get_feature_group_string, _get_map_string

    m = build_map(tiny_store.context(), tiny_store.parcels(), tiny_store.catalog)
    m.get_root().render()
    script = _get_map_string(m)
    track = next(line for line in script.splitlines() if "RenewalAtlas.track(" in line)
    assert '"zones": feature_group_div_' in track and '"villages": feature_group_div_' in track
    state = MapState(hidden=frozenset({"zones"}))
    fg = _get_feature_group_string(restore_group(state.restore(None)), m, 1)
    options = json.loads(fg.split("RenewalAtlas.restore(map_div, ", 1)[1].split(");", 1)[0])
    assert options == {"hidden": ["zones"], "fit": False, "token": state.token}
    # the map's own script does not depend on the state: streamlit-folium keeps the same map
    m2 = build_map(tiny_store.context(), tiny_store.parcels(), tiny_store.catalog)
    m2.get_root().render()
    assert _get_map_string(m2) == script
    assert "collapsed: true" in script.replace('"collapsed": true', "collapsed: true")  # the switcher starts folded


# ------------------------------------------------------------------ forms the panel shows
def test_move_needs_a_share_only_at_a_gate_and_a_reason_only_going_back_or_skipping(catalog):
    assert catalog.move_needs("village", "plan", "vote")["share"] == 0.8
    assert catalog.move_needs("village", "plan", "vote")["correction"] is False
    assert catalog.move_needs("village", "baseline", "plan") == {
        "share": None, "correction": False, "gate": catalog.pipeline_for("village").stage("plan").gate("zh"),
        "evidence": None}
    assert catalog.move_needs("village", "plan", "vote")["evidence"] == "document"
    back = catalog.move_needs("village", "signing", "partner")
    assert back["correction"] is True and back["share"] is None  # a correction passes no gate
    assert catalog.move_needs("village", "survey", "vote")["correction"] is True  # a skip
    assert catalog.move_needs("village", None, "survey")["correction"] is False


def test_store_says_who_may_edit_with_the_rule_its_writes_use(demo_where):
    from gis.base.errors import NotFoundError, PermissionRefused
    from gis.store.open import open_store_at

    s = open_store_at(demo_where)
    north = s.parcels(kind="village", zone="north", geometry=False)["code"].iloc[0]
    south = s.parcels(kind="village", zone="south", geometry=False)["code"].iloc[0]
    assert s.may_edit(north, "editor_north") and s.may_edit(south, "admin")
    assert not s.may_edit(south, "editor_north") and not s.may_edit(north, "viewer")
    assert not s.may_edit(north, None) and not s.may_edit(north, "nobody")
    with pytest.raises(PermissionRefused):
        s.set_blocked(south, True, "权属争议", "editor_north")
    with pytest.raises(NotFoundError):
        s.may_edit("NO-SUCH", "admin")
    assert s.display_names()["editor_north"] != "editor_north"


def test_a_store_without_accounts_lets_anyone_edit(tiny_store):
    assert tiny_store.may_edit("V01-001", None) and tiny_store.may_edit("V01-001", "张伟")
    assert tiny_store.display_names() == {}


# ------------------------------------------------------------------ tables as planners read them
def test_history_table_is_newest_first_with_every_column_and_blanks(catalog):
    events = [
        StageEvent(id=1, parcel="V01-003", action="advance", from_stage=None, to_stage="survey", event_date="2024-03-01",
                   recorded_at="2024-03-01T01:00:00+00:00", recorded_by="editor_north", unit="u", note=None,
                   reason=None, share=None),
        StageEvent(id=2, parcel="V01-003", action="correction", from_stage="signing", to_stage="partner",
                   event_date="2025-06-02", recorded_at="2025-06-02T17:30:00+00:00", recorded_by="张伟", unit="u",
                   note="退回", reason="录入有误", share=None),
        StageEvent(id=3, parcel="V01-003", action="block", from_stage="partner", to_stage="partner",
                   event_date="2025-06-03", recorded_at="2025-06-03T02:00:00+00:00", recorded_by="张伟", unit="u",
                   note=None, reason="权属争议", share=None),
    ]
    df = history_table(events, catalog, "village", "zh", {"editor_north": "北部编辑"})
    assert list(df.columns) == list(HISTORY_COLUMNS)
    assert list(df["event_date"]) == ["2025-06-03", "2025-06-02", "2024-03-01"]
    assert list(df["stage_change"]) == ["选择合作企业", "签约 → 选择合作企业", "未启动 → 意愿征询"]
    assert list(df["recorded_by"]) == ["张伟", "张伟", "北部编辑"]
    assert df["recorded_at"].iloc[1] == "2025-06-03 01:30"  # China Standard Time
    assert df["reason"].iloc[0] == "权属争议" and df["note"].iloc[2] == ""  # blank, never None
    assert not df.isna().any().any() and "None" not in df.to_string()
    assert history_labels("zh")["recorded_by"] == "经办人" and history_labels("en")["recorded_at"] == "Recorded at"
    assert history_table([], catalog, "village").empty


def test_audit_table_speaks_the_language_and_shows_blanks():
    raw = pd.DataFrame([
        {"id": 2, "at": "2026-11-30T20:00:00+00:00", "actor": "editor_north", "action": "advance", "target": "V03-001",
         "outcome": "refused", "before": None, "after": None, "detail": "not allowed"},
        {"id": 1, "at": "2026-11-30T01:00:00+00:00", "actor": "admin", "action": "user_add", "target": "zhangwei",
         "outcome": "ok", "before": None, "after": json.dumps({"role": "editor", "display_name": None}), "detail": None},
    ])
    df = audit_table(raw, "zh", {"editor_north": "北部编辑"})
    assert list(df["action"]) == ["推进", "新增用户"] and list(df["outcome"]) == ["被拒绝", "成功"]
    assert list(df["at"]) == ["2026-12-01 04:00", "2026-11-30 09:00"] and df["actor"].iloc[0] == "北部编辑"
    assert df["after"].iloc[1] == "role=editor; display_name=" and df["detail"].iloc[1] == ""
    assert not df.isna().any().any()
    assert audit_labels("zh")["outcome"] == "结果" and audit_labels("en")["actor"] == "User"
    assert audit_table(raw, "en")["outcome"].tolist() == ["refused", "done"]


def test_point_in_zone_join_names_the_zone_and_village(tiny_store):
    ctx = tiny_store.context()
    inside = shapely.box(X0 + 0.0002, Y0 + 0.0002, X0 + 0.0008, Y0 + 0.0008)
    assert containing_names(inside, ctx) == ["南部", "<b>东岙村</b>"]
    assert containing_names(inside, ctx, lang="en") == ["South", "Dong'ao"]
    outside = shapely.box(X0 + 0.015, Y0 + 0.015, X0 + 0.016, Y0 + 0.016)
    assert containing_names(outside, ctx) == ["北部", ""]


def test_crs_labels_name_the_gauss_krueger_zone():
    assert crs_label(4528) == "EPSG:4528 CGCS2000 3度带高斯-克吕格 第40带（带号前缀）"
    assert crs_label(4549, "en") == "EPSG:4549 CGCS2000 3° GK CM 120°E"
    assert crs_label(4490) == "EPSG:4490 CGCS2000" and crs_label(4326, "en") == "EPSG:4326 WGS 84"


# ------------------------------------------------------------------ kinds on import
def _geojson(features) -> bytes:
    return json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": p, "geometry": shapely.geometry.mapping(g)} for p, g in features]},
        ensure_ascii=False).encode("utf-8")


def test_import_accepts_the_maps_layer_name_as_a_kind_and_lists_labels(tiny_store):
    def lot(i):
        return shapely.box(X0 + 0.0001 + i * 0.001, Y0 + 0.004, X0 + 0.0009 + i * 0.001, Y0 + 0.0048)

    feats = [({"code": "L-1", "类型": "重点片区和地标"}, lot(0)), ({"code": "L-2", "类型": "shop"}, lot(1))]
    with stage_files([("k.geojson", _geojson(feats))]) as up:
        plan = prepare_import(tiny_store, up, ImportOptions())
        assert dict(zip(plan.parcels["code"], plan.parcels["kind"])) == {"L-1": "landmark"}
        reason = plan.report["rejected"][0]["reason"]
        assert "landmark（重点片区/地标）" in reason and "village（旧村改造地块）" in reason
        by_name = prepare_import(tiny_store, up, ImportOptions(kind="重点片区和地标"))
        assert "L-2" not in set(by_name.parcels["code"])  # the file's own kind column still decides
    with stage_files([("n.geojson", _geojson([({"code": "L-3"}, lot(2))]))]) as up:
        plan = prepare_import(tiny_store, up, ImportOptions(kind="重点片区和地标"))
        assert list(plan.parcels["kind"]) == ["landmark"]


# ------------------------------------------------------------------ names and the board
def test_atlas_file_names_say_what_the_atlas_holds(demo_where):
    import datetime as dt

    from gis.printing import briefing
    from gis.store.open import open_store_at

    s = open_store_at(demo_where)
    day = dt.date(2026, 12, 1)
    assert briefing.atlas_filename(briefing.select_villages(s), day) == "旧村改造图集_全部村_2026-12-01.pdf"
    assert briefing.atlas_filename(briefing.select_villages(s, zone="north"), day, "pdf", "en") == \
        "village_atlas_North_2026-12-01.pdf"
    assert briefing.atlas_filename(briefing.select_parcels(s, village="V07"), day) == "地块图集_V07_2026-12-01.pdf"
    assert briefing.atlas_filename(briefing.select_parcels(s, kind="park"), day, "zip") == \
        "地块图集_产业园地块_2026-12-01.zip"
    assert briefing.atlas_filename(briefing.select_parcels(s), day) == "地块图集_全部地块_2026-12-01.pdf"
    name = briefing.atlas_filename(briefing.select_parcels(s, search="V07-0"), day)
    assert name == "地块图集_V07-0_2026-12-01.pdf"  # no quotes or slashes in a file name


def test_board_rows_fit_the_board_in_both_languages(demo_where):
    from gis.model.board import BOARD_COLUMNS, board_rows, village_progress
    from gis.store.open import open_store_at

    s = open_store_at(demo_where)
    board = village_progress(s.parcels(kind="village", geometry=False), s.layer("villages"), s.events(), s.catalog)
    zones = {c: r["name"] for c, r in s.attributes("zones").items()}
    rows = board_rows(board, zones, "zh")
    assert list(rows.columns) == list(BOARD_COLUMNS) and len(rows) == 30
    assert set(rows["zone"]) <= set(zones.values()) and rows["cleared_share"].between(0, 100).all()
    assert set(board_rows(board, zones, "en")["status"]) <= {"Completed", "In progress", "Not started"}
    assert sum(BOARD_COLUMNS.values()) <= 900  # beside the sidebar on a 1,400 px screen


# ------------------------------------------------------------------ a filter on the map the browser holds
def _map_args(at) -> tuple[str, dict]:
    """The map component's own script and the filter its feature groups send (streamlit-folium's args)."""
    args = json.loads(at.get("component_instance")[0].proto.json_args)
    text = args["feature_group"].split("RenewalAtlas.filter(map_div, ", 1)[1].split(");", 1)[0]
    return args["script"], json.loads(text)


def test_the_map_page_sends_a_filter_to_the_map_the_browser_holds(make_app):
    """Issue 19: a filter leaves the map's script as it was (streamlit-folium keeps the map, its layer file
    and the view) and sends the result and its bounds in a feature group."""
    from gis.store.open import open_store_at

    at = make_app("viewer")
    at.run()
    assert not at.exception, at.exception
    script, first = _map_args(at)
    assert first["codes"] is None and first["bounds"] is None and first["token"]
    code = open_store_at(at.store_where).parcels(kind="village", geometry=False)["code"].iloc[0]
    next(b for b in at.sidebar.text_input if b.label == "搜索名称或编号").set_value(code).run()
    assert not at.exception, at.exception
    again, filtered = _map_args(at)
    assert again == script
    assert filtered["codes"] == [code] and filtered["key"] and filtered["token"] == first["token"]
    (s, w), (n, e) = filtered["bounds"]
    assert s < n and w < e and n - s < 0.01  # one parcel's bounds, not the district's
    at.run()  # a search reruns the map's fragment only; the next whole run draws the sidebar again
    next(b for b in at.sidebar.text_input if b.label == "搜索名称或编号").set_value("").run()
    assert _map_args(at) == (script, first)
