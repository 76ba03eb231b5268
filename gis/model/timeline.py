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

from gis.base import clock
from gis.base.errors import InputError
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


def _recorded_times(values) -> pd.Series:
    return pd.to_datetime(pd.Series(values, dtype=object), utc=True, format="ISO8601", errors="coerce")


def _stage_index(catalog: Catalog, kinds: pd.Series, stages: pd.Series) -> np.ndarray:
    """Position of each (kind, stage) in its pipeline; -1 for not started or a stage outside the pipeline."""
    table = {f"{kind}{_SEP}{key}": i for kind in catalog.kinds for i, key in enumerate(catalog.pipeline_for(kind).keys)}
    return _keys(kinds, stages).map(table).fillna(-1).astype(np.int64).to_numpy()


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
    recorded_at); ``kinds``: parcel code → kind. Returns the standing
    advance/correction/import rows with ``effective_date`` (ISO text),
    sorted by (parcel, effective_date, id).
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
    ev["idx"] = _stage_index(catalog, ev["parcel"].map(kinds), ev["to_stage"])
    corrections = np.flatnonzero((ev["action"] == "correction").to_numpy())
    if len(corrections):
        voided = np.zeros(len(ev), dtype=bool)
        eff = ev["effective_date"].to_numpy(dtype=object)
        idx = ev["idx"].to_numpy()
        positions = ev.groupby("parcel", sort=False).indices
        parcel = ev["parcel"].to_numpy(dtype=object)
        for pos in corrections:  # in the order they were recorded
            mine = positions[parcel[pos]]
            earlier = mine[(mine < pos) & ~voided[mine] & (idx[mine] > idx[pos])]
            if len(earlier):
                voided[earlier] = True
                eff[pos] = min(eff[pos], min(eff[earlier]))
        ev["effective_date"] = eff
        ev = ev[~voided]
    return ev.sort_values(["parcel", "effective_date", "id"], kind="stable").reset_index(drop=True)


def _blocks(events: pd.DataFrame, as_recorded: dt.datetime | None) -> pd.DataFrame:
    b = events[events["action"].isin(BLOCK_ACTIONS)]
    if as_recorded is not None and len(b):
        b = b[_recorded_times(b["recorded_at"]) <= pd.Timestamp(as_recorded)]
    b = b[["id", "parcel", "action", "event_date", "reason"]].copy()
    b["event_date"] = b["event_date"].astype(str).str.slice(0, 10)
    return b.sort_values(["parcel", "event_date", "id"], kind="stable")


class Replay:
    """The event log prepared once (for one as-recorded instant), to give the state at many business dates."""

    def __init__(self, parcels: pd.DataFrame, events: pd.DataFrame, catalog: Catalog,
                 as_recorded: dt.datetime | None = None):
        self.parcels = parcels
        self.catalog = catalog
        kinds = dict(zip(parcels["code"], parcels["kind"]))
        self.stage_events = effective_stage_events(events, kinds, catalog, as_recorded)
        self.blocks = _blocks(events, as_recorded)
        codes = parcels["code"]
        has_entries = codes.isin(set(self.stage_events["parcel"])) if len(self.stage_events) else codes.isin(())
        self.legacy = (~has_entries & parcels["stage"].notna()).to_numpy()
        self.legacy_date = parcels["stage_date"].fillna("").astype(str).str.slice(0, 10).to_numpy()
        # blocked today with no block entry at all (a store older than its history): we cannot tell since when
        self.unknown_block = (~codes.isin(set(self.blocks["parcel"])) & parcels["blocked"].astype(bool)).to_numpy()

    def at(self, day: dt.date) -> pd.DataFrame:
        """The parcels as they were on business date ``day``."""
        d = day.isoformat()
        out = self.parcels.copy()
        codes = out["code"]
        live = self.stage_events[self.stage_events["effective_date"] <= d]
        last = live.drop_duplicates("parcel", keep="last").set_index("parcel")
        stage = codes.map(last["to_stage"]).to_numpy(dtype=object)
        date = codes.map(last["effective_date"]).to_numpy(dtype=object)
        known = self.legacy & (self.legacy_date <= d)
        stage = np.where(self.legacy, np.where(known, out["stage"].to_numpy(dtype=object), None), stage)
        date = np.where(self.legacy, np.where(known, out["stage_date"].to_numpy(dtype=object), None), date)
        stage = np.where(pd.isna(stage) | (stage == NOT_STARTED), None, stage)
        obj = (lambda values: pd.Series(values, index=out.index, dtype=object))  # None stays None, not NaN
        out["stage"] = obj(stage)
        out["stage_date"] = obj(np.where(pd.isna(date), None, date))
        b = self.blocks[self.blocks["event_date"] <= d].drop_duplicates("parcel", keep="last").set_index("parcel")
        blocked = codes.map(b["action"]).eq("block").to_numpy()
        reason = codes.map(b["reason"]).to_numpy(dtype=object)
        out["blocked"] = (blocked | self.unknown_block).astype(int)
        kept = out["blocked_reason"].to_numpy(dtype=object)
        reason = np.where(blocked, reason, np.where(self.unknown_block, kept, None))
        out["blocked_reason"] = obj(np.where(pd.isna(reason), None, reason))
        return out


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
    advanced (standing stage entries dated in the month), blocked (parcels blocked at its end).
    """
    until = until or clock.office_today()
    replay = Replay(parcels, events, catalog)
    ev = replay.stage_events
    dates = ev["effective_date"] if len(ev) else pd.Series([], dtype=object)
    first = since or (dt.date.fromisoformat(min(dates)) if len(dates) else until)
    area = parcels["area_m2"].astype(float).to_numpy()
    phase_of = {f"{k}{_SEP}": catalog.phase_of(k, None).key for k in catalog.kinds}
    phase_of.update({f"{k}{_SEP}{st.key}": st.phase for k in catalog.kinds for st in catalog.pipeline_for(k).stages})
    past = {f"{k}{_SEP}{st.key}" for k in catalog.kinds for st in catalog.pipeline_for(k).stages if st.past_clearance}
    rows = []
    prev = (first.replace(day=1) - dt.timedelta(days=1)).isoformat()
    for end in month_ends(first, until):
        state = replay.at(end)
        keys = _keys(state["kind"], state["stage"])
        phase = keys.map(phase_of)
        cleared = keys.isin(past).to_numpy()
        m2 = float(area[cleared].sum())
        day = end.isoformat()
        row = {"month": day[:7], "date": day, "area_m2_cleared": round(m2, 1),
               "area_mu_cleared": round(m2 / (10000 / 15), 2), "cleared_parcels": int(cleared.sum())}
        counts = phase.value_counts()
        for key in catalog.phases:
            row[f"phase_{key}"] = int(counts.get(key, 0))
        row["advanced"] = int(((dates > prev) & (dates <= day)).sum()) if len(dates) else 0
        row["blocked"] = int(state["blocked"].sum())
        rows.append(row)
        prev = day
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
    kinds = dict(zip(parcels["code"], parcels["kind"]))
    ev = ev[ev["parcel"].isin(kinds)]
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
