"""The replay on arrays (gis/model/eventlog.py, Replay) and the store's quick as-of (Store.stage_state), on both
back ends: the same answer as the reference replay on the event table (pandas), corrections, blocks and a
store older than its history included."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from gis.base import clock
from gis.model.eventlog import NO_DAY, EventLog, day_numbers
from gis.model.timeline import BLOCK_ACTIONS, Moment, effective_stage_events, kinds_of, parse_as_recorded

UTC = dt.timezone.utc


def reference(parcels: pd.DataFrame, events: pd.DataFrame, catalog, day: dt.date) -> dict:
    """The state as of ``day`` the slow way: the standing entries (pandas), each parcel's last by date and id."""
    every = effective_stage_events(events, kinds_of(parcels), catalog)
    d = day.isoformat()
    ev = every[every["effective_date"] <= d].sort_values(["parcel", "effective_date", "id"])
    last = ev.drop_duplicates("parcel", keep="last").set_index("parcel")
    blocks = events[events["action"].isin(BLOCK_ACTIONS)]
    lastb = (blocks[blocks["event_date"].astype(str).str[:10] <= d].sort_values(["parcel", "event_date", "id"])
             .drop_duplicates("parcel", keep="last").set_index("parcel"))
    out = {}
    for r in parcels.itertuples():
        if r.code in last.index:
            stage, date = last.loc[r.code, "to_stage"], last.loc[r.code, "effective_date"]
        elif r.code not in set(every["parcel"]) and isinstance(r.stage, str) and (r.stage_date or "9") <= d:
            stage, date = r.stage, r.stage_date
        else:
            stage, date = None, None
        if r.code in lastb.index:
            blocked = lastb.loc[r.code, "action"] == "block"
        else:
            blocked = r.code not in set(blocks["parcel"]) and bool(r.blocked)
        out[r.code] = (None if stage == "not_started" else stage, date if stage else None, int(blocked))
    return out


@pytest.fixture
def at(monkeypatch):
    def move(stamp: str):
        monkeypatch.setattr(clock, "utcnow", lambda: dt.datetime.fromisoformat(stamp).replace(tzinfo=UTC))
    return move


def _history(store, at) -> None:
    """Advances, two corrections on one parcel (the second voiding what the first left), a backdated entry,
    blocks and unblocks; V01-003 keeps a stage with no entry of it (older than its history)."""
    steps = [
        ("2024-04-01T02:00", "advance", "V01-002", "listed", "2024-04-01", None),
        ("2024-05-01T02:00", "advance", "V01-002", "baseline", "2024-05-01", None),
        ("2024-06-01T02:00", "advance", "V01-002", "plan", "2024-06-01", None),
        ("2024-06-10T02:00", "correction", "V01-002", "baseline", "2024-06-10", "方案编制录入有误"),
        ("2024-07-01T02:00", "advance", "V01-002", "plan", "2024-07-01", None),
        ("2024-08-01T02:00", "correction", "V01-002", "listed", "2024-08-01", "基础调查需重做"),
        ("2024-08-05T02:00", "advance", "V01-001", "survey", "2024-03-15", None),  # recorded late
        ("2024-08-06T02:00", "block", "V01-001", None, "2024-08-06", "权属争议"),
        ("2024-09-01T02:00", "unblock", "V01-001", None, "2024-09-01", "已调解"),
        ("2024-09-02T02:00", "block", "V01-002", None, "2024-09-02", "个别户未签约"),
    ]
    for stamp, action, code, stage, day, why in steps:
        at(stamp)
        today = dt.date.fromisoformat(stamp[:10])
        if action == "advance":
            store.advance(code, stage, day, "王芳", today=today)
        elif action == "correction":
            store.advance(code, stage, day, "王芳", correction=why, today=today)
        else:
            store.set_blocked(code, action == "block", why, "王芳", date=day, today=today)


DAYS = ["2024-03-01", "2024-03-20", "2024-04-15", "2024-05-20", "2024-06-05", "2024-06-20", "2024-07-15",
        "2024-08-03", "2024-08-20", "2024-09-15", "2025-06-01", "2026-01-01"]


def test_stage_state_is_the_reference_replay_at_every_date(tiny_store, at):
    _history(tiny_store, at)
    parcels, events = tiny_store.parcels(geometry=False), tiny_store.events()
    for day in map(dt.date.fromisoformat, DAYS):
        got = {r.code: (r.stage, r.stage_date, int(r.blocked))
               for r in tiny_store.stage_state(Moment(as_of=day)).itertuples()}
        assert got == reference(parcels, events, tiny_store.catalog, day), day
    # two corrections: the second voids the first's stage and takes effect from the earliest entry it voids
    state = tiny_store.stage_state(Moment(as_of=dt.date(2024, 8, 20))).set_index("code")
    assert tuple(state.loc["V01-002", ["stage", "stage_date"]]) == ("listed", "2024-05-01")
    mid = tiny_store.stage_state(Moment(as_of=dt.date(2024, 6, 5))).set_index("code")
    assert tuple(mid.loc["V01-002", ["stage", "stage_date"]]) == ("listed", "2024-05-01")
    # as recorded before the second: the first correction alone, in effect from the entry it voided
    first = Moment(as_of=dt.date(2024, 6, 5), as_recorded=parse_as_recorded("2024-06-30"))
    assert tuple(tiny_store.stage_state(first).set_index("code").loc["V01-002", ["stage", "stage_date"]]) \
        == ("baseline", "2024-06-01")
    assert state.loc["V01-001", "blocked"] == 1 and state.loc["V01-001", "blocked_reason"] == "权属争议"
    assert state.loc["V01-003", "stage"] is None  # its stage dates from 2025-06-01


def test_as_recorded_on_arrays_sees_only_what_was_recorded(tiny_store, at):
    _history(tiny_store, at)
    before_second = Moment(as_of=dt.date(2024, 7, 15), as_recorded=parse_as_recorded("2024-07-20"))
    state = tiny_store.stage_state(before_second).set_index("code")
    assert state.loc["V01-002", "stage"] == "plan"  # the second correction was not recorded yet
    late = Moment(as_of=dt.date(2024, 3, 20), as_recorded=parse_as_recorded("2024-08-01"))
    assert tiny_store.stage_state(late).set_index("code").loc["V01-001", "stage"] is None  # entered 5 Aug
    assert tiny_store.stage_state(Moment(as_of=dt.date(2024, 3, 20))).set_index("code").loc["V01-001", "stage"] \
        == "survey"


def test_event_log_reads_the_columns_as_arrays(tiny_store, at):
    _history(tiny_store, at)
    log = tiny_store.event_log()
    events = tiny_store.events()
    assert list(log.id) == list(events["id"]) and len(log) == len(events)
    assert list(log.parcels[log.parcel]) == list(events["parcel"])
    stages = np.append(log.stages, None)[log.stage]
    assert list(stages) == [s if isinstance(s, str) else None for s in events["to_stage"]]
    assert log.recorded_at is None and tiny_store.event_log(recorded=True).recorded_at is not None
    # from the frame as from the store
    again = EventLog.from_frame(events)
    assert list(again.day) == list(log.day) and list(again.parcels[again.parcel]) == list(events["parcel"])


def test_day_numbers_of_text_that_is_no_date():
    days = day_numbers(pa.array(["2024-03-01", None, "bad", "2024-03-02T10:00"], pa.string()))
    assert list(days) == [19783, NO_DAY, NO_DAY, 19784]
