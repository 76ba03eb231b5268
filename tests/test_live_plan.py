"""The plan evaluation kept in memory (gis/store/live.py LivePlan): patched after writes, it equals
the store's own full evaluation, on both back ends; another server's writes are seen."""
from __future__ import annotations

import random

import pandas as pd

from gis.base.clock import office_today
from gis.base.errors import RenewalError
from gis.store import open_store_at
from gis.store.live import LivePlan


def _same(live: LivePlan, store) -> None:
    got = live.current()
    want = store.plan_status(office_today().isoformat())
    pd.testing.assert_frame_equal(got.targets, want.targets)
    pd.testing.assert_frame_equal(got.parcels, want.parcels)


def _writes(store, rng: random.Random, n: int) -> list[str]:
    """``n`` writes on parcels of targeted villages: advances, blocks and unblocks, a correction back."""
    parcels = store.parcels(geometry=False)
    targeted = set(store.plan_targets()["object"])
    pool = parcels[parcels["village"].isin(targeted) | parcels["code"].isin(targeted)]
    done = []
    for _ in range(n):
        row = pool.iloc[rng.randrange(len(pool))]
        p = store.parcel(row["code"])
        pipe = store.catalog.pipeline_for(p["kind"])
        today = office_today()
        choice = rng.random()
        try:
            _write(store, p, pipe, choice, today)
        except RenewalError:  # a gate (evidence, days since the last stage): another parcel
            continue
        done.append(p["code"])
    return done


def _write(store, p, pipe, choice, today) -> None:
    if choice < 0.2:
        store.set_blocked(p["code"], not p["blocked"], "" if p["blocked"] else "权属争议", "admin",
                          expected_version=p["version"], today=today)
    elif choice < 0.3 and p["stage"] in pipe.keys and pipe.index(p["stage"]) > 0:
        back = pipe.keys[pipe.index(p["stage"]) - 1]
        store.advance(p["code"], back, today, "admin", correction="录入有误", expected_version=p["version"],
                      today=today)
    elif p["next_stage"] and not p["blocked"]:
        store.advance(p["code"], p["next_stage"], today, "admin", expected_version=p["version"], today=today,
                      share=0.95)
    else:
        raise RenewalError("error.not_blocked", code=p["code"])  # nothing to do here: another parcel


def test_a_patched_evaluation_equals_a_full_one_after_random_writes(demo_where):
    store = open_store_at(demo_where)
    live = LivePlan(store)
    _same(live, store)
    rng = random.Random(19)
    for round_ in range(4):
        assert _writes(store, rng, 1 + round_ * 3)
        _same(live, store)
    assert live.full_builds == 1 and live.patches == 4  # patched every time, never rebuilt


def test_another_servers_writes_and_new_targets_are_seen(demo_where):
    store, other = open_store_at(demo_where), open_store_at(demo_where)
    live = LivePlan(store)
    before = live.current()
    _writes(other, random.Random(7), 3)
    _same(live, store)
    assert live.full_builds == 1 and live.patches == 1
    assert live.current() is not before
    village = store.parcels(geometry=False)["village"].dropna().iloc[0]
    other.set_target(village, "signing", "2027-06-30", "admin", reason="调度会调整")  # a new target row: all again
    _same(live, store)
    assert live.full_builds == 2


def test_a_parcels_targets_after_writes_need_no_patch_of_the_district(demo_where):
    """A panel's evaluation after a write (``LivePlan.of_parcel``): the parcel's own, village's and site's
    targets as a full evaluation finds them, while the district's evaluation held is not patched (the next
    whole-district question patches it); new targets are seen at once."""
    store = open_store_at(demo_where)
    live = LivePlan(store)
    live.current()
    rng = random.Random(5)
    written = _writes(store, rng, 4)
    assert written
    for code in dict.fromkeys(written):
        p = store.parcel(code)
        keys = [("parcel", code)] + [(k, p.get(f)) for k, f in (("village", "village"), ("site", "park")) if p.get(f)]
        got = live.of_parcel(p).targets_of(keys).reset_index(drop=True)
        want = store.plan_status(office_today().isoformat()).targets_of(keys).reset_index(drop=True)
        assert len(want) and len(got) == len(want)
        cols = ["id", "object", "stage", "due_date", "status", "days_late", "reached_on", "parcels", "parcels_done"]
        pd.testing.assert_frame_equal(got[cols], want[cols], check_dtype=False)
        assert store.parcel_plan(code, evaluation=live.of_parcel(p), parcel=p) == store.parcel_plan(code)
    assert live.patches == 0 and live.full_builds == 1  # the district's held as it was
    _same(live, store)  # and patched when asked for
    assert live.patches == 1
    code = next(c for c in written if store.parcel(c).get("village"))
    store.set_target(store.parcel(code)["village"], "demolition", "2027-09-30", "admin", reason="调度会调整")
    p = store.parcel(code)
    assert any(r["stage"] == "demolition" and r["due"] == "2027-09-30"
               for r in store.parcel_plan(p["code"], evaluation=live.of_parcel(p), parcel=p))
