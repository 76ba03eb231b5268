"""The plan pages through Streamlit's AppTest: the plan page, my work, the panel's plan section, the
map's plan colouring — on the demo district, on each back end."""
from __future__ import annotations

from pathlib import Path

import pytest

from gis.store.open import open_store_at

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def app(make_app):
    """The app signed in as the demo's leader."""
    return make_app("leader", timeout=120)


def test_plan_page_counts_down_the_campaign_and_lists_the_villages(app):
    app.run()
    app.switch_page("ui/plans_page.py").run()
    assert not app.exception, app.exception
    assert app.title[0].value == "计划与督办"
    assert any("百日攻坚" in h.value for h in app.subheader)
    assert [m.label for m in app.metric][:3] == ["剩余天数", "完成（按个数）", "完成（按面积）"]
    board = app.dataframe[1].value  # after the campaign's units
    s = open_store_at(app.store_where)
    assert len(board) == len(s.attributes("villages")) + len(s.attributes("parks"))
    assert list(board["days_late"]) == sorted(board["days_late"], reverse=True)


def test_map_colours_by_plan_status(app):
    app.run()
    radio = next(r for r in app.sidebar.radio if r.label == "地图着色")
    radio.set_value("plan").run()
    assert not app.exception, app.exception


def test_panel_shows_planned_against_actual_and_the_orders(app):
    s = open_store_at(app.store_where)
    order = next(o for o in s.followups() if o["on_type"] == "village" and o["state"] == "replied")
    code = s.parcels(village=order["on"], geometry=False)["code"].iloc[0]
    app.session_state["selected"] = code
    app.run()
    assert not app.exception, app.exception
    plan = next(d.value for d in app.dataframe if "计划完成" in d.value.columns)
    assert {"年初目标", "承诺书目标"} <= set(plan["计划版本"])
    assert any(f"#{order['id']}" in e.label for e in app.expander)
    next(b for b in app.button if b.label == "办结").click().run()  # the leader closes the reply
    assert not app.exception, app.exception
    assert open_store_at(app.store_where).followup(order["id"])["state"] == "closed"


def test_my_work_lets_the_editor_reply(app):
    s = open_store_at(app.store_where)
    order = next(o for o in s.followups() if o["on_type"] == "village" and o["state"] in ("issued", "returned"))
    zone = s.attributes("villages")[order["on"]]["zone"]
    app.session_state["user"] = f"editor_{zone}"
    app.run()
    app.switch_page("ui/my_work_page.py").run()
    assert not app.exception, app.exception
    assert app.title[0].value == "我的待办"
    next(t for t in app.text_area if t.key == f"reply-text-{order['id']}").set_value("已部署，倒排工期")
    next(b for b in app.button if b.label == "提交回复").click().run()
    assert not app.exception, app.exception
    after = open_store_at(app.store_where).followup(order["id"])
    assert after["state"] == "replied" and after["trail"][-1]["actor"] == f"editor_{zone}"
