"""A zip of the evidence of a parcel or of a village: every attachment, named so a person can find it, with a
manifest.

    write_evidence_zip(store, "V01-003.zip", code="V01-003", viewer="张伟")
    write_evidence_zip(store, "东岙村.zip", village="V01")

Inside: one folder per parcel (and ``村庄`` / ``village`` for the village's own), each file named
``<n>_<date>_<stage or kind>_<caption or original name>.<ext>``; ``manifest.csv`` (UTF-8 with a BOM, for Excel;
no cell runs as a formula) and ``manifest.json``, each line with the file's name, sha256 (of the bytes in the
zip) and the store's sha256, size, type, caption, time taken, location, who added it and when, and the stage
event it documents (action, stage, business date).

Photos lose their personal EXIF (``gis.model.media.strip_personal``); documents are copied in chunks as stored.
The zip is written to a temporary file beside the target and renamed: one attachment in memory at a time,
never the whole set. Restricted documents only for a viewer the store lets see them; withdrawn ones stay out.
"""
from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import re
import zipfile
from pathlib import Path

from gis.base.clock import office_zone, utcnow
from gis.base.errors import InputError
from gis.base.fileio import atomic_path
from gis.base.i18n import t
from gis.base.sheets import csv_text
from gis.io.media_tables import export_bytes_of, exportable

MANIFEST_FIELDS = ("file", "id", "parcel", "kind", "content_type", "size", "sha256", "store_sha256", "caption",
                   "taken_at", "lon", "lat", "direction", "added_by", "added_at", "event_id", "event_action",
                   "event_stage", "event_date", "original_name")
_UNSAFE = re.compile(r'[\\/:*?"<>|\x00-\x1f]+')
EXT = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp", "image/heic": ".heic",
       "image/heif": ".heif", "application/pdf": ".pdf"}


def safe_name(text: str, limit: int = 60) -> str:
    """``text`` as a file-name part: no path separators or characters Windows refuses, no leading dots, cut."""
    s = _UNSAFE.sub("_", str(text or "")).strip().strip(".").strip()
    return s[:limit].rstrip() or "_"


def _extension(a) -> str:
    suffix = Path(a.filename or "").suffix.lower()
    if suffix and len(suffix) <= 6 and suffix[1:].isalnum():
        return suffix
    return EXT.get(a.content_type, ".bin")


def _event_facts(store, code: str, lang: str) -> dict[int, dict]:
    """``{event id: {action, stage, date}}`` of a parcel's history, in words of ``lang``."""
    out = {}
    kind = store.parcel(code, lang)["kind"]
    for e in store.history(code):
        out[e.id] = {"action": t(f"ui.actions.{e.action}", lang),
                     "stage": store.catalog.stage_label_or_key(kind, e.to_stage, lang) if e.to_stage else "",
                     "date": e.event_date}
    return out


def write_evidence_zip(store, out, *, code: str | None = None, village: str | None = None,
                       viewer: str | None = None, lang: str = "zh") -> dict:
    """Write the evidence of parcel ``code`` or of ``village`` (code or name: its own and its parcels') to ``out``.

    Returns ``{"path", "files", "bytes", "restricted_left_out", "parcels"}``.

    Raises:
        InputError: neither or both of ``code`` and ``village``; the target is not a .zip or cannot be written;
            nothing to put in it.
        NotFoundError: unknown parcel or village.
    """
    if bool(code) == bool(village):
        raise InputError("evidence_io.code_or_village")
    out = Path(out)
    if out.suffix.lower() != ".zip":
        raise InputError("evidence_io.zip_suffix", path=str(out))
    if not out.parent.is_dir():
        raise InputError("error.unwritable", path=str(out))
    villages: set[str] = set()
    if village:
        vcode = store.village_code(village)
        villages = {vcode}
        parcels = sorted(store.parcels(village=vcode, geometry=False)["code"])
    else:
        store.parcel(code, lang)  # NotFoundError for an unknown code
        parcels = [code]
    rows, left_out = exportable(store, viewer, set(parcels), {"village": villages})
    if not rows:
        raise InputError("evidence_io.nothing", what=code or village, left_out=left_out)
    facts: dict[int, dict] = {}
    for c in sorted({a.target_code for a in rows if a.target_kind != "village"}):
        facts.update(_event_facts(store, c, lang))
    village_dir = t("evidence_io.village_folder", lang)
    manifest: list[dict] = []
    total = 0
    with atomic_path(out) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
        counters: dict[str, int] = {}
        for a in sorted(rows, key=lambda a: (a.target_kind == "village", a.target_code, a.taken_at or a.added_at,
                                             a.id)):
            folder = safe_name(village_dir if a.target_kind == "village" else a.target_code)
            counters[folder] = n = counters.get(folder, 0) + 1
            ev = facts.get(a.event_id) if a.event_id is not None else None
            day = (a.taken_at or (ev["date"] if ev else None) or _local_day(a.added_at) or "")[:10]
            what = (ev["stage"] or ev["action"]) if ev else t(f"evidence_io.kind_{a.kind}", lang)
            label = a.caption or Path(a.filename or "").stem
            name = f"{folder}/{n:03d}_{day}_{safe_name(what, 20)}_{safe_name(label, 40)}{_extension(a)}"
            h, size = hashlib.sha256(), 0
            # photos are already stored compressed: deflating them again costs time for nothing
            kind = zipfile.ZIP_STORED if a.kind == "photo" else zipfile.ZIP_DEFLATED
            info = zipfile.ZipInfo(name, date_time=utcnow().astimezone(office_zone()).timetuple()[:6])
            info.compress_type = kind
            data = export_bytes_of(store, a, viewer)
            with zf.open(info, "w", force_zip64=a.size > (1 << 31)) as f:
                for chunk in (data,) if isinstance(data, (bytes, bytearray)) else data:
                    f.write(chunk)
                    h.update(chunk)
                    size += len(chunk)
            total += size
            manifest.append({
                "file": name, "id": a.id, "parcel": "" if a.target_kind == "village" else a.target_code,
                "kind": a.kind, "content_type": a.content_type, "size": size, "sha256": h.hexdigest(),
                "store_sha256": a.sha256, "caption": a.caption or "", "taken_at": a.taken_at or "",
                "lon": a.lon, "lat": a.lat, "direction": a.direction, "added_by": a.added_by, "added_at": a.added_at,
                "event_id": a.event_id, "event_action": ev["action"] if ev else "",
                "event_stage": ev["stage"] if ev else "", "event_date": ev["date"] if ev else "",
                "original_name": a.filename or "",
            })
        zf.writestr("manifest.csv", manifest_csv(manifest, lang))
        zf.writestr("manifest.json", json.dumps({"what": code or village, "made_at": utcnow().isoformat(
            timespec="seconds"), "files": manifest}, ensure_ascii=False, indent=1, default=str))
    return {"path": str(out), "files": len(manifest), "bytes": out.stat().st_size, "attachment_bytes": total,
            "restricted_left_out": left_out, "parcels": len(parcels)}


def _local_day(utc_iso: str | None) -> str | None:
    """The office's date of a UTC ISO time (the day a file was added, where no time taken is known)."""
    if not utc_iso:
        return None
    try:
        d = dt.datetime.fromisoformat(utc_iso.replace("Z", "+00:00"))
        return (d if d.tzinfo else d.replace(tzinfo=dt.timezone.utc)).astimezone(office_zone()).date().isoformat()
    except ValueError:
        return utc_iso[:10]


def manifest_csv(rows: list[dict], lang: str = "zh") -> bytes:
    """The manifest as CSV: a header in ``lang``, UTF-8 with a BOM (Excel), formula-like text made inert."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([t(f"evidence_io.col_{f}", lang) for f in MANIFEST_FIELDS])
    for r in rows:
        w.writerow([csv_text(r[f]) if isinstance(r[f], str) else ("" if r[f] is None else r[f])
                    for f in MANIFEST_FIELDS])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")

