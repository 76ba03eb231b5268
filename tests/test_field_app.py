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


def _chosen_field(make_app, code: str, user="admin"):
    """The field page with ``code`` chosen (as a tap on it in the list would)."""
    at = make_app(user)
    at.session_state["field_code"] = code
    at.run()
    at.switch_page("ui/field_page.py").run()
    assert not at.exception, at.exception
    return at


def _uploader(at, part: str):
    return next(u for u in at.get("file_uploader") if part in u.key)


def _submit(at, label: str):
    return next(b for b in at.button if b.label == label)


def test_the_same_upload_twice_is_stored_once(make_app):
    from gis.demo.evidence import sample_photo

    at = make_app("admin")
    s = open_store_at(at.store_where)
    row = s.parcels(kind="village", geometry=False).iloc[3]
    code = row["code"]
    at = _chosen_field(make_app, code)
    before = {a.id for a in s.attachments(code)}  # the demo's own evidence
    mine = lambda: [a for a in s.attachments(code) if a.id not in before]  # noqa: E731
    photos = [(f"IMG_{i}.jpg", sample_photo(121.3, 37.4, direction=30.0 * i, seed=i), "image/jpeg") for i in range(2)]
    _uploader(at, "fld-files").set_value(photos)
    at.text_input(key=f"fld-caption-{code}").input("东侧围墙")
    _submit(at, "上传").click().run()
    assert not at.exception, at.exception
    assert [a.filename for a in mine()] == ["IMG_0.jpg", "IMG_1.jpg"]
    assert any("已上传 2 个文件" in m.value for m in at.success)
    # the phone sends the same photo again (a retry after the connection dropped): stored once
    _uploader(at, "fld-files").set_value(photos[:1])
    _submit(at, "上传").click().run()
    assert not at.exception, at.exception
    assert len(mine()) == 2
    assert any("此前已上传" in m.value for m in at.success)
    assert all(a.caption == "东侧围墙" and a.added_by == "admin" and a.lon is not None for a in mine())
    # the gallery shows the two thumbnails (not the full photos)
    imgs = at.get("image")
    assert len(imgs) >= 2


def test_a_site_visit_is_recorded_with_its_note_and_photos(make_app):
    from gis.demo.evidence import sample_photo

    at = make_app("admin")
    s = open_store_at(at.store_where)
    code = s.parcels(kind="village", geometry=False)["code"].iloc[5]
    at = _chosen_field(make_app, code)
    before = {a.id for a in s.attachments(code)}
    _submit(at, "保存核查记录").click().run()
    assert any("请填写核查情况" in e.value for e in at.error) and len(s.attachments(code)) == len(before)
    at.text_area(key=f"fld-visit-note-{code}").input("围挡完好，无新增违建")
    _uploader(at, "fld-visit-files").set_value([("visit.jpg", sample_photo(121.3, 37.4, seed=9), "image/jpeg")])
    _submit(at, "保存核查记录").click().run()
    assert not at.exception, at.exception
    (att,) = [a for a in s.attachments(code) if a.id not in before]
    assert att.caption.startswith("现场核查（") and att.caption.endswith("围挡完好，无新增违建")
    assert s.parcel(code)["note"] == att.caption


def test_a_viewer_sees_the_photos_but_cannot_upload(make_app):
    from gis.demo.evidence import sample_photo

    at = make_app("admin")
    s = open_store_at(at.store_where)
    code = s.parcels(kind="village", geometry=False)["code"].iloc[6]
    s.add_attachment(code, sample_photo(121.3, 37.4, seed=3), "a.jpg", "admin", caption="北侧")
    at = _chosen_field(make_app, code, user="viewer")
    assert not [u for u in at.get("file_uploader")]
    assert any("只读账户" in i.value for i in at.info)
    assert len(at.get("image")) == 1


def _evidence_stage(catalog):
    """A village stage whose next stage asks for evidence (layers/pipelines.toml), and that next stage."""
    pipe = catalog.pipeline_for("village")
    for st in pipe.stages:
        nxt = pipe.next_stage(st.key)
        if nxt and pipe.stage(nxt).evidence:
            return st.key, pipe.stage(nxt)
    raise AssertionError("no village stage asks for evidence")


def test_the_panel_asks_for_the_evidence_a_stage_needs(make_app):
    from gis.demo.evidence import sample_pdf, sample_photo

    at = make_app("admin")
    s = open_store_at(at.store_where)
    stage, nxt = _evidence_stage(s.catalog)
    df = s.parcels(kind="village", geometry=False)
    code = df[(df["stage"] == stage) & (df["blocked"] == 0)]["code"].iloc[0]
    at.session_state["selected"] = code
    at.session_state["panel_tab"] = "操作"  # the forms' tab (only the open tab's content runs)
    at.run()
    assert not at.exception, at.exception
    files = _uploader(at, f"adv-files-{code}")
    assert nxt.label("zh") in files.label or "证明材料" in files.label
    _submit(at, "提交").click().run()
    assert any("须上传" in e.value for e in at.error), [e.value for e in at.error]
    assert s.parcel(code)["stage"] == stage
    share = next((w for w in at.number_input if w.label == "比例（0–1）"), None)
    if share is not None:  # the vote's and signing's thresholds
        share.set_value(0.9)
    data = sample_photo(121.3, 37.4, seed=5) if nxt.evidence == "photo" else sample_pdf("Minutes", ["fictional"])
    name = "evidence.jpg" if nxt.evidence == "photo" else "minutes.pdf"
    _uploader(at, f"adv-files-{code}").set_value([(name, data, "application/octet-stream")])
    _submit(at, "提交").click().run()
    assert not at.exception, at.exception
    assert s.parcel(code)["stage"] == nxt.key
    event = s.history(code)[-1]
    assert [a.filename for a in s.attachments(code) if a.event_id == event.id] == [name]


def test_the_panel_gallery_hides_withdrawn_and_restricted_items_from_who_may_not_see_them(make_app):
    from gis.demo.evidence import sample_pdf, sample_photo

    at = make_app("admin")
    s = open_store_at(at.store_where)
    code = s.parcels(kind="village", zone="north", geometry=False)["code"].iloc[7]
    s.add_attachment(code, sample_photo(121.3, 37.4, seed=21), "keep.jpg", "admin", caption="保留")
    gone = s.add_attachment(code, sample_photo(121.3, 37.4, seed=22), "gone.jpg", "admin", caption="拍错了")
    s.withdraw_attachment(gone.id, "拍错地块", "admin")
    s.add_attachment(code, sample_pdf("Agreement", ["fictional"]), "协议.pdf", "admin", caption="签约协议",
                     restricted=True)

    def panel(user):
        at = make_app(user)
        at.session_state["selected"] = code
        at.session_state["panel_tab"] = "照片与材料"  # the tab under its label with the count
        at.run()
        assert not at.exception, at.exception
        return at, " ".join(m.value for m in at.markdown), " ".join(c.value for c in at.caption)

    at, text, captions = panel("admin")  # an editor of everything: the withdrawn greyed, the agreement listed
    assert "拍错了" in text and "已撤回：拍错地块" in text and "签约协议" in text
    assert len(at.get("image")) == 1 and len(at.get("download_button")) >= 1
    at, text, captions = panel("viewer")  # a viewer: neither, but told that restricted items exist
    assert "拍错了" not in text and "签约协议" not in text and "另有 1 份受限材料" in captions
    assert len(at.get("image")) == 1 and not [u for u in at.get("file_uploader")]


def test_the_field_page_in_english(make_app):
    at = _field(make_app)
    at.sidebar.radio[0].set_value("en").run()
    at.session_state["field_here"] = {"lon": 121.3, "lat": 37.42, "accuracy": 30, "at": 3}
    at.run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Field visit"
    assert any("within about 30 m" in c.value for c in at.caption)


def test_flag_blocked_from_the_field_with_a_photo(make_app):
    from gis.demo.evidence import sample_photo

    at = make_app("admin")
    s = open_store_at(at.store_where)
    df = s.parcels(kind="village", geometry=False)
    code = df[df["blocked"] == 0]["code"].iloc[9]
    at = _chosen_field(make_app, code)
    at.text_input(key=f"fld-blk-reason-{code}").input("村民阻工")
    _uploader(at, "fld-blk-files").set_value([("site.jpg", sample_photo(121.3, 37.4, seed=31), "image/jpeg")])
    _submit(at, "标记卡点").click().run()
    assert not at.exception, at.exception
    p = s.parcel(code)
    assert p["blocked"] and p["blocked_reason"] == "村民阻工"
    event = s.history(code)[-1]
    assert [a.filename for a in s.attachments(code) if a.event_id == event.id] == ["site.jpg"]
    assert any("卡点" in w.value for w in at.warning)  # the page shows it blocked now
