"""Tables of the record as planners read them: a parcel's stage history (the panel) and the
audit trail (the audit page), with headers and values in the user's language, times in China
Standard Time and empty cells blank (never ``None``)."""
from __future__ import annotations

import json

import pandas as pd

from gis.base.i18n import local_time, t
from gis.model.pipelines import Catalog

HISTORY_COLUMNS = ("event_date", "action", "stage_change", "recorded_by", "note", "reason", "recorded_at")
AUDIT_COLUMNS = ("at", "actor", "action", "target", "outcome", "detail", "before", "after")


def _get(e, key):
    return e.get(key) if isinstance(e, dict) else getattr(e, key, None)


def _text(v) -> str:
    return "" if v is None or (isinstance(v, float) and pd.isna(v)) else str(v)


def history_table(events, catalog: Catalog, kind: str, lang: str = "zh", names: dict | None = None) -> pd.DataFrame:
    """A parcel's events (``StageEvent`` objects or dicts, oldest first) newest first, one column each for
    the business date, the action, the stage change (``签约 → 拆除``), who recorded it (display names from
    ``names``: username → name), the note, the reason and when it was recorded.

    Columns are :data:`HISTORY_COLUMNS`, and ``claimed`` when an imported event carries what its file
    claimed about its author and time; :func:`history_labels` gives their headers."""
    names = names or {}
    events = list(events)
    claimed = any(_get(e, "claimed_by") or _get(e, "claimed_at") for e in events)

    def stage(key):  # a stage outside the kind's pipeline (a bad event already stored): its key, marked
        return catalog.stage_label_or_key(kind, key, lang)

    rows = []
    for e in reversed(events):
        action = _get(e, "action") or ""
        frm, to = _get(e, "from_stage"), _get(e, "to_stage")
        change = stage(to) if action in ("block", "unblock") or frm == to else f"{stage(frm)} → {stage(to)}"
        who = _text(_get(e, "recorded_by"))
        rows.append({
            "event_date": _text(_get(e, "event_date")),
            "action": t(f"ui.actions.{action}", lang) if action else "",
            "stage_change": change,
            "recorded_by": names.get(who, who),
            "note": _text(_get(e, "note")),
            "reason": _text(_get(e, "reason")),
            "recorded_at": local_time(_get(e, "recorded_at")),
            # what an imported file claimed about who recorded it and when (not believed: see README, Import)
            **({"claimed": f"{_text(_get(e, 'claimed_by'))} {_text(_get(e, 'claimed_at'))}".strip()} if claimed else {}),
        })
    return pd.DataFrame(rows, columns=list(HISTORY_COLUMNS) + (["claimed"] if claimed else []))


def history_labels(lang: str = "zh") -> dict[str, str]:
    """Headers of :func:`history_table`'s columns."""
    keys = {"event_date": "ux.event_date", "action": "ui.action", "stage_change": "ux.stage_change",
            "recorded_by": "ux.recorded_by", "note": "ui.note", "reason": "ui.reason", "recorded_at": "ux.recorded_at",
            "claimed": "ui.claimed"}
    return {c: t(k, lang) for c, k in keys.items()}


def _compact(v) -> str:
    """A before/after JSON record as one line of ``key=value`` (blank when there is none)."""
    text = _text(v)
    if not text:
        return ""
    try:
        d = json.loads(text)
    except ValueError:
        return text
    if not isinstance(d, dict):
        return text
    return "; ".join(f"{k}={'' if x is None else x}" for k, x in d.items())


def audit_table(df: pd.DataFrame, lang: str = "zh", names: dict | None = None) -> pd.DataFrame:
    """The audit trail (``Store.audit()``) as the audit page shows it: times in China Standard Time,
    actions and outcomes in the language, users by display name, before/after as ``key=value`` lines,
    blanks for empty cells; columns :data:`AUDIT_COLUMNS`, headers from :func:`audit_labels`."""
    names = names or {}
    out = pd.DataFrame(index=df.index)
    for col in AUDIT_COLUMNS:
        values = df[col] if col in df.columns else pd.Series([None] * len(df), index=df.index)
        if col == "at":
            out[col] = [local_time(v) for v in values]
        elif col == "actor":
            out[col] = [names.get(_text(v), _text(v)) for v in values]
        elif col == "action":
            out[col] = [_action_label(_text(v), lang) for v in values]
        elif col == "outcome":
            out[col] = [t(f"ux.outcome.{v}", lang) if _text(v) else "" for v in values]
        elif col in ("before", "after"):
            out[col] = [_compact(v) for v in values]
        else:
            out[col] = [_text(v) for v in values]
    return out.reset_index(drop=True)


def _action_label(action: str, lang: str) -> str:
    for key in (f"ui.actions.{action}", f"ux.audit_action.{action}"):
        text = t(key, lang)
        if text != key:
            return text
    return action


def audit_labels(lang: str = "zh") -> dict[str, str]:
    """Headers of :func:`audit_table`'s columns."""
    return {c: t(f"ux.audit.{c}", lang) for c in AUDIT_COLUMNS}
