"""The state of every parcel as of a moment, read the quick way (issue 16's budget: 100,000 parcels and a
million events in under 2 s): only the columns a replay needs, straight into Arrow arrays
(``gis.model.eventlog.EventLog``), and the replay on integers (``gis.model.timeline.Replay``).

    store.event_log()                  the event table as arrays (GDAL's Arrow stream; PostGIS: COPY)
    store.stage_state(Moment(as_of=D)) code, kind, stage, stage_date, blocked, blocked_reason as of D
"""
from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyogrio

from gis.model.eventlog import LOG_COLUMNS, EventLog
from gis.model.timeline import Moment, Replay

STATE_COLUMNS = ("code", "kind", "stage", "stage_date", "blocked", "blocked_reason")


class TimelineMixin:
    """``event_log`` and ``stage_state``: the event table as arrays, and the stages of every parcel at a moment."""

    def _arrow(self, table: str, columns: list[str]) -> pa.Table:
        """``columns`` of an attribute table as Arrow (GeoPackage: GDAL's Arrow stream); ``id``: the feature id."""
        meta, out = pyogrio.read_arrow(self.path, layer=table, columns=[c for c in columns if c != "id"],
                                       read_geometry=False, return_fids="id" in columns)
        fid = meta.get("fid_column") or "OGC_FID"
        return out.rename_columns(["id" if c == fid else c for c in out.column_names])

    def _event_arrow(self, columns: list[str]) -> pa.Table:
        return self._arrow("stage_events", columns)

    def event_log(self, recorded: bool = False) -> EventLog:
        """The event table as a replay reads it (``recorded``: with the time each was recorded, for as-recorded)."""
        cols = [c for c in LOG_COLUMNS if recorded or c != "recorded_at"]
        return EventLog.from_arrow(self._event_arrow(cols))

    def first_event_date(self) -> str | None:
        """The earliest business date in the event log (ISO), None when it is empty: where a time slider starts
        (one SQL aggregate, where reading the whole log for it cost ~35 ms on the demo)."""
        with self._connect() as con:
            row = con.execute("SELECT MIN(event_date) FROM stage_events").fetchone()
        return str(row[0])[:10] if row and row[0] else None

    def _log_for(self, moment: Moment) -> EventLog:
        """The events a replay as of ``moment`` needs (here, all of them: a GeoPackage streams them quickly).
        PostGIS sends a reduced log instead, made by the database (``PostgisStore._log_for``)."""
        return self.event_log(recorded=moment.as_recorded is not None)

    def stage_state(self, moment: Moment) -> pd.DataFrame:
        """code, kind, stage, stage_date, blocked, blocked_reason of every parcel as of ``moment``, by code."""
        table = self._arrow("parcels", list(STATE_COLUMNS)).sort_by("code")
        parcels = pd.DataFrame({c: pd.Series(table.column(c).to_numpy(zero_copy_only=False), dtype=object)
                                for c in STATE_COLUMNS})
        if moment.is_now or not len(parcels):
            return parcels
        log = self._log_for(moment)
        return Replay(parcels, log, self.catalog, moment.as_recorded).at(moment.business_date())
