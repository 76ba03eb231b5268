"""The app's derived caches patched after a write equal a full rebuild (issue 19), on both back ends:
the quick find's index, the parcel table, the map's parcel layer."""
from __future__ import annotations

import json
import random

import pandas as pd
import shapely

from gis.base.clock import office_today
from gis.io.parcel_table import LiveTables, parcel_table, store_names
from gis.maps.mapview import LayerFiles, build_map
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


def _layers(m) -> dict:
    """``{layer id: data}`` of a map's parcel layers (the data: a JSON URL, or the FeatureCollection inline)."""
    out, todo = {}, [m]
    while todo:
        el = todo.pop()
        todo.extend(el._children.values())
        if type(el).__name__ == "_GeoJsonLayer":
            opts = json.loads(el.options)
            if opts.get("mode") == "phase":
                out[opts.get("id") or len(out)] = json.loads(el.data)
    return out


def _features(collection: dict) -> dict:
    return {f["properties"]["code"]: f for f in collection["features"]}


def test_the_maps_parcel_layer_is_patched_and_equals_a_new_one_after_random_writes(demo_where, tmp_path):
    store = open_store_at(demo_where)
    live, files = LiveParcels(store), LayerFiles(tmp_path / "layers")
    context = store.context()

    def drawn():  # the app's map: the layers' files and the patch over them
        m = build_map(context, live.current()[0], store.catalog, publish=files)
        return m, _layers(m)

    m, first = drawn()
    assert m.ratlas_patch == {} and all(isinstance(u, str) for u in first.values())
    rng = random.Random(11)
    changed = set()
    for _ in range(3):
        changed |= set(_advance_some(store, rng, 2))
        code = live.current()[0]["code"].iat[rng.randrange(2000)]
        p = store.parcel(code)
        store.set_blocked(code, not p["blocked"], "" if p["blocked"] else "权属争议", "admin",
                          expected_version=p["version"], today=office_today())
        changed.add(code)
        m, urls = drawn()
        assert urls == first  # the same files: the browser fetches nothing new
        assert {c for patch in m.ratlas_patch.values() for c in patch} == changed
        # the files with the patch put over them are what a new map would carry inline
        fresh = _layers(build_map(context, live.current()[0], store.catalog))
        for layer, url in urls.items():
            got = _features(json.loads((tmp_path / "layers" / url.rsplit("/", 1)[1]).read_text()))
            for code, props in m.ratlas_patch.get(layer, {}).items():
                got[code]["properties"] = props
            assert got == _features(fresh[list(urls).index(layer)])
    # a parcel's new outline: a new file
    table = live.current()[0]
    code = table["code"].iat[5]
    store.upsert_parcels([{"code": code, "name": table["name"].iat[5], "kind": table["kind"].iat[5],
                           "geom": shapely.to_wkb(shapely.buffer(table.geometry.iat[5], 0.0001))}],
                         by="admin", today=office_today())
    m, urls = drawn()
    assert urls != first


def test_the_parcel_table_is_patched_and_equals_a_new_one_after_random_writes(demo_where):
    store = open_store_at(demo_where)
    live, tables = LiveParcels(store), LiveTables()
    names = store_names(store, "zh")
    start = store.data_version()
    first = tables.of(live, start, store.catalog, names, "zh")
    kept = first.copy(deep=True)
    assert tables.of(live, start, store.catalog, names, "zh") is first
    rng = random.Random(23)
    written = set()
    for n in (1, 3):
        written |= set(_advance_some(store, rng, n))
        code = live.current()[0]["code"].iat[rng.randrange(2000)]
        p = store.parcel(code)
        store.set_blocked(code, not p["blocked"], "" if p["blocked"] else "拆迁补偿未谈妥", "admin",
                          expected_version=p["version"], today=office_today())
        written.add(code)
        version = store.data_version()
        got = tables.of(live, version, store.catalog, names, "zh")
        pd.testing.assert_frame_equal(got, parcel_table(store.parcels(geometry=False), store.catalog, names, "zh"))
        assert written <= live.changes(start) and live.changes(version) == frozenset()
    assert live.full_reads == 1  # patched every time: the parcels were read whole once
    pd.testing.assert_frame_equal(first, kept)  # a table handed out is never changed afterwards


def test_one_connection_asks_a_question_once_until_a_write(tiny_store):
    """A page run (``one_connection``) reads the data version, the user, the zones once; a write through the
    store empties what it kept, and the next run (a new ``one_connection``) sees another server's writes."""
    other = open_store_at(tiny_store.where)
    with tiny_store.one_connection():
        v = tiny_store.data_version()
        zones = tiny_store.attributes("zones")
        other.set_note("V01-003", "另一台服务器写的", "王芳")
        assert tiny_store.data_version() == v  # the run's own snapshot of the version
        zones["Z1"] = {"changed": True}
        assert tiny_store.attributes("zones") != zones  # callers get copies
        tiny_store.set_note("V01-002", "本次写入", "王芳")
        assert tiny_store.data_version() == v + 2  # a write through it: asked again, both writes seen
    with tiny_store.one_connection():
        other.set_note("V01-003", "又一次", "王芳")
        assert tiny_store.data_version() == v + 3
    assert tiny_store.data_version() == v + 3
