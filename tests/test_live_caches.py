"""The app's derived caches patched after a write equal a full rebuild (issue 19), on both back ends:
the quick find's index, the parcel table, the map's parcel layer."""
from __future__ import annotations

import random

import shapely

from gis.base.clock import office_today
from gis.model.search import SearchIndexes, build_index, village_names
from gis.store import open_store_at
from gis.store.live import LiveParcels


def _advance_some(store, rng: random.Random, n: int) -> list[str]:
    todo = store.parcels(kind="village", stage="signing", blocked=False, geometry=False)
    done = []
    for i in rng.sample(range(len(todo)), n):
        p = store.parcel(todo.iloc[i]["code"])
        store.advance(p["code"], p["next_stage"], office_today(), "admin", expected_version=p["version"],
                      today=office_today())
        done.append(p["code"])
    return done


def test_the_search_index_is_kept_through_stage_updates_and_rebuilt_for_a_new_name(demo_where):
    store = open_store_at(demo_where)
    live, indexes = LiveParcels(store), SearchIndexes()
    names = village_names(store, "zh")
    first = indexes.of(live.current()[0], names)
    assert first == build_index(live.current()[0], names)
    _advance_some(store, random.Random(3), 2)
    table = live.current()[0]
    assert indexes.of(table, names) is first  # codes, names, villages and units unchanged: the same index
    code = table["code"].iat[10]
    p = store.parcel(code)
    store.upsert_parcels([{"code": code, "name": "更名后的地块", "kind": p["kind"],
                           "geom": shapely.to_wkb(table.geometry.iat[10])}], by="admin", today=office_today())
    table = live.current()[0]
    again = indexes.of(table, names)
    assert again is not first and again == build_index(table, names)
    assert any(s.code == code and s.name == "更名后的地块" for s in again) and p["name"] != "更名后的地块"


def test_the_projects_mark_moves_with_a_project_and_not_with_a_parcels_stage(demo_where):
    store = open_store_at(demo_where)
    live = LiveParcels(store)
    live.current()
    mark, epoch = store.projects_mark(), live.geometry_epoch
    _advance_some(store, random.Random(5), 1)
    live.current()
    assert store.projects_mark() == mark and live.geometry_epoch == epoch  # the map's footprints are kept
    code = store.project_footprints()["code"].iat[0]
    store.report_project(code, office_today(), 12.5, "admin", note="本周完成投资")
    assert store.projects_mark() != mark
    mark = store.projects_mark()
    keys = store.project_pipeline.keys
    code = next(c for c, s in zip(store.project_footprints()["code"], store.project_footprints()["stage"])
                if s in keys and keys.index(s) + 1 < len(keys))
    stage = store.project(code)["stage"]
    store.advance_project(code, keys[keys.index(stage) + 1], office_today(), "admin")
    assert store.projects_mark() != mark
