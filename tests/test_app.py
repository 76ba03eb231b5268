"""Every page through Streamlit's AppTest (no browser): it renders, it writes, it speaks both languages."""
from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st

from gis.base.errors import PermissionRefused
from gis.store.open import open_store_at

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def app(make_app):
    """The app on a private copy of the demo district, on each back end, signed in as admin."""
    return make_app("admin")


def _by_label(widgets, label):
    return next(w for w in widgets if w.label == label)


def test_map_page_renders_in_chinese(app):
    app.run()
    assert not app.exception, app.exception
    assert app.title[0].value == "城市更新一张图"
    assert any("示例数据" in c.value for c in app.sidebar.caption)
    labels = [s.label for s in app.sidebar.selectbox]
    assert labels == ["快速查找", "片区", "类型", "村", "阶段", "底图"]


def test_language_switch_to_english(app):
    app.run()
    app.sidebar.radio[0].set_value("en").run()
    assert not app.exception
    assert app.title[0].value == "Renewal Atlas"
    assert [s.label for s in app.sidebar.selectbox] == ["Quick find", "Zone", "Kind", "Village", "Stage", "Basemap"]


def test_filter_by_search_narrows_the_result(app):
    app.run()
    code = open_store_at(app.store_where).parcels(kind="village", geometry=False)["code"].iloc[0]
    app.sidebar.text_input[0].set_value(code).run()
    assert not app.exception
    assert any("1 个" in c.value for c in app.caption)
    assert any(e.label == "地块列表（1 个）" for e in app.expander)
    # a search text reruns the map and the table only: not the title, the sidebar and its quick find (issue 19)
    assert not app.title and not app.sidebar.selectbox
    app.run()  # the next whole run: the search is as typed, the result the same
    assert app.title and app.sidebar.text_input[0].value == code
    assert any("1 个" in c.value for c in app.caption)


def test_a_zone_reruns_the_whole_page(app):
    """A zone narrows the villages the sidebar offers: it reruns the page, sidebar and all."""
    app.run()
    zone = _by_label(app.sidebar.selectbox, "片区")
    zone.set_value(zone.options[1] if zone.options[0] == "全部" else zone.options[0]).run()
    assert not app.exception, app.exception
    assert app.title and app.sidebar.selectbox


def test_the_parcel_table_is_sent_when_opened(app):
    """Shut, the table under the map is not sent with the page (its whole district held up the map's first
    drawing, issue 19); opened, it lists the parcels."""
    app.run()
    assert not app.exception, app.exception
    n = len(open_store_at(app.store_where).parcels(geometry=False))
    assert any(e.label == f"地块列表（{n} 个）" for e in app.expander)
    assert not any("code" in d.value.columns for d in app.dataframe)
    app.session_state["_table_open"] = True
    app.run()
    assert len(_table_codes(app)) == n


def test_parcel_panel_advances_the_parcel(app):
    s = open_store_at(app.store_where)
    rows = s.parcels(kind="village", stage="signing", blocked=False, geometry=False)
    code = rows["code"].iloc[0]
    app.session_state["selected"] = code
    app.run()
    assert not app.exception, app.exception
    assert any(code.replace("-", "\\-") in m.value for m in app.markdown)  # escaped markdown
    assert not any(b.label == "提交" for b in app.button)  # the forms' tab is closed: its content did not run
    app.session_state["panel_tab"] = "操作"
    app.run()
    _by_label(app.text_area, "备注").set_value("拆除完成")
    submit = next(b for b in app.button if b.label == "提交")
    submit.click().run()
    assert not app.exception, app.exception
    p = open_store_at(app.store_where).parcel(code)
    assert p["stage"] == "demolition" and p["updated_by"] == "admin"
    assert any("拆除" in m.value for m in app.success)


def test_parcel_panel_shows_a_refused_advance_in_chinese(app):
    s = open_store_at(app.store_where)
    code = s.parcels(kind="village", stage="signing", blocked=False, geometry=False)["code"].iloc[0]
    app.session_state["selected"] = code
    app.session_state["panel_tab"] = "操作"
    app.run()
    _by_label(app.selectbox, "目标阶段").set_value("completed").run()  # a skip: recorded only as a correction
    next(b for b in app.button if b.label == "提交").click().run()
    assert not app.exception
    assert any("更正必须填写原因" in e.value for e in app.error)
    assert open_store_at(app.store_where).parcel(code)["stage"] == "signing"


def _table_codes(app) -> set:
    """The codes in the parcel table under the map (the panel has tables of its own)."""
    return set(next(d for d in app.dataframe if "code" in d.value.columns).value["code"])


def test_an_advance_that_changes_nothing_below_the_map_reruns_the_map_alone(app, monkeypatch):
    """No village open, the list shut, no filter whose count the write changes: the advance asks for no
    rerun of the part below the map, so its run is the map's fragment, the form's own (one run, not two:
    the confirmation sooner, issue 19; AppTest itself runs the page whole, the browser test runs the
    fragment). Opened, the list is rerun with the map and lists the parcel's new stage."""
    import ui.parcel_panel as panel

    asked = []
    real = panel.rerun_parts
    monkeypatch.setattr(panel, "rerun_parts", lambda keys: (asked.append(tuple(keys)), real(keys)))
    s = open_store_at(app.store_where)
    rows = s.parcels(kind="village", stage="signing", blocked=False, geometry=False)
    first, second = rows["code"].iloc[0], rows["code"].iloc[1]
    app.session_state["selected"] = first
    app.session_state["panel_tab"] = "操作"
    app.run()
    next(b for b in app.button if b.label == "提交").click().run()
    assert not app.exception, app.exception
    assert any(f"已将 {first} 推进到" in m.value for m in app.success)
    assert asked == [] and s.parcel(first)["stage"] != "signing"
    app.session_state["selected"] = second
    app.session_state["_table_open"] = True
    app.run()
    assert second in _table_codes(app)
    next(b for b in app.button if b.label == "提交").click().run()
    assert not app.exception, app.exception
    assert asked == [("map", "below")]
    assert not app.title  # the two fragments ran, not the page
    table = next(d for d in app.dataframe if "code" in d.value.columns).value
    assert table.loc[table["code"] == second, "stage"].iloc[0] == s.parcel(second)["stage_label"]


def test_an_advance_under_a_stage_filter_takes_the_parcel_out_of_the_result(app):
    """The map's and the table's fragments read the filter's result after the write (not the last full
    run's): the parcel advanced out of the stage filtered on leaves the table and the count."""
    s = open_store_at(app.store_where)
    rows = s.parcels(kind="village", stage="signing", geometry=False)
    code = rows[~rows["blocked"].astype(bool)]["code"].iloc[0]
    app.session_state["f_kind"] = "village"
    app.session_state["f_stage"] = "signing"
    app.session_state["selected"] = code
    app.session_state["panel_tab"] = "操作"
    app.session_state["_table_open"] = True
    app.run()
    assert not app.exception, app.exception
    assert any(f"符合条件的地块：{len(rows)} 个" in c.value for c in app.caption)
    assert code in _table_codes(app)
    next(b for b in app.button if b.label == "提交").click().run()
    assert not app.exception, app.exception
    assert any(f"已将 {code} 推进到“拆除”" in m.value for m in app.success)
    assert any(f"符合条件的地块：{len(rows) - 1} 个" in c.value for c in app.caption)
    assert code not in _table_codes(app)
    assert not app.title and not app.sidebar.selectbox  # the two fragments ran, not the page and its sidebar
    app.run()  # the next whole run: the filters are as they were, the parcel still out of the result
    assert _by_label(app.sidebar.selectbox, "阶段").value == "signing"
    assert any(f"符合条件的地块：{len(rows) - 1} 个" in c.value for c in app.caption)


def test_parcel_panel_flags_a_block_and_shows_a_refusal(app):
    s = open_store_at(app.store_where)
    code = s.parcels(kind="village", stage="signing", blocked=False, geometry=False)["code"].iloc[0]
    app.session_state["selected"] = code
    app.session_state["panel_tab"] = "操作"
    app.run()
    next(b for b in app.button if b.label == "保存卡点").click().run()  # no reason: refused
    assert not app.exception, app.exception
    assert any("标记卡点必须填写原因" in e.value for e in app.error)
    assert not open_store_at(app.store_where).parcel(code)["blocked"]
    _by_label(app.text_input, "卡点原因").set_value("村民意见分歧")
    next(b for b in app.button if b.label == "保存卡点").click().run()
    assert not app.exception, app.exception
    assert any(f"已标记 {code} 为卡点" in m.value for m in app.success)
    p = open_store_at(app.store_where).parcel(code)
    assert p["blocked"] and p["blocked_reason"] == "村民意见分歧"
    assert any("村民意见分歧" in w.value for w in app.warning)  # the panel shows the block
    next(b for b in app.button if b.label == "解除卡点").click().run()
    assert any(f"已解除 {code} 的卡点" in m.value for m in app.success)
    assert not open_store_at(app.store_where).parcel(code)["blocked"]


def test_board_page_lists_30_villages(app):
    app.run()
    app.switch_page("ui/board_page.py").run()
    assert not app.exception, app.exception
    assert app.title[0].value == "30个旧村改造进度"
    assert len(app.dataframe[0].value) == 30
    assert sum(int(m.value) for m in app.metric[:3]) == 30


def test_filters_and_basemap_survive_a_visit_to_the_board(app):
    app.run()
    _by_label(app.sidebar.selectbox, "片区").set_value("south").run()
    _by_label(app.sidebar.selectbox, "底图").set_value("none").run()
    app.switch_page("ui/board_page.py").run()  # draws no filters: Streamlit would drop their values
    app.switch_page("ui/map_page.py").run()
    assert not app.exception, app.exception
    assert _by_label(app.sidebar.selectbox, "片区").value == "south"
    assert _by_label(app.sidebar.selectbox, "底图").value == "none"


def test_login_page_when_nobody_is_signed_in(app):
    del app.session_state["user"]
    app.run()
    assert not app.exception
    assert app.subheader[0].value == "登录"
    _by_label(app.text_input, "用户名").set_value("editor_north")
    _by_label(app.text_input, "密码").set_value("wrong-password")
    next(b for b in app.button if b.label == "登录").click().run()
    assert any("用户名或密码错误" in e.value for e in app.error)
    _by_label(app.text_input, "密码").set_value("renewal-north")
    next(b for b in app.button if b.label == "登录").click().run()
    assert not app.exception
    assert app.title[0].value == "城市更新一张图"
    assert any("北部编辑" in c.value for c in app.sidebar.caption)


def test_editor_is_refused_outside_their_villages(app):
    s = open_store_at(app.store_where)
    code = s.parcels(kind="village", zone="south", stage="signing", blocked=False, geometry=False)["code"].iloc[0]
    app.session_state["user"] = "editor_north"
    app.session_state["selected"] = code
    app.session_state["panel_tab"] = "操作"
    app.run()
    assert any("无权修改" in i.value for i in app.info)
    assert not any(b.label == "提交" for b in app.button)  # no form the store would refuse
    assert not any(b.label == "保存卡点" for b in app.button)
    store = open_store_at(app.store_where)
    assert store.may_edit(code, "editor_north") is False and store.may_edit(code, "admin") is True
    with pytest.raises(PermissionRefused):  # the store refuses it anyway
        store.advance(code, "demolition", None, "editor_north")
    assert open_store_at(app.store_where).parcel(code)["stage"] == "signing"
    assert (open_store_at(app.store_where).audit(actor="editor_north", outcome="refused")["target"] == code).any()


def test_audit_page_for_admins(app):
    app.run()
    app.switch_page("ui/audit_page.py").run()
    assert not app.exception, app.exception
    assert app.title[0].value == "操作审计"


def test_single_sign_on_can_replace_passwords(app, monkeypatch):
    monkeypatch.setenv("RENEWAL_AUTH", "oidc")
    st.cache_resource.clear()
    del app.session_state["user"]
    app.run()
    assert not app.exception, app.exception
    assert [b.label for b in app.button] == ["通过单位统一身份认证登录"]
    assert not app.text_input  # no password form


def test_report_page_builds_the_dispatch_pack(app):
    app.run()
    app.switch_page("ui/report_page.py").run()
    assert not app.exception, app.exception
    assert app.title[0].value == "调度会材料"
    ev = open_store_at(app.store_where).events()
    import datetime as dt

    last = dt.date.fromisoformat(str(ev["event_date"].max())[:10])
    app.date_input(key="report_since").set_value(last - dt.timedelta(days=13))
    app.date_input(key="report_until").set_value(last).run()
    app.button(key="report_build").click().run()
    assert not app.exception, app.exception
    assert "已生成：推进" in app.success[0].value
    # a period the wrong way round is refused, in Chinese, before anything is built
    app.date_input(key="report_since").set_value(last).run()
    app.date_input(key="report_until").set_value(last - dt.timedelta(days=3)).run()
    assert "晚于" in app.error[0].value


def test_map_as_of_a_past_month_and_compared_with_an_earlier_date(app):
    """The sidebar's date control replays the map; the comparison colours what changed, counted in the legend."""
    app.run()
    slider = app.select_slider(key="as_of_month")
    months = slider.options[:-1]  # the last is today
    assert months and slider.value == "today"
    slider.set_value(months[-6]).run()
    assert not app.exception, app.exception
    assert any(months[-6] in c.value for c in app.caption)
    app.checkbox(key="as_of_compare").check().run()
    assert not app.exception, app.exception
    app.switch_page("ui/board_page.py").run()
    assert not app.exception, app.exception
    assert any(months[-6] in c.value for c in app.caption)  # the board at the same past date
    assert len(app.dataframe[0].value) == 30


def test_a_parcels_panel_at_a_past_month_shows_that_day_and_acts_on_today(app):
    """With the map at a past month, the panel's facts, stage timeline and history are those of that day
    (a later advance is not there yet), it says so, and its advance form acts on today's record."""
    app.run()
    slider = app.select_slider(key="as_of_month")
    slider.set_value(slider.options[:-1][-6]).run()
    day = app.session_state["as_of_month"]  # the month's last day, YYYY-MM-DD
    s = open_store_at(app.store_where)
    log = s.events()
    later = log[(log["action"] == "advance") & (log["event_date"].astype(str).str[:10] > day)]
    code = later["parcel"].iloc[0]
    before = [e for e in s.history(code) if str(e.event_date)[:10] <= day]
    then_stage = before[-1].to_stage if before else None
    now = s.parcel(code)
    assert now["stage"] != then_stage
    app.session_state["selected"] = code
    app.run()
    assert not app.exception, app.exception
    assert any(f"地图为 {day} 的情况" in i.value for i in app.info)
    facts = next(m.value for m in app.markdown if "**当前阶段**" in m.value)
    label = s.catalog.stage_label(now["kind"], then_stage, "zh")
    assert f"**当前阶段**：{label}" in facts.replace("\\", "")
    app.session_state["panel_tab"] = "变更记录"
    app.run()
    history = next(tb.value for tb in app.table)
    assert len(history) == len(before)  # nothing recorded for a later date
    app.session_state["panel_tab"] = "操作"
    app.run()
    target = next(w for w in app.selectbox if w.label == "目标阶段")
    assert target.value == (now["next_stage"] or now["stage"])  # the form starts from today's stage


def test_compare_colouring_counts_what_changed(tiny_store):
    import datetime as dt

    from gis.maps.compare_colouring import change_colouring
    from gis.model.timeline import Replay

    tiny_store.advance("V01-002", "listed", "2024-04-01", "王芳", today=dt.date(2024, 4, 1))
    tiny_store.set_blocked("V01-001", True, "权属争议", "王芳", date="2024-04-02", today=dt.date(2024, 4, 2))
    rp = Replay(tiny_store.parcels(geometry=False), tiny_store.events(), tiny_store.catalog)
    col = change_colouring(rp.at(dt.date(2024, 3, 15)), rp.at(dt.date(2024, 4, 30)), tiny_store.catalog,
                           "2024-03-15", "2024-04-30")
    assert col["values"]["V01-002"] == "advanced" and col["values"]["V01-001"] == "blocked"
    assert col["counts"]["advanced"] == 1 and col["counts"]["blocked"] == 1
    assert col["counts"]["unchanged"] == len(col["values"]) - 2
    assert any(i["label"] == "推进 1" for i in col["legend"]["items"])
