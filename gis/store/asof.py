"""A store seen at a moment: every read that shows stages answers as of a business date (and/or as recorded at
an instant), replayed from the event log (``gis.model.timeline``).

    view = store_at(store, Moment(as_of=dt.date(2026, 6, 15)))
    render_parcel_page(view, "V07-023", "brief.pdf")     # the page as it would have been printed then
    export(view, "xlsx", "台账.xlsx")                      # the ledger as of that date

The view wraps the store and answers ``parcels``, ``parcel``, ``history``,
``events``, ``meta`` and the plan status itself; everything else (names,
layers, filters, the catalogue) is the store's. ``meta()`` carries ``as_of``
(and ``as_recorded``), which the pages and exports print as "截至 YYYY-MM-DD".
The replay is made once per view and store version, so an atlas of 30 pages
replays once.
"""
from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from gis.base import clock
from gis.model.timeline import STATE_FIELDS, Moment, events_until

#: a parcel's facts that change without a stage of their own: shown as of a past date only when known then
FACT_FIELDS = ("note", "land_use", "owner", "updated_at", "updated_by")
_NEVER = pd.Timestamp.max.tz_localize("UTC")


def _instant(value) -> pd.Timestamp:
    """An ISO time (naive: office's time) as a UTC timestamp; missing or unreadable → the far future
    (not known to be by any date)."""
    if value is None or value == "" or (isinstance(value, float) and value != value):
        return _NEVER
    try:
        t = pd.Timestamp(value) if not isinstance(value, pd.Timestamp) else value
    except (TypeError, ValueError):
        return _NEVER
    if pd.isna(t):
        return _NEVER
    if t.tzinfo is None:
        t = t.tz_localize(clock.office_zone())
    return t.tz_convert("UTC")


def _instants(values) -> pd.Series:
    """:func:`_instant` of each value, parsed as arrays: ISO text with an offset as such, without one in the
    office's time; what ISO 8601 does not read one by one, as :func:`_instant` does (missing: the far future)."""
    series = pd.Series(values)
    codes, distinct = pd.factorize(series, use_na_sentinel=True)
    if len(distinct) < len(series):  # a log holds many equal stamps: each distinct one parsed once
        parsed = np.append(_instants(pd.Series(distinct, dtype=object)).array.asi8, _NEVER.value)
        nanos = parsed[np.where(codes >= 0, codes, len(parsed) - 1)]  # missing (-1): the far future
        return pd.Series(pd.DatetimeIndex(nanos.view("datetime64[ns]"), tz="UTC"), index=series.index)
    v = series.astype(object)
    out = pd.Series(_NEVER, index=v.index, dtype="datetime64[ns, UTC]")
    given = v.notna().to_numpy(bool)
    if not given.any():
        return out
    text = pc.utf8_trim_whitespace(pa.array(v[given].astype(str).to_numpy(object), pa.string()))
    aware = pc.match_substring_regex(text, r"(?:Z|[+-]\d\d:?\d\d)$").to_numpy(zero_copy_only=False)
    t = pd.Series(text.to_numpy(zero_copy_only=False), index=v.index[given], dtype=object)
    parsed = pd.Series(pd.NaT, index=t.index, dtype="datetime64[ns, UTC]")
    if aware.any():
        parsed[aware] = pd.to_datetime(t[aware], utc=True, format="ISO8601", errors="coerce")
    if (~aware).any():
        naive = pd.to_datetime(t[~aware], format="ISO8601", errors="coerce")
        parsed[~aware] = naive.dt.tz_localize(clock.office_zone(), ambiguous="NaT",
                                              nonexistent="shift_forward").dt.tz_convert("UTC")
    odd = (parsed.isna() & (t != "")).to_numpy(bool)
    if odd.any():  # not ISO 8601 (another layout, a timestamp object): one by one
        parsed[odd] = pd.Series([_instant(x) for x in v[given][odd]], index=t.index[odd], dtype="datetime64[ns, UTC]")
    out[given] = parsed.where(parsed.notna(), _NEVER)
    return out


def _filled_all(values: pd.Series) -> np.ndarray:
    """:func:`_filled` of each value."""
    v = values.astype(object)
    given = v.notna()
    return (given & (v.where(given, "").astype(str).str.strip() != "")).to_numpy(bool)


def _filled(value) -> bool:
    return value is not None and not (isinstance(value, float) and value != value) and str(value).strip() != ""


def _recorded_by(events: pd.DataFrame, instant: dt.datetime | None) -> pd.Series:
    if instant is None or not len(events):
        return pd.Series(True, index=events.index)
    t = pd.to_datetime(events["recorded_at"], utc=True, format="ISO8601", errors="coerce")
    return t <= pd.Timestamp(instant)


class StoreAt:
    """``store`` as of ``moment`` (read-only use: a view of the past takes no writes)."""

    def __init__(self, store, moment: Moment):
        self._store = store
        self.moment = moment
        self._cache: tuple[int, pd.DataFrame, pd.DataFrame] | None = None

    def __getattr__(self, name):
        return getattr(self._store, name)

    # ---- what the view is
    @property
    def base(self):
        """The store itself (now)."""
        return self._store

    @property
    def moment_key(self) -> str:
        """What tells this view's caches from the store's (pages cache the parcels they draw)."""
        m = self.moment
        return f"@{m.business_date().isoformat()}/{m.as_recorded.isoformat() if m.as_recorded else ''}"

    def as_of_date(self) -> dt.date:
        return self.moment.business_date()

    def meta(self) -> dict[str, str]:
        out = dict(self._store.meta())
        out["as_of"] = self.as_of_date().isoformat()
        if self.moment.as_recorded is not None:
            out["as_recorded"] = self.moment.as_recorded.astimezone(clock.office_zone()).strftime("%Y-%m-%d %H:%M")
        return out

    # ---- the state, replayed once per store version
    def _state(self, facts: str = "then") -> pd.DataFrame:
        """Every parcel by code with the stages of the moment and, ``facts="then"``, its facts of then
        (:meth:`_all_facts_then`); ``facts="now"``: with its record's facts as they are."""
        version = self._store.data_version()
        if self._cache is None or self._cache[0] != version:
            parcels = self._store.parcels(geometry=False)
            # the store replays from the few columns it needs (gis/store/timeline.py): fast at any size
            state = self._store.stage_state(self.moment).set_index("code")
            for col in STATE_FIELDS:
                values = parcels["code"].map(state[col])
                parcels[col] = values.fillna(0).astype(int) if col == "blocked" else \
                    values.astype(object).where(values.notna(), None)
            parcels = parcels.set_index("code", drop=False)
            self._cache = (version, parcels, self._all_facts_then(parcels))
        return self._cache[2 if facts == "then" else 1]

    def _all_facts_then(self, parcels: pd.DataFrame) -> pd.DataFrame:
        """``parcels`` (by code) with the :data:`FACT_FIELDS` of :meth:`cut` and an ``unknown_then`` column:
        :meth:`_facts_then`'s rules for every parcel at once (what a listing or an export of the past shows).

        Parcels not written since the cut (one compare of ``updated_at``) keep their record; of the others,
        one read of the audit trail after the cut gives the before images, one read of the event log the
        notes and last entries of those the trail does not hold.
        """
        parcels = parcels.copy()
        unknown: dict[str, list[str]] = {}
        if len(parcels):
            cut = pd.Timestamp(self.cut())
            later = list(parcels.index[(_instants(parcels["updated_at"]) > cut).to_numpy()])
            images = self._images_at(set(later), cut) if later else {}
            columns = {f: parcels[f].to_numpy(object).copy() for f in FACT_FIELDS}
            if images:
                pos = parcels.index.get_indexer(list(images))
                for f in FACT_FIELDS:
                    columns[f][pos] = [im.get(f) for im in images.values()]
            rest = [c for c in later if c not in images]
            if rest:
                pos = parcels.index.get_indexer(rest)
                then = self._log_facts_at(rest, cut).reindex(rest)
                seen = then["seen"].fillna(False).to_numpy(bool)
                known = {"note": then["note"].notna().to_numpy(bool), "land_use": np.zeros(len(rest), bool),
                         "owner": np.zeros(len(rest), bool), "updated_at": seen}
                # a fact empty today and not known then is left empty, not marked (as on the parcel's page)
                marks = {f: ~k & _filled_all(parcels[f].iloc[pos]) for f, k in known.items()}
                for f in FACT_FIELDS:
                    col = then[f] if f in then else pd.Series(None, index=then.index, dtype=object)
                    columns[f][pos] = col.astype(object).where(col.notna(), None).to_numpy(object)
                any_mark = np.logical_or.reduce(list(marks.values()))
                for i in np.flatnonzero(any_mark):
                    unknown[rest[i]] = [f for f in known if marks[f][i]]
            for f in FACT_FIELDS:
                parcels[f] = columns[f]
        parcels["unknown_then"] = [unknown.get(c, []) for c in parcels.index] if unknown else \
            [[] for _ in range(len(parcels))]
        return parcels

    def _images_at(self, codes: set, cut: pd.Timestamp) -> dict[str, dict]:
        """Of ``codes``, the full records as they stood at ``cut`` that the audit trail holds
        (:meth:`_image_at` for many parcels, in one query: the trail's rows since the day before the cut)."""
        since = (cut.tz_convert(clock.office_zone()).date() - dt.timedelta(days=1)).isoformat()
        with self._store._connect() as con:
            # ``at`` is ISO text: every row of the cut's day or later sorts at or after the day before it
            rows = con.execute("SELECT id, target, at, before FROM audit WHERE outcome = 'ok'"
                               " AND before IS NOT NULL AND at >= ? ORDER BY id", (since,)).fetchall()
        if not rows:
            return {}
        trail = pd.DataFrame([(r[0], r[1], r[2], r[3]) for r in rows], columns=["id", "target", "at", "before"])
        trail = trail[trail["target"].isin(codes)]
        trail = trail[_instants(trail["at"]).to_numpy() > cut].drop_duplicates("target", keep="first")
        out = {}
        for code, before in zip(trail["target"], trail["before"]):
            try:
                image = json.loads(before)
            except (TypeError, ValueError):
                continue
            if not isinstance(image, dict) or "updated_at" not in image or "land_use" not in image:
                continue  # a partial image (a note edit): the other facts then are not in it
            if _instant(image.get("updated_at")) <= cut:
                out[code] = image
        return out

    def _log_facts_at(self, codes: list[str], cut: pd.Timestamp) -> pd.DataFrame:
        """By parcel of ``codes`` with an event recorded by ``cut`` (``seen``): ``updated_at``/``updated_by`` of
        the last of them and ``note`` of the last advance or correction with a note (the facts the log tells)."""
        ev = self._store._event_arrow(["id", "parcel", "action", "recorded_at", "recorded_by", "note"])
        ev = ev.filter(pc.is_in(ev.column("parcel"), value_set=pa.array(list(codes), pa.string())))
        # what was recorded two days or more after the cut's day cannot be by the cut: left out before parsing
        rec = pc.fill_null(ev.column("recorded_at").cast(pa.string()), "")
        limit = (cut.tz_convert(clock.office_zone()).date() + dt.timedelta(days=2)).isoformat()
        dated = pc.match_substring_regex(rec, r"^\d{4}-\d\d-\d\d")
        ev = ev.filter(pc.invert(pc.and_(dated, pc.greater_equal(pc.utf8_slice_codeunits(rec, 0, 10), limit))))
        ev = ev.to_pandas()
        t = _instants(ev["recorded_at"]).array.asi8
        by = np.flatnonzero(t <= pd.Timestamp(cut).as_unit("ns").value)
        ids = ev["id"].to_numpy(np.int64)
        order = by[np.lexsort((ids[by], t[by]))]  # recorded by the cut, in the order recorded (then by id)
        group, _ = pd.factorize(ev["parcel"])

        def last_of(rows: np.ndarray) -> np.ndarray:
            """The last of ``rows`` (in recorded order) of each parcel."""
            _, first = np.unique(group[rows[::-1]], return_index=True)
            return rows[::-1][first]

        last = last_of(order)
        pick = (lambda col, rows: ev[col].iloc[rows].astype(object).to_numpy(object))
        out = pd.DataFrame({"updated_at": pick("recorded_at", last), "updated_by": pick("recorded_by", last),
                            "seen": True}, index=pd.Index(pick("parcel", last), name="parcel"))
        noted = ev["action"].isin(["advance", "correction"]).to_numpy(bool) & \
            (ev["note"].fillna("").astype(str) != "").to_numpy(bool)
        with_note = last_of(order[noted[order]])
        out["note"] = pd.Series(pick("note", with_note), index=pick("parcel", with_note), dtype=object
                                ).reindex(out.index)
        return out

    def parcels(self, kind=None, zone=None, village=None, stage=None, search=None, blocked=None,
                geometry: bool = True):
        """``Store.parcels`` with stage, stage date and blocked flag as of the moment (filtered on those), and
        the facts of then (:data:`FACT_FIELDS`, the rules of :meth:`parcel`); ``unknown_then``: the facts of
        each parcel whose value then is not kept (None in their column, never today's)."""
        df = self._store.parcels(kind=kind, zone=zone, village=village, search=search, geometry=geometry)
        state = self._state()
        for col in (*STATE_FIELDS, *FACT_FIELDS):
            values = df["code"].map(state[col])
            df[col] = values.astype(object).where(values.notna(), None) if col != "blocked" else \
                values.fillna(0).astype(int)
        df["unknown_then"] = df["code"].map(state["unknown_then"]).map(lambda u: u if isinstance(u, list) else [])
        return self._store.filter(df, stage=stage, blocked=blocked)

    def describe_many(self, rows, lang: str = "zh") -> list[dict]:
        """``Store.describe_many`` keeping each row's ``unknown_then`` (a list, which ``describe`` leaves alone)."""
        rows = list(rows)
        unknown = [r.pop("unknown_then", None) for r in rows]
        out = self._store.describe_many(rows, lang)
        for r, u in zip(out, unknown):
            r["unknown_then"] = list(u) if isinstance(u, list) else []
        return out

    def parcel(self, code: str, lang: str = "zh") -> dict:
        """``Store.parcel`` as of the moment. Raises NotFoundError: unknown code.

        Besides the replayed stage, the facts that change without a stage of their own (note, land use,
        owner, last modified) are those of the moment where the record tells them; ``unknown_then``
        lists the ones it does not (their value then is not kept: None here, never today's).
        """
        state = self._state("now")
        if code not in state.index:
            return self._store.parcel(code, lang)  # raises NotFoundError (or a parcel added since: as it is now)
        row = {k: v for k, v in state.loc[code].to_dict().items()}
        then, unknown = self._facts_then(code, row)
        out = self._store.describe({**row, **then}, lang)
        out["unknown_then"] = unknown
        return out

    def cut(self) -> dt.datetime:
        """The instant the view sees up to: the end of its business day (office's time), or ``as_recorded`` if earlier."""
        end = dt.datetime.combine(self.as_of_date(), dt.time.max).replace(tzinfo=clock.office_zone())
        end = end.astimezone(dt.timezone.utc)
        rec = self.moment.as_recorded
        return min(end, rec) if rec is not None else end

    def _facts_then(self, code: str, row: dict) -> tuple[dict, list[str]]:
        """The parcel's :data:`FACT_FIELDS` at :meth:`cut` and the names of those not known then.

        Known: all of them when the parcel has not been written since; else all of them from the before
        image of the first audited write after the cut, when that image was itself written by then;
        else the note of the last advance or correction recorded by then (a stage move writes its note
        on the parcel) and, as "last modified", the last entry recorded by then. The rest is unknown.
        """
        cut = pd.Timestamp(self.cut())
        if _instant(row.get("updated_at")) <= cut:
            return {}, []
        image = self._image_at(code, cut)
        if image is not None:
            return {f: image.get(f) for f in FACT_FIELDS}, []
        then: dict = {f: None for f in FACT_FIELDS}
        known = set()
        seen = [e for e in self._store.history(code) if _instant(e.recorded_at) <= cut]
        seen.sort(key=lambda e: (_instant(e.recorded_at), e.id))
        if seen:
            then["updated_at"], then["updated_by"] = seen[-1].recorded_at, seen[-1].recorded_by
            known |= {"updated_at", "updated_by"}
        notes = [e for e in seen if e.action in ("advance", "correction") and e.note]
        if notes:
            then["note"] = notes[-1].note
            known.add("note")
        # a fact empty today and not known then is left empty, not marked (nothing would be shown either way)
        unknown = [f for f in FACT_FIELDS if f not in known and f != "updated_by" and _filled(row.get(f))]
        return then, unknown

    def _image_at(self, code: str, cut: pd.Timestamp) -> dict | None:
        """The parcel's full record as it stood at ``cut``, from the audit trail (the before image of the
        first write after it), or None when the trail does not hold it."""
        with self._store._connect() as con:
            rows = con.execute("SELECT at, before FROM audit WHERE target = ? AND outcome = 'ok' AND before IS NOT NULL"
                               " ORDER BY id", (code,)).fetchall()
        for at, before in ((r[0], r[1]) for r in rows):
            if _instant(at) <= cut:
                continue
            try:
                image = json.loads(before)
            except (TypeError, ValueError):
                return None
            if not isinstance(image, dict) or "updated_at" not in image or "land_use" not in image:
                return None  # a partial image (a note edit): the other facts then are not in it
            return image if _instant(image.get("updated_at")) <= cut else None
        return None

    # ---- attachments seen then
    def attachments(self, code=None, **kw):
        """``Store.attachments`` without what came after the moment: a photo taken (its EXIF time, else when
        added) after the view's day, or added after its ``as_recorded`` instant, is not there yet."""
        cut = pd.Timestamp(self.cut())
        rec = self.moment.as_recorded
        out = []
        for a in self._store.attachments(code, **kw):
            if _instant(a.taken_at or a.added_at) > cut:
                continue
            if rec is not None and _instant(a.added_at) > pd.Timestamp(rec):
                continue
            out.append(a)
        return out

    def history(self, code: str):
        """A parcel's events dated by the moment's business date (and recorded by its instant), oldest first."""
        day = self.as_of_date().isoformat()
        cut = self.moment.as_recorded
        out = []
        for e in self._store.history(code):
            if str(e.event_date)[:10] > day:
                continue
            if cut is not None and pd.Timestamp(e.recorded_at) > pd.Timestamp(cut):
                continue
            out.append(e)
        return out

    def events(self, village: str | None = None) -> pd.DataFrame:
        ev = self._store.events(village)
        return events_until(ev, Moment(as_of=self.as_of_date(), as_recorded=self.moment.as_recorded))

    # ---- projects, at the same date
    def project(self, code: str, lang: str = "zh", as_of=None, as_recorded=None) -> dict:
        """``Store.project`` as of the moment: reports dated by then, the stage then, no later dates."""
        return self._store.project(code, lang, as_of=as_of or self.as_of_date(),
                                   as_recorded=as_recorded or self.moment.as_recorded)

    # ---- plans, at the same date
    def plan_status(self, as_of=None, baseline=None, original: bool = False, rules=None, as_recorded=None):
        return self._store.plan_status(as_of or self.as_of_date(), baseline=baseline, original=original, rules=rules,
                                       as_recorded=as_recorded or self.moment.as_recorded)

    def status_rows(self, as_of=None, village=None, zone=None, unit=None, baseline=None, lang: str = "zh",
                    evaluation=None, as_recorded=None) -> list[dict]:
        ev = evaluation or self.plan_status(as_of, baseline=baseline, as_recorded=as_recorded)
        return self._store.status_rows(as_of or self.as_of_date(), village, zone, unit, baseline, lang, evaluation=ev)

    def parcel_plan(self, code: str, as_of=None, lang: str = "zh", evaluation=None, as_recorded=None) -> list[dict]:
        return self._store.parcel_plan(code, as_of or self.as_of_date(), lang, evaluation=evaluation,
                                       as_recorded=as_recorded or self.moment.as_recorded)

    def plan_targets(self, baseline=None, village=None, original: bool = False, withdrawn: bool = False,
                     as_recorded=None):
        """The plan as recorded at the moment's instant (as it stands now when the view has none)."""
        return self._store.plan_targets(baseline=baseline, village=village, original=original, withdrawn=withdrawn,
                                        as_recorded=as_recorded or self.moment.as_recorded)

    def plan_baselines(self, as_recorded=None) -> list[dict]:
        return self._store.plan_baselines(as_recorded or self.moment.as_recorded)

    def followup_trail(self, fid) -> list[dict]:
        """An order's steps taken by the moment (the end of its day, or its ``as_recorded`` instant)."""
        cut = pd.Timestamp(self.cut())
        return [e for e in self._store.followup_trail(fid) if _instant(e["at"]) <= cut]

    def followups(self, open_only: bool = False, unit=None, on=None, as_of=None, codes=None,
                  as_recorded=None) -> list[dict]:
        """The orders issued by the end of the moment's day (and recorded by its instant), each in its state then."""
        return self._store.followups(open_only=open_only, unit=unit, on=on, as_of=as_of or self.as_of_date(),
                                     codes=codes, as_recorded=as_recorded or self.moment.as_recorded)


def store_at(store, moment: Moment):
    """``store`` itself for now, else a :class:`StoreAt` view of it at ``moment``."""
    if moment.is_now:
        return store
    return StoreAt(store, moment)
