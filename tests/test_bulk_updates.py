"""Bulk stage updates: many parcels in one transaction, each checked like a single update, all or nothing."""
from __future__ import annotations

import json

import pytest

from gis.base.errors import BulkRefused, InputError, StageTransitionError
from tests.test_cli import run


def _state(store):
    p = store.parcels(geometry=False).set_index("code")[["stage", "stage_date", "blocked", "version"]]
    p = p.astype(object).where(p.notna(), None)
    return p.to_dict("index"), len(store.events()), store.data_version()


def test_advance_many_writes_one_event_per_parcel(any_store):
    any_store.advance("V01-001", "survey", "2024-03-01", "王芳")
    before = len(any_store.events())
    events = any_store.advance_many(["V01-002", "V01-001"], "listed", "2024-04-01", "王芳", note="公示期满")
    assert [(e.parcel, e.from_stage, e.to_stage, e.action) for e in events] == [
        ("V01-001", "survey", "listed", "advance"), ("V01-002", "survey", "listed", "advance")]
    assert len(any_store.events()) == before + 2
    for code in ("V01-001", "V01-002"):
        p = any_store.parcel(code)
        assert p["stage"] == "listed" and p["stage_date"] == "2024-04-01" and p["updated_by"] == "王芳"
        assert any_store.history(code)[-1].note == "公示期满"


def test_one_failing_parcel_writes_nothing_and_every_failure_is_named(any_store):
    before = _state(any_store)
    with pytest.raises(BulkRefused) as e:
        # V01-001 could go to survey; V01-002 is there already, V01-003 would go back, NOPE does not exist
        any_store.advance_many(["V01-001", "V01-002", "V01-003", "NOPE"], "survey", "2024-04-01", "王芳")
    assert e.value.codes == ["NOPE", "V01-002", "V01-003"]
    assert e.value.exit_code == 2
    msg = e.value.message("zh")
    assert "V01-002" in msg and "V01-003" in msg and "NOPE" in msg and "全部未写入" in msg
    assert "已处于阶段" in msg and "退回" in msg
    assert "nothing was written" in e.value.message("en")
    assert _state(any_store) == before


def test_gates_and_dates_are_checked_for_every_parcel(any_store):
    any_store.advance("V01-001", "survey", "2024-03-25", "王芳")
    with pytest.raises(BulkRefused) as e:  # the 7-day notice: V01-001 surveyed on 25 March, V01-002 on 1 March
        any_store.advance_many(["V01-001", "V01-002"], "listed", "2024-03-28", "王芳")
    assert e.value.codes == ["V01-001"] and "7" in e.value.message("zh")
    with pytest.raises(BulkRefused):
        any_store.advance_many(["V01-002"], "listed", "2099-01-01", "王芳")  # future
    assert any_store.parcel("V01-002")["stage"] == "survey"


def test_permissions_refuse_the_whole_update_and_are_audited(any_store):
    any_store.add_user("admin", "a-long-password", "admin", by="setup")
    any_store.add_user("bei", "a-long-password", "editor", by="admin")
    any_store.assign("bei", "zone", "north", by="admin")
    before = _state(any_store)
    with pytest.raises(BulkRefused) as e:  # MIN-01 is in the north; V01-001 in the south
        any_store.advance_many(["MIN-01", "V01-001"], "tenure_check", "2024-04-01", "bei")
    assert e.value.exit_code == 3 and e.value.codes == ["V01-001"]
    assert _state(any_store) == before
    refused = any_store.audit(outcome="refused", actor="bei")
    assert list(refused["target"]) == ["V01-001"]
    ev = any_store.advance_many(["MIN-01"], "tenure_check", "2024-04-01", "bei")
    assert ev[0].recorded_by == "bei"


def test_versions_catch_a_parcel_changed_since_it_was_read(any_store):
    v = {c: int(r["version"]) for c, r in _state(any_store)[0].items()}
    any_store.advance("V01-001", "survey", "2024-03-01", "别人")
    with pytest.raises(BulkRefused) as e:
        any_store.set_blocked_many(["V01-001", "V01-002"], True, "资金未到位", "王芳", expected_versions=v)
    assert e.value.exit_code == 4 and e.value.codes == ["V01-001"]
    assert not any_store.parcel("V01-002")["blocked"]


def test_block_and_unblock_many(any_store):
    with pytest.raises(BulkRefused) as e:  # V01-003 is blocked already
        any_store.set_blocked_many(["V01-001", "V01-003"], True, "资金未到位", "王芳", date="2024-04-01")
    assert e.value.codes == ["V01-003"] and not any_store.parcel("V01-001")["blocked"]
    events = any_store.set_blocked_many(["V01-001", "V01-002"], True, "资金未到位", "王芳", date="2024-04-01")
    assert [e.action for e in events] == ["block", "block"]
    assert all(any_store.parcel(c)["blocked_reason"] == "资金未到位" for c in ("V01-001", "V01-002"))
    events = any_store.set_blocked_many(["V01-001", "V01-002", "V01-003"], False, "", "王芳")
    assert [e.action for e in events] == ["unblock"] * 3
    assert not any(any_store.parcel(c)["blocked"] for c in ("V01-001", "V01-002", "V01-003"))
    with pytest.raises(StageTransitionError):
        any_store.set_blocked_many(["V01-001"], True, " ", "王芳")
    with pytest.raises(InputError):
        any_store.set_blocked_many([], True, "原因", "王芳")


# ------------------------------------------------------------------ the command line
@pytest.fixture
def where(tiny_store):
    return tiny_store.path or tiny_store.url


def test_cli_advances_several_codes_or_a_selection(where, tiny_store):
    out = run("advance", "V01-001", "--to", "survey", "--date", "2024-03-01", "--by", "王芳", store=where)
    assert out.returncode == 0 and json.loads(out.stdout)["parcel"]["stage"] == "survey"  # one code: as before
    out = run("advance", "V01-001", "V01-002", "--to", "listed", "--date", "2024-04-01", "--by", "王芳", store=where)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert res["parcels"] == 2 and [e["parcel"] for e in res["events"]] == ["V01-001", "V01-002"]
    out = run("advance", "--village", "V01", "--stage", "listed", "--to", "baseline", "--date", "2024-04-02",
              "--by", "王芳", store=where)
    assert out.returncode == 0, out.stderr
    assert {e["parcel"] for e in json.loads(out.stdout)["events"]} == {"V01-001", "V01-002"}
    out = run("block", "--village", "V01", "--reason", "资金未到位", "--by", "王芳", store=where)
    assert out.returncode == 0, out.stderr  # the village's parcels not yet blocked
    assert {e["parcel"] for e in json.loads(out.stdout)["events"]} == {"V01-001", "V01-002"}


def test_cli_refusal_names_the_parcels_and_writes_nothing(where, tiny_store):
    before = _state(tiny_store)
    out = run("advance", "V01-001", "V01-002", "V01-003", "--to", "survey", "--date", "2024-04-01", "--by", "甲",
              store=where)
    assert out.returncode == 2
    assert "V01-002" in out.stderr and "V01-003" in out.stderr and "nothing was written" in out.stderr
    assert _state(tiny_store) == before
    out = run("advance", "--village", "V01", "--stage", "completed", "--to", "survey", "--by", "甲", store=where)
    assert out.returncode == 2 and "没有选中" in out.stderr
    out = run("advance", "V01-001", "--village", "V01", "--to", "survey", "--by", "甲", store=where)
    assert out.returncode == 2
