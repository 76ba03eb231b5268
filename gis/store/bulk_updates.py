"""Bulk stage updates: advance or block many parcels in one transaction.

Every parcel is checked by the same rules as a single ``advance`` or
``set_blocked`` (permissions, transitions, gates, dates, versions) and gets
its own event and audit line; if any parcel fails, nothing is written and
the error names every parcel that failed and why.
"""
from __future__ import annotations

import datetime as dt

from gis.base import clock
from gis.base.errors import BulkRefused, InputError, PermissionRefused, RenewalError, StageTransitionError
from gis.model.pipelines import NOT_STARTED
from gis.store.base import StageEvent, parse_date


class BulkUpdatesMixin:
    """``advance_many`` and ``set_blocked_many``: all or nothing, one event per parcel."""

    def advance_many(
        self,
        codes,
        to_stage: str,
        date: str | dt.date | None,
        by: str,
        note: str = "",
        correction: str | None = None,
        share: float | None = None,
        expected_versions: dict[str, int] | None = None,
        today: dt.date | None = None,
    ) -> list[StageEvent]:
        """Move every parcel of ``codes`` to ``to_stage`` on ``date``, each as :meth:`advance` would.

        ``expected_versions``: ``{code: version as read}``; a parcel changed since fails.
        Returns the events in code order.

        Raises:
            InputError: no parcels, a bad date or no author (nothing is checked).
            BulkRefused: one or more parcels failed (unknown, not allowed, an illegal move,
                an unmet gate, changed since read); nothing is written. ``failures`` lists them.
        """
        by = self._require_author(by)
        today = today or clock.office_today()  # the office's day, whatever the server's clock zone
        when = parse_date(date, today=today)

        def check(con, row, actor):
            current_date = parse_date(row["stage_date"]) if row["stage_date"] else None
            stage = self.catalog.stage_key(to_stage, row["kind"])  # a label (签约) names its stage too
            target = None if stage == NOT_STARTED else stage
            action = self.catalog.check_transition(
                row["kind"], row["stage"], stage, when,
                current_date=current_date, correction=correction, share=share, today=today,
            )
            changes = {"stage": target, "stage_date": when.isoformat() if target else None,
                       "note": note or row["note"]}
            return lambda: self._write_event(con, row, action, target, when, actor, note, correction, share, changes)

        return self._update_many(codes, by, "advance", expected_versions, check)

    def set_blocked_many(
        self,
        codes,
        blocked: bool,
        reason: str,
        by: str,
        date: str | dt.date | None = None,
        expected_versions: dict[str, int] | None = None,
        today: dt.date | None = None,
    ) -> list[StageEvent]:
        """Flag every parcel of ``codes`` as blocked (卡点) with one reason, or clear the flag of each.

        Raises:
            InputError: no parcels, a bad date or no author.
            StageTransitionError: blocking without a reason, or a future date (nothing is checked).
            BulkRefused: one or more parcels failed (unknown, not allowed, already in that state,
                changed since read); nothing is written.
        """
        by = self._require_author(by)
        when = parse_date(date, today=today)
        if when > (today or clock.office_today()):
            raise StageTransitionError("error.future_date", date=when.isoformat())
        reason = (reason or "").strip()
        if blocked and not reason:
            raise StageTransitionError("error.block_reason")
        action = "block" if blocked else "unblock"

        def check(con, row, actor):
            if bool(row["blocked"]) == blocked:
                raise StageTransitionError("error.already_blocked" if blocked else "error.not_blocked",
                                           code=row["code"])
            changes = {"blocked": int(blocked), "blocked_reason": reason if blocked else None}
            return lambda: self._write_event(con, row, action, row["stage"], when, actor, "", reason, None, changes)

        return self._update_many(codes, by, action, expected_versions, check)

    def _update_many(self, codes, by: str, action: str, expected_versions, check) -> list[StageEvent]:
        """Check every parcel (locked, in code order so two bulk updates cannot deadlock), then write all."""
        codes = sorted(dict.fromkeys(str(c).strip() for c in (codes or []) if str(c or "").strip()))
        if not codes:
            raise InputError("error.bulk_empty")
        expected_versions = expected_versions or {}
        failures: list[tuple[str, RenewalError]] = []
        try:
            with self._connect(write=True) as con:
                writes = []
                for code in codes:
                    try:
                        row = self._row(con, code, lock=True)
                        actor = self._may_edit(con, by, row)
                        self._check_version(row, expected_versions.get(code))
                        writes.append(check(con, row, actor))
                    except RenewalError as e:
                        failures.append((code, e))
                if failures:
                    raise BulkRefused(failures)
                return [write() for write in writes]
        except BulkRefused:
            refused = [(c, e) for c, e in failures if isinstance(e, PermissionRefused)]
            if refused:  # after the rollback: a refusal leaves its line in the audit trail, as for one parcel
                with self._connect(write=True) as con:
                    for code, e in refused:
                        self._audit(con, by, action, code, "refused", detail=e.message("en"))
            raise
