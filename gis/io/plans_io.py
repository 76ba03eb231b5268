"""Plan spreadsheets in the office's own terms: the template handed out, and reading it back.

Columns (Chinese headers; English ones are accepted too):
    对象编号 object     a parcel code (V07-023), a village (V07 or 东沙村) or a site (park code or name)
    目标阶段 stage      the stage to reach: its label (签约) or key (signing)
    计划完成日期 due    a date cell, or 2026-12-31 / 2026/12/31 / 2026.12.31 / 2026年12月31日
                        (``gis.model.plans.parse_plan_date``; 12/31/2026 is refused as ambiguous)
    责任单位 unit       optional: the unit responsible (default: the object's)
    备注 note           optional

The template's example rows say so in their note (``【示例】…``, ``[Example] …``): a row whose
note starts so is read as ``example: True`` and never becomes a target (``Store.set_targets``
skips and counts them), so a template filled in below its examples imports as meant.

``read_plan_file`` gives rows numbered as the spreadsheet numbers them (the
header is row 1), so that a rejected row can be named; the store validates
them all before writing any (``Store.set_targets``).
"""
from __future__ import annotations

# Lazy imports, on purpose: openpyxl is imported only where a plan spreadsheet is read or written,
# so that the command line and the app start without it.
import datetime as dt
import io
from pathlib import Path

import pandas as pd

from gis.base.clock import office_today
from gis.base.errors import InputError
from gis.base.i18n import t
from gis.base.sheets import read_table
from gis.io.templates import write_template_file

COLUMNS = ("object", "stage", "due", "unit", "note")
HEADERS_ZH = {"object": "对象编号", "stage": "目标阶段", "due": "计划完成日期", "unit": "责任单位", "note": "备注"}
HEADERS_EN = {"object": "object", "stage": "stage", "due": "due", "unit": "unit", "note": "note"}
_ALIASES = {**{v: k for k, v in HEADERS_ZH.items()}, **{v: k for k, v in HEADERS_EN.items()},
            "对象": "object", "编号": "object", "阶段": "stage", "计划日期": "due", "完成日期": "due",
            "due_date": "due", "code": "object"}
MAX_ROWS = 200_000
#: how the note of a template's example row starts (today's templates, and those handed out before them)
EXAMPLE_MARKS = ("【示例】", "[example]", "示例行", "example:")


def is_example(note) -> bool:
    """Whether a row's note marks it as an example row of the template."""
    return str(note or "").strip().lower().startswith(EXAMPLE_MARKS)


def _both(key: str, **params) -> dict:
    """A message parameter in both languages (the error picks the one of its message)."""
    return {lang: t(key, lang, **params) for lang in ("zh", "en")}


def _cell(v):
    if isinstance(v, dt.datetime):
        return v.date().isoformat()
    if isinstance(v, dt.date):
        return v.isoformat()
    if v is None:
        return ""
    return str(v).strip()


def _rows_from(table: list[list], source: str) -> list[dict]:
    if not table:
        raise InputError("plans.bad_plan_file", path=source, detail=_both("plans.file_empty"))
    header = [_ALIASES.get(_cell(h), _ALIASES.get(_cell(h).lower())) for h in table[0]]
    missing = [HEADERS_ZH[c] for c in ("object", "stage", "due") if c not in header]
    if missing:
        raise InputError("plans.bad_plan_file", path=source,
                         detail={lang: t("plans.file_missing_columns", lang, columns=sep.join(missing))
                                 for lang, sep in (("zh", "、"), ("en", ", "))})
    out = []
    for n, values in enumerate(table[1:], start=2):
        row = {c: _cell(v) for c, v in zip(header, values) if c}
        if not any(row.values()):
            continue  # blank lines between blocks of a hand-made sheet
        out.append({"row": n, **{c: row.get(c, "") for c in COLUMNS}, "example": is_example(row.get("note"))})
        if len(out) > MAX_ROWS:
            raise InputError("plans.bad_plan_file", path=source, detail=_both("plans.file_too_long", n=MAX_ROWS))
    return out


def read_plan_rows(data: bytes, name: str) -> list[dict]:
    """Rows of a plan spreadsheet (.xlsx) or CSV (UTF-8, with or without BOM; GBK accepted).

    Raises:
        InputError: not a readable spreadsheet, or the required columns are missing.
    """
    return _rows_from(read_table(data, name, "plans.bad_plan_file"), name)


def read_plan_file(path: Path) -> list[dict]:
    """:func:`read_plan_rows` of a file. Raises InputError: missing or unreadable."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise InputError("plans.bad_plan_file", path=str(path), detail=e.strerror or str(e)) from None
    return read_plan_rows(data, Path(path).name)


def template_bytes(store, lang: str = "zh") -> bytes:
    """The plan template: the five columns with two example rows (grey, their note starting with
    ``【示例】``: an import skips them), and a sheet listing every stage of every pipeline and the
    villages and sites, so that a planner can type the right words."""
    from openpyxl import Workbook
    from openpyxl.styles import Font, PatternFill

    headers = HEADERS_ZH if lang == "zh" else HEADERS_EN
    wb = Workbook()
    ws = wb.active
    ws.title = t("plans.sheet_plan", lang)
    ws.append([headers[c] for c in COLUMNS])
    for cell in ws[1]:
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor="DDEBF7")
    parcels = store.parcels(geometry=False)
    villages = store.attributes("villages")
    example_v = sorted(villages)[0] if villages else None
    if example_v:
        ws.append([example_v, store.catalog.pipeline_for("village").stage("signing").label(lang)
                   if "signing" in store.catalog.pipeline_for("village").keys else "",
                   dt.date(office_today().year, 12, 31), "", t("plans.template_example", lang)])
    if len(parcels):
        p = parcels.sort_values("code").iloc[0]
        nxt = store.catalog.pipeline_for(p["kind"]).next_stage(p["stage"] if isinstance(p["stage"], str) else None)
        if nxt:
            ws.append([p["code"], store.catalog.stage_label(p["kind"], nxt, lang),
                       dt.date(office_today().year, 12, 31), p["unit"] or "", t("plans.template_example_parcel", lang)])
    grey = Font(italic=True, color="808080")
    for row in ws.iter_rows(min_row=2):
        for cell in row:
            cell.font = grey
    for row in ws.iter_rows(min_row=2, min_col=3, max_col=3):
        for cell in row:
            cell.number_format = "yyyy-mm-dd"
    for col, width in zip("ABCDE", (16, 16, 16, 24, 30)):
        ws.column_dimensions[col].width = width
    ws.freeze_panes = "A2"
    ref = wb.create_sheet(t("plans.sheet_stages", lang))
    ref.append([t("plans.col_kind", lang), t("plans.col_stage_label", lang), t("plans.col_stage_key", lang)])
    for kind in store.catalog.kinds.values():
        for s in store.catalog.pipeline_for(kind.key).stages:
            ref.append([kind.label(lang), s.label(lang), s.key])
    ref.append([])
    ref.append([t("plans.col_object", lang), t("plans.col_object_name", lang)])
    for code, r in sorted(villages.items()):
        ref.append([code, (r.get("name_en") if lang == "en" else r.get("name")) or ""])
    for code, r in sorted(store.attributes("parks").items()):
        ref.append([code, (r.get("name_en") if lang == "en" else r.get("name")) or ""])
    for col, width in zip("ABC", (20, 28, 18)):
        ref.column_dimensions[col].width = width
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def write_template(store, path: Path, lang: str = "zh") -> Path:
    """Write :func:`template_bytes` to ``path`` (.xlsx, or .csv: the sheet to fill). Raises InputError: another
    extension, not writable."""
    return write_template_file(path, template_bytes(store, lang))  # .xlsx or .csv, by the name


def ledger_plan_columns(store, codes, lang: str = "zh", baseline: str = "annual") -> tuple[list[str], dict]:
    """The ledger's plan columns: for each parcel, the target of ``baseline`` that concerns it (its own,
    else its village's or site's; the earliest open one first) — stage, planned date, status, days late.

    Returns ``(headers, {code: [stage label, planned date, status, days late]})``.
    """
    headers = [t(f"plans.ledger_{k}", lang) for k in ("stage", "due", "status", "days_late")]
    ev = store.plan_status()
    tg = ev.targets
    tg = tg[tg["baseline"] == baseline] if len(tg) else tg
    if not len(tg):
        return headers, {}
    p = ev.parcels[["code", "kind", "village"]].merge(store.parcels(geometry=False)[["code", "park"]], on="code")
    if codes is not None:
        p = p[p["code"].isin(list(codes))]
    own = p.merge(tg[tg["object_type"] == "parcel"], left_on="code", right_on="object", suffixes=("", "_t"))
    vil = p.merge(tg[tg["object_type"] == "village"], left_on="village", right_on="object", suffixes=("", "_t"))
    site = p.merge(tg[tg["object_type"] == "site"], left_on="park", right_on="object", suffixes=("", "_t"))
    rows = pd.concat([own.assign(_o=0), vil.assign(_o=1), site.assign(_o=2)], ignore_index=True)
    rows["_open"] = ~rows["status"].isin(("done", "done_late"))
    rows = rows.sort_values(["code", "_o", "_open", "due_date"], ascending=[True, True, False, True])
    first = rows.groupby("code", sort=False).head(1)
    out = {}
    for r in first.itertuples():
        out[r.code] = [store.catalog.stage_label(r.kind, r.stage, lang), dt.date.fromisoformat(r.due_date),
                       t(f"plans.status_{r.status}", lang), int(r.days_late) or None]
    return headers, out
