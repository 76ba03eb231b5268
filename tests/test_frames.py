"""gis.model.frames.replace_rows: a few rows put into a large in-memory table, types kept."""
from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from gis.model.frames import replace_rows


def _table(n=6):
    return gpd.GeoDataFrame({"code": [f"P{i}" for i in range(n)], "stage": pd.array(["a"] * n, dtype="str"),
                             "note": pd.array([None, "x"] * (n // 2), dtype="str"), "version": np.arange(n),
                             "area": np.linspace(1.0, 2.0, n)},
                            geometry=[shapely.box(i, 0, i + 1, 1) for i in range(n)], crs="EPSG:4490")


def test_the_rows_are_replaced_in_place_and_every_type_kept():
    table = _table()
    before = table.copy()
    new = table.iloc[[4, 1]].assign(stage=["b", "c"], version=[40, 10], note=[None, None])  # note: object
    new["note"] = new["note"].astype(object)
    out = replace_rows(table, [4, 1], new)
    assert isinstance(out, gpd.GeoDataFrame) and out.crs == table.crs
    assert out.dtypes.equals(table.dtypes) and list(out.index) == list(table.index)
    assert list(out["code"]) == list(table["code"])
    assert list(out["stage"]) == ["a", "c", "a", "a", "b", "a"]
    assert list(out["version"]) == [0, 10, 2, 3, 40, 5]
    assert out["note"].isna()[[1, 4]].all() and out["note"][3] == "x"
    pd.testing.assert_frame_equal(table, before)  # the frame given is left as it was


def test_no_rows_is_the_same_table_and_a_misfit_falls_back_column_by_column():
    table = pd.DataFrame({"code": ["a", "b", "c"], "n": pd.array([1, 2, 3], dtype="int64")})
    pd.testing.assert_frame_equal(replace_rows(table, [], table.iloc[[]]), table)
    out = replace_rows(table, [2], pd.DataFrame({"code": ["z"], "n": [7.0]}))  # float into an int column
    assert out.dtypes.equals(table.dtypes) and list(out["n"]) == [1, 2, 7] and list(out["code"]) == ["a", "b", "z"]
    with pytest.raises(ValueError):
        replace_rows(table, [0, 1], table.iloc[[0]])


def test_a_frame_of_numpy_columns_and_another_index_gets_its_rows():
    """The plan evaluation's frames (object, int, float columns, another index): rows in place, the rest
    and the frame given unchanged."""
    n = 50
    table = pd.DataFrame({"code": np.array([f"P{i}" for i in range(n)], dtype=object),
                          "status": np.array(["on_track"] * n, dtype=object),
                          "days": np.arange(n, dtype=np.int64), "area": np.linspace(0, 1, n)},
                         index=pd.RangeIndex(10, 10 + n))
    before = table.copy()
    new = pd.DataFrame({"code": pd.Series(["P7", "P3"], dtype=object), "status": pd.Series(["overdue", None], dtype=object),
                        "days": np.array([70, 30], dtype=np.int64), "area": [9.0, 3.0]})
    out = replace_rows(table, [7, 3], new)
    assert out.dtypes.equals(table.dtypes) and list(out.index) == list(table.index)
    assert out["status"].iloc[7] == "overdue" and pd.isna(out["status"].iloc[3]) and out["days"].iloc[7] == 70
    assert (out.drop(index=out.index[[3, 7]]) == table.drop(index=table.index[[3, 7]])).all().all()
    pd.testing.assert_frame_equal(table, before)
