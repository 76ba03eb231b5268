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

import pandas as pd

from gis.base.errors import InputError

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


def read_table(data: bytes, name: str, error_key: str) -> list[list]:
    """The cells of an uploaded table, a row per list: the first sheet of an ``.xlsx`` (values, not
    formulas), or a CSV in UTF-8 (with or without BOM) or GBK/GB18030.

    Raises:
        InputError: ``error_key`` (with ``path`` and ``detail``): an encoding no reader knows, or a file
            that is not a workbook.
    """
    if name.lower().endswith(".csv"):
        for enc in ("utf-8-sig", "gb18030"):
            try:
                text = data.decode(enc)
                break
            except UnicodeDecodeError:
                continue
        else:
            raise InputError(error_key, path=name, detail="encoding")
        return list(csv.reader(io.StringIO(text)))
    from openpyxl import load_workbook  # heavy; only an upload of a workbook needs it

    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as e:  # openpyxl raises many kinds (zip, xml, key) for a file that is not xlsx
        raise InputError(error_key, path=name, detail=type(e).__name__) from None
    return [list(r) for r in wb.worksheets[0].iter_rows(values_only=True)]
