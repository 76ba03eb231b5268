"""Field work's small rules (issue 17 item 4), pure functions the field page stands on.

* An upload's idempotency key: a phone on a flaky connection sends the same photo again (the user taps
  once more, the page reruns after a reconnect); the store returns the row the key already names
  (``Store.add_attachment(idempotency_key=)``), so the photo is stored once.
* A site visit is not a stage event: it is recorded as the caption of the photos taken on it and, when
  it carries a note, as the parcel's note (both audited by the store), in one wording made here.
"""
from __future__ import annotations

import datetime as dt
import hashlib

from gis.base.i18n import t


def upload_key(scope: str, code: str, data: bytes) -> str:
    """The idempotency key of one upload: the same bytes to the same parcel from the same ``scope`` (one
    browser session's token) give the same key, anything else another. Not a secret; 64 hex digits."""
    digest = hashlib.sha256(bytes(data)).hexdigest()
    return hashlib.sha256(f"field-upload|{scope}|{code}|{digest}".encode()).hexdigest()


def visit_text(day: dt.date, note: str, lang: str = "zh") -> str:
    """How a site visit reads in a caption and a parcel's note: ``现场核查（2026-12-01）：…``."""
    note = " ".join((note or "").split())
    head = t("field.visit_head", lang, date=day.isoformat())
    return f"{head}{t('ux.sep', lang)}{note}" if note else head
