"""Export page: a briefing atlas (cover, index, a page per village or parcel) from the current filter."""
from __future__ import annotations

import tempfile
from pathlib import Path

import streamlit as st

from gis.base.clock import office_today
from gis.printing import briefing
from ui.basemap_picker import export_background
from ui.common import data_version, lang, settings, shown_errors, sidebar_filters, store, tr

MAX_PAGES = 1000  # in the app; `renewal atlas` has no limit
SECONDS_PER_PAGE = 0.25  # one process (measured in bench/briefing.py), for the estimate shown


def _selection(choice: str, codes, filtered):
    s = store()
    if choice == "villages":
        zone = st.session_state.get("f_zone") or None
        return briefing.select_villages(s, zone=zone)
    return briefing.select_parcels(
        s, kind=st.session_state.get("f_kind") or None, zone=st.session_state.get("f_zone") or None,
        village=st.session_state.get("f_village") or None, stage=st.session_state.get("f_stage") or None,
        search=(st.session_state.get("f_search") or "").strip() or None, parcels=filtered,
    )


def _build(sel, paper: str, raster, png: bool) -> dict:
    bar = st.progress(0.0, text=tr("brief.export_progress", done=0, total="…"))

    def progress(done: int, total: int, label: str) -> None:
        bar.progress(min(1.0, done / total), text=tr("brief.export_progress", done=done, total=total))

    with tempfile.TemporaryDirectory(prefix="renewal-atlas-ui-") as d:
        pdf, zip_ = Path(d) / "atlas.pdf", (Path(d) / "atlas.zip" if png else None)
        # one process: forking the app server's threads is not worth the risk
        res = briefing.render_atlas(store(), sel, pdf, png_zip=zip_, paper=paper, raster=raster, lang=lang(),
                                    settings=settings(), progress=progress, jobs=1)
        res["pdf_bytes"] = pdf.read_bytes()
        res["zip_bytes"] = zip_.read_bytes() if zip_ else None
    bar.empty()
    return res


def export_page() -> None:
    st.title(tr("brief.export_title"))
    filtered, codes = sidebar_filters()
    choice = st.radio(tr("brief.export_what"), ["villages", "filter"], horizontal=True,
                      format_func=lambda c: tr(f"brief.export_{c}"), key="export_what")
    if choice == "filter" and codes is None:
        st.info(tr("brief.export_no_filter"))
        return
    if choice == "filter" and not codes:
        st.warning(tr("ui.no_results"))
        return
    sel = _selection(choice, codes, filtered)
    left, mid, right = st.columns(3)
    paper = left.radio(tr("brief.export_paper"), list(briefing.PAPERS), horizontal=True, key="export_paper")
    basemap, name = export_background()  # the map's basemap where its terms allow
    use_raster = mid.checkbox(tr("brief.export_raster", name=name or tr("basemap.kind_none")),
                              value=basemap is not None, disabled=basemap is None, key="export_raster")
    png = right.checkbox(tr("brief.export_png"), key="export_png")
    n = len(sel.codes)
    pages = briefing.atlas_page_count(n)
    st.caption(sel.label(lang()) + " · " + tr("brief.export_pages", pages=pages))
    if pages > MAX_PAGES:
        st.warning(tr("brief.export_too_many", pages=pages, max=MAX_PAGES))
        return
    if pages * SECONDS_PER_PAGE > 60:
        st.caption(tr("brief.export_slow", minutes=max(1, round(pages * SECONDS_PER_PAGE / 60))))
    key = (sel.kind, sel.codes, paper, str(basemap) if use_raster else None, png, data_version(), lang())
    if st.button(tr("brief.export_build"), type="primary", key="export_build"):
        st.session_state["export_result"] = {"key": key, **_build(sel, paper, basemap if use_raster else None, png)}
    res = st.session_state.get("export_result")
    if not res or res["key"] != key:
        return
    st.success(tr("brief.export_done", pages=res["pages"], seconds=res["seconds"]))
    day = office_today()  # names that say what the atlas holds: 旧村改造图集_全部村_2026-12-01.pdf
    a, b = st.columns(2)
    a.download_button(tr("brief.export_download_pdf"), res["pdf_bytes"],
                      file_name=briefing.atlas_filename(sel, day, "pdf", lang()),
                      mime="application/pdf", on_click="ignore", icon=":material/picture_as_pdf:", key="export_pdf")
    if res["zip_bytes"]:
        b.download_button(tr("brief.export_download_zip"), res["zip_bytes"],
                          file_name=briefing.atlas_filename(sel, day, "zip", lang()),
                          mime="application/zip", on_click="ignore", icon=":material/folder_zip:", key="export_zip")


with shown_errors():
    export_page()
