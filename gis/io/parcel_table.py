"""The parcel table under the map: one row per parcel of the current filter, and its CSV.

The spreadsheet of the same selection is the ledger (``exporter.export_ledger_xlsx``);
the CSV is this table as shown, UTF-8 with a BOM so that Excel reads the Chinese,
and every text cell that Excel would run as a formula (``= + - @``) written as text.
"""
from __future__ import annotations

import io
import threading
from pathlib import Path

import pandas as pd

from gis.base.fileio import atomic_write
from gis.base.i18n import t
from gis.base.units import M2_PER_MU
from gis.model.frames import replace_rows
from gis.model.pipelines import NOT_STARTED, Catalog

#: the table's columns, in order; headers come from the ``table.col_<name>`` strings
COLUMNS = ("code", "name", "stage", "stage_date", "area_mu", "village", "zone", "kind", "blocked_reason", "unit")
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def parcel_table(parcels: pd.DataFrame, catalog: Catalog, names: dict[str, dict[str, str]], lang: str = "zh"
                 ) -> pd.DataFrame:
    """The rows of the table, in code order, labels in ``lang``.

    ``parcels``: code, name, kind, zone, village, park, stage, stage_date, blocked, blocked_reason,
    area_m2, unit; ``names``: ``{"zones": {code: name}, "villages": {...}, "parks": {...}}``.
    Columns: :data:`COLUMNS` plus ``blocked`` (bool) and ``version`` (for bulk updates).
    """
    p = parcels.sort_values("code").reset_index(drop=True)
    stage = [s if isinstance(s, str) and s and s != NOT_STARTED else None for s in p["stage"]]
    pick = (lambda table, c: names.get(table, {}).get(c, c) if isinstance(c, str) and c else "")
    place = [pick("villages", v) or pick("parks", k) for v, k in zip(p.get("village", [""] * len(p)),
                                                                      p.get("park", [""] * len(p)))]
    return pd.DataFrame({
        "code": p["code"].astype(str),
        "name": p["name"].fillna("").astype(str),
        "kind": [catalog.kinds[k].label(lang) if k in catalog.kinds else str(k) for k in p["kind"]],
        "zone": [pick("zones", z) for z in p["zone"]],
        "village": place,
        "stage": [catalog.stage_label(k, s, lang) if k in catalog.kinds else (s or "") for k, s in zip(p["kind"], stage)],
        "stage_date": pd.to_datetime(p["stage_date"], errors="coerce"),
        "area_mu": (p["area_m2"].astype(float) / M2_PER_MU).round(2),
        "blocked_reason": [r if b and isinstance(r, str) else "" for b, r in zip(p["blocked"].fillna(0).astype(bool),
                                                                              p["blocked_reason"])],
        "unit": p["unit"].fillna("").astype(str),
        "blocked": p["blocked"].fillna(0).astype(bool),
        "version": p["version"].fillna(0).astype(int) if "version" in p else 0,
    })


MAX_PATCHED = 300  # more parcels changed than this since the table held: build it whole


class LiveTables:
    """The table of every parcel (:func:`parcel_table`) per language, patched after a write.

    ``of(live, version, …)`` takes the parcels of a ``gis.store.live.LiveParcels`` at ``version``; when
    the table held is of an earlier version, only the rows of the parcels read again since
    (``LiveParcels.changes``) are made again and put in place (a stage update: one row instead of
    2,470, issue 19). Thread-safe; a table handed out is never changed afterwards.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._held: dict = {}  # lang -> (version, names, table)

    def of(self, live, version: int, catalog: Catalog, names: dict, lang: str = "zh") -> pd.DataFrame:
        parcels = live.current(version)[0]
        with self._lock:
            held = self._held.get(lang)
            if held is not None and held[0] == version and held[1] == names:
                return held[2]
            table = self._patched(held, live, parcels, catalog, names, lang) if held is not None \
                and held[1] == names else None
            if table is None:
                table = parcel_table(parcels.drop(columns="geometry"), catalog, names, lang)
            self._held[lang] = (version, names, table)
            return table

    @staticmethod
    def _patched(held, live, parcels, catalog, names, lang) -> pd.DataFrame | None:
        changed = live.changes(held[0])
        old = held[2]
        if changed is None or len(changed) > MAX_PATCHED or len(parcels) != len(old):
            return None
        if not changed:
            return old
        rows = parcels[parcels["code"].isin(changed)]
        new = parcel_table(rows.drop(columns="geometry"), catalog, names, lang)
        pos = pd.Index(old["code"]).get_indexer(new["code"])
        if (pos < 0).any() or len(new) != len(changed):
            return None
        return replace_rows(old, pos, new)


def headers(lang: str = "zh") -> dict[str, str]:
    """``{column: header}`` of :data:`COLUMNS`."""
    return {c: t(f"table.col_{c}", lang) for c in COLUMNS}


def _as_text(v):
    if isinstance(v, str) and v.startswith(_FORMULA):
        return "'" + v
    return v


def table_csv(table: pd.DataFrame, lang: str = "zh") -> bytes:
    """The table as CSV bytes (UTF-8 with BOM, Chinese headers, dates as YYYY-MM-DD, formulas defused)."""
    out = table[list(COLUMNS)].copy()
    out["stage_date"] = out["stage_date"].dt.strftime("%Y-%m-%d").fillna("")
    for c in out.columns:
        if not pd.api.types.is_numeric_dtype(out[c]):
            out[c] = out[c].map(_as_text)
    buf = io.StringIO()
    out.rename(columns=headers(lang)).to_csv(buf, index=False)
    return buf.getvalue().encode("utf-8-sig")


def store_names(store, lang: str = "zh") -> dict[str, dict[str, str]]:
    """Zone, village and park names of a store in ``lang`` (for :func:`parcel_table`)."""
    pick = (lambda zh, en: (en or zh) if lang == "en" else (zh or en))
    return {table: {c: pick(zh, en) or c for c, (zh, en) in store.names(table).items()}
            for table in ("zones", "villages", "parks")}


def export_table_csv(store, path, codes=None, lang: str = "zh") -> dict:
    """Write the parcel table of ``codes`` (None: every parcel) as CSV to ``path`` (atomically)."""
    parcels = store.parcels(geometry=False)
    if codes is not None:
        parcels = parcels[parcels["code"].isin(list(codes))]
    data = table_csv(parcel_table(parcels, store.catalog, store_names(store, lang), lang), lang)
    atomic_write(Path(path), lambda f: f.write(data))
    return {"format": "csv", "path": str(path), "parcels": int(len(parcels)), "bytes": len(data)}
