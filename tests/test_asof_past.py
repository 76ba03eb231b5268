"""A view of a past date shows nothing that had not happened yet (issue 16, review items 4–7 and 11):
the plan as recorded then, follow-up orders issued and open by then, a project's figures of that day,
a parcel's facts and photos of that day (a fact whose value then is not kept is said to be unknown),
and no dispatch pack for a period ending after today — on both back ends."""
from __future__ import annotations

import datetime as dt
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pypdf import PdfReader

from gis.base import clock
from gis.base.errors import InputError
from gis.model.timeline import Moment, parse_as_recorded
from gis.printing.briefing import render_atlas, render_parcel_page, select_parcels
from gis.printing.project_brief import render_project_page
from gis.printing.report import build_report
from gis.store import open_store_at
from gis.store.asof import store_at

ROOT = Path(__file__).resolve().parent.parent
UTC = dt.timezone.utc


@pytest.fixture
def at(monkeypatch):
    """Move the store's clock (and the office's today): ``at("2025-07-01T02:00")`` (UTC)."""
    def move(stamp: str):
        monkeypatch.setattr(clock, "utcnow", lambda: dt.datetime.fromisoformat(stamp).replace(tzinfo=UTC))
    return move


def view(store, as_of: str | None = None, as_recorded: str | None = None):
    return store_at(store, Moment(as_of=dt.date.fromisoformat(as_of) if as_of else None,
                                  as_recorded=parse_as_recorded(as_recorded)))


def _pdf_text(path) -> str:
    return "".join(p.extract_text() for p in PdfReader(path).pages).replace(" ", "")


def _jpeg(taken: str | None = None, seed: int = 0) -> bytes:
    a = np.full((120, 160, 3), 90, dtype=np.uint8)
    a[:20] = np.random.default_rng(seed).integers(0, 255, (20, 160, 3), dtype=np.uint8)
    buf = io.BytesIO()
    e = Image.Exif()
    if taken:
        e.get_ifd(0x8769)[0x9003] = taken  # DateTimeOriginal, as a phone writes it
    Image.fromarray(a).save(buf, "JPEG", quality=85, exif=e)
    return buf.getvalue()


# ------------------------------------------------------------------ 4: the plan as recorded then
@pytest.fixture
def planned(tiny_store, at):
    """V01-002 listed by 2025-06-30 (set and adopted in January), moved to 2025-09-30 in March (a revision
    with a reason); a campaign with a target on V01-001 created in May."""
    at("2025-01-10T02:00")
    tiny_store.set_target("V01-002", "listed", "2025-06-30", "王芳")
    tiny_store.adopt_baseline("annual", "王芳")
    at("2025-03-01T02:00")
    tiny_store.set_target("V01-002", "listed", "2025-09-30", "王芳", reason="征收政策调整，顺延")
    at("2025-05-01T02:00")
    tiny_store.add_baseline("百日攻坚", "王芳", kind="campaign", start="2025-05-01", end="2025-08-08")
    tiny_store.set_target("V01-001", "survey", "2025-08-08", "王芳", baseline="百日攻坚")
    at("2025-06-01T02:00")
    return tiny_store


def _targets(ev) -> dict:
    return {(r.baseline, r.object): (r.due_date, r.original_due) for r in ev.targets.itertuples()}


def test_status_as_recorded_rewinds_the_plan(planned):
    now = _targets(planned.plan_status("2025-04-15"))
    assert now == {("annual", "V01-002"): ("2025-09-30", "2025-06-30"), ("百日攻坚", "V01-001"): ("2025-08-08", "2025-08-08")}
    # as recorded in February: the January due date, no campaign yet
    feb = _targets(planned.plan_status("2025-02-15", as_recorded=parse_as_recorded("2025-02-15")))
    assert feb == {("annual", "V01-002"): ("2025-06-30", "2025-06-30")}
    # in April: the revision is applied, the campaign still to come
    apr = _targets(planned.plan_status("2025-04-15", as_recorded=parse_as_recorded("2025-04-15")))
    assert apr == {("annual", "V01-002"): ("2025-09-30", "2025-06-30")}
    # before anything was planned: no targets at all
    assert _targets(planned.plan_status("2025-01-01", as_recorded=parse_as_recorded("2025-01-01"))) == {}
    # the view at a moment answers the same through status_rows (what `renewal status` prints)
    rows = view(planned, "2025-02-15", "2025-02-15").status_rows()
    assert [(r["baseline"], r["object"], r["due"]) for r in rows if r["status"] != "stalled"] == \
        [("annual", "V01-002", "2025-06-30")]


def test_baselines_as_recorded_know_neither_later_baselines_nor_later_adoption(planned, at):
    bases = {b["name"]: b for b in planned.plan_baselines(parse_as_recorded("2025-02-15"))}
    assert set(bases) == {"annual"} and bases["annual"]["adopted_at"] and bases["annual"]["targets"] == 1
    assert planned.plan_baselines(parse_as_recorded("2025-01-01")) == []
    at("2025-06-02T02:00")
    planned.adopt_baseline("百日攻坚", "王芳")
    may = {b["name"]: b for b in view(planned, "2025-05-15", "2025-05-15").plan_baselines()}
    assert may["百日攻坚"]["adopted_at"] is None and may["百日攻坚"]["targets"] == 1
    assert {b["name"]: b for b in planned.plan_baselines()}["百日攻坚"]["adopted_at"]


def test_a_parcel_page_as_recorded_shows_the_target_of_then(planned, tmp_path):
    rows = view(planned, "2025-02-15", "2025-02-15").parcel_plan("V01-002")
    assert [(r["baseline"], r["due"]) for r in rows] == [("annual", "2025-06-30")]
    assert view(planned, "2025-01-05", "2025-01-05").parcel_plan("V01-002") == []


# ------------------------------------------------------------------ 7: follow-up orders of the day
@pytest.fixture
def ordered(tiny_store, at):
    """Order A on V01-002 issued 2025-07-01 and closed 2025-07-20; order B on V01-003 issued 2025-08-01."""
    at("2025-07-01T02:00")
    a = tiny_store.issue_followup("V01-002", None, "2025-07-31", "七月底前完成入库", "王芳")
    at("2025-07-20T02:00")
    tiny_store.close_followup(a["id"], "王芳")
    at("2025-08-01T02:00")
    b = tiny_store.issue_followup("V01-003", None, "2025-08-31", "化解个别户签约难题", "王芳")
    at("2025-09-01T02:00")
    return tiny_store, a["id"], b["id"]


def test_followups_as_of_count_only_orders_issued_by_then_and_not_closed_by_then(ordered):
    store, a, b = ordered
    opened = (lambda day: [(r["id"], r["state"]) for r in store.followups(open_only=True, as_of=day)])
    assert opened("2025-06-30") == []
    assert opened("2025-07-10") == [(a, "issued")]
    assert opened("2025-07-25") == []
    assert [(r["id"], r["state"]) for r in store.followups(as_of="2025-07-25")] == [(a, "closed")]
    assert opened("2025-08-05") == [(b, "issued")]
    assert [r["id"] for r in store.followups(open_only=True)] == [b]  # now: as before
    # an order past due then, still open then, is overdue then
    assert store.followups(as_of="2025-07-10")[0]["overdue"] is False
    assert view(store, "2025-08-01").followups(open_only=True)[0]["id"] == b
    assert view(store, "2025-08-05", "2025-07-31").followups(open_only=True) == []  # recorded by July's end: none open


def test_the_dispatch_pack_counts_the_open_orders_of_its_period(ordered):
    store, a, _ = ordered
    july = build_report(store, dt.date(2025, 7, 1), dt.date(2025, 7, 10))
    assert july.counts["open_followups"] == 1 and list(july.followups["id"]) == [a]
    assert build_report(store, dt.date(2025, 6, 1), dt.date(2025, 6, 30)).counts["open_followups"] == 0
    assert build_report(store, dt.date(1990, 1, 1), dt.date(1990, 1, 31)).counts["open_followups"] == 0
    assert build_report(store, dt.date(2025, 7, 21), dt.date(2025, 7, 31)).counts["open_followups"] == 0


# ------------------------------------------------------------------ 11: no pack of the future
def test_a_pack_ending_after_today_is_refused_in_both_languages(tiny_store):
    today = clock.office_today()
    with pytest.raises(InputError) as e:
        build_report(tiny_store, today - dt.timedelta(days=3), today + dt.timedelta(days=1))
    zh, en = e.value.message("zh"), e.value.message("en")
    assert (today + dt.timedelta(days=1)).isoformat() in zh and "晚于今天" in zh and "after today" in en
    assert build_report(tiny_store, today - dt.timedelta(days=3), today).until == today


# ------------------------------------------------------------------ 6: a parcel's facts and photos of the day
@pytest.fixture
def edited(tiny_store, at):
    """V01-002 (宅基地, last written 2025-06-01): advanced with a note on 2025-07-01, its note replaced on
    2025-08-01; a photo without EXIF added on 2025-07-01, one taken 2025-05-20 added on 2025-08-01."""
    at("2025-07-01T02:00")
    tiny_store.advance("V01-002", "listed", "2025-07-01", "王芳", note="纳入城市更新项目库")
    tiny_store.add_attachment("V01-002", _jpeg(None, 1), "site_a.jpg", "王芳")
    at("2025-08-01T02:00")
    tiny_store.set_note("V01-002", "待补充权属材料", "李娜")
    tiny_store.add_attachment("V01-002", _jpeg("2025:05:20 10:30:00", 2), "site_b.jpg", "李娜")
    at("2025-09-01T02:00")
    return tiny_store


def test_parcel_facts_as_of_a_date_are_those_of_then_or_said_unknown(edited):
    now = edited.parcel("V01-002")
    assert (now["note"], now["land_use"], now["updated_by"]) == ("待补充权属材料", "宅基地", "李娜")
    # before both writes: the audit's before image of the first write after the day is the record of then
    june = view(edited, "2025-06-15").parcel("V01-002")
    assert (june["stage"], june["note"], june["land_use"], june["updated_at"][:10], june["updated_by"]) == \
        ("survey", None, "宅基地", "2025-06-01", "张伟")
    assert june["unknown_then"] == []
    # between them: the note edit's audit keeps the whole record before it, the record of that day
    july = view(edited, "2025-07-15").parcel("V01-002")
    assert (july["stage"], july["note"], july["land_use"], july["updated_at"][:10], july["updated_by"]) == \
        ("listed", "纳入城市更新项目库", "宅基地", "2025-07-01", "王芳")
    assert july["unknown_then"] == []
    # long before: nothing of today's is passed off as then's
    early = view(edited, "2024-01-01").parcel("V01-002")
    assert early["stage"] is None and early["note"] is None and early["updated_at"] is None
    assert set(early["unknown_then"]) == {"note", "land_use", "updated_at"}
    # a parcel not written since the day: its record as it is
    assert view(edited, "2025-07-15").parcel("V01-003")["unknown_then"] == []


def test_photos_as_of_a_date_are_those_taken_by_then(edited):
    names = (lambda v: sorted(a.filename for a in v.attachments("V01-002", kind="photo")))
    assert names(edited) == ["site_a.jpg", "site_b.jpg"]
    assert names(view(edited, "2025-06-15")) == ["site_b.jpg"]  # taken 2025-05-20, though added later
    assert names(view(edited, "2025-05-01")) == []
    assert names(view(edited, "2025-07-01")) == ["site_a.jpg", "site_b.jpg"]
    assert names(view(edited, "2025-07-15", "2025-07-15")) == ["site_a.jpg"]  # b not yet in the system


def test_an_atlas_with_photos_of_a_past_date_has_no_photo_page_from_later(edited, tmp_path):
    pages = (lambda store, name: render_atlas(store, select_parcels(store, village="V01"), tmp_path / name, jobs=1,
                                              photos=True)["pages"])
    now, then = pages(edited, "now.pdf"), pages(view(edited, "2025-05-01"), "then.pdf")
    assert now == then + 1  # V01-002's photo page: both photos were taken after 2025-05-01
    assert "最新现场照片" not in _pdf_text(tmp_path / "then.pdf") and "最新现场照片" in _pdf_text(tmp_path / "now.pdf")


def test_the_parcel_page_of_a_past_date_prints_the_facts_of_then(edited, tmp_path):
    out = render_parcel_page(view(edited, "2024-01-01"), "V01-002", tmp_path / "early.pdf")
    text = _pdf_text(out)
    assert "截至2024-01-01" in text and "该日情况未记录" in text
    assert "待补充权属材料" not in text and "宅基地" not in text and "2025-08-01" not in text
    assert "最新现场照片" not in text
    out = render_parcel_page(view(edited, "2025-07-15"), "V01-002", tmp_path / "july.pdf", lang="en")
    text = _pdf_text(out)
    assert "纳入城市更新项目库" in text and "待补充权属材料" not in text
    now = _pdf_text(render_parcel_page(edited, "V01-002", tmp_path / "now.pdf"))
    assert "待补充权属材料" in now and "宅基地" in now and "该日情况未记录" not in now


# ------------------------------------------------------------------ 5: a project's page of a past date
def test_a_project_as_of_a_date_has_the_reports_stage_and_dates_of_then(demo_where, tmp_path):
    s = open_store_at(demo_where)
    now = s.project("XM-016")
    june = view(s, "2026-06-15").project("XM-016")
    assert june["reports"] and all(r["report_date"] <= "2026-06-15" for r in june["reports"])
    counted = sum(r["invested_wan"] for r in june["reports"] if not r["superseded"])
    assert june["invested_to_date"] == pytest.approx(counted) and june["invested_to_date"] < now["invested_to_date"]
    assert (june["stage"], june["started_on"]) == ("started", "2026-05-23")
    may = view(s, "2026-05-01").project("XM-016")
    assert (may["stage"], may["stage_date"], may["signed_on"], may["started_on"]) == \
        ("procedures", "2026-04-09", "2026-01-31", None)
    before = view(s, "2025-12-31").project("XM-016")
    assert before["stage"] is None and before["signed_on"] is None and before["invested_to_date"] == 0
    assert all(m["invested_wan"] == 0 for m in before["months"])
    out = render_project_page(view(s, "2026-06-15"), "XM-016", tmp_path / "p.pdf")
    text = _pdf_text(out)
    assert "截至2026-06-15" in text and "2026-06-" in text
    assert "2026-11-" not in text and "2026-07-" not in text and "2026-10-" not in text


# ------------------------------------------------------------------ the review's commands, on the demo
def _cli(where, *args):
    return subprocess.run([sys.executable, "-m", "gis.cli", "--store", str(where), *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=180)


def test_cli_status_followups_and_report_of_a_past_date(demo_where, tmp_path):
    res = _cli(demo_where, "status", "--as-of", "2026-06-15", "--as-recorded", "2026-06-15", "--json")
    assert res.returncode == 0, res.stderr
    rows = [r for r in json.loads(res.stdout) if r["status"] != "stalled"]
    assert rows and "百日攻坚" not in {r["baseline"] for r in rows}  # that campaign was set up in August
    assert {r["due"] for r in rows if r["object"] == "V10" and r["baseline"] == "annual"} == {"2026-09-10"}
    res = _cli(demo_where, "status", "--as-recorded", "2020-01-01", "--json")
    assert res.returncode == 0 and [r for r in json.loads(res.stdout) if r["status"] != "stalled"] == []
    res = _cli(demo_where, "followup", "list", "--open", "--as-of", "2026-01-31", "--json")
    assert res.returncode == 0 and json.loads(res.stdout) == []
    res = _cli(demo_where, "report", "--since", "2026-01-01", "--until", "2026-01-31", "-o", str(tmp_path / "r.xlsx"),
               "--json", "--quiet")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["counts"]["open_followups"] == 0
    res = _cli(demo_where, "report", "--since", "2026-01-01", "--until", "2099-01-01", "-o", str(tmp_path / "f.pdf"))
    assert res.returncode == 2 and "晚于今天" in res.stderr and "after today" in res.stderr
    assert "Traceback" not in res.stderr and not (tmp_path / "f.pdf").exists()
