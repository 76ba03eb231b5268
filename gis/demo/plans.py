"""The demo district's plan: two baselines, a campaign and follow-up orders, deterministic.

    年初目标 (annual)      adopted 2026-01-12: a next step for each of the 30 villages, each park and
                           each single site, due in 2026; a few revised in July, with a reason
    承诺书目标 (commitment) adopted 2026-03-02: the same objects, signed a month or two earlier
    百日攻坚 (campaign)     2026-09-01 – 2026-12-09: parcels at signing or demolition to be cleared
    督办 orders            on late villages: some closed, some replied, one sent back, some open

The targets are drawn against the demo's own stage history (``gis.model.plans.evaluate``),
so that some are met on time, some late, some overdue and some still ahead, and the orders
follow the permission rules (issued by the leader, replied by the zone's editor). Nothing
uses the clock; timestamps are business dates with a fixed time of day.
"""
from __future__ import annotations

import datetime as dt
import zlib

import numpy as np
import pandas as pd

from gis.model import plans as model
from gis.model.pipelines import Catalog

LEADER = "leader"
ZONE_EDITOR = {"north": "editor_north", "central": "editor_central", "south": "editor_south"}
CAMPAIGN = ("百日攻坚", "百日攻坚专项行动", "100-day push", "2026-09-01", "2026-12-09")
REVISION_REASON = "受征收补偿政策调整影响，经区城市更新指挥部调度会研究同意顺延"


def _rng(seed: int, tag: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(("plans:" + tag).encode())])


def _at(day: str, hhmm: str = "02:00") -> str:
    """A business date at a fixed time (UTC; 10:00 Beijing)."""
    return f"{day}T{hhmm}:00+00:00"


def _day(d: dt.date) -> str:
    return d.isoformat()


def _reach(parcels: pd.DataFrame, events: pd.DataFrame, cat: Catalog, objects: list[tuple], as_of: dt.date):
    """Evaluate provisional targets (far in the future) to learn if and when each object reached its stage."""
    t = pd.DataFrame([{"id": i, "object_type": o[0], "object": o[1], "stage": o[2], "due_date": "2099-12-31",
                       "unit": None, "baseline": "x"} for i, o in enumerate(objects)])
    return model.evaluate(t, parcels, events, cat, as_of).targets


def demo_plan(parcels: pd.DataFrame, events: pd.DataFrame, villages: pd.DataFrame, cat: Catalog, seed: int,
              last_day: dt.date, parks: pd.DataFrame | None = None) -> dict:
    """Rows for plan_baselines, plan_targets, followups and followup_events (without ids but the orders')."""
    rng = _rng(seed, "targets")
    pos = {"village": cat.pipeline_for("village"), "park": cat.pipeline_for("park")}
    objects = []  # (type, code, stage, unit, name)
    idx = {}
    for kind in ("village", "park", "low_efficiency", "ministry", "landmark"):
        pipe = cat.pipeline_for(kind)
        for k, s in enumerate(pipe.keys):
            idx[(kind, s)] = k
    p = parcels.copy()
    p["i"] = [idx.get((k, s), -1) if isinstance(s, str) else -1 for k, s in zip(p["kind"], p["stage"])]
    for v in villages.sort_values("code").itertuples():
        g = p[p["village"] == v.code]
        if not len(g):
            continue
        lo = int(g["i"].min())
        top = len(pos["village"].keys) - 1
        k = top if lo == top else (lo if rng.random() < 0.4 and lo >= 0 else lo + 1)
        objects.append(("village", v.code, pos["village"].keys[k], g["unit"].mode().iloc[0], v.name))
    for park in sorted(x for x in p["park"].unique() if x):
        g = p[p["park"] == park]
        lo = int(g["i"].min())
        objects.append(("site", park, pos["park"].keys[min(lo + 1, len(pos["park"].keys) - 1)],
                        g["unit"].mode().iloc[0], park))
    for r in p[p["kind"].isin(["low_efficiency", "ministry", "landmark"])].sort_values("code").itertuples():
        keys = cat.pipeline_for(r.kind).keys
        objects.append(("parcel", r.code, keys[min(r.i + (0 if rng.random() < 0.3 and r.i >= 0 else 1), len(keys) - 1)],
                        r.unit, r.name))
    reached = _reach(parcels, events, cat, objects, last_day)

    annual, commitment = [], []
    for o, (_, row) in zip(objects, reached.iterrows()):
        if row["status"] in ("done", "done_late"):  # already reached: planned a little before or after
            when = dt.date.fromisoformat(row["reached_on"])
            due = when + dt.timedelta(days=int(rng.integers(-75, 60)))
            due = max(due, dt.date(2026, 3, 31))
        else:  # still ahead: due in 2026 (some past, some near, some at year end)
            due = dt.date(2026, 1, 1) + dt.timedelta(days=int(rng.choice(
                [int(rng.integers(150, 300)), int(rng.integers(330, 344)), 364], p=[0.55, 0.15, 0.30])))
        annual.append((o, due))
        commitment.append((o, due - dt.timedelta(days=int(rng.integers(30, 75)))))
    baselines = [
        ("annual", "年初目标", "Plan at the start of the year", "plan", None, None, _at("2026-01-12"), LEADER,
         _at("2026-01-08"), LEADER, "2026年城市更新年度目标任务（示例）"),
        ("commitment", "承诺书目标", "Signed commitment", "plan", None, None, _at("2026-03-02"), LEADER,
         _at("2026-02-26"), LEADER, "各责任单位签订的目标责任书（示例）"),
        (CAMPAIGN[0], CAMPAIGN[1], CAMPAIGN[2], "campaign", CAMPAIGN[3], CAMPAIGN[4], _at("2026-08-28"), LEADER,
         _at("2026-08-25"), LEADER, "拆除清表百日攻坚（示例）"),
    ]
    targets = []
    for (o, due) in annual:
        targets.append(("annual", o[0], o[1], o[2], _day(due), o[3], None, 1, "set", None, _at("2026-01-08"), LEADER))
    for (o, due) in commitment:
        targets.append(("commitment", o[0], o[1], o[2], _day(due), o[3], None, 1, "set", None, _at("2026-02-26"),
                        LEADER))
    # July: three village targets moved by a quarter, with the reason; the original stays comparable
    open_villages = [(o, due) for (o, due) in annual if o[0] == "village" and due > dt.date(2026, 7, 15)]
    for j in sorted(rng.choice(len(open_villages), min(3, len(open_villages)), replace=False)):
        o, due = open_villages[j]
        targets.append(("annual", o[0], o[1], o[2], _day(due + dt.timedelta(days=92)), o[3], None, 2, "change",
                        REVISION_REASON, _at("2026-07-15"), LEADER))
    # the campaign: village parcels at partner, signing, demolition or clearance on its first day, each to
    # take its next step by the end; about half have done so by the last business day
    start = dt.date.fromisoformat(CAMPAIGN[3])
    none = pd.DataFrame(columns=["id", "object_type", "object", "stage", "due_date"])
    at_start = model.evaluate(none, parcels, events, cat, start, current=False).parcels
    now = model.evaluate(none, parcels, events, cat, last_day).parcels
    vkeys = pos["village"].keys
    cand = at_start[(at_start["kind"] == "village")
                    & at_start["stage"].isin(["partner", "signing", "demolition", "clearance"])].copy()
    cand["moved"] = now.set_index("code").loc[cand["code"], "stage_index"].to_numpy() > cand["stage_index"].to_numpy()
    crng = _rng(seed, "campaign")
    picks = []
    for moved in (True, False):
        pool = cand[cand["moved"] == moved]
        picks += [pool.iloc[j] for j in sorted(crng.choice(len(pool), min(30, len(pool)), replace=False))]
    unit_of = dict(zip(parcels["code"], parcels["unit"]))
    for r in sorted(picks, key=lambda r: r["code"]):
        targets.append((CAMPAIGN[0], "parcel", r["code"], vkeys[int(r["stage_index"]) + 1], CAMPAIGN[4],
                        unit_of[r["code"]], None, 1, "set", None, _at("2026-08-25"), LEADER))

    # follow-up orders on villages late against the annual plan as of the last business day
    t = pd.DataFrame([dict(zip(("baseline", "object_type", "object", "stage", "due_date", "unit"), r[:6]))
                      for r in targets if r[0] == "annual"]).groupby(["object"]).tail(1).reset_index(drop=True)
    t["id"] = range(len(t))
    st = model.evaluate(t, parcels, events, cat, last_day).targets
    zone_of = dict(zip(villages["code"], villages["zone"]))
    name_of = {**dict(zip(parcels["code"], parcels["name"])), **dict(zip(villages["code"], villages["name"])),
               **(dict(zip(parks["code"], parks["name"])) if parks is not None else {})}
    late = st[st["status"] == "overdue"].assign(_v=lambda d: d["object_type"] != "village") \
        .sort_values(["_v", "object"])
    orng = _rng(seed, "orders")
    plan = ["closed", "replied", "issued", "returned", "closed", "replied", "issued",
            "closed", "closed", "replied", "issued", "issued", "issued", "issued"]
    followups, fevents = [], []
    for n, r in enumerate(late.head(len(plan)).itertuples(), start=1):
        state = plan[n - 1]
        issued = dt.date(2026, 9, 7) + dt.timedelta(days=int(orng.integers(0, 60)))
        due = issued + dt.timedelta(days=int(orng.choice([10, 14, 21])))
        label = cat.stage_label(r.kind, r.stage)
        text = (f"{name_of.get(r.object, r.object)}“{label}”未按年初目标（{r.due_date}）完成，请{r.unit}于"
                f"{due.month}月{due.day}日前报送倒排工期计划和责任人，并加快推进。")
        followups.append((n, r.object_type, r.object, f"annual/{r.object}/{r.stage}", r.unit, _day(due), text,
                          _at(_day(issued)), LEADER))
        fevents.append((n, "issue", "issued", text, _at(_day(issued)), LEADER))
        # the demo's editors hold villages; an order on a park or a single site is answered by the admin
        editor = ZONE_EDITOR.get(zone_of.get(r.object), "admin") if r.object_type == "village" else "admin"
        if state == "issued":
            continue
        replied = min(due - dt.timedelta(days=int(orng.integers(1, 4))), last_day)
        fevents.append((n, "reply", "replied",
                        f"已召开专题推进会，制定倒排工期计划，明确专班负责人，力争{(due + dt.timedelta(days=45)).month}月底前完成{label}。",
                        _at(_day(replied), "07:30"), editor))
        if state == "closed":
            fevents.append((n, "close", "closed", "同意，纳入调度会跟踪。", _at(_day(min(replied + dt.timedelta(days=2),
                                                                               last_day)), "08:30"), LEADER))
        elif state == "returned":
            back = min(replied + dt.timedelta(days=2), last_day)
            fevents.append((n, "return", "returned", "回复未明确时间节点和责任人，请补充后重新报送。",
                            _at(_day(back), "08:30"), LEADER))
    return {"baselines": baselines, "targets": targets, "followups": followups, "followup_events": fevents}


def add_demo_plans(con, seed: int, catalog: Catalog, last_day: dt.date) -> dict:
    """Write :func:`demo_plan` into a fresh demo file (an open sqlite3 connection, in its transaction)."""
    parcels = pd.read_sql_query("SELECT code, name, kind, zone, village, park, unit, stage, stage_date, blocked,"
                                " area_m2 FROM parcels ORDER BY fid", con)
    parcels["stage"] = parcels["stage"].where(parcels["stage"].notna(), None)
    events = pd.read_sql_query("SELECT id, parcel, action, from_stage, to_stage, event_date FROM stage_events"
                               " ORDER BY id", con)
    villages = pd.read_sql_query("SELECT code, name, zone FROM villages ORDER BY code", con)
    parks = pd.read_sql_query("SELECT code, name FROM parks ORDER BY code", con)
    plan = demo_plan(parcels, events, villages, catalog, seed, last_day, parks)
    con.executemany("INSERT INTO plan_baselines (name, label, label_en, kind, start_date, end_date, adopted_at,"
                    " adopted_by, created_at, created_by, note) VALUES (?,?,?,?,?,?,?,?,?,?,?)", plan["baselines"])
    con.executemany("INSERT INTO plan_targets (baseline, object_type, object, stage, due_date, unit, note, revision,"
                    " action, reason, recorded_at, recorded_by) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", plan["targets"])
    con.executemany("INSERT INTO followups (id, on_type, on_code, target, unit, due_date, text, issued_at, issued_by)"
                    " VALUES (?,?,?,?,?,?,?,?,?)", plan["followups"])
    con.executemany("INSERT INTO followup_events (followup, action, state, text, at, actor) VALUES (?,?,?,?,?,?)",
                    plan["followup_events"])
    return {"targets": len(plan["targets"]), "followups": len(plan["followups"])}
