"""The office's day is Beijing's, whatever the server's clock zone: "today" for business dates, the
date printed on exports and in file names, the times planners read (gis/base/clock.py, setting
``timezone`` / RENEWAL_TIMEZONE)."""
from __future__ import annotations

import datetime as dt
import re
import time
from pathlib import Path

import openpyxl
import pytest
from pypdf import PdfReader

from gis.base import clock
from gis.base.errors import InputError
from gis.base.i18n import local_time
from gis.base.settings import Settings
from gis.io.exporter import export, export_filename
from gis.printing.briefing import render_parcel_page

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def one_am_in_beijing(monkeypatch):
    """The server's zone is UTC and its date D (today's UTC date); the office's clock says 01:00 on D+1 in
    Beijing (17:00 UTC on D). Any ``dt.date.today()`` left in the code answers D and so shows up."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    server_day = dt.datetime.now(dt.timezone.utc).date()
    instant = dt.datetime.combine(server_day, dt.time(17, 0), dt.timezone.utc)
    monkeypatch.setattr(clock, "utcnow", lambda: instant)
    monkeypatch.delenv("RENEWAL_TIMEZONE", raising=False)
    monkeypatch.setattr(clock, "_configured", None)
    yield server_day, server_day + dt.timedelta(days=1)
    monkeypatch.undo()
    time.tzset()


def test_the_office_day_is_beijings_not_the_servers(one_am_in_beijing, monkeypatch):
    server_day, office_day = one_am_in_beijing
    assert dt.date.today() == server_day
    assert clock.office_today() == office_day
    assert clock.office_now().strftime("%H:%M") == "01:00"
    assert local_time(clock.utcnow().isoformat()) == f"{office_day.isoformat()} 01:00"
    monkeypatch.setenv("RENEWAL_TIMEZONE", "UTC")
    assert clock.office_today() == server_day
    clock.configure("Asia/Urumqi")  # the settings win over the environment: UTC+6, 23:00 the day before
    assert clock.office_now().strftime("%Y-%m-%d %H:%M") == f"{server_day.isoformat()} 23:00"


def test_the_timezone_setting_is_checked_and_read_from_the_config_file(tmp_path):
    assert Settings.load(env={}).timezone == "Asia/Shanghai"
    assert Settings.load(env={"RENEWAL_TIMEZONE": "Asia/Urumqi"}).timezone == "Asia/Urumqi"
    (tmp_path / "renewal.toml").write_text('timezone = "Asia/Hong_Kong"\n', encoding="utf-8")
    assert Settings.load(env={"RENEWAL_DATA_DIR": str(tmp_path)}).timezone == "Asia/Hong_Kong"
    with pytest.raises(InputError, match="timezone"):
        Settings.load(env={"RENEWAL_TIMEZONE": "Asia/Beijing"})  # not an IANA name (Asia/Shanghai is)


def test_at_one_am_in_beijing_an_advance_dated_today_lands_and_the_exports_show_that_date(
        one_am_in_beijing, tiny_store, tmp_path):
    _, office_day = one_am_in_beijing
    ev = tiny_store.advance("V01-001", "survey", office_day, "张伟", note="凌晨录入")
    assert ev.event_date == office_day.isoformat()
    ev = tiny_store.advance("V01-002", "listed", None, "张伟")  # no date: the office's today
    assert ev.event_date == office_day.isoformat()

    name = export_filename("xlsx")
    assert name == f"城市更新台账_{office_day.isoformat()}.xlsx"
    export(tiny_store, "xlsx", tmp_path / name)
    wb = openpyxl.load_workbook(tmp_path / name)
    about = {r[0].value: r[1].value for r in wb["说明"].iter_rows()}
    assert about["导出日期"].date() == office_day
    ledger = wb["地块台账"]
    head = [c.value for c in ledger[1]]
    row = next(r for r in ledger.iter_rows(min_row=2, values_only=True) if r[0] == "V01-001")
    assert row[head.index("意愿征询日期")].date() == office_day
    assert row[head.index("最后变更时间")] == dt.datetime.combine(office_day, dt.time(1, 0))

    pdf = render_parcel_page(tiny_store, "V01-001", tmp_path / "p.pdf", raster=None)
    text = "".join(p.extract_text() for p in PdfReader(pdf).pages)
    assert re.search(rf"制图日期\s*[:：]\s*{office_day.isoformat()}", text), text[-400:]


def test_no_business_date_comes_from_the_servers_clock_zone():
    """Every "today" and "now" goes through gis/base/clock.py."""
    code = [*ROOT.glob("gis/**/*.py"), *ROOT.glob("ui/*.py"), ROOT / "app.py"]
    found = []
    for py in code:
        if py.name == "clock.py" and py.parent.name == "base":
            continue
        for n, line in enumerate(py.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"\bdate\.today\(|\bdatetime\.(now|utcnow)\(|\.astimezone\(\)|\btime\.localtime\(", line):
                found.append(f"{py.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not found, "\n".join(found)
