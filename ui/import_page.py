"""The data page: import parcels (upload, layer, CRS and encoding, field mapping,
preview, commit) and export the filtered parcels. Every check and every write
is a ``gis`` function; this page only shows them."""
from __future__ import annotations

import hashlib
import logging

import pandas as pd
import streamlit as st
from streamlit_folium import st_folium

from gis.importer import TARGETS, ImportOptions, commit_import, prepare_import, preview_map, read_layer, suggest_mapping
from gis.uploads import FORMATS, MAX_UPLOAD_BYTES, MB, stage_files
from ui.common import author_field, lang, plain, shown_errors, sidebar_filters, store, tr
from ui.export_data import export_downloads

log = logging.getLogger(__name__)
CRS_CHOICES = ["", 4490, 4326, *range(4513, 4555)]
ENCODINGS = ["", "utf-8", "gb18030", "big5"]


def _crs_label(v) -> str:
    if v == "":
        return tr("import.crs_auto")
    if v == 4490:
        return "EPSG:4490 CGCS2000"
    if v == 4326:
        return "EPSG:4326 WGS 84"
    if v <= 4533:
        return f"EPSG:{v} CGCS2000 3° GK zone {v - 4513 + 25}"
    return f"EPSG:{v} CGCS2000 3° GK CM {3 * (v - 4534 + 25)}E"


def _staged(files):
    """The upload staged in its private folder; re-staged (and the old folder removed) when the files change."""
    sig = hashlib.sha1(repr([(f.name, f.size, f.file_id) for f in files]).encode()).hexdigest()[:12]
    if st.session_state.get("imp_sig") != sig:
        old = st.session_state.pop("imp_upload", None)
        if old is not None:
            old.close()
        for k in ("imp_plan", "imp_raw", "imp_sig"):
            st.session_state.pop(k, None)
        st.session_state["imp_upload"] = stage_files([(f.name, f.getvalue()) for f in files])
        st.session_state["imp_sig"] = sig
    return st.session_state["imp_upload"], sig


def _raw(upload, sig: str, layer: str | None, encoding: str | None):
    """The chosen layer as read (kept while file, layer and encoding stay the same)."""
    key = (sig, layer, encoding)
    cached = st.session_state.get("imp_raw")
    if not cached or cached[0] != key:
        cached = (key, read_layer(upload, upload.layer(layer), encoding))
        st.session_state["imp_raw"] = cached
    return cached[1]


def _mapping_form(columns: list[str], sig: str) -> dict[str, str]:
    st.subheader(tr("import.mapping"))
    st.caption(tr("import.mapping_help"))
    suggestion = suggest_mapping(columns)
    options = [""] + columns
    mapping = {}
    cols = st.columns(3)
    for i, target in enumerate(TARGETS):
        default = suggestion.get(target, "")
        choice = cols[i % 3].selectbox(tr(f"import.field_{target}"), options, index=options.index(default),
                                       format_func=lambda c: tr("import.unmapped") if c == "" else c,
                                       key=f"imp_map_{sig}_{target}")
        mapping[target] = choice
    return mapping


def _report(plan) -> None:
    r = plan.report
    c = st.columns(6)
    for col, (label, value) in zip(c, (("read", r["features_read"]), ("new_count", r["new"]),
                                       ("updated_count", r["updated"]), ("unchanged_count", r["unchanged"]),
                                       ("repaired_count", r["repaired"]), ("rejected_count", r["rejected_count"]))):
        col.metric(tr(f"import.{label}"), value)
    source = tr(f"import.crs_source_{r['crs_source']}")
    st.write(plain(tr("import.crs_used", epsg=r["crs"], name=r["crs_name"], source=source)
                   + (f"：{r['crs_note']}" if r["crs_note"] else "")))
    if r["crs_confirm"]:
        st.warning(tr("import.crs_confirm"))
    st.write(plain(tr("import.encoding_used", encoding=r["encoding"],
                      source=tr(f"import.encoding_source_{r['encoding_source']}"))))
    if r["rejected"]:
        st.subheader(tr("import.rejected_title"))
        st.dataframe(pd.DataFrame([{tr("import.row"): x["row"], tr("import.field_code"): x["code"],
                                    tr("import.reason"): x["reason"]} for x in r["rejected"]]),
                     hide_index=True, width="stretch")
    if r["repaired_rows"]:
        st.subheader(tr("import.repaired_title"))
        st.dataframe(pd.DataFrame([{tr("import.row"): x["row"], tr("import.field_code"): x["code"],
                                    tr("import.reason"): x["reason"]} for x in r["repaired_rows"]]),
                     hide_index=True, width="stretch")
    if r["warnings"]:
        st.subheader(tr("import.warnings_title"))
        for w in r["warnings"]:
            detail = ""
            if w.get("pairs"):
                detail = "：" + "；".join(" ↔ ".join(p) for p in w["pairs"][:10])
            elif w.get("codes"):
                detail = "：" + "、".join(w["codes"][:20])
            elif w.get("row"):
                detail = f"（{tr('import.row')} {w['row']} {w.get('code', '')}）"
            st.write("- " + plain(w["message"] + detail))
    if len(plan.parcels):
        st.caption(tr("import.preview_map"))
        m, shown = preview_map(plan)
        if shown < len(plan.parcels):
            st.caption(tr("import.preview_capped", shown=shown, total=len(plan.parcels)))
        st_folium(m, height=420, width=None, key=f"imp_map_{id(plan)}", returned_objects=[])


def import_section() -> None:
    s = store()
    st.caption(tr("import.page_caption"))
    st.caption(tr("import.formats", mb=MAX_UPLOAD_BYTES // MB))
    files = st.file_uploader(tr("import.upload"), type=sorted({e.lstrip(".") for e in FORMATS}),
                             accept_multiple_files=True, max_upload_size=MAX_UPLOAD_BYTES // MB, key="imp_files")
    if not files:
        return
    upload, sig = _staged(files)
    names = upload.layer_names()
    default = names.index("parcels") if "parcels" in names else 0
    layer = st.selectbox(tr("import.layer"), names, index=default, key=f"imp_layer_{sig}") if len(names) > 1 else names[0]
    left, right = st.columns(2)
    crs = left.selectbox(tr("import.crs"), CRS_CHOICES, format_func=_crs_label, key="imp_crs")
    crs_other = left.text_input(tr("import.crs_other"), key="imp_crs_other").strip()
    gcj02 = left.checkbox(tr("import.gcj02"), key="imp_gcj02")
    encoding = right.selectbox(tr("import.encoding"), ENCODINGS, key="imp_enc",
                               format_func=lambda e: tr("import.encoding_auto") if e == "" else e)
    kinds = list(s.catalog.kinds)
    kind = right.selectbox(tr("import.kind"), kinds, format_func=lambda k: s.catalog.kinds[k].label(lang()),
                           key="imp_kind")
    derive = right.checkbox(tr("import.derive"), value=True, key="imp_derive")
    raw = _raw(upload, sig, layer, encoding or None)
    mapping = _mapping_form([str(c) for c in raw.gdf.columns if c != raw.gdf.geometry.name], sig)
    by = author_field("imp_by")
    opts = ImportOptions(layer=layer, crs=crs_other or (crs or None), encoding=encoding or None, mapping=mapping,
                         kind=kind, gcj02=gcj02, derive=derive, lang=lang())
    key = (sig, repr(opts), s.data_version())
    if st.button(tr("import.check"), type="primary", key="imp_check"):
        st.session_state["imp_plan"] = (key, prepare_import(s, upload, opts, raw=raw))
    held = st.session_state.get("imp_plan")
    if not held:
        return
    if held[0] != key:
        st.info(tr("import.stale"))
        return
    plan = held[1]
    _report(plan)
    if st.button(tr("import.commit"), type="primary", key="imp_commit", disabled=len(plan.parcels) == 0):
        done = commit_import(s, plan, by=by)
        st.session_state.pop("imp_plan", None)
        st.session_state["imp_done"] = tr("import.committed", new=done["new"], updated=done["updated"],
                                          version=done["data_version"])
        st.rerun()
    if len(plan.parcels) == 0:
        st.info(tr("import.nothing_new"))


def page() -> None:
    st.title(tr("import.nav_title"))
    if "imp_done" in st.session_state:
        st.success(st.session_state.pop("imp_done"))
    tab_import, tab_export = st.tabs([tr("import.page_title"), tr("export.title")])
    with tab_import, shown_errors():
        try:
            import_section()
        except (OSError, MemoryError) as e:  # a full disk or an upload too big for memory: no traceback
            log.exception("import failed")
            st.error(tr("import.failed", name="", detail=type(e).__name__))
    with tab_export, shown_errors():
        st.caption(tr("export.caption"))
        _, codes = sidebar_filters()
        export_downloads(codes)


with shown_errors():
    page()
