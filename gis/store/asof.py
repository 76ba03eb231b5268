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

import pandas as pd

from gis.base import clock
from gis.model.timeline import STATE_FIELDS, Moment, events_until


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
        self._cache: tuple[int, pd.DataFrame] | None = None

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
    def _state(self) -> pd.DataFrame:
        version = self._store.data_version()
        if self._cache is None or self._cache[0] != version:
            parcels = self._store.parcels(geometry=False)
            # the store replays from the few columns it needs (gis/store/timeline.py): fast at any size
            state = self._store.stage_state(self.moment).set_index("code")
            for col in STATE_FIELDS:
                values = parcels["code"].map(state[col])
                parcels[col] = values.fillna(0).astype(int) if col == "blocked" else \
                    values.astype(object).where(values.notna(), None)
            self._cache = (version, parcels.set_index("code", drop=False))
        return self._cache[1]

    def parcels(self, kind=None, zone=None, village=None, stage=None, search=None, blocked=None,
                geometry: bool = True):
        """``Store.parcels`` with stage, stage date and blocked flag as of the moment (filtered on those)."""
        df = self._store.parcels(kind=kind, zone=zone, village=village, search=search, geometry=geometry)
        state = self._state()
        for col in STATE_FIELDS:
            values = df["code"].map(state[col])
            df[col] = values.astype(object).where(values.notna(), None) if col != "blocked" else \
                values.fillna(0).astype(int)
        return self._store.filter(df, stage=stage, blocked=blocked)

    def parcel(self, code: str, lang: str = "zh") -> dict:
        """``Store.parcel`` as of the moment. Raises NotFoundError: unknown code."""
        state = self._state()
        if code not in state.index:
            return self._store.parcel(code, lang)  # raises NotFoundError (or a parcel added since: as it is now)
        row = {k: v for k, v in state.loc[code].to_dict().items()}
        return self._store.describe(row, lang)

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

    # ---- plans, at the same date
    def plan_status(self, as_of=None, baseline=None, original: bool = False, rules=None, as_recorded=None):
        return self._store.plan_status(as_of or self.as_of_date(), baseline=baseline, original=original, rules=rules,
                                       as_recorded=as_recorded or self.moment.as_recorded)

    def status_rows(self, as_of=None, village=None, zone=None, unit=None, baseline=None, lang: str = "zh",
                    evaluation=None, as_recorded=None) -> list[dict]:
        ev = evaluation or self.plan_status(as_of, baseline=baseline, as_recorded=as_recorded)
        return self._store.status_rows(as_of or self.as_of_date(), village, zone, unit, baseline, lang, evaluation=ev)

    def parcel_plan(self, code: str, as_of=None, lang: str = "zh", evaluation=None) -> list[dict]:
        return self._store.parcel_plan(code, as_of or self.as_of_date(), lang, evaluation=evaluation)

    def followups(self, open_only: bool = False, unit=None, on=None, as_of=None, codes=None) -> list[dict]:
        return self._store.followups(open_only=open_only, unit=unit, on=on, as_of=as_of or self.as_of_date(),
                                     codes=codes)


def store_at(store, moment: Moment):
    """``store`` itself for now, else a :class:`StoreAt` view of it at ``moment``."""
    if moment.is_now:
        return store
    return StoreAt(store, moment)
