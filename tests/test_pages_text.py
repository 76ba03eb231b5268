"""The pages' texts through Streamlit's AppTest (issue 13): the audit page in the user's language,
the language switch labelled once in English, the panel's tabs and only the fields a stage asks for."""
from __future__ import annotations

from pathlib import Path

import pytest

from gis.store.open import open_store_at

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def app(make_app):
    """The app on a private copy of the demo district, on each back end, signed in as admin."""
    return make_app("admin")


def test_audit_page_speaks_chinese_and_counts_records(app):
    s = open_store_at(app.store_where)
    code = s.parcels(kind="village", zone="south", geometry=False)["code"].iloc[0]
    with pytest.raises(PermissionError):
        s.set_blocked(code, True, "权属争议", "editor_north")  # one refusal in the trail
    app.run()
    app.switch_page("ui/audit_page.py").run()
    assert not app.exception, app.exception
    df = app.dataframe[0].value
    assert list(df.columns)[:5] == ["at", "actor", "action", "target", "outcome"]
    assert "标记卡点" in set(df["action"]) and "被拒绝" in set(df["outcome"])
    assert "北部编辑" in "".join(df["actor"])  # display names, not usernames
    assert not df.isna().any().any() and "None" not in df.to_string()
    assert any(c.value == f"共 {len(df)} 条记录" for c in app.caption)


def test_english_mode_names_the_language_once(app):
    app.run()
    assert app.sidebar.radio[0].label == "语言 / Language"
    app.sidebar.radio[0].set_value("en").run()
    assert app.sidebar.radio[0].label == "Language"


def test_panel_in_tabs_asks_for_a_share_only_at_a_gate_and_a_reason_only_for_a_correction(app):
    s = open_store_at(app.store_where)
    rows = s.parcels(kind="village", stage="plan", blocked=False, geometry=False)
    code = rows["code"].iloc[0]
    app.session_state["selected"] = code
    app.session_state["panel_tab"] = "操作"  # only the open tab's content runs
    app.run()
    assert not app.exception, app.exception
    assert [t.label for t in app.tabs][:3] == ["概况", "变更记录", "操作"]
    labels = lambda widgets: [w.label for w in widgets]  # noqa: E731
    assert "比例（0–1）" in labels(app.number_input)  # plan → vote: the vote's 80 % gate
    assert "更正原因" not in labels(app.text_input)
    target = next(w for w in app.selectbox if w.label == "目标阶段")
    target.set_value("survey").run()  # back: a correction
    assert "比例（0–1）" not in labels(app.number_input) and "更正原因" in labels(app.text_input)
    next(w for w in app.text_input if w.label == "更正原因").set_value("方案编制录入有误")
    next(b for b in app.button if b.label == "提交").click().run()
    assert not app.exception, app.exception
    after = open_store_at(app.store_where)
    assert after.parcel(code)["stage"] == "survey" and after.history(code)[-1].action == "correction"


def test_viewer_sees_no_forms(app):
    code = open_store_at(app.store_where).parcels(kind="village", geometry=False)["code"].iloc[0]
    app.session_state["user"] = "viewer"
    app.session_state["selected"] = code
    app.session_state["panel_tab"] = "操作"
    app.run()
    assert not app.exception, app.exception
    assert any("查看者账号只能浏览和导出" in i.value for i in app.info)
    assert not any(b.label in ("提交", "保存卡点", "解除卡点") for b in app.button)
