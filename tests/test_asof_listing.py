"""A listing or an export of a past date shows each parcel's facts of then — note, land use, owner, last
modified — by the same rules as the parcel's own page (issue 16): the listing's facts as of any date equal
``StoreAt.parcel()``'s for every parcel, on both back ends, and what is not known then is said to be so."""
from __future__ import annotations

import datetime as dt
import json
import random
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from openpyxl import load_workbook

from gis.base import clock
from gis.base.errors import RenewalError
from gis.io.exporter import export
from gis.model.timeline import Moment
from gis.store import open_store_at
from gis.store.asof import FACT_FIELDS, store_at

ROOT = Path(__file__).resolve().parent.parent
UTC = dt.timezone.utc
PEOPLE = ("张伟", "王芳", "李娜")


def _move(monkeypatch, when: dt.datetime) -> None:
    monkeypatch.setattr(clock, "utcnow", lambda: when)


def _scribble(store, monkeypatch, seed: int) -> list[dt.date]:
    """Random writes at random times through 2025: stage moves with and without notes, note edits, blocks,
    a write the audit trail does not hold (an update made outside the store) and a partial audit image;
    returns the dates to look at (before, between and after them)."""
    rng = random.Random(seed)
    codes = list(store.parcels(geometry=False)["code"])
    when = dt.datetime(2025, 2, 1, 2, 0, tzinfo=UTC)
    days = [dt.date(2024, 12, 31)]
    for i in range(30):
        when += dt.timedelta(days=rng.randint(1, 20), hours=rng.randint(0, 12))
        _move(monkeypatch, when)
        code = rng.choice(codes)
        p = store.parcel(code)
        by = rng.choice(PEOPLE)
        what = rng.random()
        try:
            if what < 0.4 and p["next_stage"]:
                store.advance(code, p["next_stage"], when.date(), by, note=rng.choice(["", f"推进{i}"]))
            elif what < 0.5 and p["stage"]:  # a correction back to the first stage, with a note
                first = store.catalog.pipeline_for(p["kind"]).keys[0]
                store.advance(code, first, when.date(), by, note=f"更正{i}", correction="录入有误")
            elif what < 0.65:
                store.set_note(code, f"备注{i}", by)
            elif what < 0.8:
                store.set_blocked(code, not p["blocked"], f"原因{i}", by, date=when.date())
            elif what < 0.9:  # outside the store: no audit row, the log does not know the new land use
                with store._connect(write=True) as con:
                    con.execute("UPDATE parcels SET land_use = ?, updated_at = ?, updated_by = ? WHERE code = ?",
                                (f"用途{i}", when.isoformat(timespec="seconds"), "外部", code))
            else:  # an audit line whose before image holds the note only
                with store._connect(write=True) as con:
                    con.execute("INSERT INTO audit (at, actor, action, target, outcome, before, after)"
                                " VALUES (?,?,?,?,?,?,?)", (when.isoformat(timespec="seconds"), by, "note", code, "ok",
                                                            json.dumps({"note": p["note"]}), "{}"))
                    con.execute("UPDATE parcels SET note = ?, updated_at = ? WHERE code = ?",
                                (f"片{i}", when.isoformat(timespec="seconds"), code))
        except RenewalError:
            continue  # a stage that needs evidence, a refusal: nothing written
        days.append((when + dt.timedelta(days=rng.randint(0, 3))).date())
    _move(monkeypatch, when + dt.timedelta(days=30))
    return sorted(set(rng.sample(days, 6) + [days[0], when.date()]))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_listing_of_a_date_agrees_with_each_parcels_page(tiny_store, monkeypatch, seed):
    days = _scribble(tiny_store, monkeypatch, seed)
    marked = 0
    for day in days:
        view = store_at(tiny_store, Moment(as_of=day))
        listing = {r["code"]: r for r in view.describe_many(view.parcels(geometry=False).to_dict("records"))}
        assert set(listing) == set(tiny_store.parcels(geometry=False)["code"])
        for code, row in listing.items():
            page = view.parcel(code)
            assert {f: row[f] for f in FACT_FIELDS} == {f: page[f] for f in FACT_FIELDS}, (day, code)
            assert row["unknown_then"] == page["unknown_then"], (day, code)
            assert row["stage"] == page["stage"]
            marked += bool(row["unknown_then"])
    assert marked  # the random writes reach a fact not kept for some date (else the test would test less)
    # now: the store's own listing, no marker
    assert "unknown_then" not in tiny_store.describe_many(tiny_store.parcels(geometry=False).to_dict("records"))[0]


@pytest.fixture
def edited(tiny_store, monkeypatch):
    """V01-002 (宅基地, last written 2025-06-01): advanced with a note on 2025-07-01, note replaced 2025-08-01."""
    _move(monkeypatch, dt.datetime(2025, 7, 1, 2, 0, tzinfo=UTC))
    tiny_store.advance("V01-002", "listed", "2025-07-01", "王芳", note="纳入城市更新项目库")
    _move(monkeypatch, dt.datetime(2025, 8, 1, 2, 0, tzinfo=UTC))
    tiny_store.set_note("V01-002", "待补充权属材料", "李娜")
    _move(monkeypatch, dt.datetime(2025, 9, 1, 2, 0, tzinfo=UTC))
    return tiny_store


def _ledger(store, day, tmp_path, lang="zh") -> dict:
    path = tmp_path / f"ledger-{day}-{lang}.xlsx"
    export(store_at(store, Moment(as_of=dt.date.fromisoformat(day))), "xlsx", path, lang=lang)
    ws = load_workbook(path).worksheets[0]
    rows = list(ws.iter_rows(values_only=True))
    return {r[0]: dict(zip(rows[0], r)) for r in rows[1:]}


def test_the_ledger_of_a_date_has_the_last_modified_of_then_or_says_not_recorded(edited, tmp_path):
    july = _ledger(edited, "2025-07-15", tmp_path)["V01-002"]
    assert (july["最后变更时间"].date(), july["最后变更人"]) == (dt.date(2025, 7, 1), "王芳")
    early = _ledger(edited, "2024-01-01", tmp_path)
    assert early["V01-002"]["最后变更时间"] == "该日情况未记录" and early["V01-002"]["最后变更人"] == "该日情况未记录"
    english = _ledger(edited, "2024-01-01", tmp_path, "en")["V01-002"]
    assert "not recorded for that date" in english.values()
    now = tmp_path / "now.xlsx"
    export(edited, "xlsx", now)
    rows = list(load_workbook(now).worksheets[0].iter_rows(values_only=True))
    assert not any("该日情况未记录" in str(v) for r in rows for v in r)


def test_a_geopackage_of_a_date_carries_the_facts_of_then(edited, tmp_path):
    import pyogrio

    out = tmp_path / "then.gpkg"
    export(store_at(edited, Moment(as_of=dt.date(2025, 7, 15))), "gpkg", out)
    df = pyogrio.read_dataframe(out, layer="parcels").set_index("code")
    assert df.at["V01-002", "note"] == "纳入城市更新项目库" and df.at["V01-002", "updated_by"] == "王芳"
    early = tmp_path / "early.gpkg"
    export(store_at(edited, Moment(as_of=dt.date(2024, 1, 1))), "gpkg", early)
    df = pyogrio.read_dataframe(early, layer="parcels").set_index("code")
    assert df.at["V01-002", "land_use"] in (None, "") and "待补充" not in str(df.at["V01-002", "note"])
    assert set(df.at["V01-002", "unknown_then"].split(",")) == {"note", "land_use", "updated_at"}
    # the shapefile (its field table explains the short name) and the GeoJSON say the same
    shp = tmp_path / "early.zip"
    export(store_at(edited, Moment(as_of=dt.date(2024, 1, 1))), "shp", shp)
    with zipfile.ZipFile(shp) as zf:
        assert "该日情况未记录的字段" in zf.read("parcels_fields.csv").decode("utf-8-sig")
        zf.extractall(tmp_path / "shp")  # read from a folder (GDAL may be set to restore a .shx, not in a zip)
    df = pyogrio.read_dataframe(tmp_path / "shp" / "parcels.shp").set_index("code")
    assert set(df.at["V01-002", "unknown"].split(",")) == {"note", "land_use", "updated_at"}
    gj = tmp_path / "early.geojson"
    export(store_at(edited, Moment(as_of=dt.date(2024, 1, 1))), "geojson", gj)
    props = {f["properties"]["code"]: f["properties"] for f in json.loads(gj.read_text())["features"]}
    assert props["V01-002"]["note"] is None and "land_use" in props["V01-003"]["unknown_then"].split(",")
    now = tmp_path / "now.gpkg"
    export(edited, "gpkg", now)
    assert "unknown_then" not in pyogrio.read_dataframe(now, layer="parcels").columns  # today's: as before


def _cli(where, *args):
    return subprocess.run([sys.executable, "-m", "gis.cli", "--store", str(where), *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=180)


def test_cli_parcels_of_a_date_lists_the_facts_of_then(demo_where):
    s = open_store_at(demo_where)
    today = s.parcels(geometry=False).set_index("code")
    res = _cli(demo_where, "parcels", "--as-of", "2026-03-01", "--json")
    assert res.returncode == 0, res.stderr
    rows = {r["code"]: r for r in json.loads(res.stdout)}
    assert all(isinstance(r["unknown_then"], list) for r in rows.values())
    view = store_at(s, Moment(as_of=dt.date(2026, 3, 1)))
    later = [c for c, r in rows.items() if (r["updated_at"] or "") != (today.at[c, "updated_at"] or "")]
    assert later  # the demo's parcels written since March show the record of then
    for code in later[:40]:
        page = view.parcel(code)
        assert {f: rows[code][f] for f in (*FACT_FIELDS, "unknown_then")} == \
            {f: page[f] for f in (*FACT_FIELDS, "unknown_then")}
    res = _cli(demo_where, "parcels", "--json")
    assert res.returncode == 0 and all(r["unknown_then"] == [] for r in json.loads(res.stdout))  # today: all known
