"""Exports of the store: GeoPackage (every layer, the parcels with their current
stage, the stage event table), GeoJSON, zipped Shapefile and the ledger (台账)
as a spreadsheet.

Each export takes an optional list of parcel codes (the current filter) and
writes a file atomically (a temporary file beside it, then a rename);
``export_bytes`` returns the bytes for a download button. Every export says
where its data came from, and the demo's says it is fictional.

    export(store, "gpkg", "out.gpkg")
    export(store, "xlsx", "台账.xlsx", codes=["V07-023", ...])
"""
from __future__ import annotations

# Lazy imports, on purpose: openpyxl is imported only where a ledger is written,
# so that the command line and the app start without those heavy libraries.
import csv
import datetime as dt
import io
import tempfile
import zipfile
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyarrow as pa
import pyogrio

from gis.base.clock import office_today, office_zone, utcnow
from gis.base.errors import InputError
from gis.base.fileio import atomic_path
from gis.base.i18n import t
from gis.base.sheets import text_sheet
from gis.base.units import M2_PER_MU
from gis.io.media_tables import write_media
from gis.io.parcel_table import export_table_csv
from gis.io.plans_io import ledger_plan_columns
from gis.io.projects_io import add_project_sheet
from gis.model.board import village_progress
from gis.model.timeline import as_of_text
from gis.store.base import CONTEXT_LAYERS, PARCEL_FIELDS

FORMATS = ("gpkg", "geojson", "shp", "xlsx", "csv")
SUFFIX = {"gpkg": ".gpkg", "geojson": ".geojson", "shp": ".zip", "xlsx": ".xlsx", "csv": ".csv"}
MIME = {
    "csv": "text/csv",
    "gpkg": "application/geopackage+sqlite3",
    "geojson": "application/geo+json",
    "shp": "application/zip",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
SHP_ENCODINGS = {"utf-8": "UTF-8", "gbk": "GBK"}
#: parcel fields in a shapefile: names of at most 10 characters
SHP_FIELDS = {
    "code": "code", "name": "name", "kind": "kind", "kind_label": "kind_lbl", "zone": "zone",
    "village": "village", "park": "park", "unit": "unit", "owner": "owner", "land_use": "land_use",
    "stage": "stage", "stage_label": "stage_lbl", "stage_date": "stage_date", "blocked": "blocked",
    "blocked_reason": "blk_reason", "note": "note", "area_m2": "area_m2", "area_mu": "area_mu",
    "version": "version", "updated_at": "updated_at", "updated_by": "updated_by",
}
#: and in a shapefile of a past date (gis.store.asof): the facts whose value then is not kept
AS_OF_SHP_FIELDS = {"unknown_then": "unknown"}
EVENT_FIELDS = ("id", "parcel", "action", "from_stage", "to_stage", "event_date", "recorded_at", "recorded_by",
                "unit", "note", "reason", "share")
#: the name ending of the field-name table in a shapefile zip
FIELD_TABLE_SUFFIX = "_fields.csv"
#: the name ending of the note saying the date of an export of the past
AS_OF_SUFFIX = "_as_of.txt"
_LDID_GBK = 0x4D  # DBF language driver id of code page 936, for software that ignores .cpg


# ------------------------------------------------------------------ data
def _selected(store, codes) -> gpd.GeoDataFrame:
    parcels = store.parcels()
    if codes is not None:
        parcels = parcels[parcels["code"].isin(list(codes))]
    return parcels.sort_values("code").reset_index(drop=True)


def parcels_for_export(store, codes=None, lang: str = "zh") -> gpd.GeoDataFrame:
    """The parcels (all, or those of ``codes``) with their stored fields plus kind and stage labels and 亩."""
    df = _selected(store, codes)
    cat = store.catalog
    df["kind_label"] = [cat.kinds[k].label(lang) if k in cat.kinds else k for k in df["kind"]]
    df["stage_label"] = [cat.stage_label(k, s if isinstance(s, str) and s else None, lang) if k in cat.kinds else ""
                         for k, s in zip(df["kind"], df["stage"])]
    df["area_m2"] = df["area_m2"].astype(float).round(1)
    df["area_mu"] = (df["area_m2"] / M2_PER_MU).round(2)
    df["blocked"] = df["blocked"].fillna(0).astype(int)
    cols = [*PARCEL_FIELDS[:10], "stage_label", *PARCEL_FIELDS[10:], "kind_label", "area_mu"]
    cols = [c for c in dict.fromkeys(cols) if c in df.columns]
    out = df[cols + ["geometry"]]
    if "unknown_then" in df.columns:  # a store seen at a past date (gis.store.asof): the facts not known then
        out = out.assign(unknown_then=[",".join(u) if isinstance(u, list) else "" for u in df["unknown_then"]])
        out = out[[*cols, "unknown_then", "geometry"]]
    return gpd.GeoDataFrame(out, geometry="geometry", crs=df.crs)


def events_for_export(store, codes=None) -> pd.DataFrame:
    ev = store.events()
    if codes is not None:
        ev = ev[ev["parcel"].isin(list(codes))]
    return ev[[c for c in EVENT_FIELDS if c in ev.columns]].reset_index(drop=True)


def _meta_rows(store, n_parcels: int, fmt: str) -> pd.DataFrame:
    # the schema version describes the store's own tables (accounts, audit), which an export leaves out
    meta = {k: v for k, v in store.meta().items() if k != "schema_version"}
    meta.update({
        "exported_at": utcnow().isoformat(timespec="seconds"),
        "export_format": fmt,
        "exported_parcels": str(n_parcels),
        "source_store": Path(store.path).name if store.path else store.location,  # a URL without password
    })
    return pd.DataFrame({"key": list(meta), "value": list(meta.values())})


# ------------------------------------------------------------------ writing helpers
def _atomic(path: Path, write) -> None:
    """Write through ``write(tmp_path)`` then rename over ``path``."""
    path = Path(path)  # the folder must exist: a missing one is refused, never created (README, *Output files*)
    with atomic_path(path) as tmp:
        tmp.unlink()  # the writers want to create the file themselves
        write(tmp)


_GPKG_OPTS = {"GEOMETRY_NAME": "geom", "SPATIAL_INDEX": "YES"}


def with_date_types(parcels: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The parcels with ``stage_date`` as dates and ``updated_at`` as UTC datetimes (the store keeps ISO text).

    Arrow's date32 holds even a column of no dates as a date column; text that is no date becomes null.
    """
    out = parcels.copy()

    def day(v):
        try:
            return dt.date.fromisoformat(v[:10]) if isinstance(v, str) and v else None
        except ValueError:
            return None

    out["stage_date"] = pd.array([day(v) for v in out["stage_date"]], dtype=pd.ArrowDtype(pa.date32()))
    out["updated_at"] = pd.to_datetime(out["updated_at"], utc=True, errors="coerce", format="ISO8601")
    return out


def export_gpkg(store, path, codes=None, lang: str = "zh", viewer: str | None = None) -> dict:
    """Every layer of the store, the (selected) parcels with their current stage, their events, and the
    attachments of the parcels, their events and their villages (``gis.io.media_tables``: the GeoPackage
    Related Tables Extension; photos without personal EXIF; restricted documents only when ``viewer``
    may see them — an export by no one in particular leaves them out).

    The layers are written by GDAL, so the file passes ``validate_gpkg.py`` and opens
    in QGIS; text is UTF-8 (Chinese intact).
    """
    parcels = parcels_for_export(store, codes, lang)
    events = events_for_export(store, codes)
    places = {kind: {v for v in parcels[col] if isinstance(v, str) and v} if col in parcels.columns else set()
              for kind, col in (("village", "village"), ("site", "park"))}  # their own evidence goes along
    media: dict = {}

    typed = with_date_types(parcels)

    def write(tmp: Path) -> None:
        # GeoPackage 1.2: the R-tree triggers that older GDAL, QGIS and
        # validate_gpkg.py expect (GDAL >= 3.9 writes 1.4's by default); through Arrow,
        # so that the dates are DATE and DATETIME fields, which QGIS filters as dates
        pyogrio.write_dataframe(typed, tmp, layer="parcels", driver="GPKG", geometry_type="MultiPolygon",
                                promote_to_multi=True, layer_options=_GPKG_OPTS, dataset_options={"VERSION": "1.2"},
                                use_arrow=True)
        ctx = store.context()
        for name in CONTEXT_LAYERS:
            if name in ctx:
                layer = ctx[name]
                pyogrio.write_dataframe(layer, tmp, layer=name, driver="GPKG", layer_options=_GPKG_OPTS,
                                        promote_to_multi=bool(layer.geom_type.isin(["Polygon", "MultiPolygon"]).all()))
        pyogrio.write_dataframe(events, tmp, layer="stage_events", driver="GPKG", layer_options={"FID": "id"})
        pyogrio.write_dataframe(_meta_rows(store, len(parcels), "gpkg"), tmp, layer="meta", driver="GPKG")
        media.update(write_media(store, tmp, list(parcels["code"]), viewer, places))

    _atomic(path, write)
    return {"format": "gpkg", "path": str(path), "parcels": len(parcels), "events": len(events), **media,
            "bytes": Path(path).stat().st_size}


def export_geojson(store, path, codes=None, lang: str = "zh") -> dict:
    """The (selected) parcels as an RFC 7946 GeoJSON FeatureCollection (lon/lat, 7 decimals)."""
    parcels = parcels_for_export(store, codes, lang)

    def write(tmp: Path) -> None:
        options = {"RFC7946": "YES", "WRITE_NAME": "NO"}
        as_of = as_of_text(store.meta(), lang)
        if as_of:  # a collection of the past says so (a "description" member, which GDAL writes)
            options["DESCRIPTION"] = as_of
        pyogrio.write_dataframe(parcels, tmp, driver="GeoJSON", layer="parcels", layer_options=options)

    _atomic(path, write)
    return {"format": "geojson", "path": str(path), "parcels": len(parcels), "bytes": Path(path).stat().st_size}


def field_table(names: dict[str, str], lang: str = "zh") -> bytes:
    """The shapefile's field names, each with its full name and meaning, as CSV (UTF-8 with a BOM, for Excel)."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow([t("export.shp_field_short", lang), t("export.shp_field_full", lang),
                     t("export.shp_field_label", lang)])
    for full, short in names.items():
        writer.writerow([short, full, t(f"export.shp_field.{full}", lang)])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def _fit_bytes(text, encoding: str, limit: int = 254):
    """Text cut at a character boundary to fit a DBF field of ``limit`` bytes; (text, was it cut)."""
    if not isinstance(text, str):
        return text, False
    b = text.encode(encoding, errors="replace")
    if len(b) <= limit:
        return text, False
    return b[:limit].decode(encoding, errors="ignore"), True


def export_shapefile_zip(store, path, codes=None, encoding: str = "utf-8", lang: str = "zh") -> dict:
    """The (selected) parcels as a zipped Shapefile with a .cpg (UTF-8, or GBK for older software).

    Field names are cut to the format's 10 characters (see ``SHP_FIELDS``);
    the zip carries a table mapping them back to the full names and their
    meaning (``parcels_fields.csv``, UTF-8 that Excel opens). Text longer than
    a DBF field (254 bytes) is cut at a character boundary and counted in the
    summary.

    Raises:
        InputError: an encoding other than utf-8 or gbk.
    """
    key = (encoding or "utf-8").lower().replace("_", "-")
    key = {"utf8": "utf-8", "gb18030": "gbk", "cp936": "gbk", "936": "gbk"}.get(key, key)
    if key not in SHP_ENCODINGS:
        raise InputError("export.bad_encoding", encoding=encoding, known="utf-8, gbk")
    parcels = parcels_for_export(store, codes, lang)
    fields = {**SHP_FIELDS, **AS_OF_SHP_FIELDS}
    shp_names = {full: short for full, short in fields.items() if full in parcels.columns}
    parcels = parcels.rename(columns=fields)
    py_enc = "gbk" if key == "gbk" else "utf-8"
    truncated = 0
    for col in parcels.columns:
        if col != "geometry" and (parcels[col].dtype == object or pd.api.types.is_string_dtype(parcels[col])):
            fitted = [_fit_bytes(v, py_enc) for v in parcels[col]]
            truncated += sum(cut for _, cut in fitted)
            parcels[col] = [v for v, _ in fitted]
    stem = "parcels"

    def write(tmp: Path) -> None:
        with tempfile.TemporaryDirectory(prefix="renewal-export-") as d:
            shp = Path(d) / f"{stem}.shp"
            pyogrio.write_dataframe(parcels, shp, driver="ESRI Shapefile", encoding=SHP_ENCODINGS[key],
                                    geometry_type="MultiPolygon", promote_to_multi=True)
            if key == "gbk":
                with open(shp.with_suffix(".dbf"), "r+b") as f:
                    f.seek(29)
                    f.write(bytes([_LDID_GBK]))
            with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                for ext in (".shp", ".shx", ".dbf", ".prj", ".cpg"):
                    part = shp.with_suffix(ext)
                    if part.exists():
                        zf.write(part, arcname=f"{stem}{ext}")
                zf.writestr(f"{stem}{FIELD_TABLE_SUFFIX}", field_table(shp_names, lang))
                as_of = as_of_text(store.meta(), lang)
                if as_of:  # a shapefile has no header: a note beside it says the date
                    zf.writestr(f"{stem}{AS_OF_SUFFIX}", ("\ufeff" + as_of + "\n").encode("utf-8"))

    _atomic(path, write)
    return {"format": "shp", "path": str(path), "parcels": len(parcels), "encoding": key,
            "field_table": f"{stem}{FIELD_TABLE_SUFFIX}",
            "truncated_values": truncated, "bytes": Path(path).stat().st_size}


# ------------------------------------------------------------------ the ledger
def _stage_dates(parcels: pd.DataFrame, events: pd.DataFrame, catalog) -> dict[tuple[str, str], dt.date]:
    """(parcel, stage) → date it was (last) entered, for stages up to each parcel's current one."""
    if not len(events):
        return {}
    ev = events[events["action"].isin(["advance", "correction", "import"]) & events["to_stage"].notna()]
    ev = ev.sort_values(["event_date", "id"])
    last = ev.groupby(["parcel", "to_stage"])["event_date"].last()
    out = {}
    for (code, kind, stage) in zip(parcels["code"], parcels["kind"], parcels["stage"]):
        if kind not in catalog.kinds:
            continue
        pipe = catalog.pipeline_for(kind)
        cur = pipe.keys.index(stage) if isinstance(stage, str) and stage in pipe.keys else -1
        for key in pipe.keys[:cur + 1]:
            d = last.get((code, key))
            if isinstance(d, str):
                try:
                    out[(code, key)] = dt.date.fromisoformat(d[:10])
                except ValueError:
                    pass
    return out


def imported_sources(store, lang: str = "zh", limit: int = 20) -> list[str]:
    """The files imported into the store, oldest first, from the audit trail: ``宗地.zip（2026-12-01 导入，张伟）``."""
    log = store.audit(action="import", outcome="ok")
    # an import's audit target is its event note, "数据导入：{source}" in the office's language
    prefix, _, suffix = t("import.event_note", "zh", source="\x00").partition("\x00")
    out: list[str] = []
    for at, actor, target in zip(log["at"][::-1], log["actor"][::-1], log["target"][::-1]):
        name = str(target or "")
        if name.startswith(prefix) and name.endswith(suffix):
            name = name[len(prefix):len(name) - len(suffix)]
        try:
            when = dt.datetime.fromisoformat(str(at).replace("Z", "+00:00")).astimezone(office_zone()).date()
        except ValueError:
            when = str(at)[:10]
        out.append(t("export.about_imported", lang, source=name, date=str(when), by=actor or ""))
    out = list(dict.fromkeys(out))
    return out if len(out) <= limit else out[-limit:]


def _width(values, header: str) -> float:
    def w(v) -> int:
        s = "" if v is None else str(v)
        return sum(2 if ord(c) > 0x2E80 else 1 for c in s)

    longest = max([w(header)] + [w(v) for v in values[:2000]])
    return min(max(longest + 2, 8), 60)


def export_ledger_xlsx(store, path, codes=None, lang: str = "zh") -> dict:
    """The ledger (台账): one row per parcel, a village summary sheet, and a sheet saying what this is.

    Ledger columns: code, name, kind, zone, village, area m² and 亩, current
    stage, the date each stage of the parcel's pipeline was reached, responsible
    unit, blocked (and why), last change. Chinese headers (English with
    ``lang="en"``), frozen header row, fitted column widths, dates as dates.
    """
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter


    cat = store.catalog
    parcels = parcels_for_export(store, codes, lang)
    events = events_for_export(store, codes)
    zones, villages = store.names("zones"), store.names("villages")
    pick = (lambda d, c: (d.get(c) or ("", ""))[1 if lang == "en" else 0] or c if c else "")
    kinds_present = [k for k in cat.kinds if k in set(parcels["kind"])] or list(cat.kinds)
    stage_cols: list[tuple[str, str]] = []  # (stage key, header), once per key across the pipelines shown
    seen: dict[str, int] = {}
    for k in kinds_present:
        for s in cat.pipeline_for(k).stages:
            label = s.label(lang)
            if s.key in seen:
                i = seen[s.key]
                key, header = stage_cols[i]
                if label not in header.split("/"):
                    stage_cols[i] = (key, f"{header}/{label}")
                continue
            seen[s.key] = len(stage_cols)
            stage_cols.append((s.key, label))
    dates = _stage_dates(parcels, events, cat)
    plan_headers, plan = ledger_plan_columns(store, codes, lang)  # 年初目标: stage, date, status, days late

    T = (lambda key: t(f"export.col_{key}", lang))
    headers = [T("code"), T("name"), T("kind"), T("zone"), T("village"), T("area_m2"), T("area_mu"), T("stage"),
               *[f"{h}{T('date_suffix')}" for _, h in stage_cols], *plan_headers, T("unit"), T("blocked"),
               T("blocked_reason"),
               T("updated_at"), T("updated_by")]
    rows = []
    unknown_then = t("brief.unknown_then", lang)
    for r in parcels.itertuples(index=False):
        updated = None
        if "updated_at" in (getattr(r, "unknown_then", "") or "").split(","):
            updated = unknown_then  # a ledger of a past date: when it was last modified then is not kept
        elif isinstance(r.updated_at, str) and r.updated_at:
            try:
                u = dt.datetime.fromisoformat(r.updated_at.replace("Z", "+00:00"))
                # the office's wall clock, as every time a planner reads (Excel has no time zones)
                updated = (u if u.tzinfo else u.replace(tzinfo=dt.timezone.utc)).astimezone(
                    office_zone()).replace(tzinfo=None, microsecond=0)
            except ValueError:
                updated = None
        rows.append([
            r.code, r.name, r.kind_label, pick(zones, r.zone), pick(villages, r.village),
            float(r.area_m2), float(r.area_mu), r.stage_label,
            *[dates.get((r.code, key)) for key, _ in stage_cols],
            *plan.get(r.code, [None] * len(plan_headers)),
            r.unit or "", t("export.yes" if r.blocked else "export.no", lang), r.blocked_reason or "",
            updated, unknown_then if updated == unknown_then else (r.updated_by or ""),
        ])

    wb = Workbook()
    ws = wb.active
    ws.title = t("export.sheet_ledger", lang)
    ws.append(headers)
    for row in rows:
        ws.append(row)
    head_font, head_fill = Font(bold=True), PatternFill("solid", fgColor="DDEBF7")
    for c in ws[1]:
        c.font, c.fill = head_font, head_fill
        c.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
    first_date, last_date = 9, 8 + len(stage_cols)
    n = len(rows)
    for col in range(1, len(headers) + 1):
        letter = get_column_letter(col)
        values = [row[col - 1] for row in rows]
        if first_date <= col <= last_date:
            fmt, width = "yyyy-mm-dd", max(12, _width([], headers[col - 1]) * 0.8)
        elif col == len(headers) - 1:
            fmt, width = "yyyy-mm-dd hh:mm", 18
        elif col == 6:
            fmt, width = "#,##0.0", _width([f"{v:,.1f}" for v in values], headers[col - 1])
        elif col == 7:
            fmt, width = "#,##0.00", _width([f"{v:,.2f}" for v in values], headers[col - 1])
        else:
            fmt, width = None, _width(values, headers[col - 1])
        ws.column_dimensions[letter].width = width
        if fmt and n:
            for cell in ws[f"{letter}2:{letter}{n + 1}"]:
                cell[0].number_format = fmt
    ws.freeze_panes = "A2"
    if n:
        ws.auto_filter.ref = f"A1:{get_column_letter(len(headers))}{n + 1}"

    # village summary, over the exported parcels
    vs = wb.create_sheet(t("export.sheet_villages", lang))
    vp = parcels[parcels["kind"] == "village"]
    board = village_progress(vp, store.layer("villages"), events, cat, lang) if "villages" in store.layer_names() \
        else pd.DataFrame()
    if len(board):
        board = board[board["parcels"] > 0] if codes is not None else board
    vheaders = [T("village_code"), T("village"), T("zone"), T("parcels"), T("area_mu"), T("cleared_share"),
                T("signed_share"), T("demolished_share"), T("blocked_parcels"), T("last_activity")]
    vs.append(vheaders)
    for r in board.itertuples(index=False) if len(board) else []:
        last = None
        if isinstance(r.last_activity, str) and r.last_activity:
            try:
                last = dt.date.fromisoformat(r.last_activity[:10])
            except ValueError:
                last = None
        vs.append([r.code, r.name, pick(zones, r.zone), int(r.parcels), float(r.area_mu), float(r.cleared_share),
                   float(r.signed_share), float(r.demolished_share), int(r.blocked), last])
    for c in vs[1]:
        c.font, c.fill = head_font, head_fill
        c.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
    m = vs.max_row
    for col, fmt in ((5, "#,##0.0"), (6, "0.0%"), (7, "0.0%"), (8, "0.0%"), (10, "yyyy-mm-dd")):
        for cell in vs[f"{get_column_letter(col)}2:{get_column_letter(col)}{max(m, 2)}"]:
            cell[0].number_format = fmt
    for col in range(1, len(vheaders) + 1):
        vs.column_dimensions[get_column_letter(col)].width = _width(
            [vs.cell(row=i, column=col).value for i in range(2, m + 1)], vheaders[col - 1])
    vs.freeze_panes = "A2"

    # the key projects on the exported parcels (重点项目, gis/io/projects_io.py), when there are any
    add_project_sheet(wb, store, lang, None if codes is None else parcels)

    # what this is: title, date, source, classification (and the demo mark)
    about = wb.create_sheet(t("export.sheet_about", lang))
    meta = store.meta()
    demo = meta.get("demo") == "1"
    imported = imported_sources(store, lang)
    # the files the data came from (a store seeded from the demo keeps its mark for the rest)
    source = "；".join(imported + ([t("export.about_demo_also", lang)] if demo else [])) if imported else (
        meta.get("data_source") or (Path(store.path).name if store.path else store.location))
    lines = [
        (t("export.about_title", lang), " · ".join(x for x in (t("export.ledger_title", lang),
                                                              as_of_text(meta, lang)) if x)),
        (t("export.about_date", lang), office_today()),
        *([(t("export.about_as_of", lang), meta["as_of"] + (t("brief.as_recorded", lang, at=meta["as_recorded"])
                                                      if meta.get("as_recorded") else ""))] if meta.get("as_of") else []),
        (t("export.about_source", lang), source),
        (t("export.about_parcels", lang), len(rows)),
        (t("export.about_filter", lang), t("export.filter_all", lang) if codes is None
         else t("export.filter_some", lang, n=len(rows))),
        (t("export.about_classification", lang), meta.get("classification") or t("app.classification", lang)),
    ]
    if demo:
        lines.append((t("export.about_demo", lang), t("export.about_demo_with_imports" if imported else "app.demo_mark",
                                                      lang)))
    for k, v in lines:
        about.append([k, v])
    about["B2"].number_format = "yyyy-mm-dd"
    about.column_dimensions["A"].width = 14
    about.column_dimensions["B"].width = 50
    for c in about["A"]:
        c.font = head_font

    for sheet in (ws, vs, about):  # a unit "=1+1" or a note "@SUM(…)" stays text (CSV injection)
        text_sheet(sheet)
    _atomic(path, lambda tmp: wb.save(tmp))
    return {"format": "xlsx", "path": str(path), "parcels": len(rows), "villages": int(len(board)),
            "bytes": Path(path).stat().st_size}


# ------------------------------------------------------------------ one entry
def export(store, fmt: str, path, codes=None, encoding: str | None = None, lang: str = "zh",
           viewer: str | None = None) -> dict:
    """Write ``fmt`` (gpkg, geojson, shp, xlsx, csv: the parcel table) of the parcels ``codes`` (None: all) to ``path``.

    ``viewer``: the account exporting (a GeoPackage carries the restricted documents it may see).

    Raises:
        InputError: unknown format or shapefile encoding; nothing to export.
    """
    if fmt not in FORMATS:
        raise InputError("export.bad_format", format=fmt, known=", ".join(FORMATS))
    if codes is not None:
        codes = list(codes)
        if not codes:
            raise InputError("export.nothing")
    if fmt == "gpkg":
        out = export_gpkg(store, path, codes, lang, viewer)
    elif fmt == "geojson":
        out = export_geojson(store, path, codes, lang)
    elif fmt == "shp":
        out = export_shapefile_zip(store, path, codes, encoding or "utf-8", lang)
    elif fmt == "csv":
        out = export_table_csv(store, path, codes, lang)
    else:
        out = export_ledger_xlsx(store, path, codes, lang)
    meta = store.meta()
    if meta.get("as_of"):  # a store seen at a past moment (gis.store.asof)
        out.update({k: meta[k] for k in ("as_of", "as_recorded") if meta.get(k)})
    return out


def export_bytes(store, fmt: str, codes=None, encoding: str | None = None, lang: str = "zh",
                 viewer: str | None = None) -> bytes:
    """The bytes of an export, for a download button."""
    with tempfile.TemporaryDirectory(prefix="renewal-export-") as d:
        out = Path(d) / f"export{SUFFIX.get(fmt, '')}"
        export(store, fmt, out, codes, encoding, lang, viewer)
        return out.read_bytes()


def export_filename(fmt: str, lang: str = "zh", when: dt.date | None = None) -> str:
    """A download name such as ``城市更新地块_2026-11-28.gpkg`` (台账 for the spreadsheet)."""
    when = when or office_today()
    base = t("export.file_ledger" if fmt in ("xlsx", "csv") else "export.file_parcels", lang)
    return f"{base}_{when.isoformat()}{SUFFIX[fmt]}"

