"""Search as you type: ranked suggestions over parcels, villages and units; the filters' text search."""
from __future__ import annotations

import pandas as pd

from gis.model.search import build_index, matches, rank, suggest


def _keys(hits):
    return [(h.kind, h.key) for h in hits]


def test_an_exact_code_comes_first_then_code_prefixes(any_store):
    assert _keys(suggest(any_store, "V01-002")) == [("parcel", "V01-002")]
    hits = suggest(any_store, "v01")  # case does not matter
    assert _keys(hits) == [("village", "V01"), ("parcel", "V01-001"), ("parcel", "V01-002"), ("parcel", "V01-003")]
    assert [h.rank for h in hits] == [0, 1, 1, 1]
    assert hits[0].count == 3 and "东岙村" in hits[0].label


def test_names_villages_and_units_are_found_by_any_part(any_store):
    # a unit and its parcels: the unit first (choosing it selects them all)
    assert _keys(suggest(any_store, "凤凰街道")) == [("unit", "凤凰街道办事处"), ("parcel", "V01-001"),
                                                  ("parcel", "V01-002"), ("parcel", "V01-003")]
    assert _keys(suggest(any_store, "部委")) == [("parcel", "MIN-01")]  # inside the name
    assert _keys(suggest(any_store, "自然资源")) == [("unit", "区自然资源局"), ("parcel", "MIN-01")]
    hits = suggest(any_store, "东岙", limit=2)
    assert len(hits) == 2 and all(h.kind == "parcel" and h.name.startswith("东岙") for h in hits)
    assert suggest(any_store, "  ") == [] and suggest(any_store, "没有这个") == []
    assert suggest(any_store, "Dong'ao", lang="en")[0].key == "V01"


def test_ranking_on_a_table_in_memory():
    parcels = pd.DataFrame({
        "code": ["A10-1", "B-A10", "C-3", "D-4"], "name": ["一号", "二号", "A10旁地块", "四号"],
        "village": ["", "", "", "X"], "unit": ["", "", "", "A10公司"]})
    index = build_index(parcels, {"X": "西村"})
    ranks = {h.key: h.rank for h in rank(index, "a10", None)}
    assert ranks == {"A10-1": 1, "C-3": 2, "A10公司": 2, "D-4": 2, "B-A10": 3}
    assert [h.option for h in rank(index, "a10", None)] == ["p:A10-1", "u:A10公司", "p:C-3", "p:D-4", "p:B-A10"]
    assert [h.key for h in rank(index, "a10", 2)] == ["A10-1", "A10公司"]
    assert [h.option for h in rank(index, "西村", None)] == ["v:X", "p:D-4"]


def test_the_filters_search_text_matches_code_name_village_and_unit(any_store):
    assert set(any_store.parcels(search="凤凰街道办事处", geometry=False)["code"]) == {"V01-001", "V01-002", "V01-003"}
    assert set(any_store.parcels(search="东岙", geometry=False)["code"]) == {"V01-001", "V01-002", "V01-003"}
    assert list(any_store.parcels(search="min-01", geometry=False)["code"]) == ["MIN-01"]
    assert list(any_store.parcels(search="自然资源局", geometry=False)["code"]) == ["MIN-01"]
    mask = matches(any_store.parcels(geometry=False), "dong'ao", {"V01": "Dong'ao"})
    assert int(mask.sum()) == 3
