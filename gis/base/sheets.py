"""Text cells that spreadsheets would run: written as text, never as formulas.

Excel, LibreOffice and WPS treat a cell that starts with ``=``, ``+``, ``-`` or
``@`` (and, in CSV, one that starts with a tab or a carriage return) as a
formula: a unit name ``=1+1`` from an import, or a login name
``=HYPERLINK("…")`` in the audit trail, would run when the office opens the
file (CSV injection). OWASP's rule, applied to every spreadsheet and CSV the
tool writes: such text is prefixed with a single quote in CSV, and in ``.xlsx``
written as a string cell with the quote-prefix style (Excel shows the text
as typed, and editing the cell does not turn it into a formula). Numbers stay
numbers and dates stay dates: only ``str`` values are touched.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd

from gis.base.errors import InputError
from gis.base.i18n import LANGUAGES, t

#: first characters that make a spreadsheet read a cell as a formula
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def is_formula_like(value) -> bool:
    """Whether ``value`` is text a spreadsheet would take for a formula."""
    return isinstance(value, str) and value.startswith(FORMULA_START)


def csv_text(value):
    """``value`` for a CSV field: formula-like text gets a leading ``'``; anything else unchanged."""
    return "'" + value if is_formula_like(value) else value


def csv_safe(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` whose text cells (and headers) cannot run as formulas in a spreadsheet."""
    out = df.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(csv_text)
    out.columns = [csv_text(c) if isinstance(c, str) else c for c in out.columns]
    return out


def csv_bytes(df: pd.DataFrame) -> bytes:
    """``df`` as UTF-8 CSV with a BOM (Excel then reads the Chinese right), formula-safe; CRLF line ends,
    so that a field holding a carriage return or a newline is quoted."""
    buf = io.StringIO()
    csv_safe(df).to_csv(buf, index=False, lineterminator="\r\n")
    return buf.getvalue().encode("utf-8-sig")


def text_cells(cells) -> None:
    """Make the openpyxl cells given whose value is formula-like text string cells (quote prefix)."""
    for cell in cells:
        if is_formula_like(cell.value):
            cell.data_type = "s"
            cell.quotePrefix = True


def text_sheet(ws) -> None:
    """Every formula-like text cell of an openpyxl worksheet written as text (call before saving)."""
    for row in ws.iter_rows():
        text_cells(row)


#: the first bytes of an OLE2 compound file: an old Excel .xls (or an encrypted .xlsx, which Excel wraps in one)
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ZIP_MAGIC = b"PK\x03\x04"
#: names read as text tables: CSV, and the tab-separated text Excel saves ("Unicode text" is UTF-16)
TEXT_SUFFIXES = (".csv", ".txt", ".tsv")
WORKBOOK_SUFFIXES = (".xlsx", ".xlsm")


def _detail(key: str, **params) -> dict:
    """A reason in both languages, for the ``detail`` of a table reader's error."""
    return {lang: t(f"sheets.{key}", lang, **params) for lang in LANGUAGES}


def decode_text(data: bytes) -> str | None:
    """The text of a table file: UTF-16 (with its byte-order mark, as Excel's "Unicode text" writes it),
    UTF-8 (with or without BOM), UTF-16 without a mark (recognised by its zero bytes), or GBK/GB18030.
    None: no such encoding, or binary content (zero bytes in what would be text)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            return None
    if b"\x00" not in data:
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError:
            pass
    head = data[:4096]
    even, odd = head[0::2].count(0), head[1::2].count(0)
    if len(data) % 2 == 0 and (even == 0) != (odd == 0):  # zero bytes on one side only: UTF-16 without a mark
        try:
            text = data.decode("utf-16-le" if even == 0 else "utf-16-be")
        except UnicodeDecodeError:
            return None
        return None if any(not c.isprintable() and c not in "\t\r\n\ufeff" for c in text) else text
    if b"\x00" in data:
        return None
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError:
        return None


def text_rows(text: str) -> list[list]:
    """The rows of a CSV or tab-separated text: tabs when the first line has more tabs than commas."""
    first = text.lstrip("\ufeff").split("\n", 1)[0]
    delimiter = "\t" if first.count("\t") > first.count(",") else ","
    return list(csv.reader(io.StringIO(text.lstrip("\ufeff")), delimiter=delimiter))


def read_table(data: bytes, name: str, error_key: str) -> list[list]:
    """The cells of an uploaded table, a row per list: the first sheet of an ``.xlsx`` (values, not
    formulas), or a CSV / tab-separated text (``.csv``, ``.txt``, ``.tsv``) in UTF-8 (with or without
    BOM), GBK/GB18030 or UTF-16 (Excel's "Unicode text"). The content decides where the name misleads: a
    workbook named .csv is read as a workbook; a text named .xlsx, an old .xls, an empty file are refused
    with a reason saying what the file is and what to save it as.

    Raises:
        InputError: ``error_key`` with ``path`` and ``detail`` (both languages): an empty file, an old .xls
            or encrypted workbook, text named .xlsx, a damaged workbook, an encoding no reader knows, binary
            content, or a kind of file not read.
    """
    def refuse(key: str, **params):
        raise InputError(error_key, path=name, detail=_detail(key, **params))

    suffix = Path(name).suffix.lower()
    if not data.strip():
        refuse("empty")
    if data.startswith(OLE_MAGIC):
        refuse("xls")
    if data.startswith(ZIP_MAGIC):
        rows = _workbook_rows(data)
        if rows is None:
            refuse("bad_xlsx" if suffix in WORKBOOK_SUFFIXES else "unknown_type", ext=suffix or name)
    elif suffix in TEXT_SUFFIXES:
        text = decode_text(data)
        if text is None:
            refuse("binary" if b"\x00" in data else "encoding")
        rows = text_rows(text)
    elif suffix in WORKBOOK_SUFFIXES:
        refuse("text_as_xlsx" if decode_text(data) is not None else "not_xlsx")
    else:
        refuse("unknown_type", ext=suffix or name)
    if not any(str(v).strip() for r in rows for v in r if v is not None):
        refuse("empty")
    return rows


def _workbook_rows(data: bytes) -> list[list] | None:
    """The first sheet's values of a workbook; None when openpyxl cannot read it."""
    from openpyxl import load_workbook  # heavy; only an upload of a workbook needs it

    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        return [list(r) for r in wb.worksheets[0].iter_rows(values_only=True)]
    except Exception:  # openpyxl raises many kinds (zip, xml, key) for a file that is not xlsx
        return None
