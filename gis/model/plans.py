"""Plans against the record: the status of every target as of a date, stalled parcels, roll-ups.

A target says "object X reaches stage S by date D" (X a parcel, a village = all
its parcels, or a site = all parcels of a park). Its status as of a date A:

    done        reached S on or before D
    done_late   reached S after D (``days_late`` = reached − D)
    overdue     not reached and A > D (``days_late`` = A − D)
    due_soon    not reached, D − A ≤ ``due_soon_days``
    on_track    not reached, further off

A parcel is ``stalled`` when it has sat in its stage longer than that stage's
``max_days`` (layers/pipelines.toml) or has been blocked (卡点) longer than
``blocked_max_days``. A parcel with no target is ``no_plan``.

Everything here is pure and vectorised (numpy/pandas, no Python loop over
targets or parcels): the whole district's cadastre with as many targets is
evaluated in well under a second (bench/plans.py). Dates are whole days
(``datetime64[D]`` as integers).

    evaluate(targets, parcels, events, catalog, as_of, rules)  -> Evaluation
    rollup(rows, by)                                            -> counts per status
    campaign_summary(evaluation, baseline, start, end, as_of)   -> countdown and completion
    followup_state / followup_allowed / followup_overdue         the 督办 state machine
    parse_plan_date(value)                                      a planned date as offices write it
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from gis.model.pipelines import Catalog

TARGET_STATUSES = ("done", "done_late", "on_track", "due_soon", "overdue")
#: a parcel's colour on the plan map: the first of these that applies
PARCEL_STATUSES = ("overdue", "stalled", "due_soon", "on_track", "done_late", "done", "no_plan")
STATUS_COLORS = {
    "overdue": "#d7301f", "stalled": "#8c2d04", "due_soon": "#fdae61", "on_track": "#4393c3",
    "done_late": "#a6d96a", "done": "#1a9850", "no_plan": "#d9d9d9",
}
OBJECT_TYPES = ("parcel", "village", "site")
STAGE_ACTIONS = ("advance", "correction", "import")
NO_DATE = np.iinfo(np.int64).min // 2  # "never": below every real day number

FOLLOWUP_STATES = ("issued", "replied", "closed", "returned")
#: action -> states it may start from, and the state it leads to
FOLLOWUP_MOVES = {
    "reply": (("issued", "returned"), "replied"),
    "close": (("issued", "replied", "returned"), "closed"),
    "return": (("replied",), "returned"),
}
FOLLOWUP_OPEN = ("issued", "replied", "returned")


#: year first, then month and day, separated by - / . (what Excel writes in Chinese locales: 2026/12/31),
#: or 2026年12月31日; a time of 00:00 (a date cell saved to CSV) may follow
_YMD = re.compile(r"(\d{4})\s*(?:[-/.]\s*(\d{1,2})\s*[-/.]\s*(\d{1,2})|年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日?)"
                  r"(?:[ T]0{1,2}:00(?::00(?:\.0+)?)?)?")
#: day and month before the year (12/31/2026, 31.12.2026, 1/5/26): which is the month is a guess
_DAY_FIRST = re.compile(r"\d{1,2}\s*[-/.]\s*\d{1,2}\s*[-/.]\s*\d{2,4}")


class PlanDateError(ValueError):
    """A planned date that cannot be read: ``reason`` is ``invalid`` (no such day, or no date at
    all), ``ambiguous`` (the day and the month could be either way round) or ``serial`` (a bare number,
    an Excel date cell that lost its date format)."""

    def __init__(self, value: str, reason: str):
        super().__init__(f"{reason}: {value}")
        self.value, self.reason = value, reason


def parse_plan_date(value) -> dt.date:
    """A planned date as planners write it: ``2026-12-31``, ``2026-1-5``, ``2026/12/31`` (Excel in a
    Chinese locale), ``2026.12.31``, ``2026年12月31日``, or a date (an Excel date cell).

    Raises:
        PlanDateError: not a real day; day and month first (``12/31/2026``: which is the month?);
            a bare number (``46387``: an Excel date serial shown without its date format).
    """
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value if value is not None else "").strip()
    m = _YMD.fullmatch(text)
    if m:
        y, mo, d = (int(x) for x in ((m[1], m[2], m[3]) if m[2] else (m[1], m[4], m[5])))
        try:
            return dt.date(y, mo, d)
        except ValueError:
            raise PlanDateError(text, "invalid") from None
    if _DAY_FIRST.fullmatch(text):
        raise PlanDateError(text, "ambiguous")
    if re.fullmatch(r"\d{1,6}(?:\.0+)?", text):
        raise PlanDateError(text, "serial")
    raise PlanDateError(text, "invalid")


@dataclass(frozen=True)
class PlanRules:
    """Thresholds of the plan status (``[plans]`` in layers/pipelines.toml)."""

    due_soon_days: int = 14
    blocked_max_days: int = 60

    @classmethod
    def from_catalog(cls, catalog: Catalog) -> "PlanRules":
        rules = getattr(catalog, "plan_rules", None) or {}
        return cls(**{k: int(v) for k, v in rules.items() if k in ("due_soon_days", "blocked_max_days")})


_EPOCH = dt.date(1970, 1, 1).toordinal()  # day numbers count from 1970-01-01, as NumPy's


def _factorized(values):
    """``(codes, uniques)`` of a column: a log holds few distinct dates and stages, so each is parsed once."""
    codes, uniques = pd.factorize(pd.Series(values) if not isinstance(values, pd.Series) else values,
                                  use_na_sentinel=True)
    return codes, uniques


_DAYS: dict[str, int] = {}  # ISO date text -> day number: an office's log holds a few thousand distinct dates


def _text_days(uniques) -> np.ndarray | None:
    """Day numbers of plain ``YYYY-MM-DD`` texts and dates, one by one through a memo (pandas' parser
    costs ~0.5 ms a call and ~5 ms for a village's few hundred dates: what a patch after one write
    pays); None when one is anything else (a time, another form), left to pandas."""
    out = np.empty(len(uniques), dtype=np.int64)
    memo = _DAYS
    for i, v in enumerate(uniques):
        if isinstance(v, str):
            day = memo.get(v)
            if day is None:
                if not v:
                    out[i] = NO_DATE  # an empty text
                    continue
                if len(v) != 10 or v[4] != "-" or v[7] != "-":
                    return None
                try:
                    day = dt.date.fromisoformat(v).toordinal() - _EPOCH
                except ValueError:
                    day = NO_DATE  # not a date (pandas' coerce)
                if len(memo) < 100_000:
                    memo[v] = day
            out[i] = day
        elif v is None:
            out[i] = NO_DATE
        elif type(v) is dt.date:
            out[i] = v.toordinal() - _EPOCH
        else:
            return None
    return out


def day_number(values) -> np.ndarray:
    """ISO dates (str, date, None/NaN) as int64 day numbers; missing → NO_DATE."""
    codes, uniques = _factorized(values)
    days = _text_days(uniques)
    if days is None:
        d = pd.to_datetime(pd.Series(uniques, dtype=object), errors="coerce", format="ISO8601")
        days = d.values.astype("datetime64[D]").astype(np.int64)
        days[d.isna().values] = NO_DATE
    return np.where(codes >= 0, days[np.clip(codes, 0, None)] if len(days) else NO_DATE, NO_DATE).astype(np.int64)


def positions(index: pd.Index, values) -> np.ndarray:
    """Position of each value in ``index`` (-1 when absent), hashing each distinct value once."""
    codes, uniques = _factorized(values)
    pos = index.get_indexer(uniques) if len(uniques) else np.empty(0, np.int64)
    return np.where(codes >= 0, pos[np.clip(codes, 0, None)] if len(pos) else -1, -1).astype(np.int64)


def day_of(date: dt.date) -> int:
    return int(np.datetime64(date, "D").astype(np.int64))


def date_of(day: int) -> str | None:
    return None if day <= NO_DATE else str(np.datetime64(int(day), "D"))


def dates_of(days: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Day numbers as ISO text (object array); missing (or not ``valid``) → None."""
    days = np.asarray(days, dtype=np.int64)
    ok = days > NO_DATE if valid is None else valid & (days > NO_DATE)
    out = np.full(len(days), None, dtype=object)
    if ok.any():
        out[ok] = np.datetime_as_string(days[ok].astype("datetime64[D]"), unit="D").astype(object)
    return out


@dataclass
class Evaluation:
    """What :func:`evaluate` finds.

    ``targets``: one row per target with ``status``, ``days_late``, ``days_left``,
    ``reached_on``, ``parcels``, ``parcels_done``, ``area_m2``, ``area_done_m2``,
    ``zone``, ``village``, ``kind``. ``parcels``: one row per parcel with
    ``plan_status`` (one of PARCEL_STATUSES), ``stage_index``, ``days_in_stage``,
    ``stalled``, ``stalled_why`` (``stage``/``blocked``/None), ``blocked_days``,
    ``max_days``, ``targets`` (count), ``next_due``, ``days_late`` (worst).
    """

    as_of: dt.date
    targets: pd.DataFrame
    parcels: pd.DataFrame
    rules: PlanRules
    _positions: dict | None = field(default=None, init=False, repr=False, compare=False)  # see targets_of

    def stalled(self) -> pd.DataFrame:
        return self.parcels[self.parcels["stalled"]].reset_index(drop=True)

    def targets_of(self, keys) -> pd.DataFrame:
        """The rows of :attr:`targets` whose ``(object_type, object)`` is one of ``keys``, in their order in
        the table; from positions grouped once per evaluation (a parcel's panel asks on every page run)."""
        if self._positions is None:
            t = self.targets
            groups: dict = {}
            for i, key in enumerate(zip(t["object_type"].tolist(), t["object"].tolist())):
                groups.setdefault(key, []).append(i)
            self._positions = groups
        at = sorted(i for key in dict.fromkeys(keys) for i in self._positions.get(key, ()))
        return self.targets.iloc[at]

    def status_of_parcel(self) -> dict[str, str]:
        return dict(zip(self.parcels["code"], self.parcels["plan_status"]))


class _Stages:
    """Stage keys and pipelines as integers: ``index(pipe_ids, stage_values)`` is each stage's position
    in its pipeline (-1: not started, or not a stage of that pipeline), without a Python loop."""

    def __init__(self, catalog: Catalog):
        self.pipes = list(catalog.pipelines)
        self.keys = pd.Index(sorted({k for p in catalog.pipelines.values() for k in p.keys}))
        self.lut = np.full((len(self.pipes) + 1, len(self.keys) + 1), -1, dtype=np.int64)  # last row/col: none
        self.maxd = np.zeros_like(self.lut)
        for i, pk in enumerate(self.pipes):
            for j, st in enumerate(catalog.pipelines[pk].stages):
                c = self.keys.get_loc(st.key)
                self.lut[i, c] = j
                self.maxd[i, c] = int(getattr(st, "max_days", 0) or 0)
        kinds = list(catalog.kinds)
        self.kinds = pd.Index(kinds)
        self.pipe_of_kind = np.array([self.pipes.index(catalog.kinds[k].pipeline) for k in kinds] + [len(self.pipes)],
                                     dtype=np.int64)

    def pipe_ids(self, kinds) -> np.ndarray:
        return self.pipe_of_kind[positions(self.kinds, kinds)]

    def stage_codes(self, stages) -> np.ndarray:
        c = positions(self.keys, stages)
        return np.where(c < 0, len(self.keys), c)

    def index(self, pipe_ids: np.ndarray, stages) -> np.ndarray:
        return self.lut[pipe_ids, self.stage_codes(stages)]


def _replay(parcels: pd.DataFrame, events: pd.DataFrame, stages: _Stages, pipes: np.ndarray,
            now_idx: np.ndarray, as_of_day: int, current: bool, n_stages: int):
    """Stage index and entry day as of ``as_of_day``, the day each stage index was last crossed
    upwards (``reach[p, k]``), and the day a still-blocked parcel was blocked."""
    n = len(parcels)
    codes = parcels["code"].to_numpy(object)
    stage_date = day_number(parcels["stage_date"].to_numpy(object)) if "stage_date" in parcels else np.full(n, NO_DATE)
    reach = np.full((n, max(n_stages, 1)), NO_DATE, dtype=np.int64)
    blocked_since = np.full(n, NO_DATE, dtype=np.int64)
    idx = now_idx.copy() if current else np.full(n, -1, dtype=np.int64)
    has_stage_events = np.zeros(n, dtype=bool)
    if events is not None and len(events):
        ev = events
        pos = positions(pd.Index(codes), ev["parcel"])
        day = day_number(ev["event_date"])
        keep = (pos >= 0) & (day <= as_of_day)
        acodes, anames = _factorized(ev["action"])
        anames = list(anames)
        of = (lambda names: [i for i, a in enumerate(anames) if a in names])
        action = acodes
        order_id = ev["id"].to_numpy(np.int64) if "id" in ev else np.arange(len(ev), dtype=np.int64)
        pos, day, action, order_id = pos[keep], day[keep], action[keep], order_id[keep]
        ppipe = pipes[pos]
        f_idx = stages.lut[ppipe, stages.stage_codes(ev["from_stage"])[keep]]
        t_idx = stages.lut[ppipe, stages.stage_codes(ev["to_stage"])[keep]]
        is_stage = np.isin(action, of(STAGE_ACTIONS))
        sp, sd, sf, st, so = pos[is_stage], day[is_stage], f_idx[is_stage], t_idx[is_stage], order_id[is_stage]
        has_stage_events[sp] = True
        for k in range(n_stages):
            m = (sf < k) & (st >= k)
            if m.any():
                np.maximum.at(reach[:, k], sp[m], sd[m])
        if not current and len(sp):
            # the last stage event of each parcel (by day, then id) gives its stage as of the day
            o = np.lexsort((so, sd, sp))
            last = np.r_[sp[o][1:] != sp[o][:-1], True]
            idx[sp[o][last]] = st[o][last]
        # blocked: the last block/unblock event as of the day
        isb = np.isin(action, of(("block", "unblock")))
        if isb.any():
            bp, bd, bo, ba = pos[isb], day[isb], order_id[isb], action[isb]
            o = np.lexsort((bo, bd, bp))
            last = np.r_[bp[o][1:] != bp[o][:-1], True]
            lp, ld, la = bp[o][last], bd[o][last], ba[o][last]
            blocks = np.isin(la, of(("block",)))
            blocked_since[lp[blocks]] = ld[blocks]
    if not current:
        # parcels whose stage came without any event (an old import): trust stage_date
        silent = ~has_stage_events & (now_idx >= 0) & (stage_date <= as_of_day)
        idx[silent] = now_idx[silent]
    # a stage reached with no event for it: no later than the current stage's date
    rows = np.arange(n)
    for k in range(n_stages):
        fill = (idx >= k) & (reach[:, k] == NO_DATE)
        reach[fill, k] = np.where(stage_date[fill] > NO_DATE, stage_date[fill], as_of_day)
    entered = np.where(idx >= 0, reach[rows, np.clip(idx, 0, None)], NO_DATE)
    if current and "blocked" in parcels:
        blocked_now = parcels["blocked"].fillna(0).astype(bool).to_numpy()
        blocked_since[~blocked_now] = NO_DATE
        fill = blocked_now & (blocked_since == NO_DATE)
        blocked_since[fill] = np.where(stage_date[fill] > NO_DATE, stage_date[fill], as_of_day)
    return idx, entered, reach, blocked_since


def _status(reached: np.ndarray, reach_day: np.ndarray, due: np.ndarray, as_of_day: int, soon: int):
    """Status codes (index into TARGET_STATUSES), days late and days left, vectorised."""
    late_done = reached & (reach_day > due)
    overdue = ~reached & (as_of_day > due)
    left = due - as_of_day
    due_soon = ~reached & ~overdue & (left <= soon)
    code = np.select([reached & ~late_done, late_done, overdue, due_soon], [0, 1, 4, 3], default=2)
    days_late = np.where(late_done, reach_day - due, np.where(overdue, as_of_day - due, 0))
    days_left = np.where(~reached & ~overdue, left, 0)
    return code, days_late, days_left


def _group_pairs(wanted: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every (i, p) with ``groups[p] == wanted[i]``, in ``i`` order and, within one ``i``, in ``p``
    order (an inner join of the targets on their group's parcels, as ``merge`` gives it, without
    building two frames for a handful of rows: a patch after a write evaluates a few targets).
    A missing value (None, NaN) matches nothing."""
    codes, _ = pd.factorize(np.concatenate([wanted, groups]), use_na_sentinel=True)
    tc, pc = codes[:len(wanted)], codes[len(wanted):]
    order = np.argsort(pc, kind="stable")
    ordered = pc[order]
    lo = np.searchsorted(ordered, tc, "left")
    n = np.where(tc >= 0, np.searchsorted(ordered, tc, "right") - lo, 0)
    t_of = np.repeat(np.arange(len(wanted), dtype=np.int64), n)
    starts = np.repeat(lo - np.r_[0, np.cumsum(n)[:-1]], n)
    return t_of, order[starts + np.arange(int(n.sum()))].astype(np.int64)


def evaluate(targets: pd.DataFrame, parcels: pd.DataFrame, events: pd.DataFrame | None, catalog: Catalog,
             as_of: dt.date, rules: PlanRules | None = None, current: bool = True) -> Evaluation:
    """Every target's status and every parcel's plan status as of ``as_of``.

    ``targets``: id, object_type, object, stage, due_date (ISO), and any other
    columns (unit, baseline, note…), carried through. ``parcels``: code, kind,
    zone, village, park, stage, stage_date, blocked, area_m2 (the current state).
    ``events``: the stage event log (parcel, action, from_stage, to_stage,
    event_date, id). ``current``: the parcels' stage columns are the state as
    of ``as_of`` (true for today); otherwise the state is replayed from the log.
    """
    rules = rules or PlanRules.from_catalog(catalog)
    A = day_of(as_of)
    n = len(parcels)
    # text columns as plain object arrays, once (pandas' Arrow strings cost a conversion per access)
    parcels = pd.DataFrame({c: pd.Series(parcels[c].to_numpy(object), dtype=object) if parcels[c].dtype != float
                            and c != "blocked" else parcels[c].reset_index(drop=True) for c in parcels.columns})
    n_stages = max((len(p.stages) for p in catalog.pipelines.values()), default=1)
    stages = _Stages(catalog)
    pipes = stages.pipe_ids(parcels["kind"].to_numpy(object))
    now_idx = stages.index(pipes, parcels["stage"].to_numpy(object))
    idx, entered, reach, blocked_since = _replay(parcels, events, stages, pipes, now_idx, A, current, n_stages)
    # the norm of the stage each parcel is in as of the day
    stage_at = np.full(n, "", dtype=object)
    maxd = np.zeros(n, dtype=np.int64)
    for i, pk in enumerate(stages.pipes):
        sel = (pipes == i) & (idx >= 0)
        if sel.any():
            pipe = catalog.pipelines[pk]
            stage_at[sel] = np.array(pipe.keys, dtype=object)[idx[sel]]
            maxd[sel] = np.array([int(getattr(st, "max_days", 0) or 0) for st in pipe.stages], dtype=np.int64)[idx[sel]]
    days_in = np.where(entered > NO_DATE, A - entered, 0)
    blocked_days = np.where(blocked_since > NO_DATE, A - blocked_since, 0)
    stalled_stage = (maxd > 0) & (days_in > maxd)
    stalled_block = (blocked_since > NO_DATE) & (blocked_days > rules.blocked_max_days)
    stalled = stalled_stage | stalled_block

    # ---- targets expanded to their parcels
    t = targets.reset_index(drop=True)
    m = len(t)
    codes = parcels["code"].to_numpy(object)
    otype = t["object_type"].to_numpy(object) if m else np.array([], dtype=object)
    obj = t["object"].to_numpy(object) if m else np.array([], dtype=object)
    rows_t, rows_p = [np.empty(0, np.int64)], [np.empty(0, np.int64)]
    sel = np.flatnonzero(otype == "parcel")
    if len(sel):
        pos = pd.Index(codes).get_indexer(obj[sel])
        ok = pos >= 0
        rows_t.append(sel[ok])
        rows_p.append(pos[ok].astype(np.int64))
    for ot, col in (("village", "village"), ("site", "park")):
        sel = np.flatnonzero(otype == ot)
        if len(sel) and col in parcels:
            t_of, p_of = _group_pairs(obj[sel], parcels[col].to_numpy(object))
            rows_t.append(sel[t_of])
            rows_p.append(p_of)
    et, ep = np.concatenate(rows_t), np.concatenate(rows_p)
    # the target's stage in each parcel's pipeline (a parcel of another pipeline drops out)
    tstage = t["stage"].to_numpy(object) if m else np.array([], dtype=object)
    k = stages.lut[pipes[ep], stages.stage_codes(tstage)[et]] if len(et) else np.empty(0, np.int64)
    ok = k >= 0
    et, ep, k = et[ok], ep[ok], k[ok]
    due = day_number(t["due_date"].to_numpy(object)) if m else np.empty(0, np.int64)
    reached = idx[ep] >= k
    rday = np.where(reached, reach[ep, k], NO_DATE)
    area = parcels["area_m2"].fillna(0).to_numpy(float) if "area_m2" in parcels else np.zeros(n)

    # ---- per target: all of its parcels must have reached the stage
    cnt = np.bincount(et, minlength=m)
    done_cnt = np.bincount(et, weights=reached, minlength=m).astype(np.int64)
    a_all = np.bincount(et, weights=area[ep], minlength=m)
    a_done = np.bincount(et, weights=area[ep] * reached, minlength=m)
    t_rday = np.full(m, NO_DATE, dtype=np.int64)
    np.maximum.at(t_rday, et, rday)
    t_reached = (cnt > 0) & (done_cnt == cnt)
    code, days_late, days_left = _status(t_reached, t_rday, due, A, rules.due_soon_days)
    first_p = np.full(m, -1, dtype=np.int64)
    if len(et):
        o = np.argsort(et, kind="stable")
        firsts = np.r_[True, et[o][1:] != et[o][:-1]]
        first_p[et[o][firsts]] = ep[o][firsts]
    pick = lambda col: np.where(first_p >= 0, parcels[col].to_numpy(object)[np.clip(first_p, 0, None)], None) \
        if col in parcels and n else np.full(m, None, dtype=object)
    obj_col = (lambda values: pd.Series(values, dtype=object))
    out_t = t.copy()
    out_t["status"] = obj_col(np.array(TARGET_STATUSES, dtype=object)[code] if m else [])
    out_t["days_late"] = days_late.astype(np.int64)
    out_t["days_left"] = days_left.astype(np.int64)
    out_t["reached_on"] = pd.Series(dates_of(t_rday, t_reached), dtype=object)
    out_t["parcels"] = cnt.astype(np.int64)
    out_t["parcels_done"] = done_cnt
    out_t["area_m2"] = a_all.round(1)
    out_t["area_done_m2"] = a_done.round(1)
    out_t["zone"] = obj_col(pick("zone"))
    out_t["kind"] = obj_col(pick("kind"))
    vil = pick("village")
    out_t["village"] = obj_col(np.where(otype == "village", obj, vil) if m else vil)
    if "unit" not in out_t:
        out_t["unit"] = None
    out_t["unit"] = out_t["unit"].where(out_t["unit"].notna() & (out_t["unit"] != ""), pick("unit")) if m else out_t["unit"]

    # ---- per parcel: the worst status of its own rows, stalled on top
    rank_of = {s: i for i, s in enumerate(PARCEL_STATUSES)}
    row_code, row_late, _ = _status(reached, rday, due[et], A, rules.due_soon_days)
    to_rank = np.array([rank_of[s] for s in TARGET_STATUSES], dtype=np.int64)
    best = np.full(n, rank_of["no_plan"], dtype=np.int64)
    np.minimum.at(best, ep, to_rank[row_code])
    best = np.where(stalled & (best > rank_of["stalled"]), rank_of["stalled"], best)
    worst_late = np.zeros(n, dtype=np.int64)
    np.maximum.at(worst_late, ep, np.where(row_code == 4, row_late, 0))
    open_due = np.where(~reached, due[et], np.iinfo(np.int64).max)
    next_due = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(next_due, ep, open_due)
    why = np.full(n, None, dtype=object)
    why[stalled_block] = "blocked"
    why[stalled_stage] = "stage"
    out_p = pd.DataFrame({
        "code": obj_col(codes),
        **{c: obj_col(parcels[c].to_numpy(object) if c in parcels else np.full(n, None, dtype=object))
           for c in ("kind", "zone", "village", "unit")},
        "stage": obj_col(stage_at),
        "stage_index": idx,
        "plan_status": obj_col(np.array(PARCEL_STATUSES, dtype=object)[best]),
        "targets": np.bincount(ep, minlength=n).astype(np.int64),
        "days_late": worst_late,
        "next_due": pd.Series(dates_of(next_due, next_due != np.iinfo(np.int64).max), dtype=object),
        "days_in_stage": days_in.astype(np.int64),
        "max_days": maxd,
        "blocked_days": blocked_days.astype(np.int64),
        "stalled": stalled,
        "stalled_why": pd.Series(why, dtype=object),
        "area_m2": area,
    })
    return Evaluation(as_of=as_of, targets=out_t, parcels=out_p, rules=rules)


def rollup(rows: pd.DataFrame, by: str) -> pd.DataFrame:
    """Counts of each status per ``by`` (village, zone, unit, kind, baseline…), most overdue first.

    ``rows``: ``Evaluation.targets`` (or any frame with ``status`` and ``days_late``).
    Columns: ``by``, ``total``, one per target status, ``max_days_late``.
    """
    cols = [by, "total", *TARGET_STATUSES, "max_days_late"]
    if not len(rows):
        return pd.DataFrame(columns=cols)
    key = rows[by].fillna("").astype(str)
    counts = pd.crosstab(key, rows["status"]).reindex(columns=list(TARGET_STATUSES), fill_value=0)
    out = pd.DataFrame({by: counts.index.to_numpy(object)})
    for s in TARGET_STATUSES:
        out[s] = counts[s].to_numpy(np.int64)
    out["total"] = counts.sum(axis=1).to_numpy(np.int64)
    out["max_days_late"] = rows.groupby(key)["days_late"].max().reindex(counts.index).to_numpy(np.int64)
    return out[cols].sort_values(["overdue", "max_days_late", by], ascending=[False, False, True],
                                 kind="stable").reset_index(drop=True)


def campaign_summary(ev: Evaluation, baseline: str, start: str | None, end: str | None) -> dict:
    """A campaign's countdown and completion, by count and by area, and what is left per unit."""
    t = ev.targets[ev.targets["baseline"] == baseline] if "baseline" in ev.targets else ev.targets.iloc[:0]
    done = t["status"].isin(("done", "done_late"))
    area = float(t["area_m2"].sum())
    left = t[~done]
    unit = left["unit"].fillna("").astype(str)
    by_unit = (pd.DataFrame({"unit": unit, "overdue": (left["status"] == "overdue").astype(int)})
               .groupby("unit").agg(left=("overdue", "size"), overdue=("overdue", "sum")).reset_index()
               .sort_values(["left", "unit"], ascending=[False, True], kind="stable"))
    end_day = dt.date.fromisoformat(end) if end else None
    start_day = dt.date.fromisoformat(start) if start else None
    return {
        "baseline": baseline,
        "start": start,
        "end": end,
        "days_left": (end_day - ev.as_of).days if end_day else None,
        "days_total": (end_day - start_day).days if end_day and start_day else None,
        "targets": int(len(t)),
        "done": int(done.sum()),
        "done_share": round(float(done.mean()), 4) if len(t) else 0.0,
        "area_m2": round(area, 1),
        "area_done_share": round(float(t["area_done_m2"].sum()) / area, 4) if area else 0.0,
        "overdue": int((t["status"] == "overdue").sum()),
        "left_by_unit": [{"unit": r.unit, "left": int(r.left), "overdue": int(r.overdue)}
                         for r in by_unit.itertuples()],
    }


# ------------------------------------------------------------------ follow-up orders (督办)
def followup_next(state: str, action: str) -> str | None:
    """The state ``action`` leads to from ``state``, or None when it is not allowed."""
    move = FOLLOWUP_MOVES.get(action)
    if move is None or state not in move[0]:
        return None
    return move[1]


def followup_overdue(state: str, due: str | None, as_of: dt.date) -> bool:
    """Past due without a reply: issued or sent back, and the due date has passed."""
    return state in ("issued", "returned") and bool(due) and dt.date.fromisoformat(str(due)) < as_of


def naive_status(targets: list[dict], parcels: dict[str, dict], history: dict[str, list[dict]],
                 catalog: Catalog, as_of: dt.date, rules: PlanRules) -> list[str]:
    """The same statuses the way one would write them first: a Python loop over targets, each
    replaying its parcels' history. Only for the benchmark's comparison (bench/plans.py)."""
    out = []
    groups: dict = {}
    for p in parcels.values():
        groups.setdefault(("village", p.get("village")), []).append(p)
        groups.setdefault(("site", p.get("park")), []).append(p)
    for t in targets:
        if t["object_type"] == "parcel":
            members = [parcels[t["object"]]] if t["object"] in parcels else []
        else:
            members = groups.get((t["object_type"], t["object"]), [])
        due = dt.date.fromisoformat(t["due_date"])
        reached_all, last = bool(members), None
        text = (lambda v: v if isinstance(v, str) and v else None)
        for p in members:
            pipe = catalog.pipeline_for(p["kind"])
            k = pipe.keys.index(t["stage"])
            when, at, seen = None, pipe.index(text(p["stage"])), False
            for e in sorted(history.get(p["code"], ()), key=lambda e: (e["event_date"], e["id"])):
                if e["action"] in STAGE_ACTIONS and dt.date.fromisoformat(e["event_date"]) <= as_of:
                    at, seen = pipe.index(text(e["to_stage"])), True
                    if pipe.index(text(e["from_stage"])) < k <= at:
                        when = dt.date.fromisoformat(e["event_date"])
            if not seen and not (text(p.get("stage_date")) and dt.date.fromisoformat(p["stage_date"]) <= as_of):
                at = -1
            if at < k:
                reached_all = False
            elif when is None and text(p.get("stage_date")):
                when = dt.date.fromisoformat(p["stage_date"])
            last = max(last, when) if last and when else (when or last)
        if reached_all:
            out.append("done" if last is None or last <= due else "done_late")
        elif as_of > due:
            out.append("overdue")
        elif (due - as_of).days <= rules.due_soon_days:
            out.append("due_soon")
        else:
            out.append("on_track")
    return out
