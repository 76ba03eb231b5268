"""Download buttons for briefing pages (PDF, PNG) of a parcel or a village.

The page is rendered only when a button is clicked (Streamlit runs the data
callable then, on its own thread, without rerunning the script), and kept in a
small cache keyed on the store, the parcel or village, its data version, the
language and the background: a second click gets the same bytes at once.
"""
from __future__ import annotations

import tempfile
import threading
from collections import OrderedDict
from pathlib import Path

import streamlit as st

from gis.base.errors import InputError
from gis.printing import briefing, project_brief

from .basemap_picker import export_background
from .common import data_version, lang, settings, store, tr

_MIME = {"pdf": "application/pdf", "png": "image/png"}
_CACHE: OrderedDict = OrderedDict()
_CACHE_LOCK = threading.Lock()
_CACHE_SIZE = 24


_RENDER = {"village": briefing.render_village_page, "parcel": briefing.render_parcel_page,
           "project": project_brief.render_project_page}


def _render(s, cfg, kind: str, code: str, fmt: str, language: str, raster) -> bytes:
    render = _RENDER[kind]
    with tempfile.TemporaryDirectory(prefix="renewal-brief-") as d:
        out = Path(d) / f"page.{fmt}"
        render(s, code, out, raster=raster, lang=language, settings=cfg)
        return out.read_bytes()


def _deferred(kind: str, code: str, fmt: str, raster=None):
    """The callable a download button runs on click. Everything Streamlit is read here,
    in the script; the callable itself runs on another thread and calls no Streamlit.
    ``raster``: the background (``export_background``, looked up once for a pair of buttons)."""
    s, cfg = store(), settings()
    language = lang()
    key = (getattr(s, "location", None) or s.location, kind, code, fmt, data_version(), language, str(raster), cfg.classification)

    def make() -> bytes:
        with _CACHE_LOCK:
            if key in _CACHE:
                _CACHE.move_to_end(key)
                return _CACHE[key]
        try:
            data = _render(s, cfg, kind, code, fmt, language, raster)
        except InputError:
            if raster is None:
                raise
            # an unreadable configured basemap must not cost the user the page: print it without one
            data = _render(s, cfg, kind, code, fmt, language, None)
        with _CACHE_LOCK:
            _CACHE[key] = data
            while len(_CACHE) > _CACHE_SIZE:
                _CACHE.popitem(last=False)
        return data

    return make


def _buttons(kind: str, code: str, name: str = "") -> None:
    raster, _ = export_background()  # the map's basemap where its terms allow
    left, right = st.columns(2)
    for col, fmt in ((left, "pdf"), (right, "png")):
        with col:
            st.download_button(
                # a village's pair and a parcel's pair can show at once: each says which page it is
                tr(f"ux.brief_{kind}_{fmt}", name=name),
                data=_deferred(kind, code, fmt, raster),
                file_name=f"{code}_{tr('brief.ui_file_' + kind)}.{fmt}",
                mime=_MIME[fmt],
                key=f"brief_{kind}_{code}_{fmt}",
                on_click="ignore",
                icon=":material/picture_as_pdf:" if fmt == "pdf" else ":material/image:",
                width="stretch",
            )


def parcel_downloads(code: str) -> None:
    """PDF and PNG buttons for a parcel's briefing page (地块简报图); rendered on click."""
    _buttons("parcel", code)


def village_downloads(village_code: str) -> None:
    """PDF and PNG buttons for a village's briefing page (旧村改造简报图); rendered on click."""
    village = store().attributes("villages").get(village_code) or {}
    name = (village.get("name_en") if lang() == "en" else None) or village.get("name") or village_code
    _buttons("village", village_code, name)


def project_downloads(code: str) -> None:
    """PDF and PNG buttons for a key project's briefing page (重点项目简报图); rendered on click."""
    _buttons("project", code)
