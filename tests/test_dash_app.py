"""The overview page, the quick find, the parcel table and the bulk form through Streamlit's AppTest."""
from __future__ import annotations

from gis.store.open import open_store_at
from tests.test_app import app  # noqa: F401 -- the app on a private demo copy, on each back end


def test_overview_page_renders_the_district_figures(app):  # noqa: F811
    app.run()
    app.switch_page("ui/dashboard_page.py").run()
    assert not app.exception, app.exception
    assert app.title[0].value == "全区城市更新总览"
    metrics = {m.label: m.value for m in app.metric}
    n = len(open_store_at(app.store_where).parcels(geometry=False))
    assert metrics["地块总数"] == f"{n:,}" and float(metrics["总面积（亩）"].replace(",", "")) > 1000
    assert [h.value for h in app.subheader] == ["各类项目进度", "卡点原因", "最新动态"]
    progress = app.dataframe[0].value
    assert list(progress.iloc[:, 0]) == ["旧村改造地块", "产业园地块", "低效用地", "部委闲置用地", "重点片区/地标"]
    app.sidebar.radio[0].set_value("en").run()
    assert not app.exception and app.title[0].value == "District renewal overview"


def test_quick_find_opens_a_parcel_and_filters_a_village(app):  # noqa: F811
    s = open_store_at(app.store_where)
    p = s.parcels(kind="village", geometry=False).iloc[5]
    app.run()
    app.selectbox(key="f_find").set_value(f"p:{p['code']}").run()
    assert not app.exception, app.exception
    assert app.session_state["selected"] == p["code"] and app.session_state["f_search"] == p["code"]
    assert any("1 个" in c.value for c in app.caption)
    assert any(p["name"] in h.value for h in app.subheader)  # the panel is open
    app.selectbox(key="f_find").set_value(f"v:{p['village']}").run()
    assert not app.exception, app.exception
    assert app.session_state["f_village"] == p["village"] and "selected" not in app.session_state
    n = len(s.parcels(village=p["village"], geometry=False))
    assert any(e.label == f"地块列表（{n} 个）" for e in app.expander)
    app.selectbox(key="f_find").set_value("u:凤凰街道办事处").run()  # a unit: its parcels
    assert not app.exception, app.exception
    assert app.session_state["f_search"] == "凤凰街道办事处"
    m = len(s.parcels(search="凤凰街道办事处", geometry=False))
    assert m and any(e.label == f"地块列表（{m} 个）" for e in app.expander)


def test_overview_as_of_a_past_month_shows_the_figures_of_then(app):  # noqa: F811
    """The dashboard's date control: at the end of a past month, fewer parcels past their key stage than
    today, the figures those of a replay of the event log (checked against the store seen at that date)."""
    import datetime as dt

    from gis.model.dashboard import dashboard_of
    from gis.model.timeline import Moment
    from gis.store.asof import store_at

    app.run()
    app.switch_page("ui/dashboard_page.py").run()
    assert not app.exception, app.exception
    now = app.dataframe[0].value
    slider = app.select_slider(key="as_of_month")
    assert slider.value == "today" and not app.checkbox  # no comparison on a page without a map
    month = slider.options[:-1][-13]  # a year or so back
    slider.set_value(month).run()
    assert not app.exception, app.exception
    day = app.session_state["as_of_month"]  # the month's last day
    assert day.startswith(month) and any(day in c.value for c in app.caption)
    then = app.dataframe[0].value
    s = open_store_at(app.store_where)
    want = dashboard_of(store_at(s, Moment(as_of=dt.date.fromisoformat(day))))
    assert list(then["past_key_share"].round(2)) == [round(r["past_key_share"] * 100, 2) for r in want["progress"]]
    assert then["past_key_share"].sum() < now["past_key_share"].sum()
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["卡点地块"] == f"{want['totals']['blocked']:,}"
    assert want["latest"] and all(r["event_date"] <= day for r in want["latest"])
