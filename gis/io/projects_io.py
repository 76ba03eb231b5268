"""The project ledger (重点项目台账) in the form offices keep: the template handed out, and reading it back.

One row per project, Chinese headers (English ones accepted too):
    项目编号 code · 项目名称 name · 项目类型 kind · 主导产业 industry · 总投资（万元） investment_total ·
    责任单位 unit · 投资主体 investor · 所在地块 parcels (parcel codes or a park, separated by 、 or ,) ·
    所属清单 lists (separated by 、 or ,) · 项目阶段 stage · 签约日期 · 开工日期 · 投产日期 · 竣工日期 · 备注 ·
    then one column per month of the plan: "2026年1月计划（万元）" … (or "2026-01")

``read_project_rows`` numbers rows as the spreadsheet does (the header is row 1) so that a rejected
row can be named; the store validates every row before writing any (``Store.upsert_projects``).
The template's text cells are written formula-safe (gis/base/sheets.py).
"""
from __future__ import annotations

# Lazy imports, on purpose: openpyxl is imported only where a ledger is read or written,
# so that the command line and the app start without it.
import datetime as dt
import io
import re
from pathlib import Path

from gis.base.clock import office_today
from gis.base.errors import InputError
from gis.base.i18n import t
from gis.base.sheets import read_table, text_sheet
from gis.io.templates import write_template_file

COLUMNS = ("code", "name", "kind", "industry", "investment_total", "unit", "investor", "parcels", "lists", "stage",
           "signed_on", "started_on", "production_on", "completed_on", "note")
HEADERS_ZH = {"code": "项目编号", "name": "项目名称", "kind": "项目类型", "industry": "主导产业",
              "investment_total": "总投资（万元）", "unit": "责任单位", "investor": "投资主体", "parcels": "所在地块",
              "lists": "所属清单", "stage": "项目阶段", "signed_on": "签约日期", "started_on": "开工日期",
              "production_on": "投产日期", "completed_on": "竣工日期", "note": "备注"}
HEADERS_EN = {c: c for c in COLUMNS}
_ALIASES = {**{v: k for k, v in HEADERS_ZH.items()}, **HEADERS_EN,
            "总投资": "investment_total", "总投资(万元)": "investment_total", "项目代码": "code", "地块编号": "parcels",
            "地块": "parcels", "清单": "lists", "阶段": "stage", "产业": "industry", "类型": "kind"}
REQUIRED = ("code", "name", "kind", "investment_total")
MONTH_ZH = re.compile(r"^(?:(\d{4})\s*年)?\s*(\d{1,2})\s*月")
MONTH_ISO = re.compile(r"^(?:plan\s*)?(\d{4})-(\d{1,2})$")
MAX_ROWS = 100_000


def _cell(v):
    if isinstance(v, dt.datetime):
        return v.date().isoformat()
    if isinstance(v, dt.date):
        return v.isoformat()
    if v is None:
        return ""
    if isinstance(v, (int, float)):
        return v
    return str(v).strip()


def _header(h, year: int):
    """A column's field, or ``(year, month)`` for a plan column, or None."""
    text = str(_cell(h) or "").strip()
    if text in _ALIASES or text.lower() in _ALIASES:
        return _ALIASES.get(text, _ALIASES.get(text.lower()))
    m = MONTH_ZH.match(text) or MONTH_ISO.match(text.lower())
    if m:
        month = int(m.group(2))
        if 1 <= month <= 12:
            return (int(m.group(1)) if m.group(1) else year, month)
    return None


def is_example(row: dict) -> bool:
    """Whether a ledger row is the template's example row: its name (or note) is the template's example
    text, in either language ("示例行，可删除"). A planner who fills the row in renames it, and it counts."""
    marks = {t("projects.template_example", lang) for lang in ("zh", "en")}
    return any(str(row.get(f) or "").strip() in marks for f in ("name", "note"))


def rows_from_table(table: list[list], source: str, year: int | None = None) -> list[dict]:
    """Ledger rows from a table whose first row is the header; the template's example row comes marked
    ``example`` (:func:`is_example`), for the import to skip.

    Raises:
        InputError: empty, or a required column is missing.
    """
    year = year or office_today().year
    if not table:
        raise InputError("projects.bad_file", path=source, detail="empty")
    header = [_header(h, year) for h in table[0]]
    missing = [HEADERS_ZH[c] for c in REQUIRED if c not in header]
    if missing:
        raise InputError("projects.bad_file", path=source, detail={
            "zh": t("ledger.missing_columns", "zh", columns="、".join(missing)),
            "en": t("ledger.missing_columns", "en", columns=", ".join(f"{m} ({c})" for m, c in zip(
                missing, [c for c in REQUIRED if c not in header])))})
    out = []
    for n, values in enumerate(table[1:], start=2):
        cells = [(h, _cell(v)) for h, v in zip(header, values) if h is not None]
        if not any(v not in ("", None) for _, v in cells):
            continue  # blank lines between blocks of a hand-made sheet
        row = {"row": n, "plan": {}}
        for h, v in cells:
            if isinstance(h, tuple):
                if v not in ("", None):
                    row["plan"][h] = v
            else:
                row[h] = v
        if is_example(row):
            row["example"] = True  # the template's own example row: skipped by the import, and counted
        out.append(row)
        if len(out) > MAX_ROWS:
            raise InputError("projects.bad_file", path=source, detail=f"more than {MAX_ROWS} rows")
    return out


def read_project_rows(data: bytes, name: str, year: int | None = None) -> list[dict]:
    """Rows of a ledger spreadsheet (.xlsx, first sheet) or CSV (UTF-8 with or without BOM; GBK accepted).

    Raises:
        InputError: not a readable spreadsheet, or the required columns are missing.
    """
    return rows_from_table(read_table(data, name, "projects.bad_file"), name, year)


def read_project_file(path: Path, year: int | None = None) -> list[dict]:
    """:func:`read_project_rows` of a file. Raises InputError: missing or unreadable."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise InputError("projects.bad_file", path=str(path), detail=e.strerror or str(e)) from None
    return read_project_rows(data, Path(path).name, year)


def template_bytes(store, lang: str = "zh", year: int | None = None) -> bytes:
    """The ledger template: the columns, twelve plan columns for ``year`` (default this year), an example
    row, and a sheet listing the kinds, industries, lists, stages and sites one may write."""
    from openpyxl import Workbook
    from openpyxl.styles import Font, PatternFill

    year = year or office_today().year
    cfg = store.project_config
    headers = HEADERS_ZH if lang == "zh" else HEADERS_EN
    months = [f"{year}年{m}月计划（万元）" if lang == "zh" else f"{year}-{m:02d}" for m in range(1, 13)]
    wb = Workbook()
    ws = wb.active
    ws.title = t("projects.sheet_ledger", lang)
    ws.append([headers[c] for c in COLUMNS] + months)
    for cell in ws[1]:
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor="DDEBF7")
    parcels = store.parcels(geometry=False)
    park = parcels[parcels["kind"] == "park"].sort_values("code") if len(parcels) else parcels
    example = park.iloc[:2] if len(park) else parcels.sort_values("code").iloc[:1]
    codes = "、".join(example["code"]) if len(example) else ""
    unit = example["unit"].iloc[0] if len(example) else ""
    lists = [cfg.lists[k].label(lang) for k in list(cfg.lists)[:1]] + \
        [cfg.lists[k].label(lang) for k in cfg.lists if k == "under_construction"]
    ws.append(["XM-EX01", t("projects.template_example", lang), next(iter(cfg.kinds.values())).label(lang),
               next(iter(cfg.industries.values())).label(lang), 50000, unit, "", codes, "、".join(lists),
               store.project_pipeline.stages[2].label(lang), dt.date(year - 1, 11, 20), dt.date(year, 3, 1), None,
               None, ""] + [None, None] + [3000] * 10)
    for row in ws.iter_rows(min_row=2, min_col=11, max_col=14):
        for cell in row:
            cell.number_format = "yyyy-mm-dd"
    for i, width in enumerate((12, 30, 12, 18, 14, 24, 24, 24, 26, 10, 12, 12, 12, 12, 24) + (12,) * 12):
        ws.column_dimensions[ws.cell(1, i + 1).column_letter].width = width
    ws.freeze_panes = "C2"
    ref = wb.create_sheet(t("projects.sheet_reference", lang))
    ref.append([t("projects.col_field", lang), t("projects.col_values", lang)])
    ref.append([headers["kind"], "、".join(f"{k.label(lang)}（{k.key}）" for k in cfg.kinds.values())])
    ref.append([headers["industry"], "、".join(f"{k.label(lang)}（{k.key}）" for k in cfg.industries.values())])
    ref.append([headers["lists"], "、".join(f"{k.label(lang)}（{k.key}）" for k in cfg.lists.values())])
    ref.append([headers["stage"], "、".join(f"{s.label(lang)}（{s.key}）" for s in store.project_pipeline.stages)])
    sites = store.attributes("parks") if "parks" in store.layer_names() else {}
    ref.append([headers["parcels"], "、".join(f"{(r.get('name_en') if lang == 'en' else r.get('name')) or c}（{c}）"
                                             for c, r in sorted(sites.items()))])
    ref.column_dimensions["A"].width = 16
    ref.column_dimensions["B"].width = 120
    text_sheet(ws)
    text_sheet(ref)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def write_template(store, path: Path, lang: str = "zh", year: int | None = None) -> Path:
    """Write :func:`template_bytes` to ``path`` (.xlsx, or .csv: the sheet to fill). Raises InputError: another
    extension, not writable."""
    return write_template_file(path, template_bytes(store, lang, year))  # .xlsx or .csv, by the name


#: the dates and note are in the project's own record (``renewal project show``); the sheet keeps to the money
DATES_SKIPPED = ("signed_on", "started_on", "production_on", "completed_on", "note")
LEDGER_EXTRA = ("invested_to_date", "invested_year", "planned_year")
EXTRA_ZH = {"invested_to_date": "累计完成投资（万元）", "invested_year": "本年完成投资（万元）",
            "planned_year": "本年计划投资（万元）"}


def add_project_sheet(wb, store, lang: str = "zh", parcels=None) -> int:
    """The ledger export's projects sheet (重点项目): the template's columns with the investment completed
    to date and this year and the year's plan, one row per project — those standing on the exported
    parcels (``parcels``: a table with code, village, park; None: every project). Returns the rows written
    (no sheet when there are none)."""
    from openpyxl.styles import Alignment, Font, PatternFill

    rows = store.projects(lang=lang)
    if parcels is not None:
        keep = set(parcels["code"]) | set(parcels.get("village", [])) | set(parcels.get("park", []))
        rows = [r for r in rows if keep & set(r["parcels"])]
    if not rows:
        return 0
    cfg = store.project_config
    headers = HEADERS_ZH if lang == "zh" else HEADERS_EN
    extra = EXTRA_ZH if lang == "zh" else {c: c for c in LEDGER_EXTRA}
    cols = [c for c in COLUMNS if c not in DATES_SKIPPED] + list(LEDGER_EXTRA)
    ws = wb.create_sheet(t("projects.sheet_ledger", lang))
    ws.append([headers.get(c) or extra[c] for c in cols])
    for r in rows:
        p = {**r, "kind": cfg.kinds[r["kind"]].label(lang) if r["kind"] in cfg.kinds else r["kind"],
             "industry": r["industry_label"] or "", "stage": r["stage_label"], "parcels": "、".join(r["parcels"]),
             "lists": "、".join(cfg.lists[x].label(lang) if x in cfg.lists else x for x in r["lists"])}
        ws.append([p.get(c) for c in cols])
    for c in ws[1]:
        c.font, c.fill = Font(bold=True), PatternFill("solid", fgColor="DDEBF7")
        c.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
    for i, c in enumerate(cols, start=1):
        if c in ("investment_total", *LEDGER_EXTRA):
            for row in ws.iter_rows(min_row=2, min_col=i, max_col=i):
                row[0].number_format = "#,##0.00"
        ws.column_dimensions[ws.cell(1, i).column_letter].width = 30 if c == "name" else 16
    ws.freeze_panes = "C2"
    text_sheet(ws)
    return len(rows)
