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
