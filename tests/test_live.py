"""The app's parcels in memory (gis/store/live.py) and one connection per page run, on both back ends."""
from __future__ import annotations

import datetime as dt

import shapely

from gis.store import open_store_at
from gis.store.live import LiveParcels

TODAY = dt.date(2026, 11, 28)


def _stage(table, code):
    return table.loc[table["code"] == code, "stage"].iloc[0]


def test_a_stage_update_refreshes_only_that_parcel_and_keeps_the_index(tiny_store):
    live = LiveParcels(tiny_store)
    table, index = live.current()
    assert _stage(table, "V01-002") == "survey" and live.full_reads == 1
    tiny_store.advance("V01-002", "listed", "2024-03-20", "王芳", today=TODAY)
    table, index = live.current()
    assert _stage(table, "V01-002") == "listed"
    tiny_store.advance("V01-002", "baseline", "2024-04-20", "王芳", today=TODAY)
    tiny_store.set_note("V01-003", "入户调查已约", "王芳")
    before = table
    table, again = live.current()
    assert live.full_reads == 1 and live.refreshes == 2  # read again: only the recently updated rows
    assert _stage(table, "V01-002") == "baseline"
    assert table.loc[table["code"] == "V01-003", "note"].iloc[0] == "入户调查已约"
    assert _stage(before, "V01-002") == "listed"  # a frame handed out is never changed afterwards
    assert again is index  # no geometry moved: the spatial index is kept
    assert list(table["code"]) == list(before["code"]) and len(table) == 5
    # what the store itself says, column by column
    fresh = tiny_store.parcels()
    for col in ("stage", "stage_date", "note", "version", "updated_by", "blocked"):
        assert list(fresh[col].astype(str)) == list(table[col].astype(str)), col
    assert again.at(*shapely.get_coordinates(fresh.geometry.values[1].centroid)[0]) == fresh["code"].iat[1]


def test_a_write_by_another_server_shows_at_the_next_refresh(tiny_store):
    other = open_store_at(tiny_store.where)  # another app server's store over the same data
    live = LiveParcels(tiny_store)
    other.advance("V01-002", "listed", "2024-03-20", "王芳", today=TODAY)
    live.current()
    other.set_blocked("V01-002", True, "权属争议", "王芳", today=TODAY)
    table, _ = live.current()
    row = table[table["code"] == "V01-002"].iloc[0]
    assert bool(row["blocked"]) and row["blocked_reason"] == "权属争议" and live.full_reads == 1


def test_a_new_parcel_reads_the_whole_table_again(tiny_store):
    live = LiveParcels(tiny_store)
    live.current()
    geom = shapely.to_wkb(shapely.MultiPolygon([shapely.box(121.31, 37.41, 121.311, 37.411)]))
    tiny_store.upsert_parcels([{"code": "V01-009", "name": "新地块", "kind": "village", "geom": geom}], by="王芳",
                              today=TODAY)
    table, index = live.current()
    assert "V01-009" in set(table["code"]) and live.full_reads == 2
    assert index.at(121.3105, 37.4105) == "V01-009"


def test_a_page_run_asks_everything_through_one_connection(tiny_store, monkeypatch):
    opened = []
    real = type(tiny_store)._open

    def counting(self):
        opened.append(1)
        return real(self)

    monkeypatch.setattr(type(tiny_store), "_open", counting)
    tiny_store.parcel("V01-002")
    tiny_store.history("V01-002")
    without = len(opened)
    opened.clear()
    with tiny_store.one_connection():
        tiny_store.parcel("V01-002")  # what a panel asks: the parcel, its zone's roles, its history, accounts
        tiny_store.history("V01-002")
        tiny_store.accounts_enabled()
        tiny_store.advance("V01-002", "listed", "2024-03-20", "王芳", today=TODAY)  # a write inside: its own transaction
        assert tiny_store.parcel("V01-002")["stage"] == "listed"
    assert without > 2 and len(opened) == 1
    assert open_store_at(tiny_store.where).parcel("V01-002")["stage"] == "listed"  # committed


def test_a_failed_write_inside_a_page_run_leaves_nothing_and_the_connection_usable(tiny_store):
    import pytest

    from gis.base.errors import StageTransitionError

    with tiny_store.one_connection():
        with pytest.raises(StageTransitionError):
            tiny_store.advance("V01-002", "completed", "2024-03-20", "王芳", today=TODAY)
        assert tiny_store.parcel("V01-002")["stage"] == "survey"
        tiny_store.advance("V01-002", "listed", "2024-03-20", "王芳", today=TODAY)
    assert open_store_at(tiny_store.where).parcel("V01-002")["stage"] == "listed"


def test_preferences_live_in_the_store_and_every_server_sees_them(tiny_store):
    from gis.base.settings import Settings
    from gis.maps.basemaps import BasemapChoice, load_choice, save_choice

    cfg = Settings.load(env={})
    other = open_store_at(tiny_store.where)  # another app server over the same store
    assert save_choice(cfg, "张伟", BasemapChoice(kind="amap_sat"), tiny_store)
    assert save_choice(cfg, "张伟", BasemapChoice(kind="custom", url="http://gs/{z}/{x}/{y}.png", attribution="测绘院"),
                       tiny_store)  # replaced, not added
    assert not save_choice(cfg, "  ", BasemapChoice(kind="none"), tiny_store)  # nobody to remember it for
    assert load_choice(cfg, "张伟", other) == BasemapChoice(kind="custom", url="http://gs/{z}/{x}/{y}.png",
                                                            attribution="测绘院")
    assert other.preference("李娜", "basemap") is None and other.preference(None, "basemap") is None
    assert tiny_store.data_version() == other.data_version()  # a preference is not a change of the data
