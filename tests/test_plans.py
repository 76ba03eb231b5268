"""Plans against the record (issue 15): status computation, the store's targets and baselines,
follow-up orders (督办) and their permissions, on both back ends."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from gis.base.clock import office_today
from gis.base.errors import ConflictError, InputError, NotFoundError, PermissionRefused
from gis.model import plans as pm

AS_OF = dt.date(2026, 6, 1)


# ------------------------------------------------------------------ the pure model
def _parcels(rows):
    cols = ("code", "kind", "zone", "village", "park", "unit", "stage", "stage_date", "blocked", "area_m2")
    return pd.DataFrame([dict(zip(cols, r)) for r in rows])


def _events(rows):
    cols = ("id", "parcel", "action", "from_stage", "to_stage", "event_date")
    return pd.DataFrame([dict(zip(cols, (i + 1, *r))) for i, r in enumerate(rows)], columns=list(cols))


def _targets(rows):
    cols = ("object_type", "object", "stage", "due_date")
    return pd.DataFrame([dict(zip(cols, r), id=i, baseline="annual", unit=None) for i, r in enumerate(rows)])


@pytest.fixture
def village():
    parcels = _parcels([
        ("A-1", "village", "south", "V1", "", "甲街道", "listed", "2026-03-10", 0, 1000.0),
        ("A-2", "village", "south", "V1", "", "甲街道", "survey", "2026-02-01", 0, 3000.0),
        ("P-1", "park", "north", "", "pk", "乙公司", "layout", "2025-01-05", 1, 500.0),
    ])
    events = _events([
        ("A-1", "advance", None, "survey", "2026-02-01"),
        ("A-2", "advance", None, "survey", "2026-02-01"),
        ("A-1", "advance", "survey", "listed", "2026-03-10"),
        ("P-1", "advance", None, "layout", "2025-01-05"),
        ("P-1", "block", "layout", "layout", "2026-01-02"),
    ])
    return parcels, events


def test_each_status_with_its_days(village, catalog):
    parcels, events = village
    t = _targets([
        ("parcel", "A-1", "listed", "2026-03-31"),    # reached 03-10: on time
        ("parcel", "A-1", "survey", "2026-01-15"),    # reached 02-01: 17 days late
        ("parcel", "A-2", "listed", "2026-05-31"),    # not reached, due yesterday: overdue by 1
        ("parcel", "A-2", "baseline", "2026-06-10"),  # 9 days left: due soon
        ("parcel", "A-2", "plan", "2026-09-30"),      # far off: on track
        ("village", "V1", "listed", "2026-12-31"),    # one of two parcels there: not reached
    ])
    ev = pm.evaluate(t, parcels, events, catalog, AS_OF, pm.PlanRules(due_soon_days=14))
    r = ev.targets
    assert list(r["status"]) == ["done", "done_late", "overdue", "due_soon", "on_track", "on_track"]
    assert list(r["days_late"]) == [0, 17, 1, 0, 0, 0]
    assert r.loc[3, "days_left"] == 9
    assert r.loc[0, "reached_on"] == "2026-03-10"
    assert (r.loc[5, "parcels"], r.loc[5, "parcels_done"]) == (2, 1)
    assert r.loc[5, "area_done_m2"] == pytest.approx(1000.0) and r.loc[5, "area_m2"] == pytest.approx(4000.0)
    # a shorter warning window turns "due soon" into "on track"
    assert pm.evaluate(t, parcels, events, catalog, AS_OF, pm.PlanRules(due_soon_days=5)).targets.loc[3, "status"] \
        == "on_track"
    # each parcel takes its worst status; the park parcel has no target but is blocked for 150 days
    status = ev.status_of_parcel()
    assert status == {"A-1": "done_late", "A-2": "overdue", "P-1": "stalled"}


def test_a_village_target_is_met_when_its_last_parcel_arrives(village, catalog):
    parcels, events = village
    parcels = parcels.copy()
    parcels.loc[1, ["stage", "stage_date"]] = ["listed", "2026-04-20"]
    events = pd.concat([events, _events([("A-2", "advance", "survey", "listed", "2026-04-20")]).assign(id=99)])
    t = _targets([("village", "V1", "listed", "2026-04-15"), ("village", "V1", "listed", "2026-04-30")])
    r = pm.evaluate(t, parcels, events, catalog, AS_OF).targets
    assert list(r["status"]) == ["done_late", "done"]
    assert list(r["reached_on"]) == ["2026-04-20", "2026-04-20"] and r.loc[0, "days_late"] == 5


def test_status_as_of_a_past_date_replays_the_log(village, catalog):
    parcels, events = village
    t = _targets([("parcel", "A-1", "listed", "2026-03-31")])
    before = pm.evaluate(t, parcels, events, catalog, dt.date(2026, 3, 1), current=False).targets
    assert before.loc[0, "status"] == "on_track" and before.loc[0, "days_left"] == 30
    late = pm.evaluate(t, parcels, events, catalog, dt.date(2026, 3, 5), current=False,
                       rules=pm.PlanRules(due_soon_days=30)).targets
    assert late.loc[0, "status"] == "due_soon"
    after = pm.evaluate(t, parcels, events, catalog, dt.date(2026, 3, 20), current=False).targets
    assert after.loc[0, "status"] == "done"
    # as of a day before the park parcel was blocked, it was not stalled by its block
    p = pm.evaluate(t, parcels, events, catalog, dt.date(2025, 12, 1), current=False).parcels.set_index("code")
    assert p.loc["P-1", "blocked_days"] == 0 and p.loc["P-1", "stage"] == "layout"


def test_stalled_by_the_stage_norm(catalog):
    norm = catalog.pipeline_for("village").stage("survey").max_days
    assert norm > 0  # realistic defaults in layers/pipelines.toml
    entered = AS_OF - dt.timedelta(days=norm + 1)
    parcels = _parcels([("S-1", "village", "south", "V1", "", "u", "survey", entered.isoformat(), 0, 1.0),
                        ("S-2", "village", "south", "V1", "", "u", "survey", (AS_OF - dt.timedelta(days=norm)).isoformat(),
                         0, 1.0)])
    events = _events([("S-1", "advance", None, "survey", entered.isoformat())])
    p = pm.evaluate(_targets([]), parcels, events, catalog, AS_OF).parcels
    assert list(p["stalled"]) == [True, False] and list(p["stalled_why"]) == ["stage", None]
    assert list(p["days_in_stage"]) == [norm + 1, norm]
    assert list(p["plan_status"]) == ["stalled", "no_plan"]


def test_rollup_counts_per_village_and_unit(village, catalog):
    parcels, events = village
    t = _targets([("parcel", "A-1", "listed", "2026-03-31"), ("parcel", "A-2", "listed", "2026-05-01"),
                  ("site", "pk", "plans_approved", "2026-05-20")])
    ev = pm.evaluate(t, parcels, events, catalog, AS_OF)
    by_unit = pm.rollup(ev.targets, "unit").set_index("unit")
    assert by_unit.loc["甲街道", ["total", "done", "overdue"]].tolist() == [2, 1, 1]
    assert by_unit.loc["乙公司", "overdue"] == 1 and by_unit.loc["甲街道", "max_days_late"] == 31
    assert list(pm.rollup(ev.targets, "zone")["zone"]) == ["south", "north"]  # the most late first


def test_vectorised_status_agrees_with_the_naive_loop(catalog):
    rng = np.random.default_rng(5)
    pipe = catalog.pipeline_for("village")
    rows, evs = [], []
    for i in range(300):
        k = int(rng.integers(-1, len(pipe.keys)))
        day = dt.date(2024, 1, 1)
        prev = None
        for j in range(k + 1):
            day += dt.timedelta(days=int(rng.integers(5, 120)))
            evs.append((f"X-{i}", "advance", prev, pipe.keys[j], day.isoformat()))
            prev = pipe.keys[j]
        rows.append((f"X-{i}", "village", "z", f"V{i % 7}", "", f"u{i % 3}", prev, day.isoformat() if prev else None,
                     0, 100.0))
    parcels, events = _parcels(rows), _events(evs)
    t = _targets([("parcel", f"X-{int(rng.integers(300))}", pipe.keys[int(rng.integers(len(pipe.keys)))],
                   (dt.date(2024, 6, 1) + dt.timedelta(days=int(rng.integers(0, 1200)))).isoformat())
                  for _ in range(400)] + [("village", f"V{v}", pipe.keys[2], "2025-06-30") for v in range(7)])
    rules = pm.PlanRules()
    history = {}
    for e in events.to_dict("records"):
        history.setdefault(e["parcel"], []).append(e)
    precs = {r["code"]: r for r in parcels.to_dict("records")}
    for as_of, current in ((dt.date(2026, 12, 1), True), (dt.date(2025, 3, 1), False)):
        fast = pm.evaluate(t, parcels, events, catalog, as_of, rules, current=current).targets["status"].tolist()
        slow = pm.naive_status(t.to_dict("records"), precs, history, catalog, as_of, rules)
        assert fast == slow
        assert len(set(fast)) >= 4


def test_followup_moves():
    assert pm.followup_next("issued", "reply") == "replied"
    assert pm.followup_next("replied", "return") == "returned"
    assert pm.followup_next("returned", "reply") == "replied"
    assert pm.followup_next("replied", "close") == "closed"
    assert pm.followup_next("closed", "reply") is None
    assert pm.followup_next("issued", "return") is None
    assert pm.followup_overdue("issued", "2026-05-31", AS_OF)
    assert not pm.followup_overdue("replied", "2026-05-31", AS_OF)
    assert not pm.followup_overdue("issued", "2026-06-01", AS_OF)


# ------------------------------------------------------------------ the store (both back ends)
@pytest.fixture
def office(any_store):
    """The tiny store with an admin, a leader, an editor of village V01, an editor of the north and a viewer."""
    s = any_store
    s.add_user("admin", "admin-secret", "admin", "bootstrap")
    s.add_user("leader", "leader-secret", "leader", "admin", display_name="督查室")
    s.add_user("ed_v01", "editor-secret", "editor", "admin")
    s.add_user("ed_north", "editor-secret", "editor", "admin")
    s.add_user("viewer", "viewer-secret", "viewer", "admin")
    s.assign("ed_v01", "village", "V01", "admin")
    s.assign("ed_north", "zone", "北部", "admin")
    return s


def _rows(store):
    with store._connect() as con:
        return tuple(con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                     for t in ("plan_targets", "followups", "followup_events"))


def test_a_target_dated_yesterday_is_overdue_until_the_parcel_arrives(any_store):
    today = office_today()
    yesterday = (today - dt.timedelta(days=1)).isoformat()
    v0 = any_store.data_version()
    row = any_store.set_target("V01-002", "listed", yesterday, "王芳")
    assert row["object_type"] == "parcel" and row["unit"] == "凤凰街道办事处" and row["revision"] == 1
    assert any_store.data_version() > v0
    rows = any_store.status_rows()
    mine = [r for r in rows if r["object"] == "V01-002" and r["status"] != "stalled"]
    assert [(r["stage"], r["status"], r["days_late"]) for r in mine] == [("listed", "overdue", 1)]
    assert any_store.plan_status().status_of_parcel()["V01-002"] == "overdue"
    any_store.advance("V01-002", "listed", today, "王芳", today=today)
    after = [r for r in any_store.status_rows() if r["object"] == "V01-002" and r["status"] != "stalled"]
    assert [(r["status"], r["days_late"], r["reached_on"]) for r in after] == [("done_late", 1, today.isoformat())]


def test_targets_name_a_village_or_site_and_stages_by_label(any_store):
    any_store.set_target("<b>东岙村</b>", "签约", "2026-12-31", "王芳")
    any_store.set_target("hsr_ai", "plans_approved", "2026-10-31", "王芳", baseline="commitment")
    t = any_store.plan_targets().set_index("object")
    assert t.loc["V01", ["object_type", "stage", "baseline"]].tolist() == ["village", "signing", "annual"]
    assert t.loc["hsr_ai", ["object_type", "baseline"]].tolist() == ["site", "commitment"]
    assert {b["name"]: b["label"] for b in any_store.plan_baselines()} == {"annual": "年初目标",
                                                                          "commitment": "承诺书目标"}
    with pytest.raises(NotFoundError):
        any_store.set_target("NOPE", "signing", "2026-12-31", "王芳")
    with pytest.raises(InputError, match="pipeline"):
        any_store.set_target("V01-001", "layout", "2026-12-31", "王芳")  # a park stage on a village parcel
    with pytest.raises(InputError):
        any_store.set_target("V01-001", "survey", "31/12/2026", "王芳")
    assert len(any_store.plan_targets()) == 2


def test_an_adopted_baseline_is_never_overwritten(any_store):
    any_store.set_target("V01-002", "listed", "2026-03-31", "王芳")
    any_store.set_target("V01-002", "listed", "2026-04-30", "王芳")  # a draft may still change freely
    any_store.adopt_baseline("annual", "王芳")
    with pytest.raises(InputError, match="reason"):
        any_store.set_target("V01-002", "listed", "2026-06-30", "王芳")
    with pytest.raises(ConflictError):
        any_store.adopt_baseline("annual", "王芳")
    row = any_store.set_target("V01-002", "listed", "2026-06-30", "王芳", reason="征收政策调整，顺延")
    assert row["revision"] == 3 and row["reason"] == "征收政策调整，顺延" and row["original_due"] == "2026-03-31"
    assert any_store.plan_targets(original=True).iloc[0]["due_date"] == "2026-03-31"
    assert list(any_store.target_history("V01-002")["due_date"]) == ["2026-03-31", "2026-04-30", "2026-06-30"]
    # the record itself refuses to be rewritten
    with pytest.raises(Exception):
        with any_store._connect(write=True) as con:
            con.execute("UPDATE plan_targets SET due_date = '2030-01-01'")
    assert list(any_store.target_history("V01-002")["due_date"])[-1] == "2026-06-30"


def test_a_plan_with_one_bad_row_imports_nothing_and_names_the_row(any_store):
    rows = [{"row": 2, "object": "V01-001", "stage": "意愿征询", "due": "2026-05-31"},
            {"row": 3, "object": "V01-002", "stage": "listed", "due": "2026-13-01"},
            {"row": 4, "object": "GHOST", "stage": "survey", "due": "2026-05-31"},
            {"row": 5, "object": "HSR-001", "stage": "签约", "due": "2026-05-31"}]
    v0 = any_store.data_version()
    with pytest.raises(InputError) as exc:
        any_store.set_targets(rows, "王芳")
    assert [(r["row"], r["object"]) for r in exc.value.params["rejected"]] == [(3, "V01-002"), (4, "GHOST"),
                                                                               (5, "HSR-001")]
    assert "2026-13-01" in exc.value.params["rejected"][0]["reason"]
    assert _rows(any_store) == (0, 0, 0) and any_store.data_version() == v0
    out = any_store.set_targets([rows[0], {**rows[1], "due": "2026-06-30"}], "王芳")
    assert (out["added"], out["changed"], out["unchanged"]) == (2, 0, 0)
    out = any_store.set_targets([rows[0], {**rows[1], "due": "2026-07-31"}], "王芳")
    assert (out["added"], out["changed"], out["unchanged"]) == (0, 1, 1)


def test_who_may_plan(office):
    office.set_target("V01-002", "listed", "2026-06-30", "ed_v01")  # their village
    office.set_target("MIN-01", "tenure_check", "2026-06-30", "ed_north")  # their zone
    office.set_target("hsr_ai", "plans_approved", "2026-06-30", "leader")  # a leader plans anywhere
    for who, obj, stage in (("ed_v01", "MIN-01", "tenure_check"), ("ed_north", "V01", "signing"),
                            ("viewer", "V01-001", "survey"), ("ghost", "V01-001", "survey")):
        with pytest.raises(PermissionRefused) as exc:
            office.set_target(obj, stage, "2026-06-30", who)
        assert exc.value.exit_code == 3
    with pytest.raises(PermissionRefused):  # a leader plans but does not edit parcels
        office.advance("V01-002", "listed", "2024-04-01", "leader", today=dt.date(2026, 11, 28))
    with pytest.raises(PermissionRefused):
        office.adopt_baseline("annual", "ed_v01")
    assert len(office.plan_targets()) == 3
    assert len(office.audit(outcome="refused")) == 6
    audit = office.audit(action="plan_set", outcome="ok")
    assert set(audit["actor"]) == {"ed_v01", "ed_north", "leader"} and set(audit["target"]) == {"V01-002", "MIN-01",
                                                                                               "hsr_ai"}


def test_the_follow_up_loop_with_its_trail(office):
    today = office_today()
    f = office.issue_followup("V01-003", None, (today + dt.timedelta(days=1)).isoformat(), "签约滞后，请报送措施",
                              "leader")
    assert (f["state"], f["unit"], f["overdue"]) == ("issued", "凤凰街道办事处", False)
    assert office.followup(f["id"], as_of=today + dt.timedelta(days=3))["overdue"]  # past due, no reply
    with pytest.raises(PermissionRefused):  # editors do not issue orders
        office.issue_followup("V01-003", None, today, "x", "ed_v01")
    with pytest.raises(PermissionRefused) as exc:  # an editor of another area cannot reply
        office.reply_followup(f["id"], "不归我管", "ed_north")
    assert exc.value.exit_code == 3
    with pytest.raises(ConflictError):  # nothing to send back yet
        office.return_followup(f["id"], "请补充", "leader")
    r = office.reply_followup(f["id"], "已制定倒排计划", "ed_v01")
    assert (r["state"], r["overdue"]) == ("replied", False)
    with pytest.raises(PermissionRefused):  # only the issuer closes
        office.close_followup(f["id"], "ed_v01")
    office.return_followup(f["id"], "请明确时间节点", "leader")
    office.reply_followup(f["id"], "12月20日前完成签约", "ed_v01")
    c = office.close_followup(f["id"], "leader", text="同意")
    assert c["state"] == "closed"
    with pytest.raises(ConflictError) as exc:
        office.reply_followup(f["id"], "again", "ed_v01")
    assert exc.value.exit_code == 4
    trail = office.followup_trail(f["id"])
    assert [(e["action"], e["state"], e["actor"]) for e in trail] == [
        ("issue", "issued", "leader"), ("reply", "replied", "ed_v01"), ("return", "returned", "leader"),
        ("reply", "replied", "ed_v01"), ("close", "closed", "leader")]
    audit = office.audit(target="V01-003", outcome="ok")
    assert [a for a in reversed(audit["action"].tolist()) if a.startswith("followup")] == [
        "followup_issue", "followup_reply", "followup_return", "followup_reply", "followup_close"]
    assert office.followups(open_only=True) == []
    assert [r["state"] for r in office.followups()] == ["closed"]


def test_my_work_lists_what_waits_for_each_user(office):
    today = office_today()
    office.set_target("V01-002", "listed", (today - dt.timedelta(days=3)).isoformat(), "leader")
    office.set_target("MIN-01", "tenure_check", (today - dt.timedelta(days=3)).isoformat(), "leader")
    f = office.issue_followup("V01", None, today.isoformat(), "东岙村整体进度滞后", "leader")
    mine = office.my_work("ed_v01")
    assert list(mine["targets"]["object"]) == ["V01-002"]
    assert [o["id"] for o in mine["to_reply"]] == [f["id"]] and mine["to_close"] == []
    assert list(office.my_work("ed_north")["targets"]["object"]) == ["MIN-01"]
    assert office.my_work("ed_north")["to_reply"] == []
    office.reply_followup(f["id"], "已部署", "ed_v01")
    assert [o["id"] for o in office.my_work("leader")["to_close"]] == [f["id"]]
    assert office.my_work("ed_v01")["to_reply"] == []


def test_a_campaign_counts_down(any_store):
    today = office_today()
    any_store.add_baseline("百日攻坚", "王芳", kind="campaign", start=today - dt.timedelta(days=90),
                           end=today + dt.timedelta(days=10))
    with pytest.raises(InputError):
        any_store.add_baseline("坏", "王芳", kind="campaign", start=today, end=today - dt.timedelta(days=1))
    any_store.set_target("V01-002", "survey", today + dt.timedelta(days=10), "王芳", baseline="百日攻坚")
    any_store.set_target("V01-003", "demolition", today + dt.timedelta(days=10), "王芳", baseline="百日攻坚")
    (c,) = any_store.campaigns()
    assert (c["days_left"], c["days_total"], c["targets"], c["done"]) == (10, 100, 2, 1)
    assert 0 < c["area_done_share"] < 1
    assert c["left_by_unit"] == [{"unit": "凤凰街道办事处", "left": 1, "overdue": 0}]


# ------------------------------------------------------------------ the demo's plan
def test_the_demo_has_a_believable_plan(demo_where):
    from gis.store import open_store_at

    s = open_store_at(demo_where)
    bases = {b["name"]: b for b in s.plan_baselines()}
    assert {"annual", "commitment", "百日攻坚"} <= set(bases) and all(b["adopted_at"] for b in bases.values())
    assert bases["百日攻坚"]["kind"] == "campaign"
    t = s.plan_targets()
    villages = set(s.attributes("villages"))
    parks = set(s.attributes("parks"))
    for b in ("annual", "commitment"):
        mine = t[t["baseline"] == b]
        assert set(mine.loc[mine["object_type"] == "village", "object"]) == villages
        assert set(mine.loc[mine["object_type"] == "site", "object"]) == parks
    assert (t["revisions"] > 1).sum() >= 3 and t.loc[t["revisions"] > 1, "reason"].notna().all()
    ev = s.plan_status("2026-11-28")
    statuses = set(ev.targets["status"])
    assert {"done", "done_late", "overdue", "on_track"} <= statuses
    assert 0.05 < ev.parcels["stalled"].mean() < 0.3
    (camp,) = s.campaigns("2026-11-28")
    assert camp["days_left"] == 11 and 0.2 < camp["done_share"] < 0.8
    orders = s.followups(as_of="2026-11-28")
    assert {"issued", "replied", "closed", "returned"} <= {o["state"] for o in orders}
    assert any(o["overdue"] for o in orders)
    # every reply came from the editor of the order's area, every close from its issuer
    users = {u["username"]: u for u in s.users()}
    assert users["leader"]["role"] == "leader"
    for o in orders:
        for e in s.followup_trail(o["id"]):
            if e["action"] == "close":
                assert e["actor"] == o["issued_by"] == "leader"
            if e["action"] == "reply" and o["on_type"] == "village":
                zone = s.attributes("villages")[o["on"]]["zone"]
                assert e["actor"] == f"editor_{zone}"


def test_a_parcels_plan_rows_are_its_own_its_villages_and_its_sites_targets(demo_where):
    """``parcel_plan`` takes a parcel's rows from positions grouped once per evaluation (issue 19): the same
    rows as a filter over every target, for a village parcel and a park parcel; an unknown key gives none."""
    from gis.store import open_store_at

    s = open_store_at(demo_where)
    ev = s.plan_status("2026-11-28")
    t = ev.targets
    parcels = s.parcels(geometry=False)
    for kind in ("village", "park"):
        p = s.parcel(parcels.loc[parcels["kind"] == kind, "code"].iloc[0])
        keys = [("parcel", p["code"]), ("village", p["village"]), ("site", p["park"])]
        want = t[pd.Series(list(zip(t["object_type"], t["object"])), index=t.index).isin(keys)]
        assert len(want) and ev.targets_of(keys).equals(want)
        rows = s.parcel_plan(p["code"], evaluation=ev, parcel=p)
        assert sorted((r["object_type"], r["object"], r["stage"], r["baseline"]) for r in rows) == sorted(
            zip(want["object_type"], want["object"], want["stage"], want["baseline"]))
        labels = {b["name"]: b["label"] for b in s.plan_baselines()}
        assert {r["baseline_label"] for r in rows} <= set(labels.values())
    assert ev.targets_of([("parcel", "NO-SUCH"), ("village", None)]).empty


def test_the_demo_plan_is_deterministic(tmp_path, catalog):
    import shutil
    import sqlite3
    from pathlib import Path

    import pandas as pd

    from gis.demo.plans import demo_plan

    shutil.copy(Path(__file__).resolve().parent.parent / "data" / "parcels" / "demo.gpkg", tmp_path / "d.gpkg")
    con = sqlite3.connect(tmp_path / "d.gpkg")
    try:
        parcels = pd.read_sql_query("SELECT * FROM parcels", con).drop(columns="geom")
        events = pd.read_sql_query("SELECT id, parcel, action, from_stage, to_stage, event_date FROM stage_events", con)
        villages = pd.read_sql_query("SELECT code, name, zone FROM villages", con)
        stored = con.execute("SELECT count(*) FROM plan_targets").fetchone()[0]
    finally:
        con.close()
    a = demo_plan(parcels, events, villages, catalog, 2026, dt.date(2026, 11, 15))
    b = demo_plan(parcels, events, villages, catalog, 2026, dt.date(2026, 11, 15))
    assert a == b and len(a["targets"]) == stored
    assert demo_plan(parcels, events, villages, catalog, 7, dt.date(2026, 11, 15))["targets"] != a["targets"]


def test_the_ledger_carries_the_plan_columns(any_store, tmp_path):
    from openpyxl import load_workbook

    from gis.io.exporter import export

    today = office_today()
    any_store.set_target("V01-002", "listed", (today - dt.timedelta(days=3)).isoformat(), "王芳")
    any_store.set_target("V01", "signing", "2026-06-30", "王芳")
    export(any_store, "xlsx", tmp_path / "台账.xlsx")
    ws = load_workbook(tmp_path / "台账.xlsx").worksheets[0]
    headers = [c.value for c in ws[1]]
    col = {h: i for i, h in enumerate(headers)}
    assert {"年初目标阶段", "计划完成日期", "计划状态", "逾期天数"} <= set(col)
    rows = {r[0]: r for r in ws.iter_rows(min_row=2, values_only=True)}
    own = rows["V01-002"]
    assert own[col["年初目标阶段"]] == "入库（标图建库）" and own[col["计划状态"]] == "逾期"
    assert own[col["逾期天数"]] == 3
    assert rows["V01-001"][col["年初目标阶段"]] == "签约"  # its village's target
    assert rows["MIN-01"][col["计划状态"]] is None


def test_a_briefing_page_states_plan_against_actual(any_store):
    from gis.printing.briefing import parcel_facts

    assert parcel_facts(any_store, "V01-003")["plan"] is None
    any_store.set_target("V01", "demolition", (office_today() - dt.timedelta(days=5)).isoformat(), "王芳")
    facts = parcel_facts(any_store, "V01-003")
    assert facts["plan"] == f"年初目标（<b>东岙村</b>）：拆除，计划 {office_today() - dt.timedelta(days=5)}，已逾期 5 天"
    assert facts["plan_status"] == "overdue"
    any_store.set_target("V01-002", "survey", "2024-03-31", "王芳")
    assert parcel_facts(any_store, "V01-002", "en")["plan"] == \
        "Plan at the start of the year: Willingness survey by 2024-03-31, Done on time on 2024-03-01"


@pytest.mark.parametrize("extra", [[], ["2026-1-30"], ["2026-11-30T10:00:00"]])
def test_day_numbers_read_one_by_one_agree_with_pandas(extra, monkeypatch):
    """The day numbers of plain ISO dates, read through a memo (a patch after one write reads a village's
    few hundred), are pandas' own; any other form sends the whole column to pandas' parser."""
    values = np.array(["2026-11-30", "2024-02-29", "2023-02-30", None, "", dt.date(2020, 1, 5), float("nan"),
                       "2021-01-01", "2026-11-30", *extra], dtype=object)
    ours = pm.day_number(values)
    monkeypatch.setattr(pm, "_text_days", lambda uniques: None)
    theirs = pm.day_number(values)
    assert ours.tolist() == theirs.tolist()
    assert ours[0] == pm.day_of(dt.date(2026, 11, 30)) and ours[2] == pm.NO_DATE and ours[5] == pm.day_of(dt.date(2020, 1, 5))


def test_group_pairs_is_the_inner_join_in_order():
    """Targets on a village or a site joined to its parcels without two frames and a merge: the same
    pairs in the same order as ``merge(how="inner")``; a missing group joins nothing."""
    rng = np.random.default_rng(7)
    for _ in range(200):
        groups = rng.choice(np.array(["a", "b", "c", None, "d"], dtype=object), size=rng.integers(0, 30))
        wanted = rng.choice(np.array(["a", "b", "z", "c"], dtype=object), size=rng.integers(0, 6))
        t_of, p_of = pm._group_pairs(wanted, groups)
        j = pd.DataFrame({"t": np.arange(len(wanted)), "g": wanted}).merge(
            pd.DataFrame({"g": groups, "p": np.arange(len(groups))}), on="g", how="inner")
        assert t_of.tolist() == j["t"].tolist() and p_of.tolist() == j["p"].tolist()
