"""The tracked parcels kept in memory by an app process, refreshed by what changed.

The app draws every parcel on each run; reading them (2,470 on the demo, with
geometry) and building their spatial index costs ~70 ms, and every write bumps
the store's data version. ``LiveParcels`` reads the table once, then, when the
version moves on, reads again only the parcels whose ``updated_at`` is recent
(every write to a parcel sets it: a stage update, a block, a note, an import)
and puts them in place; the spatial index is rebuilt only when a geometry did
change. A write made by another app server over the same PostGIS shows at the
next refresh the same way.
"""
from __future__ import annotations

import datetime as dt
import threading

import numpy as np
import pandas as pd
import shapely

from gis.base.clock import office_today
from gis.model import plans as model
from gis.model.frames import replace_rows
from gis.model.spatial import ParcelIndex

# How far back from the newest ``updated_at`` held a refresh looks: app servers'
# clocks may differ by that much and a write still be seen.
CLOCK_SLACK = dt.timedelta(minutes=10)
MAX_CHANGED = 500  # more changed parcels than this (an import): read the whole table again


class LiveParcels:
    """The store's parcels (a GeoDataFrame) and their ``ParcelIndex``, at the store's latest version.

    Thread-safe; the frames it hands out are never modified afterwards (a refresh
    makes a new one), so callers may keep them.
    """

    def __init__(self, store):
        self.store = store
        self._lock = threading.Lock()
        self.version = -1
        self.table = None
        self.index = None
        self.full_reads = 0  # how often the whole table was read (tests and benchmarks look)
        self.refreshes = 0
        self.geometry_epoch = 0  # moves on whenever a geometry may have changed (what map caches key on)
        self._log: list[tuple[int, int, frozenset]] = []  # (from version, to version, codes read again)

    def current(self, version: int | None = None):
        """``(table, index)`` at the store's current version (``version``: one the caller already knows)."""
        with self._lock:
            v = self.store.data_version() if version is None else version
            if self.table is None:
                self._read_all(v)
            elif v != self.version:
                self._refresh(v)
            return self.table, self.index

    def changes(self, since: int) -> frozenset | None:
        """The codes of the parcels read again between version ``since`` and the one held (a superset of
        those that changed); None when that is not known (the whole table was read since, or long ago):
        what a cache derived from the table patches itself with."""
        with self._lock:
            if since == self.version:
                return frozenset()
            codes: set = set()
            for start, end, changed in reversed(self._log):
                codes |= changed
                if start == since:
                    return frozenset(codes)
                if start < since:
                    break
            return None

    def _read_all(self, version: int) -> None:
        self._log.clear()
        table = self.store.parcels()
        self.table, self.index, self.version = table, ParcelIndex(table), version
        self.full_reads += 1
        self.geometry_epoch += 1

    def _refresh(self, version: int) -> None:
        stamp = self._stamp()
        changed = self.store.parcels_updated_since(stamp) if stamp else None
        if changed is None or len(changed) > MAX_CHANGED or self.store.parcel_count() != len(self.table):
            self._read_all(version)
            return
        table = self.table
        pos = pd.Series(range(len(table)), index=table["code"].to_numpy())
        rows = pos.reindex(changed["code"].to_numpy())
        if rows.isna().any():  # a parcel we do not hold (renamed, replaced): start again
            self._read_all(version)
            return
        rows = rows.astype(int).to_numpy()
        geoms = table.geometry.values
        moved = not all(shapely.equals_exact(geoms[rows], changed.geometry.values, tolerance=0))
        if set(table.columns) <= set(changed.columns):
            self.table = replace_rows(table, rows, changed)
        else:  # columns the read does not carry keep their values
            self.table = replace_rows(table, rows, table.iloc[rows].assign(
                **{c: changed[c].to_numpy() for c in table.columns if c in changed.columns}))
        self._log.append((self.version, version, frozenset(changed["code"])))
        del self._log[:-64]
        self.version = version
        if moved:
            self.index = ParcelIndex(self.table)
            self.geometry_epoch += 1
        self.refreshes += 1

    def _stamp(self) -> str | None:
        """The oldest ``updated_at`` a refresh must look at: the newest held, less the clock slack."""
        if "updated_at" not in self.table.columns:
            return None
        held = [v for v in self.table["updated_at"].to_numpy() if isinstance(v, str) and v]
        if not held:
            return None
        newest = max(held)
        try:
            t = dt.datetime.fromisoformat(newest)
        except ValueError:
            return None
        return (t - CLOCK_SLACK).isoformat(timespec="seconds")



MAX_PLAN_CHANGED = 200  # more changed parcels than this: evaluate the whole district again


class LivePlan:
    """Today's plan evaluation (``Store.plan_status``) kept by an app process, patched after a write.

    A stage update changes one parcel; evaluating the district again (reading its 15,000 events,
    ~0.1 s on the demo) is what the parcel panel paid after every advance. A parcel's own plan rows
    depend on that parcel alone, a target's on the parcels of its object (the parcel, its village, its
    park): so after a write the targets that name a changed parcel, its village or its park (before
    and after the write) are evaluated again on those groups' parcels and put in place, with the
    changed parcels' rows. Targets changed (new rows in the append-only ``plan_targets``), events that
    do not add up (a restore), a new or removed parcel, another day or more than
    :data:`MAX_PLAN_CHANGED` changed parcels: the whole district again. Writes of other app servers
    are seen the same way (``Store.plan_changes``: new event ids, recent ``updated_at``).
    """

    def __init__(self, store):
        self.store = store
        self._lock = threading.Lock()
        self.version = -1
        self.day = None
        self.marks = None
        self.evaluation = None
        self._groups: dict = {}
        self._versions: dict = {}  # each parcel's version as evaluated
        self._targets = None
        self.full_builds = 0  # tests and benchmarks look
        self.patches = 0

    def current(self, version: int | None = None, day: str | None = None) -> model.Evaluation:
        """The evaluation as of ``day`` (ISO; default the office's today) at the store's version."""
        day = day or office_today().isoformat()
        with self._lock:
            v = self.store.data_version() if version is None else version
            if self.evaluation is None or day != self.day:
                self._build(v, day)
            elif v != self.version:
                self._refresh(v)
            return self.evaluation

    def of_parcel(self, p: dict, version: int | None = None, day: str | None = None) -> model.Evaluation:
        """An evaluation holding one parcel's targets (its own, its village's, its site's: ``targets_of``) at
        the store's version, for its panel. The district's when that is current; after a write, those targets
        alone evaluated on the parcels they name, with the targets held, and the district's patch left to
        what needs the whole (the plans page, the plan colouring): a click after an advance paid the patch,
        ~18 ms of its 60 (issue 19). New targets, another day or no evaluation yet: the district's.
        ``p``: the parcel's record (``Store.parcel``)."""
        day = day or office_today().isoformat()
        with self._lock:
            v = self.store.data_version() if version is None else version
            if self.evaluation is not None and day == self.day and v == self.version:
                return self.evaluation
        if self.evaluation is None or day != self.day or self.store.plan_marks()["targets"] != self.marks["targets"]:
            return self.current(v, day)
        ev, targets = self.evaluation, self._targets  # a consistent pair: a refresh replaces both at once
        groups = {g for g in (p.get("village"), p.get("park")) if isinstance(g, str) and g}
        parcels, events = self.store.plan_inputs([p["code"]], groups)
        obj, otype = targets["object"], targets["object_type"]
        keep = ((otype == "parcel") & (obj == p["code"])) | (otype.isin(("village", "site")) & obj.isin(groups))
        return model.evaluate(targets[keep.to_numpy()], parcels, events, self.store.catalog, ev.as_of, ev.rules,
                              current=ev.as_of >= office_today())

    def _build(self, version: int, day: str) -> None:
        marks = self.store.plan_marks()
        self._versions = self.store.plan_changes(marks["events"][1], None)[0]
        parcels, events = self.store.plan_inputs()
        when = dt.date.fromisoformat(day)
        self._targets = self.store.plan_targets()
        self.evaluation = model.evaluate(self._targets, parcels, events.drop(columns="recorded_at"),
                                         self.store.catalog, when, None, current=when >= office_today())
        self._groups = dict(zip(parcels["code"], zip(parcels["village"], parcels["park"])))
        self.version, self.day, self.marks = version, day, marks
        self.full_builds += 1

    def _refresh(self, version: int) -> None:
        marks = self.store.plan_marks()
        held = self.marks
        stamp = _slack(held["updated"])
        touched, evented, n_new = self.store.plan_changes(held["events"][1], stamp)
        changed = evented | {c for c, v in touched.items() if self._versions.get(c) != v}
        if (marks["targets"] != held["targets"] or marks["events"][0] != held["events"][0] + n_new
                or stamp is None or len(changed) > MAX_PLAN_CHANGED):
            self._build(version, self.day)
            return
        if changed:
            patched = self._patched(self.evaluation, changed)
            if patched is None:
                self._build(version, self.day)
                return
            self.evaluation = patched
            self._versions.update(touched)
            self.patches += 1
        self.version, self.marks = version, marks

    def _patched(self, ev: model.Evaluation, changed: set[str]) -> model.Evaluation | None:
        p = ev.parcels
        codes = sorted(changed)
        pos = pd.Index(p["code"]).get_indexer(codes)
        if (pos < 0).any():  # a parcel this evaluation does not know: start again
            return None
        # the villages and parks the changed parcels were in and are in now: their targets change. Read
        # with those they were in; only when one moved to another (an import) read again with both
        was = {g for c in codes for g in self._groups.get(c, ()) if isinstance(g, str) and g}
        parcels, events = self.store.plan_inputs(codes, was)
        now = parcels[parcels["code"].isin(codes)]
        if len(now) != len(codes):  # removed meanwhile
            return None
        groups = was | {g for g in (*now["village"], *now["park"]) if isinstance(g, str) and g}
        if groups != was:
            parcels, events = self.store.plan_inputs(codes, groups)
        self._groups.update(zip(now["code"], zip(now["village"], now["park"])))
        targets = self._targets  # unchanged (the marks say so)
        obj, otype = targets["object"], targets["object_type"]
        keep = ((otype == "parcel") & obj.isin(codes)) | (otype.isin(("village", "site")) & obj.isin(groups))
        rows = np.flatnonzero(keep.to_numpy())
        sub = model.evaluate(targets.iloc[rows], parcels, events, self.store.catalog,  # recorded_at: not read
                             ev.as_of, ev.rules, current=ev.as_of >= office_today())
        at = pd.Index(sub.parcels["code"]).get_indexer(codes)
        return model.Evaluation(as_of=ev.as_of, targets=_put(ev.targets, rows, sub.targets),
                                parcels=_put(p, pos, sub.parcels.iloc[at]), rules=ev.rules)


def _put(frame: pd.DataFrame, rows: np.ndarray, values: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` with its rows at positions ``rows`` taken from ``values`` (same columns)."""
    return replace_rows(frame, rows, values)


def _slack(stamp) -> str | None:
    """``stamp`` (an ISO ``updated_at``) less :data:`CLOCK_SLACK`."""
    if not isinstance(stamp, str) or not stamp:
        return None
    try:
        t = dt.datetime.fromisoformat(stamp)
    except ValueError:
        return None
    return (t - CLOCK_SLACK).isoformat(timespec="seconds")
