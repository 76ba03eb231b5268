"""The event log as arrays: what a replay needs of the event table, dictionary-encoded.

A store reads the few columns a replay needs straight into Arrow (GDAL's Arrow
stream for a GeoPackage, ``COPY`` parsed by Arrow's CSV reader on PostGIS);
every text column becomes integer codes into a small dictionary (parcels,
actions, stages, reasons) and the business date an integer day. The replay
(``gis.model.timeline.Replay``) then works on integers only: a million events
are sorted and scanned in a fraction of a second, with no Python object per row.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

#: an event whose business date is missing or not a date: never in effect
NO_DAY = np.iinfo(np.int32).min
#: the columns a replay reads (``recorded_at`` only for an as-recorded moment)
LOG_COLUMNS = ("id", "parcel", "action", "to_stage", "event_date", "reason", "recorded_at")


def _codes(col) -> tuple[np.ndarray, np.ndarray]:
    """(int32 codes, -1 for null; the dictionary as an object array) of a text column."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    if not pa.types.is_string(col.type) and not pa.types.is_large_string(col.type):
        col = pc.cast(col, pa.string()) if not pa.types.is_null(col.type) else pa.array([None] * len(col), pa.string())
    enc = pc.dictionary_encode(col)
    codes = enc.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int32)
    return codes, np.asarray(enc.dictionary.to_pylist(), dtype=object)


def day_numbers(col) -> np.ndarray:
    """Days since 1970-01-01 of ISO dates (the first 10 characters); ``NO_DAY`` for what is not a date."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    if pa.types.is_date32(col.type):
        days = col
    else:
        text = pc.utf8_slice_codeunits(pc.cast(col, pa.string()), 0, 10)
        try:
            days = pc.cast(text, pa.date32())
        except pa.ArrowInvalid:  # some text is no date: the slow way, each one on its own
            parsed = pd.to_datetime(pd.Series(text.to_pylist(), dtype=object), format="%Y-%m-%d", errors="coerce")
            return np.where(parsed.isna(), NO_DAY, parsed.to_numpy().astype("datetime64[D]").astype(np.int64)
                            ).astype(np.int32)
    return pc.cast(days, pa.int32()).fill_null(NO_DAY).to_numpy(zero_copy_only=False).astype(np.int32)


def day_number(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days


def iso_days(days: np.ndarray) -> np.ndarray:
    """Day numbers → 'YYYY-MM-DD' (object array); None for ``NO_DAY``."""
    days = np.asarray(days)
    out = np.full(len(days), None, dtype=object)
    ok = days != NO_DAY
    if ok.any():
        out[ok] = days[ok].astype("datetime64[D]").astype(str).astype(object)
    return out


@dataclass
class EventLog:
    """The event table as arrays, in the order recorded (by id)."""

    id: np.ndarray
    parcel: np.ndarray
    parcels: np.ndarray
    action: np.ndarray
    actions: np.ndarray
    stage: np.ndarray
    stages: np.ndarray
    day: np.ndarray
    reason: np.ndarray
    reasons: np.ndarray
    recorded_at: object = None  # the raw column (Arrow), parsed only for an as-recorded moment

    def __len__(self) -> int:
        return len(self.id)

    @classmethod
    def from_arrow(cls, table: pa.Table) -> "EventLog":
        """From an Arrow table with (some of) ``LOG_COLUMNS``; missing text columns are all null."""
        n = table.num_rows
        null = pa.array([None] * n, pa.string())
        col = (lambda name: table.column(name) if name in table.column_names else null)
        ids = np.asarray(col("id").to_numpy(), dtype=np.int64) if "id" in table.column_names else np.arange(n)
        order = np.argsort(ids, kind="stable")
        if (order != np.arange(n)).any():
            table = table.take(pa.array(order))
            ids = ids[order]
        parcel, parcels = _codes(col("parcel"))
        action, actions = _codes(col("action"))
        stage, stages = _codes(col("to_stage"))
        reason, reasons = _codes(col("reason"))
        return cls(ids, parcel, parcels, action, actions, stage, stages, day_numbers(col("event_date")),
                   reason, reasons, col("recorded_at") if "recorded_at" in table.column_names else None)

    @classmethod
    def from_frame(cls, events: pd.DataFrame) -> "EventLog":
        """From the event table as ``Store.events`` gives it."""
        cols = [c for c in LOG_COLUMNS if c in events.columns]
        df = events[cols]
        arrays = {}
        for c in cols:
            v = df[c]
            if c == "id":
                arrays[c] = pa.array(v.to_numpy(dtype=np.int64))
            else:
                arrays[c] = pa.array([x if isinstance(x, str) else (None if x is None or x != x else str(x))
                                      for x in v.to_numpy(dtype=object)], pa.string()) if v.dtype == object \
                    else pa.array(v.astype(object).where(v.notna(), None).to_numpy(dtype=object), pa.string())
        return cls.from_arrow(pa.table(arrays) if arrays else pa.table({"id": pa.array([], pa.int64())}))

    def recorded_by(self, instant: dt.datetime) -> np.ndarray:
        """Which events were recorded by ``instant`` (aware)."""
        if self.recorded_at is None:
            return np.ones(len(self), dtype=bool)
        values = self.recorded_at.to_pylist() if hasattr(self.recorded_at, "to_pylist") else list(self.recorded_at)
        t = pd.to_datetime(pd.Series(values, dtype=object), utc=True, format="ISO8601", errors="coerce")
        return (t <= pd.Timestamp(instant)).to_numpy()

    def codes_of(self, dictionary: np.ndarray, wanted) -> np.ndarray:
        """A boolean lookup table over ``dictionary`` codes (plus a last entry for null): which are in ``wanted``."""
        return np.append(np.isin(dictionary, list(wanted)), False)
