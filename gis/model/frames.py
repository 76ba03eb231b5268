"""Putting a few new rows into a large table that the app keeps in memory (``gis.store.live``,
``gis.io.parcel_table``): after a stage update, one parcel's row out of 2,470.

Going column by column through ``to_numpy()`` turns every string column (pyarrow-backed in pandas
3) into Python objects and back — ~5 ms for the parcels, paid by every advance (issue 19);
concatenating the kept rows and the new ones and taking them back into place keeps each column's
array as it is (~1.8 ms).
"""
from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd


def replace_rows(frame: pd.DataFrame, rows, values: pd.DataFrame) -> pd.DataFrame:
    """A new frame: ``frame`` with its rows at positions ``rows`` (distinct) taken from ``values``, the
    i-th row of ``values`` at ``rows[i]``; ``values`` has at least ``frame``'s columns. ``frame``'s index,
    column order and dtypes are kept (a GeoDataFrame stays one, with its CRS); ``frame`` is not changed."""
    rows = np.asarray(rows, dtype=np.intp)
    if len(rows) != len(values):
        raise ValueError("one row of values per position")
    if not len(rows):
        return frame.copy(deep=False)
    if not values.columns.equals(frame.columns):
        values = values[list(frame.columns)]
    have = values.dtypes  # one Series of types, not a Series made per column (~0.6 ms on the plan's targets)
    differ = {c: t for c, t in frame.dtypes.items() if have[c] != t}
    if differ:  # a few rows read alone (a column all None in them: object, not str): the table's types
        try:
            values = values.astype(differ)
        except (TypeError, ValueError):
            return _by_column(frame, rows, values)
    keep = np.ones(len(frame), dtype=bool)
    keep[rows] = False
    kept = np.flatnonzero(keep)
    both = pd.concat([frame.iloc[kept], values], ignore_index=True)
    order = np.empty(len(frame), dtype=np.intp)
    order[kept] = np.arange(len(kept))
    order[rows] = len(kept) + np.arange(len(rows))
    out = both.take(order)
    out.index = frame.index
    if not out.dtypes.equals(frame.dtypes):  # the new rows did not fit a column's type: column by column
        return _by_column(frame, rows, values)
    return out


def _by_column(frame: pd.DataFrame, rows: np.ndarray, values: pd.DataFrame) -> pd.DataFrame:
    out = {}
    for col in frame.columns:
        arr = frame[col].to_numpy(copy=True)
        arr[rows] = values[col].to_numpy()
        out[col] = pd.Series(arr, dtype=frame[col].dtype, index=frame.index, name=col)
    if isinstance(frame, gpd.GeoDataFrame):
        return gpd.GeoDataFrame(out, index=frame.index, geometry=frame.geometry.name, crs=frame.crs)
    return pd.DataFrame(out, index=frame.index)
