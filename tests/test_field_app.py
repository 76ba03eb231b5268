"""The field page through Streamlit's AppTest (issue 17 item 4), on each back end: a position puts the
parcels around it in a list, nearest first; a tap chooses one and shows its facts and next stage."""
from __future__ import annotations

import shapely

from gis.store.open import open_store_at
from ui.common import plain


def _field(make_app, user="admin"):
    at = make_app(user)
    at.run()
    at.switch_page("ui/field_page.py").run()
    assert not at.exception, at.exception
    return at


def test_the_parcels_around_me_nearest_first(make_app):
    at = make_app("admin")
    s = open_store_at(at.store_where)
    row = s.parcels(kind="village").iloc[40]
    pt = shapely.point_on_surface(row["geometry"])
    at = _field(make_app)
    assert not any(b.key and b.key.startswith("near-") for b in at.button)  # no position yet
    at.session_state["field_here"] = {"lon": pt.x, "lat": pt.y, "accuracy": 8, "at": 1}
    at.run()
    assert not at.exception, at.exception
    near = [b for b in at.button if b.key and b.key.startswith("near-")]
    assert 2 <= len(near) <= 8 and near[0].key == f"near-{row['code']}"
    assert "就在此地块内" in near[0].label and "米" in near[1].label
    assert any("精度约 8 米" in c.value for c in at.caption)
    near[0].click().run()
    assert not at.exception, at.exception
    assert at.session_state["field_code"] == row["code"]
    text = " ".join(m.value for m in at.markdown)
    assert plain(row["code"]) in text and "下一阶段" in text


def test_no_location_finds_by_code(make_app):
    at = make_app("admin")
    s = open_store_at(at.store_where)
    code = s.parcels(kind="park", geometry=False)["code"].iloc[0]
    at = _field(make_app)
    at.session_state["field_here"] = {"error": "denied", "detail": "User denied Geolocation", "at": 2}
    at.run()
    assert any("未获得定位权限" in w.value for w in at.warning)
    at.text_input(key="field-find").input(code).run()
    found = [b for b in at.button if b.key == f"find-{code}"]
    assert found
    found[0].click().run()
    assert at.session_state["field_code"] == code and not at.exception
