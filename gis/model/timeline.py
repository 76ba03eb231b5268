"""The district as of any date, replayed from the event log.

Two clocks (bitemporal):

- **as of** a business date D: the state the events say the parcels were in
  on D, with every correction applied — a correction recorded later voids the
  entries it corrects, so "as of D" shows what really held on D as far as the
  office knows today;
- **as recorded** at an instant T: only the events recorded by T count — what
  the system said at T, so a backdated entry or a later correction is visible
  as such (what an auditor asks).

A correction back to stage S voids the earlier stage entries of its parcel
that went beyond S (they were wrong), and takes effect from the earliest of
them: the parcel was at S since then. Everything is vectorised over the event
table (pandas), looping only over corrections, which are few.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from gis.base import clock
from gis.base.errors import InputError
from gis.base.i18n import t
from gis.model.eventlog import NO_DAY, EventLog, day_number, day_numbers, iso_days
from gis.model.pipelines import NOT_STARTED, Catalog

STAGE_ACTIONS = ("advance", "correction", "import")
BLOCK_ACTIONS = ("block", "unblock")
STATE_FIELDS = ("stage", "stage_date", "blocked", "blocked_reason")


@dataclass(frozen=True)
class Moment:
    """When to look: ``as_of`` (a business date) and/or ``as_recorded`` (an instant, UTC). None: now."""

    as_of: dt.date | None = None
    as_recorded: dt.datetime | None = None

    @property
    def is_now(self) -> bool:
        return self.as_of is None and self.as_recorded is None

    def business_date(self) -> dt.date:
        """The business date the state is for: ``as_of``, else the date recorded at, else today (office's)."""
        if self.as_of is not None:
            return self.as_of
        if self.as_recorded is not None:
            return self.as_recorded.astimezone(clock.office_zone()).date()
        return clock.office_today()


def parse_as_of(text: str | dt.date | None) -> dt.date | None:
    """``YYYY-MM-DD`` → a date (None for empty).

    Raises:
        InputError: not a date.
    """
    if text is None or text == "":
        return None
    if isinstance(text, dt.date):
        return text
    try:
        return dt.date.fromisoformat(str(text).strip())
    except ValueError:
        raise InputError("error.bad_date", value=str(text)) from None


def parse_as_recorded(text: str | dt.datetime | None) -> dt.datetime | None:
    """``YYYY-MM-DD`` (the end of that day) or ``YYYY-MM-DDTHH:MM`` in the office's time zone → an aware UTC instant.

    Raises:
        InputError: not a date or date and time.
    """
    if text is None or text == "":
        return None
    if isinstance(text, dt.datetime):
        t = text
    else:
        s = str(text).strip()
        try:
            if len(s) == 10:
                t = dt.datetime.combine(dt.date.fromisoformat(s), dt.time(23, 59, 59))
            else:
                t = dt.datetime.fromisoformat(s)
        except ValueError:
            raise InputError("error.bad_datetime", value=s) from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=clock.office_zone())
    return t.astimezone(dt.timezone.utc)


def as_of_text(meta: dict, lang: str = "zh") -> str:
    """What a print or export of the past says of its date, from the ``meta()`` of a store seen at a moment
    (``gis.store.asof``): "截至 2026-06-15（按 2026-06-20 18:00 的记录）"; "" for now."""
    if not meta.get("as_of"):
        return ""
    text = t("brief.as_of", lang, date=meta["as_of"])
    if meta.get("as_recorded"):
        text += t("brief.as_recorded", lang, at=meta["as_recorded"])
    return text


def _recorded_times(values) -> pd.Series:
    return pd.to_datetime(pd.Series(values, dtype=object), utc=True, format="ISO8601", errors="coerce")


def stage_positions(catalog: Catalog, kinds, stages) -> np.ndarray:
    """Position of each (kind, stage) in its pipeline; -1 for not started or a stage outside the pipeline."""
    return _stage_index(catalog, kinds, stages)


def _stage_index(catalog: Catalog, kinds, stages) -> np.ndarray:
    """Position of each (kind, stage) in its pipeline; -1 for not started or a stage outside the pipeline.

    Kinds and stages are factorised to integers and looked up in a small table: no per-row Python."""
    kcode, kinds_u = pd.factorize(np.asarray(kinds, dtype=object))
    scode, stages_u = pd.factorize(np.asarray(stages, dtype=object))
    table = np.full((len(kinds_u) + 1, len(stages_u) + 1), -1, dtype=np.int64)  # the last row/column: missing
    for i, kind in enumerate(kinds_u):
        if kind in catalog.kinds:
            keys = {k: n for n, k in enumerate(catalog.pipeline_for(kind).keys)}
            for j, stage in enumerate(stages_u):
                table[i, j] = keys.get(stage, -1)
    return table[kcode, scode]  # a code of -1 (missing) picks the last row/column


_SEP = "\x1f"


def _keys(kinds, stages) -> pd.Series:
    """``kind<US>stage`` per row (stage empty when not started): one string to look both up at once, vectorised."""
    k = pd.Series(np.asarray(kinds, dtype=object)).fillna("").astype(str)
    st = pd.Series(np.asarray(stages, dtype=object)).fillna("").astype(str)
    return k.str.cat(st, sep=_SEP)


def effective_stage_events(events: pd.DataFrame, kinds: dict, catalog: Catalog,
                           as_recorded: dt.datetime | None = None) -> pd.DataFrame:
    """The stage entries that stand, each with the date it takes effect from.

    ``events``: the event table (id, parcel, action, to_stage, event_date,
    recorded_at); ``kinds``: parcel code → kind (``kinds_of``). Returns the standing
    advance/correction/import rows with ``effective_date`` (ISO text), in the order recorded.
    """
    ev = events[events["action"].isin(STAGE_ACTIONS)]
    if as_recorded is not None and len(ev):
        ev = ev[_recorded_times(ev["recorded_at"]) <= pd.Timestamp(as_recorded)]
    ev = ev.sort_values("id", kind="stable").reset_index(drop=True)
    cols = ["id", "parcel", "action", "to_stage", "event_date"]
    ev = ev[cols].copy()
    ev["effective_date"] = ev["event_date"].astype(str).str.slice(0, 10)
    if not len(ev):
        return ev
    ev["idx"] = _stage_index(catalog, ev["parcel"].map(kinds).to_numpy(dtype=object), ev["to_stage"].to_numpy(dtype=object))
    corrections = np.flatnonzero((ev["action"] == "correction").to_numpy())
    if len(corrections):
        voided = np.zeros(len(ev), dtype=bool)
        eff = ev["effective_date"].to_numpy(dtype=object)
        idx = ev["idx"].to_numpy()
        # each parcel's rows, in the order recorded: one stable sort of integer codes, sliced per correction
        pid = pd.factorize(ev["parcel"].to_numpy(dtype=object))[0]
        order = np.argsort(pid, kind="stable")
        sorted_pid = pid[order]
        lo = np.searchsorted(sorted_pid, pid[corrections], side="left")
        hi = np.searchsorted(sorted_pid, pid[corrections], side="right")
        for pos, a, b in zip(corrections, lo, hi):  # in the order they were recorded
            mine = order[a:b]
            earlier = mine[(mine < pos) & ~voided[mine] & (idx[mine] > idx[pos])]
            if len(earlier):
                voided[earlier] = True
                eff[pos] = min(eff[pos], min(eff[earlier]))
        ev["effective_date"] = eff
        ev = ev[~voided]
    return ev.reset_index(drop=True)


def kinds_of(parcels: pd.DataFrame) -> pd.Series:
    """Parcel code → kind, for looking many codes up at once."""
    return pd.Series(parcels["kind"].to_numpy(dtype=object), index=parcels["code"].to_numpy(dtype=object))


def _days(iso) -> np.ndarray:
    """ISO dates (text, first 10 characters) → day numbers (``eventlog.NO_DAY`` for empty or no date)."""
    values = ["" if v is None or (not isinstance(v, str) and v != v) else str(v) for v in np.asarray(iso, dtype=object)]
    return day_numbers(pa.array(values, pa.string()))


class _Track:
    """Rows of one kind of entry (stage entries, or blocks) sorted by (parcel, date, id), as integer arrays, so
    that the last entry of every parcel up to a date is one comparison and one shift — no grouping per date."""

    def __init__(self, parcel_pos: np.ndarray, days: np.ndarray, ids: np.ndarray, values: dict[str, np.ndarray]):
        if len(ids) > 1 and bool((ids[1:] >= ids[:-1]).all()):
            # rows already in id order: one stable sort of a combined (parcel, day) key keeps ids in order
            d = days.astype(np.int64)
            valid = d != NO_DAY
            low = int(d[valid].min()) if valid.any() else 0
            d = np.where(valid, d - low + 1, 0)
            order = np.argsort(parcel_pos.astype(np.int64) * (int(d.max()) + 1) + d, kind="stable")
        else:
            order = np.lexsort((ids, days, parcel_pos))
        self.pos, self.days = parcel_pos[order], days[order]
        self.values = {k: v[order] for k, v in values.items()}
        self.parcels = np.unique(self.pos)

    def last_until(self, day: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(parcel positions, their last entry's values) among the entries dated by day number ``day``."""
        upto = (self.days <= day) & (self.days != NO_DAY)
        nxt_other = np.ones(len(upto), dtype=bool)
        if len(upto) > 1:
            nxt_other[:-1] = (self.pos[1:] != self.pos[:-1]) | ~upto[1:]
        end = upto & nxt_other
        return self.pos[end], {k: v[end] for k, v in self.values.items()}


def _stage_table(catalog: Catalog, kinds_u, stages_u) -> np.ndarray:
    """Position of each (kind, stage) in its pipeline, -1 for none; the last row and column stand for missing."""
    table = np.full((len(kinds_u) + 1, len(stages_u) + 1), -1, dtype=np.int64)
    for i, kind in enumerate(kinds_u):
        if kind in catalog.kinds:
            keys = {k: n for n, k in enumerate(catalog.pipeline_for(kind).keys)}
            for j, stage in enumerate(stages_u):
                table[i, j] = keys.get(stage, -1)
    return table


def _void_corrected(pid: np.ndarray, idx: np.ndarray, eff: np.ndarray, is_corr: np.ndarray) -> np.ndarray:
    """Which stage entries (in the order recorded) a later correction voids; ``eff`` (day numbers) is moved
    back in place: a correction back to S voids its parcel's earlier standing entries beyond S and takes
    effect from the earliest of them. Loops over the corrections only (few), each on its parcel's rows."""
    voided = np.zeros(len(pid), dtype=bool)
    corrections = np.flatnonzero(is_corr)
    if not len(corrections):
        return voided
    # a parcel with one correction (the usual case): all at once, no loop
    per = np.bincount(pid[corrections], minlength=int(pid.max()) + 1)
    single = corrections[per[pid[corrections]] == 1]
    corr_of = np.full(len(per), -1, dtype=np.int64)
    corr_of[pid[single]] = single
    c = corr_of[pid]
    rows = np.arange(len(pid))
    hit = (c >= 0) & (rows < c) & (idx > idx[np.maximum(c, 0)])
    voided[hit] = True
    np.minimum.at(eff, c[hit], eff[hit])
    several = corrections[per[pid[corrections]] > 1]
    if not len(several):
        return voided
    order = np.argsort(pid, kind="stable")  # each parcel's rows, in the order recorded
    sorted_pid = pid[order]
    lo = np.searchsorted(sorted_pid, pid[several], side="left")
    hi = np.searchsorted(sorted_pid, pid[several], side="right")
    for pos, a, b in zip(several, lo, hi):  # in the order they were recorded
        mine = order[a:b]
        earlier = mine[(mine < pos) & ~voided[mine] & (idx[mine] > idx[pos])]
        if len(earlier):
            voided[earlier] = True
            eff[pos] = min(eff[pos], eff[earlier].min())
    return voided


class Replay:
    """The event log prepared once (for one as-recorded instant), to give the state at many business dates.

    ``events``: the event table (``Store.events``) or, faster, its arrays (``Store.event_log``)."""

    def __init__(self, parcels: pd.DataFrame, events, catalog: Catalog, as_recorded: dt.datetime | None = None):
        self.parcels = parcels
        self.catalog = catalog
        log = events if isinstance(events, EventLog) else EventLog.from_frame(events)
        self.log = log
        n = len(parcels)
        index = pd.Index(parcels["code"].to_numpy(dtype=object))
        pmap = np.append(index.get_indexer(log.parcels) if len(log.parcels) else np.array([], dtype=np.int64), -1)
        pos = pmap[log.parcel]  # a null parcel (code -1) picks the appended -1
        keep = pos >= 0
        any_stage = log.codes_of(log.actions, STAGE_ACTIONS)[log.action] & keep
        any_block = log.codes_of(log.actions, BLOCK_ACTIONS)[log.action] & keep
        if as_recorded is not None and len(log):
            keep &= log.recorded_by(as_recorded)
        is_stage, is_bl = any_stage & keep, any_block & keep
        rows = np.flatnonzero(is_stage)  # in the order recorded
        kcode, kinds_u = pd.factorize(parcels["kind"].to_numpy(dtype=object))
        idx = _stage_table(catalog, kinds_u, log.stages)[kcode[pos[rows]], log.stage[rows]]
        eff = log.day[rows].copy()
        voided = _void_corrected(pos[rows], idx, eff,
                                 log.codes_of(log.actions, ("correction",))[log.action[rows]])
        standing, eff = rows[~voided], eff[~voided]
        self.stage_days = eff  # the day each standing entry takes effect from
        self.stages = _Track(pos[standing], eff, log.id[standing], {"stage": log.stage[standing], "day": eff})
        b = np.flatnonzero(is_bl)
        self.blocks = _Track(pos[b], log.day[b], log.id[b],
                             {"block": log.codes_of(log.actions, ("block",))[log.action[b]], "reason": log.reason[b]})
        # a store older than its history: a parcel with no entries at all (recorded whenever) keeps its stage
        has_entries = np.zeros(n, dtype=bool)
        has_entries[pos[any_stage]] = True
        self.legacy = ~has_entries & parcels["stage"].notna().to_numpy()
        self.legacy_day = _days(parcels["stage_date"])
        flagged = np.zeros(n, dtype=bool)
        flagged[pos[any_block]] = True
        # blocked today with no block entry at all (a store older than its history): we cannot tell since when
        self.unknown_block = ~flagged & parcels["blocked"].fillna(0).astype(bool).to_numpy()

    def at(self, day: dt.date) -> pd.DataFrame:
        """The parcels as they were on business date ``day``."""
        d = day_number(day)
        out = self.parcels.copy()
        stage, blocked, date, (pos, vals) = self._state(d, dates=True)
        reason = np.full(len(out), None, dtype=object)
        reason[pos] = np.where(vals["block"], np.append(self.log.reasons, None)[vals["reason"]], None)
        kept = out["blocked_reason"].to_numpy(dtype=object)
        reason[self.unknown_block] = kept[self.unknown_block]
        obj = (lambda values: pd.Series(values, index=out.index, dtype=object))  # None stays None, not NaN
        out["stage"] = obj(stage)
        out["stage_date"] = obj(date)
        out["blocked"] = blocked.astype(int)
        out["blocked_reason"] = obj(np.where(pd.isna(reason), None, reason))
        return out

    def stages_at(self, day: dt.date) -> tuple[np.ndarray, np.ndarray]:
        """``(stage, blocked)`` of every parcel (in ``parcels``' order) on business date ``day``, as :meth:`at`
        gives them, without the frame: a stage per parcel (None: not started) and whether it was blocked."""
        stage, blocked, _, _ = self._state(day_number(day), dates=False)
        return stage, blocked

    def _state(self, d: int, dates: bool):
        n = len(self.parcels)
        stage = np.full(n, None, dtype=object)
        date = np.full(n, None, dtype=object) if dates else None
        pos, vals = self.stages.last_until(d)
        stage[pos] = np.append(self.log.stages, None)[vals["stage"]]
        if dates:
            date[pos] = iso_days(vals["day"])
        known = self.legacy & (self.legacy_day <= d) & (self.legacy_day != NO_DAY)
        if known.any():
            stage[known] = self.parcels["stage"].to_numpy(dtype=object)[known]
            if dates:
                date[known] = self.parcels["stage_date"].to_numpy(dtype=object)[known]
        stage[stage == NOT_STARTED] = None
        blocked = np.zeros(n, dtype=bool)
        bpos, bvals = self.blocks.last_until(d)
        blocked[bpos] = bvals["block"]
        return stage, blocked | self.unknown_block, date, (bpos, bvals)


def state_at(parcels: pd.DataFrame, events: pd.DataFrame, catalog: Catalog, moment: Moment) -> pd.DataFrame:
    """``parcels`` (from ``Store.parcels``) with stage, stage_date, blocked and blocked_reason as of ``moment``.

    A parcel none of whose standing entries is dated by then was not started;
    a parcel with a stage but no entries at all (a store older than its
    history) keeps its stage from its stage date. The other columns stay as
    they are today. For many dates, use one ``Replay``.
    """
    if moment.is_now or len(parcels) == 0:
        return parcels.copy()
    return Replay(parcels, events, catalog, moment.as_recorded).at(moment.business_date())


def events_until(events: pd.DataFrame, moment: Moment) -> pd.DataFrame:
    """The events that had happened (and been recorded) by ``moment``."""
    if moment.is_now or not len(events):
        return events
    day = moment.business_date().isoformat()
    keep = events["event_date"].astype(str).str.slice(0, 10) <= day
    if moment.as_recorded is not None:
        keep = keep & (_recorded_times(events["recorded_at"]) <= pd.Timestamp(moment.as_recorded)).to_numpy()
    return events[keep]


def month_ends(first: dt.date, last: dt.date) -> list[dt.date]:
    """The last day of every month from ``first``'s to ``last``'s (``last`` itself for its own month)."""
    out, y, m = [], first.year, first.month
    while (y, m) <= (last.year, last.month):
        nxt = dt.date(y + (m == 12), m % 12 + 1, 1)
        out.append(min(nxt - dt.timedelta(days=1), last))
        y, m = nxt.year, nxt.month
    return out


def trend_by_month(parcels: pd.DataFrame, events: pd.DataFrame, catalog: Catalog,
                   until: dt.date | None = None, since: dt.date | None = None) -> pd.DataFrame:
    """One row per month: the state at its end — area past site clearance (m², 亩), parcels per phase — and the
    stage entries and blocks dated in it.

    Columns: month (YYYY-MM), date, area_m2_cleared, area_mu_cleared, cleared_parcels, phase_<key> per phase,
    advanced (standing stage entries dated in the month), blocked (parcels blocked at its end), and for the
    old-village parcels, as the village board counts them: signed_share (at or past 签约) and demolished_share
    (past 拆除), shares of their number.
    """
    until = until or clock.office_today()
    replay = Replay(parcels, events, catalog)
    days = replay.stage_days[replay.stage_days != NO_DAY]
    first = since or (dt.date(1970, 1, 1) + dt.timedelta(days=int(days.min())) if len(days) else until)
    area = parcels["area_m2"].astype(float).to_numpy()
    phases = list(catalog.phases)
    kcode, kinds_u = pd.factorize(parcels["kind"].to_numpy(dtype=object))
    village = (parcels["kind"] == "village").to_numpy()
    vkeys = catalog.pipeline_for("village").keys if "village" in catalog.kinds else []
    signed_from = vkeys.index("signing") if "signing" in vkeys else len(vkeys)
    demolished_from = vkeys.index("demolition") + 1 if "demolition" in vkeys else len(vkeys)
    n_village = int(village.sum())
    looked: dict = {}  # (kind, stage) -> (phase index or -1, past clearance, position in its pipeline or -1)

    def look(kind, stage):
        key = (kind, stage)
        if key not in looked:
            ph, past, step = -1, False, -1
            if isinstance(kind, str) and kind in catalog.kinds:
                pipe = catalog.pipeline_for(kind)
                if stage is None or stage == "":  # not started
                    ph = phases.index(catalog.phase_of(kind, None).key)
                else:
                    for i, st in enumerate(pipe.stages):
                        if st.key == stage:
                            ph, past, step = (phases.index(st.phase) if st.phase in phases else -1), bool(
                                st.past_clearance), i
            looked[key] = (ph, past, step)
        return looked[key]

    rows = []
    prev = day_number(first.replace(day=1) - dt.timedelta(days=1))
    for end in month_ends(first, until):
        stage, blocked = replay.stages_at(end)
        # (kind, stage) pairs factorised, each looked up once: no per-parcel strings or frames each month (the
        # board's trend took ~270 ms for the demo's months, after every write, issue 19)
        scode, stages_u = pd.factorize(stage)  # None: -1
        shape = (len(kinds_u) + 1, len(stages_u) + 1)  # the last row/column: a missing kind/stage (code -1)
        ph_t, past_t, step_t = np.full(shape, -1, np.int64), np.zeros(shape, bool), np.full(shape, -1, np.int64)
        for i, k in enumerate((*kinds_u, None)):
            for j, st in enumerate((*stages_u, None)):
                ph_t[i, j], past_t[i, j], step_t[i, j] = look(k, st)
        phase, cleared, step = ph_t[kcode, scode], past_t[kcode, scode], step_t[kcode, scode]
        m2 = float(area[cleared].sum())
        day = end.isoformat()
        row = {"month": day[:7], "date": day, "area_m2_cleared": round(m2, 1),
               "area_mu_cleared": round(m2 / (10000 / 15), 2), "cleared_parcels": int(cleared.sum())}
        counts = np.bincount(phase[phase >= 0], minlength=len(phases))
        for i, key in enumerate(phases):
            row[f"phase_{key}"] = int(counts[i])
        row["advanced"] = int(((days > prev) & (days <= day_number(end))).sum())
        row["blocked"] = int(blocked.sum())
        if n_village:
            pos = step[village]
            row["signed_share"] = round(float((pos >= signed_from).mean()), 4)
            row["demolished_share"] = round(float((pos >= demolished_from).mean()), 4)
        else:
            row["signed_share"] = row["demolished_share"] = 0.0
        rows.append(row)
        prev = day_number(end)
    return pd.DataFrame(rows)


def changes_between(parcels: pd.DataFrame, events: pd.DataFrame, catalog: Catalog,
                    since: dt.date, until: dt.date) -> pd.DataFrame:
    """What changed between two dispatch meetings: every entry dated in ``since``..``until`` (inclusive) or
    recorded in it (a backdated entry), as recorded by the end of ``until``, a row per parcel and change.

    Columns: code, kind, village, zone, unit, area_m2, change (``advanced``, ``back``, ``blocked``,
    ``unblocked``), from_stage (as recorded before ``since``), to_stage (as of ``until``), event_date,
    recorded_by, why (the note of an advance, the reason of a correction or a block).
    """
    cols = ["code", "change", "from_stage", "to_stage", "event_date", "recorded_by", "why"]
    info = [c for c in ("code", "kind", "village", "zone", "unit", "area_m2") if c in parcels.columns]
    if not len(events):
        return pd.DataFrame(columns=info + cols[1:])
    start = since.isoformat()
    end_t = parse_as_recorded(until.isoformat())
    start_t = parse_as_recorded((since - dt.timedelta(days=1)).isoformat())
    recorded = _recorded_times(events["recorded_at"]).to_numpy()
    day = events["event_date"].astype(str).str.slice(0, 10).to_numpy()
    in_window = ((day >= start) & (day <= until.isoformat())) | (recorded > pd.Timestamp(start_t))
    in_window = in_window & (recorded <= pd.Timestamp(end_t))
    ev = events[in_window].sort_values("id", kind="stable").copy()
    kinds = kinds_of(parcels)
    ev = ev[ev["parcel"].isin(kinds.index)]
    ev["i_from"] = _stage_index(catalog, ev["parcel"].map(kinds), ev["from_stage"])
    ev["i_to"] = _stage_index(catalog, ev["parcel"].map(kinds), ev["to_stage"])
    stage_ev = ev["action"].isin(STAGE_ACTIONS)
    change = np.select(
        [stage_ev & (ev["i_to"] > ev["i_from"]), stage_ev & (ev["i_to"] < ev["i_from"]),
         ev["action"] == "block", ev["action"] == "unblock"],
        ["advanced", "back", "blocked", "unblocked"], default="")
    ev["change"] = change
    ev = ev[ev["change"] != ""]
    ev["why"] = np.where(ev["change"] == "advanced", ev["note"].fillna(""), ev["reason"].fillna(""))
    last = ev.drop_duplicates(["parcel", "change"], keep="last").rename(columns={"parcel": "code"})
    before = state_at(parcels, events, catalog, Moment(as_of=since - dt.timedelta(days=1), as_recorded=start_t))
    after = state_at(parcels, events, catalog, Moment(as_of=until, as_recorded=end_t))
    out = last[["code", "change", "event_date", "recorded_by", "why"]].merge(parcels[info], on="code", how="left")
    for col, state in (("from_stage", before), ("to_stage", after)):
        stage = out["code"].map(dict(zip(state["code"], state["stage"])))
        out[col] = stage.astype(object).where(stage.notna(), None)
    out = out[info + cols[1:]]
    order = {"advanced": 0, "back": 1, "blocked": 2, "unblocked": 3}
    out = out.assign(_o=out["change"].map(order)).sort_values(["_o", "code"], kind="stable").drop(columns="_o")
    return out.reset_index(drop=True)
