"""The GeoPackage store: reads, validated writes, the event log, reopening."""
from __future__ import annotations

import datetime as dt
import subprocess

import pytest

from gis.base.errors import ConflictError, InputError, NotFoundError, StageTransitionError
from gis.store.store import Store

TODAY = dt.date(2026, 11, 28)


def _snapshot(store):
    """Everything a write could change, read through the back end's own connection."""
    with store._connect() as con:
        return tuple(
            [tuple(r) for r in con.execute(sql).fetchall()]
            for sql in ("SELECT code, stage, stage_date, blocked, blocked_reason, note, version, updated_by"
                        " FROM parcels ORDER BY code",
                        "SELECT id, parcel, action, to_stage FROM stage_events ORDER BY id",
                        "SELECT key, value FROM meta ORDER BY key"))


def test_parcel_describes_units_and_next_stage(any_store):
    p = any_store.parcel("V01-003")
    assert p["stage"] == "signing" and p["stage_label"] == "签约"
    assert p["next_stage"] == "demolition" and p["next_stage_label"] == "拆除"
    assert p["area_mu"] == pytest.approx(p["area_m2"] / (10000 / 15), abs=0.01)
    assert p["village_name"] == "<b>东岙村</b>"
    assert p["blocked"] is True and p["blocked_reason"] == "个别户未签约"
    assert any_store.parcel("V01-001")["stage"] is None
    assert any_store.parcel("V01-001")["next_stage"] == "survey"
    assert any_store.parcel("V01-003", "en")["stage_label"] == "Agreements signed"


def test_filters(any_store):
    assert len(any_store.parcels(kind="village")) == 3
    assert list(any_store.parcels(zone="北部")["code"]) == ["MIN-01"]
    assert len(any_store.parcels(village="<b>东岙村</b>")) == 3
    assert list(any_store.parcels(stage="not_started")["code"]) == ["V01-001", "MIN-01"]
    assert list(any_store.parcels(search="hsr")["code"]) == ["HSR-001"]
    assert list(any_store.parcels(search="2号")["code"]) == ["V01-002"]
    assert list(any_store.parcels(blocked=True)["code"]) == ["V01-003"]
    with pytest.raises(NotFoundError):
        any_store.parcels(village="不存在村")
    with pytest.raises(StageTransitionError):
        any_store.parcels(stage="nonsense")


def test_advance_appends_an_event_and_survives_reopen(any_store, catalog):
    v0 = any_store.data_version()
    ev = any_store.advance("V01-002", "listed", "2024-03-20", "王芳", note="已公示7天", today=TODAY)
    assert ev.from_stage == "survey" and ev.to_stage == "listed" and ev.action == "advance"
    reopened = type(any_store)(any_store.path or any_store.url, catalog)
    p = reopened.parcel("V01-002")
    assert p["stage"] == "listed" and p["stage_date"] == "2024-03-20"
    assert p["updated_by"] == "王芳" and p["version"] == 2 and p["note"] == "已公示7天"
    hist = reopened.history("V01-002")
    assert [e.to_stage for e in hist] == ["survey", "listed"]
    assert hist[-1].recorded_by == "王芳" and hist[-1].note == "已公示7天"
    assert reopened.data_version() == v0 + 1


@pytest.mark.parametrize("code,target,date,kwargs,error", [
    ("V01-002", "plan", "2024-04-01", {}, StageTransitionError),         # skip
    ("V01-003", "survey", "2025-07-01", {}, StageTransitionError),       # backwards, no reason
    ("V01-002", "listed", "2024-03-03", {}, StageTransitionError),       # 7-day notice not over
    ("V01-002", "listed", "2099-01-01", {}, StageTransitionError),       # future
    ("V01-002", "listed", "2024-13-01", {}, InputError),                 # not a date
    ("V01-002", "layout", "2024-04-01", {}, StageTransitionError),       # park stage on a village parcel
    ("NOPE-1", "survey", "2024-04-01", {}, NotFoundError),
    ("V01-002", "listed", "2024-04-01", {"by": " "}, InputError),         # nobody
    ("V01-002", "listed", "2024-04-01", {"expected_version": 7}, ConflictError),
])
def test_bad_advance_writes_nothing(any_store, code, target, date, kwargs, error):
    before = _snapshot(any_store)
    kwargs = dict(kwargs)  # the parameter dict is shared between back ends
    by = kwargs.pop("by", "王芳")
    with pytest.raises(error):
        any_store.advance(code, target, date, by, today=TODAY, **kwargs)
    assert _snapshot(any_store) == before


def test_correction_goes_back_and_is_recorded(any_store):
    ev = any_store.advance("V01-003", "partner", "2025-07-01", "李娜", correction="签约录入有误", today=TODAY)
    assert ev.action == "correction" and ev.reason == "签约录入有误"
    assert any_store.parcel("V01-003")["stage"] == "partner"


def test_block_and_unblock(any_store):
    any_store.set_blocked("V01-002", True, "权属争议", "张伟", "2025-01-01", today=TODAY)
    p = any_store.parcel("V01-002")
    assert p["blocked"] and p["blocked_reason"] == "权属争议"
    with pytest.raises(StageTransitionError):
        any_store.set_blocked("V01-002", True, "again", "张伟", today=TODAY)
    with pytest.raises(StageTransitionError):
        any_store.set_blocked("V01-001", True, "", "张伟", today=TODAY)
    any_store.set_blocked("V01-002", False, "", "张伟", "2025-02-01", today=TODAY)
    assert not any_store.parcel("V01-002")["blocked"]
    assert [e.action for e in any_store.history("V01-002")][-2:] == ["block", "unblock"]


def test_optimistic_version_check(any_store):
    v = any_store.parcel("V01-002")["version"]
    any_store.advance("V01-002", "listed", "2024-04-01", "甲", expected_version=v, today=TODAY)
    with pytest.raises(ConflictError) as exc:
        any_store.advance("V01-002", "baseline", "2024-04-02", "乙", expected_version=v, today=TODAY)
    assert "甲" in exc.value.message("zh")


def test_store_still_opens_in_gdal_after_updates(tiny_store):
    """QGIS and GDAL's tools open the store itself: the GeoPackage file, or the PostGIS database."""
    tiny_store.advance("V01-002", "listed", "2024-04-01", "甲", today=TODAY)
    source = str(tiny_store.path) if tiny_store.path else "PG:" + tiny_store.url
    out = subprocess.run(["ogrinfo", "-ro", "-so", "-q", "--config", "PG_LIST_ALL_TABLES", "YES", source],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    for layer in ("parcels", "zones", "villages", "stage_events", "meta"):
        assert layer in out.stdout
    out = subprocess.run(["ogrinfo", "-ro", "-q", source, "-sql",
                          "SELECT stage FROM parcels WHERE code = 'V01-002'"], capture_output=True, text=True)
    assert "listed" in out.stdout


def test_missing_store_is_a_clear_error(tmp_path, catalog):
    with pytest.raises(NotFoundError) as exc:
        Store(tmp_path / "none.gpkg", catalog)
    assert "不存在" in exc.value.message("zh")


def test_not_a_store_is_a_clear_error(tmp_path, catalog):
    bad = tmp_path / "bad.gpkg"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(InputError):
        Store(bad, catalog)
