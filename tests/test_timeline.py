"""Progress over time (gis/model/timeline.py): the state as of a business date, as recorded at an instant,
trends by month and what changed between two meetings — replayed from the event log, on both back ends."""
from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from gis.base import clock
from gis.base.errors import InputError
from gis.model.timeline import (
    Moment,
    changes_between,
    month_ends,
    parse_as_of,
    parse_as_recorded,
    state_at,
    trend_by_month,
)

ROOT = Path(__file__).resolve().parent.parent
UTC = dt.timezone.utc


@pytest.fixture
def at(monkeypatch):
    """Move the store's clock: ``at("2024-05-20T10:00")`` (UTC) makes what is recorded next carry that time."""
    def move(stamp: str):
        monkeypatch.setattr(clock, "utcnow", lambda: dt.datetime.fromisoformat(stamp).replace(tzinfo=UTC))
    return move


def _state(store, moment: Moment) -> dict:
    df = state_at(store.parcels(geometry=False), store.events(), store.catalog, moment)
    return {r.code: (r.stage, r.stage_date, int(r.blocked)) for r in df.itertuples()}


def test_as_of_the_day_before_an_advance_shows_the_earlier_stage(tiny_store, at):
    at("2024-04-01T02:00")
    tiny_store.advance("V01-002", "listed", "2024-04-01", "王芳", today=dt.date(2024, 4, 1))
    assert _state(tiny_store, Moment(as_of=dt.date(2024, 3, 31)))["V01-002"][0] == "survey"
    assert _state(tiny_store, Moment(as_of=dt.date(2024, 4, 1)))["V01-002"][:2] == ("listed", "2024-04-01")
    assert _state(tiny_store, Moment(as_of=dt.date(2024, 2, 29)))["V01-002"][0] is None  # not started yet
    # a parcel with a stage but no entries at all keeps it from its stage date
    assert _state(tiny_store, Moment(as_of=dt.date(2025, 6, 1)))["V01-003"][0] == "signing"
    assert _state(tiny_store, Moment(as_of=dt.date(2025, 5, 31)))["V01-003"][0] is None


def test_a_later_correction_applies_as_of_but_not_as_recorded_before_it(tiny_store, at):
    at("2024-04-01T02:00")
    tiny_store.advance("V01-002", "listed", "2024-04-01", "王芳", today=dt.date(2024, 4, 1))
    at("2024-05-01T02:00")
    tiny_store.advance("V01-002", "baseline", "2024-05-01", "王芳", today=dt.date(2024, 5, 1))
    at("2024-06-10T02:00")
    tiny_store.advance("V01-002", "listed", "2024-06-10", "王芳", correction="基础调查录入有误",
                       today=dt.date(2024, 6, 10))
    may = dt.date(2024, 5, 15)
    # corrections applied: the baseline survey never happened
    assert _state(tiny_store, Moment(as_of=may))["V01-002"][0] == "listed"
    # what the system said on 20 May, before the correction was recorded
    before = Moment(as_of=may, as_recorded=parse_as_recorded("2024-05-20"))
    assert _state(tiny_store, before)["V01-002"][0] == "baseline"
    # recorded by 20 May, looked at as of today: still the uncorrected record
    assert _state(tiny_store, Moment(as_recorded=parse_as_recorded("2024-05-20")))["V01-002"][0] == "baseline"
    assert _state(tiny_store, Moment(as_of=dt.date(2024, 6, 30)))["V01-002"][0] == "listed"


def test_blocked_as_of_follows_block_and_unblock_entries(tiny_store, at):
    at("2024-04-01T02:00")
    tiny_store.set_blocked("V01-001", True, "权属争议", "王芳", date="2024-04-01", today=dt.date(2024, 4, 1))
    at("2024-05-01T02:00")
    tiny_store.set_blocked("V01-001", False, "已调解", "王芳", date="2024-05-01", today=dt.date(2024, 5, 1))
    assert _state(tiny_store, Moment(as_of=dt.date(2024, 3, 31)))["V01-001"][2] == 0
    df = state_at(tiny_store.parcels(geometry=False), tiny_store.events(), tiny_store.catalog,
                  Moment(as_of=dt.date(2024, 4, 15)))
    row = df.set_index("code").loc["V01-001"]
    assert row["blocked"] == 1 and row["blocked_reason"] == "权属争议"
    assert _state(tiny_store, Moment(as_of=dt.date(2024, 5, 1)))["V01-001"][2] == 0
    # blocked today with no block entry: kept, since we cannot tell since when
    assert _state(tiny_store, Moment(as_of=dt.date(2024, 4, 15)))["V01-003"][2] == 1


def test_trend_counts_cleared_area_and_phases_by_month(tiny_store, at, catalog):
    for day, stage in (("2024-04-01", "listed"), ("2024-05-01", "baseline")):
        at(day + "T02:00")
        tiny_store.advance("V01-002", stage, day, "王芳", today=dt.date.fromisoformat(day))
    trend = trend_by_month(tiny_store.parcels(geometry=False), tiny_store.events(), catalog,
                           until=dt.date(2024, 6, 15), since=dt.date(2024, 3, 1))
    assert list(trend["month"]) == ["2024-03", "2024-04", "2024-05", "2024-06"]
    assert list(trend["date"])[-1] == "2024-06-15"
    assert list(trend["advanced"]) == [1, 1, 1, 0]
    phases = [c for c in trend.columns if c.startswith("phase_")]
    assert (trend[phases].sum(axis=1) == len(tiny_store.parcels(geometry=False))).all()
    assert trend["area_mu_cleared"].eq(0).all()  # nothing of the tiny district is past site clearance


def test_changes_between_two_meetings(tiny_store, at, catalog):
    at("2024-04-01T02:00")
    tiny_store.advance("V01-002", "listed", "2024-04-01", "王芳", note="公示期满", today=dt.date(2024, 4, 1))
    at("2024-04-03T02:00")
    tiny_store.set_blocked("V01-001", True, "权属争议", "王芳", date="2024-04-03", today=dt.date(2024, 4, 3))
    at("2024-04-20T02:00")  # after the window: not in it
    tiny_store.advance("V01-002", "baseline", "2024-04-20", "王芳", today=dt.date(2024, 4, 20))
    ch = changes_between(tiny_store.parcels(geometry=False), tiny_store.events(), catalog,
                         dt.date(2024, 3, 28), dt.date(2024, 4, 10))
    got = {(r.code, r.change): (r.from_stage, r.to_stage, r.why) for r in ch.itertuples()}
    assert got == {("V01-002", "advanced"): ("survey", "listed", "公示期满"),
                   ("V01-001", "blocked"): (None, None, "权属争议")}


def test_parsing_dates_and_instants():
    assert parse_as_of("2024-05-01") == dt.date(2024, 5, 1) and parse_as_of("") is None
    # a day means its end, in the office's time zone (Beijing: UTC+8)
    assert parse_as_recorded("2024-05-01") == dt.datetime(2024, 5, 1, 15, 59, 59, tzinfo=UTC)
    assert parse_as_recorded("2024-05-01T08:30") == dt.datetime(2024, 5, 1, 0, 30, tzinfo=UTC)
    with pytest.raises(InputError):
        parse_as_of("1 May")
    with pytest.raises(InputError, match="YYYY-MM-DDTHH:MM"):
        parse_as_recorded("yesterday")
    assert month_ends(dt.date(2024, 11, 15), dt.date(2025, 2, 10)) == [
        dt.date(2024, 11, 30), dt.date(2024, 12, 31), dt.date(2025, 1, 31), dt.date(2025, 2, 10)]


def _cli(where, *args):
    res = subprocess.run([sys.executable, "-m", "gis.cli", "--store", str(where), *args],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    return res


def test_cli_parcels_and_villages_as_of(demo_where):
    """On the demo: a parcel's stage as of the day before its last advance is the stage it came from."""
    hist = json.loads(_cli(demo_where, "history", "V07-023", "--json").stdout)
    last = [e for e in hist if e["action"] == "advance"][-1]
    day_before = (dt.date.fromisoformat(last["event_date"]) - dt.timedelta(days=1)).isoformat()
    rows = json.loads(_cli(demo_where, "parcels", "--village", "V07", "--as-of", day_before, "--json").stdout)
    now = json.loads(_cli(demo_where, "parcels", "--village", "V07", "--json").stdout)
    before = {r["code"]: r for r in rows}["V07-023"]
    assert before["stage"] == last["from_stage"] and set(before) == set({r["code"]: r for r in now}["V07-023"])
    res = _cli(demo_where, "villages", "--as-of", "2020-01-01", "--json")
    assert res.returncode == 0, res.stderr
    board = json.loads(res.stdout)
    assert len(board) == 30 and all(v["cleared_share"] <= 1 for v in board)
    res = _cli(demo_where, "parcels", "--as-of", "someday")
    assert res.returncode == 2 and "YYYY-MM-DD" in res.stderr


def test_cli_trend(demo_where):
    res = _cli(demo_where, "trend", "--village", "V07", "--by", "month", "--json")
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)
    assert rows and {"month", "area_mu_cleared", "phase_not_started"} <= set(rows[0])
    cleared = [r["area_mu_cleared"] for r in rows]
    months = [r["month"] for r in rows]
    assert months == sorted(months) and len(set(months)) == len(months)
    assert cleared[-1] >= 0 and pd.Series([sum(v for k, v in r.items() if k.startswith("phase_")) for r in rows]).nunique() == 1


# ------------------------------------------------------------------ the dispatch-meeting pack
def _window(where) -> tuple[dt.date, dt.date, set[str]]:
    """The demo's last fortnight of entries, and the parcels advanced in it (from the event log)."""
    from gis.store import open_store_at

    ev = open_store_at(str(where)).events()
    last = dt.date.fromisoformat(str(ev["event_date"].max())[:10])
    since = last - dt.timedelta(days=13)
    day = ev["event_date"].astype(str).str.slice(0, 10)
    adv = ev[(ev["action"] == "advance") & (day >= since.isoformat()) & (day <= last.isoformat())]
    return since, last, set(adv["parcel"])


@pytest.mark.slow
def test_report_lists_every_parcel_advanced_in_the_window(demo_where, tmp_path):
    import docx
    import openpyxl
    from pypdf import PdfReader

    since, until, advanced = _window(demo_where)
    assert advanced, "the demo has advances in its last fortnight"
    # checked against `renewal history`: each of them has an advance dated in the window
    for code in sorted(advanced)[:3]:
        hist = json.loads(_cli(demo_where, "history", code, "--json").stdout)
        assert any(e["action"] == "advance" and since.isoformat() <= e["event_date"][:10] <= until.isoformat()
                   for e in hist)
    outs = {}
    for suffix in (".docx", ".pdf", ".xlsx"):
        res = _cli(demo_where, "report", "--since", since.isoformat(), "--until", until.isoformat(),
                   "-o", str(tmp_path / f"pack{suffix}"), "--json", "--quiet")
        assert res.returncode == 0, res.stderr
        outs[suffix] = json.loads(res.stdout)
        assert outs[suffix]["counts"]["advanced"] == len(advanced)
    text = "\n".join(p.text for p in docx.Document(tmp_path / "pack.docx").paragraphs)
    cells = {c.text for tb in docx.Document(tmp_path / "pack.docx").tables for row in tb.rows for c in row.cells}
    assert "调度会材料" in text and advanced <= cells
    pdf_text = "".join(page.extract_text() for page in PdfReader(tmp_path / "pack.pdf").pages).replace(" ", "")
    assert outs[".pdf"]["pages"] >= 3 and all(code in pdf_text for code in advanced)
    assert "内部资料" in pdf_text and since.isoformat() in pdf_text
    wb = openpyxl.load_workbook(tmp_path / "pack.xlsx")
    assert wb.sheetnames[0] == "概况" and "本期变化明细" in wb.sheetnames
    codes = {row[1] for row in wb["本期变化明细"].iter_rows(min_row=2, values_only=True) if row[0] == "推进"}
    assert codes == advanced


def test_report_refuses_a_bad_period_or_format(demo_where, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    res = _cli(demo_where, "report", "--since", "2026-11-30", "--until", "2026-11-01", "-o", str(out / "r.pdf"))
    assert res.returncode == 2 and "晚于" in res.stderr and "after" in res.stderr
    res = _cli(demo_where, "report", "--since", "2026-11-01", "-o", str(out / "r.pptx"))
    assert res.returncode == 2 and ".docx" in res.stderr
    assert not list(out.iterdir())


def _trend_reference(parcels, events, catalog, until):
    """The trend as first written: each month's state as a frame (``Replay.at``), its ``kind<US>stage`` keys
    looked up in dictionaries. :func:`trend_by_month` gives the same numbers from integer lookups."""
    from gis.model.timeline import NO_DAY, Replay, _keys, _stage_index, day_number

    replay = Replay(parcels, events, catalog)
    days = replay.stage_days[replay.stage_days != NO_DAY]
    first = dt.date(1970, 1, 1) + dt.timedelta(days=int(days.min()))
    area = parcels["area_m2"].astype(float).to_numpy()
    sep = "\x1f"
    phase_of = {f"{k}{sep}": catalog.phase_of(k, None).key for k in catalog.kinds}
    phase_of.update({f"{k}{sep}{s.key}": s.phase for k in catalog.kinds for s in catalog.pipeline_for(k).stages})
    past = {f"{k}{sep}{s.key}" for k in catalog.kinds for s in catalog.pipeline_for(k).stages if s.past_clearance}
    village = (parcels["kind"] == "village").to_numpy()
    vkeys = catalog.pipeline_for("village").keys
    rows, prev = [], day_number(first.replace(day=1) - dt.timedelta(days=1))
    for end in month_ends(first, until):
        state = replay.at(end)
        keys = _keys(state["kind"], state["stage"])
        cleared = keys.isin(past).to_numpy()
        counts = keys.map(phase_of).value_counts()
        pos = _stage_index(catalog, state["kind"].to_numpy()[village], state["stage"].to_numpy()[village])
        m2 = float(area[cleared].sum())
        rows.append({"month": end.isoformat()[:7], "area_m2_cleared": round(m2, 1), "cleared_parcels": int(cleared.sum()),
                     **{f"phase_{k}": int(counts.get(k, 0)) for k in catalog.phases},
                     "advanced": int(((days > prev) & (days <= day_number(end))).sum()),
                     "blocked": int(state["blocked"].sum()),
                     "signed_share": round(float((pos >= vkeys.index("signing")).mean()), 4),
                     "demolished_share": round(float((pos >= vkeys.index("demolition") + 1).mean()), 4)})
        prev = day_number(end)
    return pd.DataFrame(rows)


def test_the_trend_month_by_month_is_the_state_of_each_month_end(demo_where):
    """The trend's every month (the board's and the report's charts) agrees with the parcels' state replayed
    to that month's end, on the whole demo district: all kinds, then the old villages alone."""
    from gis.store.open import open_store_at

    s = open_store_at(demo_where)
    parcels, events = s.parcels(geometry=False), s.events()
    until = dt.date(2026, 12, 2)
    for table in (parcels, parcels[parcels["kind"] == "village"]):
        log = events[events["parcel"].isin(table["code"])]
        got = trend_by_month(table, log, s.catalog, until=until)
        want = _trend_reference(table, log, s.catalog, until)
        assert len(got) == len(want) > 12
        pd.testing.assert_frame_equal(got[list(want.columns)].reset_index(drop=True), want, check_dtype=False)
        assert got["cleared_parcels"].iloc[-1] > 0 and got["advanced"].sum() > 0
