"""Writing a spreadsheet template (plan, project ledger) in the format its file name asks for.

``.xlsx``: the workbook as built (the sheet to fill, then its reference sheet). ``.csv``: the sheet to fill
alone, UTF-8 with a BOM (Excel in a Chinese locale then reads it right), dates as YYYY-MM-DD, formula-safe.
Any other extension is refused (nothing written): a workbook under a .csv or .txt name opens as garbage.
"""
from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import openpyxl
import pandas as pd

from gis.base.errors import InputError
from gis.base.fileio import atomic_write
from gis.base.sheets import csv_bytes

#: the extensions a template is written as
TEMPLATE_SUFFIXES = (".xlsx", ".csv")


def _cell(value):
    if isinstance(value, dt.datetime) and value.time() == dt.time(0):
        return value.date().isoformat()
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return "" if value is None else value


def first_sheet_csv(xlsx: bytes) -> bytes:
    """The first sheet of a workbook as CSV (its first row the header)."""
    ws = openpyxl.load_workbook(io.BytesIO(xlsx), read_only=True).worksheets[0]
    rows = [[_cell(v) for v in row] for row in ws.iter_rows(values_only=True)]
    header, body = (rows[0], rows[1:]) if rows else ([], [])
    return csv_bytes(pd.DataFrame(body, columns=header, dtype=object))


def write_template_file(path: Path | str, xlsx: bytes) -> Path:
    """Write the template workbook ``xlsx`` to ``path`` as xlsx or CSV, by its extension (atomically).

    Raises:
        InputError: another extension; the folder cannot be written.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in TEMPLATE_SUFFIXES:
        raise InputError("outpath.template_suffix", path=str(path))
    data = first_sheet_csv(xlsx) if suffix == ".csv" else xlsx
    try:
        atomic_write(path, lambda f: f.write(data))
    except OSError:
        raise InputError("error.unwritable", path=str(path)) from None
    return path
