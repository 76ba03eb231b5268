"""Export → import round trip into a store where the parcels exist already (review item 22), on both back
ends: the events the file carries after the store's own history land as they were recorded (who, share,
note), not as an ``import`` event by the importer; the vote's minutes keep their link to the vote and who
added them, when; a second import counts its attachments as already present. A store whose history parted
ways with the file's keeps the ``import`` event that says what changed."""
from __future__ import annotations

import shutil

from gis.demo.evidence import sample_pdf
from gis.io.exporter import export
from gis.io.importer import import_file
from gis.store.store import Store


def _moved_on(tiny_store_template, tmp_path, catalog) -> Store:
    """A copy of the tiny store whose V01-002 went on from 基础数据调查 to a vote of 90 %, with its minutes."""
    path = tmp_path / "source.gpkg"
    shutil.copy(tiny_store_template, path)
    src = Store(path, catalog)
    src.advance("V01-002", "listed", "2024-04-01", "王芳", note="公示期满")
    src.advance("V01-002", "baseline", "2024-05-01", "王芳")
    src.advance("V01-002", "plan", "2024-06-01", "王芳")
    src.advance("V01-002", "vote", "2024-07-01", "李强", note="村民大会", share=0.9,
                evidence=[("表决纪要.pdf", sample_pdf("minutes"), "表决纪要")])
    return src


def test_an_export_imported_where_the_parcel_exists_keeps_the_carried_history(tiny_store, tiny_store_template,
                                                                              tmp_path, catalog):
    src = _moved_on(tiny_store_template, tmp_path, catalog)
    exported = tmp_path / "export.gpkg"
    export(src, "gpkg", exported)
    before = len(tiny_store.history("V01-002"))
    rep = import_file(tiny_store, exported, by="导入员")
    assert rep["updated"] == 1 and rep["events_written"] == 4 and rep["attachments_written"] == 1
    got = tiny_store.history("V01-002")
    assert len(got) == before + 4 and not [e for e in got if e.action == "import"]
    vote = got[-1]
    assert (vote.action, vote.from_stage, vote.to_stage, vote.event_date) == ("advance", "plan", "vote", "2024-07-01")
    assert (vote.recorded_by, vote.share, vote.note) == ("李强", 0.9, "村民大会")
    assert [e.recorded_by for e in got[-4:]] == ["王芳", "王芳", "王芳", "李强"]
    assert tiny_store.parcel("V01-002")["stage"] == "vote"
    minutes = tiny_store.attachments("V01-002")
    theirs = src.attachments("V01-002")[0]
    assert [(a.filename, a.event_id, a.target_kind) for a in minutes] == [("表决纪要.pdf", vote.id, "event")]
    assert (minutes[0].added_by, minutes[0].added_at) == (theirs.added_by, theirs.added_at) == \
        ("李强", theirs.added_at)
    # the same file again: nothing new, and the counts say why
    again = import_file(tiny_store, exported, by="导入员")
    assert (again["updated"], again["events_written"], again["attachments_written"]) == (0, 0, 0)
    assert again["attachments"] == again["attachments_present"] == 1
    assert len(tiny_store.history("V01-002")) == before + 4


def test_a_history_that_parted_ways_keeps_the_import_event(tiny_store, tiny_store_template, tmp_path, catalog):
    src = _moved_on(tiny_store_template, tmp_path, catalog)
    exported = tmp_path / "export.gpkg"
    export(src, "gpkg", exported)
    tiny_store.set_blocked("V01-002", True, "权属争议", "赵六", "2024-03-15")  # not in the file's history
    import_file(tiny_store, exported, by="导入员")
    last = tiny_store.history("V01-002")[-1]
    assert (last.action, last.from_stage, last.to_stage, last.recorded_by) == ("import", "survey", "vote", "导入员")
    assert tiny_store.parcel("V01-002")["stage"] == "vote"
    minutes = tiny_store.attachments("V01-002")
    assert len(minutes) == 1 and minutes[0].event_id is None  # no carried vote to link to: on the parcel


def test_with_accounts_an_admin_is_believed_and_anyone_else_claims(tiny_store, tiny_store_template, tmp_path,
                                                                   catalog):
    src = _moved_on(tiny_store_template, tmp_path, catalog)
    exported = tmp_path / "export.gpkg"
    export(src, "gpkg", exported)
    tiny_store.add_user("admin", "admin-secret", "admin", "bootstrap")
    tiny_store.add_user("ed_south", "editor-secret", "editor", "admin")
    tiny_store.assign("ed_south", "zone", "south", "admin")
    import_file(tiny_store, exported, by="ed_south")
    vote = tiny_store.history("V01-002")[-1]
    # an editor's file is not proof of who did what: recorded as the editor's, the file's claim kept
    assert (vote.action, vote.to_stage, vote.share) == ("advance", "vote", 0.9)
    assert (vote.recorded_by, vote.claimed_by) == ("ed_south", "李强")
    minutes = tiny_store.attachments("V01-002")
    assert minutes[0].event_id == vote.id and minutes[0].added_by == "ed_south"
