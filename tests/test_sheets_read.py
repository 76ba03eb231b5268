"""Reading uploaded tables (gis/base/sheets.py read_table, review item 15): what Excel and WPS write —
xlsx, CSV in UTF-8/GBK, "Unicode text" (UTF-16, tab-separated) — is read; what is not (an old .xls, a text
named .xlsx, a damaged workbook, an empty or binary file) is refused with a reason in both languages that
says what the file is and what to save it as. Data made in code."""
from __future__ import annotations

import io

import pytest
from openpyxl import Workbook

from gis.base.errors import InputError
from gis.base.sheets import read_table
from gis.io import plans_io, projects_io

ROWS = [["项目编号", "项目名称", "总投资（万元）"], ["XM-1", "测试项目", "100"]]
CSV = "项目编号,项目名称,总投资（万元）\r\nXM-1,测试项目,100\r\n"
TSV = "项目编号\t项目名称\t总投资（万元）\r\nXM-1\t测试项目\t100\r\n"


def _xlsx() -> bytes:
    wb = Workbook()
    for r in ROWS:
        wb.active.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


@pytest.mark.parametrize("name,data", [
    ("p.xlsx", _xlsx()),
    ("p.csv", CSV.encode("utf-8")),
    ("p.csv", CSV.encode("utf-8-sig")),
    ("p.csv", CSV.encode("gbk")),
    ("p.csv", CSV.encode("utf-16")),              # UTF-16 with its byte-order mark
    ("p.csv", CSV.encode("utf-16-le")),           # and without one
    ("p.txt", TSV.encode("utf-16")),              # Excel's "Unicode text": UTF-16, tab-separated
    ("p.txt", TSV.encode("gbk")),                 # Excel's "Text (tab delimited)" in a Chinese locale
    ("p.tsv", TSV.encode("utf-8")),
    ("p.csv", _xlsx()),                           # a workbook named .csv: the content decides
])
def test_what_excel_writes_is_read(name, data):
    assert read_table(data, name, "projects.bad_file") == ROWS


@pytest.mark.parametrize("name,data,zh,en", [
    ("ole.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(1000), "旧版 Excel（.xls）", "old Excel file (.xls)"),
    ("p.xlsx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(1000), "加密的工作簿", "encrypted workbook"),
    ("text.xlsx", CSV.encode("utf-8"), "内容却是文本", "holds text"),
    ("tsv.xlsx", TSV.encode("gbk"), "内容却是文本", "holds text"),
    ("bad.xlsx", b"PK\x03\x04" + bytes(200), "已损坏", "damaged"),
    ("empty.csv", b"", "文件是空的", "the file is empty"),
    ("empty.xlsx", b"", "文件是空的", "the file is empty"),
    ("blank.csv", "\ufeff\r\n,,\r\n".encode("utf-8"), "文件是空的", "the file is empty"),
    ("bin.csv", bytes(range(256)) * 8, "二进制", "binary"),
    ("p.pdf", b"%PDF-1.4\n", "不支持“.pdf”文件", "'.pdf' files are not read"),
])
def test_what_cannot_be_read_says_what_it_is_and_what_to_save_it_as(name, data, zh, en):
    with pytest.raises(InputError) as e:
        read_table(data, name, "projects.bad_file")
    msg = e.value.bilingual()
    assert zh in e.value.message("zh") and en in e.value.message("en")
    assert "BadZipFile" not in msg and "(encoding)" not in msg and "（empty）" not in msg
    if "空" not in zh:
        assert ".xlsx" in e.value.message("zh") and ".xlsx" in e.value.message("en")


def test_both_ledgers_read_through_it():
    xls = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(1000)
    for read, key in ((projects_io.read_project_rows, "项目台账"), (plans_io.read_plan_rows, "")):
        with pytest.raises(InputError) as e:
            read(xls, "ole.xls")
        assert key in e.value.message("zh") and "UTF-8/GBK CSV" in e.value.message("zh")
    with pytest.raises(InputError) as e:  # the columns a ledger needs, named in both languages
        projects_io.read_project_rows(TSV.encode("utf-16"), "台账.txt", 2026)
    assert "缺少必填栏目：项目类型" in e.value.message("zh") and "项目类型 (kind)" in e.value.message("en")
    tsv = TSV.replace("总投资（万元）", "项目类型\t总投资（万元）").replace("测试项目\t", "测试项目\t产业项目\t")
    rows = projects_io.read_project_rows(tsv.encode("utf-16"), "台账.txt", 2026)
    assert rows == [{"row": 2, "plan": {}, "code": "XM-1", "name": "测试项目", "kind": "产业项目",
                     "investment_total": "100"}]
