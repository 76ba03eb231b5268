"""The district dashboard (总览): figures from a store on both back ends, the pure function, the CLI."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from gis.base.units import M2_PER_MU
from gis.model.dashboard import dashboard_of, district_dashboard, key_stage
from tests.test_cli import run


def test_dashboard_of_the_tiny_store(any_store):
    d = dashboard_of(any_store)
    parcels = any_store.parcels(geometry=False)
    assert d["totals"]["parcels"] == 5 and d["totals"]["blocked"] == 1
    assert d["totals"]["area_mu"] == pytest.approx(parcels["area_m2"].sum() / M2_PER_MU, abs=0.1)
    assert [(r["label"], r["parcels"]) for r in d["by_zone"]] == [("北部", 1), ("南部", 4)]
    assert [(r["key"], r["parcels"]) for r in d["by_kind"]] == [("village", 3), ("park", 1), ("ministry", 1)]
    phases = {r["key"]: r["parcels"] for r in d["by_phase"]}
    assert phases["not_started"] == 2 and phases["prep"] == 2 and phases["acquisition"] == 1
    assert sum(phases.values()) == 5 and all(r["color"].startswith("#") for r in d["by_phase"])
    progress = {r["kind"]: r for r in d["progress"]}
    assert progress["village"]["key_stage"] == "clearance" and progress["village"]["key_stage_label"] == "清表"
    assert progress["ministry"]["key_stage_label"] == "收储"
    assert progress["village"]["past_key_share"] == 0.0 and progress["village"]["blocked"] == 1
    assert d["blocked_by_reason"] == [{"reason": "个别户未签约", "parcels": 1,
                                       "area_mu": round(float(parcels.loc[parcels["code"] == "V01-003", "area_m2"].iloc[0]) / M2_PER_MU, 1)}]
    latest = d["latest"]
    assert [e["parcel"] for e in latest] == ["V01-003", "V01-002", "HSR-001"]  # newest recorded first
    assert latest[0]["recorded_at"] == "2025-06-01 17:00"  # Beijing time of 09:00 UTC
    assert latest[0]["by"] == "李娜" and latest[0]["to_label"] == "签约" and latest[0]["action_label"] == "推进"
    json.dumps(d, ensure_ascii=False)  # JSON-ready as it is


def test_latest_changes_follow_a_write_and_show_display_names(any_store):
    any_store.add_user("zhang", "a-long-password", "admin", by="setup", display_name="张伟（测试）")
    any_store.advance("V01-002", "listed", "2024-04-01", "zhang", note="公示期满")
    any_store.set_blocked("V01-001", True, "权属争议", "zhang", date="2024-04-02")
    d = dashboard_of(any_store, latest=2)
    assert [(e["parcel"], e["action"]) for e in d["latest"]] == [("V01-001", "block"), ("V01-002", "advance")]
    assert {e["by"] for e in d["latest"]} == {"张伟（测试）"}
    assert d["latest"][1]["from_label"] == "意愿征询" and d["latest"][1]["to_label"] == "入库（标图建库）"
    assert d["totals"]["blocked"] == 2
    assert sorted(r["reason"] for r in d["blocked_by_reason"]) == ["个别户未签约", "权属争议"]
    en = dashboard_of(any_store, lang="en")
    assert en["by_zone"][0]["label"] == "North" and en["progress"][0]["key_stage_label"] == "Site clearance"


def test_progress_is_the_share_of_area_past_the_key_stage(catalog):
    parcels = pd.DataFrame({
        "code": ["P1", "P2", "P3", "P4"], "name": ["甲", "乙", "丙", "丁"], "kind": ["park"] * 4,
        "zone": ["south"] * 4, "stage": ["acquisition", "clearance", "ready", "production"],
        "blocked": [1, 0, 0, 0], "blocked_reason": [None, None, None, None],
        "area_m2": [4000.0, 1000.0, 2000.0, 3000.0],
    })
    d = district_dashboard(parcels, pd.DataFrame(), catalog)
    (park,) = d["progress"]
    assert key_stage(catalog, "park") == "clearance"
    assert park["past_key_parcels"] == 3 and park["past_key_share"] == 0.6
    assert park["past_key_mu"] == round(6000 / M2_PER_MU, 1)
    assert park["completed_share"] == 0.3 and park["started_share"] == 1.0
    assert d["blocked_by_reason"][0]["reason"] == "未注明原因"  # a blocked parcel without a reason is counted too
    assert d["latest"] == []


def test_renewal_dashboard_json(tiny_store):
    out = run("dashboard", "--json", "--latest", "2", store=tiny_store.path or tiny_store.url)
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    assert d["totals"]["parcels"] == 5 and len(d["latest"]) == 2
    assert {r["kind"] for r in d["progress"]} == {"village", "park", "ministry"}
    text = run("dashboard", store=tiny_store.path or tiny_store.url)
    assert text.returncode == 0 and "5" in text.stdout and "清表" in text.stdout
