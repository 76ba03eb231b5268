"""Evidence on a parcel, shared by the parcel panel and the field page (issue 17 items 3 and 4): the
gallery of photo thumbnails (full size only when opened), the list of documents (bytes read only when
downloaded), the upload of several files at once, the site visit, the advance and the block with the
evidence attached. Thin over the store, which checks every permission, every upload and a stage's
evidence rule; what it refuses is shown in the user's language."""
from __future__ import annotations

import uuid

import streamlit as st

from gis.base.clock import office_today
from gis.base.errors import PermissionRefused
from gis.base.i18n import local_time
from gis.maps.mapview import STATIC_DIR
from gis.model import media
from gis.model.fieldwork import upload_key, visit_text
from ui.common import author_field, current_user, lang, plain, shown_errors, store, tr

GALLERY_COLUMNS = 3
GALLERY_CSS = STATIC_DIR / "css" / "gallery.css"
UPLOADER_CSS = STATIC_DIR / "css" / "uploader.css"


def _css_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


def page_styles() -> None:
    """The gallery's layout and the uploader's own English ("Upload", "200MB per file") in the user's language."""
    st.html(f"<style>{GALLERY_CSS.read_text(encoding='utf-8')}{UPLOADER_CSS.read_text(encoding='utf-8')}"
            f":root {{ --ratlas-upload-browse: {_css_string(tr('field.browse'))};"
            f" --ratlas-upload-limit: {_css_string(tr('ux.upload_limit', mb=media.MAX_MB))}; }}</style>")


def viewer() -> str | None:
    user = current_user()
    return user.username if user else None


def _session_scope() -> str:
    """This browser session's token, the scope of its upload keys."""
    if "field_scope" not in st.session_state:
        st.session_state["field_scope"] = uuid.uuid4().hex
    return st.session_state["field_scope"]


def stage_evidence(kind: str, stage: str | None) -> str | None:
    """What a stage asks for (``photo``/``document``, ``layers/pipelines.toml``), None for nothing."""
    if not stage:
        return None
    return store().catalog.pipeline_for(kind).stage(stage).evidence


@st.cache_data(max_entries=16, show_spinner=False)
def _photo_points(location: str, version: int, who: str | None, bbox) -> list[dict]:
    return store().photo_points(viewer=who, bbox=bbox)


def photo_points(bounds=None) -> list[dict]:
    """The photos with a location the viewer may see, within ``[[s, w], [n, e]]`` (all when None); read
    again only when the store's data change (an attachment added or withdrawn bumps its version)."""
    bbox = None if bounds is None else (bounds[0][1], bounds[0][0], bounds[1][1], bounds[1][0])
    s = store()
    return _photo_points(s.location, s.data_version(), viewer(), bbox)


@st.cache_data(max_entries=256, show_spinner=False)
def _count(location: str, version: int, who: str | None, code: str) -> int:
    # that parcel's rows only: counting the whole table again after every write was ~9 ms of an advance
    return store().attachment_counts(viewer=who, codes=[code]).get(code, 0)


def attachment_count(code: str) -> int:
    """How many photos and documents (not withdrawn) of a parcel the viewer may see (for a tab's label)."""
    s = store()
    return _count(s.location, s.data_version(), viewer(), code)


@st.cache_data(max_entries=1024, show_spinner=False)
def _thumbnail(location: str, attachment_id: int, who: str | None) -> bytes | None:
    """A thumbnail never changes (the bytes of an attachment are immutable): cached per id and viewer."""
    return store().attachment_thumbnail(attachment_id, viewer=who)


def _size(n: int) -> str:
    return f"{n / 1048576:.1f} MB" if n >= 1048576 else f"{max(1, round(n / 1024))} KB"


def _full_size(attachment_id: int) -> None:
    """One photo at full size in a dialog, read only now (the gallery holds thumbnails only)."""
    st.dialog(tr("field.photos"), width="large")(_full_size_body)(attachment_id)


def _full_size_body(attachment_id: int) -> None:
    with shown_errors():
        s, who = store(), viewer()
        att = s.attachment(attachment_id, viewer=who)
        st.image(s.attachment_data(attachment_id, viewer=who), caption=plain(att.caption or att.filename),
                 width="stretch")
        _meta(att)


def _meta(att) -> None:
    bits = []
    if att.taken_at:
        bits.append(tr("field.taken", at=str(att.taken_at).replace("T", " ")[:16]))
    names = store().display_names()
    bits.append(tr("field.added", by=names.get(att.added_by, att.added_by), at=local_time(att.added_at)))
    st.caption(plain(" · ".join(bits)))


def _download(att, key: str) -> None:
    """A download whose bytes are read when it is clicked; a PDF with scripts goes out as plain bytes."""
    s, who = store(), viewer()
    mime = "application/octet-stream" if att.has_script else att.content_type
    st.download_button(tr("field.download"), data=lambda: s.attachment_data(att.id, viewer=who),
                       file_name=att.filename or f"attachment-{att.id}", mime=mime, on_click="ignore", key=key)


def gallery(code: str, editor: bool = False, columns: int = GALLERY_COLUMNS) -> None:
    """The parcel's photos as thumbnails (a tap opens one full size) and its documents as a list.

    Withdrawn ones are left out, or listed greyed for an editor; restricted ones the viewer may not see
    are left out by the store (their number is said)."""
    s, who = store(), viewer()
    try:
        atts = s.attachments(code, viewer=who, include_withdrawn=editor)
    except PermissionRefused as e:
        st.info(e.message(lang()))
        return
    live = [a for a in atts if not a.withdrawn]
    photos = [a for a in live if a.kind == media.PHOTO]
    docs = [a for a in live if a.kind != media.PHOTO]
    st.markdown(f"**{tr('field.photos')}**" + (f" ({len(photos)})" if photos else ""))
    if not photos:
        st.caption(tr("field.photos_none"))
    with st.container(key=f"ratlas-gallery-{code}"):
        for start in range(0, len(photos), columns):
            cols = st.columns(columns)
            for col, att in zip(cols, photos[start:start + columns]):
                with col:
                    thumb = _thumbnail(s.location, att.id, who)
                    if thumb:
                        st.image(thumb, caption=plain(att.caption or att.filename)[:60], width="stretch")
                    if st.button(tr("field.open_full"), key=f"full-{code}-{att.id}", width="stretch"):
                        _full_size(att.id)
    st.markdown(f"**{tr('field.documents')}**" + (f" ({len(docs)})" if docs else ""))
    if not docs:
        st.caption(tr("field.documents_none"))
    for att in docs:
        left, right = st.columns([3, 1], vertical_alignment="center")
        with left:
            st.markdown(f"{plain(att.caption or att.filename)}  \n:gray[{plain(att.filename)} · {_size(att.size)}]")
        with right:
            _download(att, key=f"dl-{code}-{att.id}")
    hidden = _restricted_hidden(code, len(live), who)
    if hidden:
        st.caption(tr("field.restricted_hidden", n=hidden))
    gone = [a for a in atts if a.withdrawn]
    if editor and gone:
        for att in gone:
            st.markdown(f":gray[~~{plain(att.caption or att.filename)}~~ · "
                        f"{plain(tr('field.withdrawn', reason=att.withdrawn_reason or ''))}]")


def _restricted_hidden(code: str, shown: int, who: str | None) -> int:
    """How many restricted items the store kept from this viewer (their existence is not a secret)."""
    if who is None:
        return 0
    return max(0, len(store().attachments(code)) - shown)


# ------------------------------------------------------------------ writing
def _files(uploaded) -> list[tuple[str, bytes]]:
    return [(f.name, f.getvalue()) for f in (uploaded or [])]


def as_evidence(uploaded) -> list[tuple[str, bytes]] | None:
    """Uploaded files as the store's ``evidence=`` (None for none)."""
    return _files(uploaded) or None


def evidence_uploader(need: str | None, key: str):
    """The files to attach to a stage change; its label says what the stage asks for, if anything."""
    label = tr("field.evidence_files")
    if need:
        label += tr("ux.paren", text=tr(f"field.evidence.{need}"))
    return st.file_uploader(label, accept_multiple_files=True, max_upload_size=media.MAX_MB, key=key)


def attach_files(code: str, files: list[tuple[str, bytes]], by: str, caption: str = "") -> tuple[int, int]:
    """Add each file to the parcel with its idempotency key: ``(stored now, stored before)``."""
    s = store()
    before = {a.id for a in s.attachments(code, include_withdrawn=True)}
    new = again = 0
    for name, data in files:
        att = s.add_attachment(code, data, name, by, caption=caption,
                               idempotency_key=upload_key(_session_scope(), code, data))
        if att.id in before:
            again += 1
        else:
            new += 1
            before.add(att.id)
    return new, again


def _said(new: int, again: int) -> str:
    parts = [tr("field.uploaded", n=new)] if new else []
    if again:
        parts.append(tr("field.uploaded_again", n=again))
    return "；".join(parts) if lang() == "zh" else "; ".join(parts)


def upload_form(code: str, key: str) -> None:
    """Take or pick several photos (or documents) at once, with one caption; each stored once."""
    with st.form(f"{key}-upload-{code}", clear_on_submit=True, border=True):
        # no type filter: a phone then offers its camera beside the gallery and files; the store sniffs the
        # real type of each and refuses what it does not accept
        files = st.file_uploader(tr("field.pick_files"), accept_multiple_files=True,
                                 max_upload_size=media.MAX_MB, key=f"{key}-files-{code}")
        caption = st.text_input(tr("field.caption"), key=f"{key}-caption-{code}")
        by = author_field(f"{key}-by-{code}")
        if st.form_submit_button(tr("field.upload"), type="primary", width="stretch") and files:
            with shown_errors():
                new, again = attach_files(code, _files(files), by, caption.strip())
                st.session_state["flash"] = _said(new, again)
                st.rerun()


def visit_form(code: str, key: str) -> None:
    """A site visit: a note and the photos taken. Not a stage event (the store has no visit record):
    the photos carry the visit as their caption, the note becomes the parcel's note (both audited)."""
    with st.form(f"{key}-visit-{code}", clear_on_submit=True, border=True):
        st.markdown(f"**{tr('field.visit')}**")
        note = st.text_area(tr("field.visit_note"), height=96, key=f"{key}-visit-note-{code}")
        files = st.file_uploader(tr("field.pick_files"), accept_multiple_files=True, max_upload_size=media.MAX_MB,
                                 key=f"{key}-visit-files-{code}")
        by = author_field(f"{key}-visit-by-{code}")
        if st.form_submit_button(tr("field.visit_submit"), type="primary", width="stretch"):
            if not note.strip():
                st.error(tr("field.visit_needs_note"))
                return
            with shown_errors():
                text = visit_text(office_today(), note, lang())
                s = store()
                if files:
                    attach_files(code, _files(files), by, text)
                s.set_note(code, text, by, expected_version=s.parcel(code)["version"])
                st.session_state["flash"] = tr("field.visit_saved", code=code)
                st.rerun()


def _evidence_word(need: str) -> str:
    return tr(f"field.evidence.{need}")


def advance_form(p: dict, key: str) -> None:
    """Move the parcel to its next stage with the evidence attached in the same transaction; a stage that
    asks for evidence is not sent without a file (the store would refuse it too)."""
    nxt = p["next_stage"]
    if not nxt:
        st.caption(tr("field.finished"))
        return
    need = stage_evidence(p["kind"], nxt)
    with st.form(f"{key}-advance-{p['code']}", clear_on_submit=False, border=True):
        st.markdown(f"**{tr('field.advance_to', stage=plain(p['next_stage_label']))}**")
        today = office_today()
        date = st.date_input(tr("ui.date"), value=today, max_value=today, key=f"{key}-adv-date-{p['code']}")
        note = st.text_area(tr("ui.note"), height=68, key=f"{key}-adv-note-{p['code']}")
        gates = store().catalog.move_needs(p["kind"], p["stage"], nxt, lang())
        share = None
        if gates["share"] is not None:  # a vote's or signing's threshold (the pipeline's gate)
            share = st.number_input(tr("ui.share"), min_value=0.0, max_value=1.0, value=None, step=0.01,
                                    help=gates["gate"] or None, key=f"{key}-adv-share-{p['code']}")
            st.caption(tr("ux.share_needed", share=f"{gates['share']:.0%}"))
        files = evidence_uploader(need, f"{key}-adv-files-{p['code']}")
        by = author_field(f"{key}-adv-by-{p['code']}")
        if st.form_submit_button(tr("field.advance_to", stage=plain(p["next_stage_label"])), type="primary",
                                 width="stretch"):
            if need and not files:
                st.error(tr("field.evidence_missing", stage=plain(p["next_stage_label"]), evidence=_evidence_word(need)))
                return
            with shown_errors():
                store().advance(p["code"], nxt, date, by, note=note, share=share, expected_version=p["version"],
                                today=today, evidence=as_evidence(files))
                st.session_state["flash"] = tr("ui.advanced", code=p["code"], stage=p["next_stage_label"])
                st.rerun()


def block_form(p: dict, key: str) -> None:
    """Flag the parcel blocked (卡点) with a reason and evidence, or clear the flag."""
    with st.form(f"{key}-block-{p['code']}", border=True):
        st.markdown(f"**{tr('field.unblock') if p['blocked'] else tr('field.block')}**")
        reason = "" if p["blocked"] else st.text_input(tr("ui.block_reason"), key=f"{key}-blk-reason-{p['code']}")
        files = evidence_uploader(None, f"{key}-blk-files-{p['code']}")
        by = author_field(f"{key}-blk-by-{p['code']}")
        if st.form_submit_button(tr("field.unblock") if p["blocked"] else tr("field.block"), width="stretch"):
            with shown_errors():
                store().set_blocked(p["code"], not p["blocked"], reason, by, expected_version=p["version"],
                                    today=office_today(), evidence=as_evidence(files))
                st.session_state["flash"] = tr("ui.unblocked_saved" if p["blocked"] else "ui.blocked_saved",
                                               code=p["code"])
                st.rerun()


def field_actions(p: dict) -> None:
    """The field page's writes, one under the other: photos, the visit, the advance, the block."""
    upload_form(p["code"], "fld")
    visit_form(p["code"], "fld")
    advance_form(p, "fld")
    block_form(p, "fld")
