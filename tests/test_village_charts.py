"""The village panel's charts (ui/village_panel.py): a village opened on the map shows its cleared area by
month and its signing and demolition rate curves, from the event log — checked against the village board."""
from __future__ import annotations

import datetime as dt
import io

import pyarrow as pa

from gis.base.clock import office_today
from gis.model.board import village_progress
from gis.model.timeline import trend_by_month
from gis.store.open import open_store_at
from tests.test_app import app  # noqa: F401 -- the app on a private demo copy, on each back end


def _chart_data(chart) -> "pa.Table":
    ds = chart.proto.datasets[0] if chart.proto.datasets else None
    raw = ds.data.data if ds is not None else chart.proto.data.data
    return pa.ipc.open_stream(io.BytesIO(raw)).read_all().to_pandas()


def test_an_open_village_shows_its_cleared_area_and_rate_curves(app):  # noqa: F811
    app.run()
    app.selectbox(key="f_find").set_value("v:V07").run()
    assert not app.exception, app.exception
    assert "北马家村 进度趋势" in [h.value for h in app.subheader]
    charts = app.get("vega_lite_chart")
    assert len(charts) == 2
    cleared, rates = (_chart_data(c) for c in charts)
    s = open_store_at(app.store_where)
    parcels = s.parcels(village="V07", geometry=False)
    ev = s.events()
    want = trend_by_month(parcels, ev[ev["parcel"].isin(parcels["code"])], s.catalog)
    assert list(cleared["month"]) == list(want["month"])
    assert cleared.iloc[:, -1].round(2).tolist() == want["area_mu_cleared"].round(2).tolist()
    assert cleared.iloc[-1, -1] > cleared.iloc[0, -1]  # the village cleared land over the years
    # the curves end where the village board stands today
    board = village_progress(s.parcels(kind="village", geometry=False), s.layer("villages"), ev, s.catalog, "zh")
    v07 = board.set_index("code").loc["V07"]
    last = rates[rates["month"] == want["month"].iloc[-1]]
    got = dict(zip(last.iloc[:, 1], last.iloc[:, 2]))  # (series, value) in long form
    assert round(got["签约率"], 2) == round(v07["signed_share"] * 100, 2)
    assert round(got["拆除率"], 2) == round(v07["demolished_share"] * 100, 2)
    # at a past month the charts stop there
    month = app.select_slider(key="as_of_month").options[:-1][-13]
    app.select_slider(key="as_of_month").set_value(month).run()
    assert not app.exception, app.exception
    day = app.session_state["as_of_month"]
    cleared = _chart_data(app.get("vega_lite_chart")[0])
    assert cleared["month"].iloc[-1] == day[:7] and dt.date.fromisoformat(day) < office_today()
