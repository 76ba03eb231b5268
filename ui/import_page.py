"""The data page: import parcels (upload, layer, CRS and encoding, field mapping,
preview, commit) and export the filtered parcels. Every check and every write
is a ``gis`` function; this page only shows them."""
from __future__ import annotations

import hashlib
import logging

import pandas as pd
import streamlit as st
from streamlit_folium import st_folium

from gis.base.clock import office_today
from gis.base.errors import RenewalError
from gis.base.units import crs_label
from gis.io.cadastre_import import TARGETS as CADASTRE_TARGETS
from gis.io.cadastre_import import CadastreOptions, prepare_cadastre, suggest_cadastre_mapping
from gis.io.importer import TARGETS, ImportOptions, commit_import, gcj02_hint, suggest_mapping
from gis.io.isolation import layer_summary, plan_import
from gis.io.readers import read_layer
from gis.io.uploads import FORMATS, MAX_UPLOAD_BYTES, MB, stage_files
from gis.maps.mapview import STATIC_DIR
from gis.maps.preview import preview_map
from gis.store.open import write_cadastre
from ui.common import author_field, context_layers, lang, plain, shown_errors, sidebar_filters, store, tr
from ui.export_data import export_downloads

log = logging.getLogger(__name__)
CRS_CHOICES = ["", 4490, 4326, *range(4513, 4555)]
UPLOADER_CSS = STATIC_DIR / "css" / "uploader.css"
ENCODINGS = ["", "utf-8", "gb18030", "big5"]


def _crs_label(v) -> str:
    return tr("import.crs_auto") if v == "" else crs_label(v, lang())


def _css_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


def _uploader_texts(types: list[str]) -> None:
    """The uploader's own English ("Upload", "300MB per file") replaced by the page's texts (a stylesheet)."""
    limit = tr("ux.upload_limit", mb=MAX_UPLOAD_BYTES // MB) + " · " + tr("ux.list_sep").join(t.upper() for t in types)
    st.html(f"<style>{UPLOADER_CSS.read_text(encoding='utf-8')}"
            f":root {{ --ratlas-upload-browse: {_css_string(tr('ux.upload_browse'))};"
            f" --ratlas-upload-limit: {_css_string(limit)}; }}</style>")


def _uploader(prefix: str):
    """The files chosen for an import (every format the importer reads, within the size limit)."""
    types = sorted({e.lstrip(".") for e in FORMATS})
    _uploader_texts(types)
    return st.file_uploader(tr("import.upload"), type=types,
                            accept_multiple_files=True, max_upload_size=MAX_UPLOAD_BYTES // MB, key=f"{prefix}_files")


def _staged(files, prefix: str = "imp"):
    """The upload staged in its private folder; re-staged (and the old folder removed) when the files change."""
    sig = hashlib.sha1(repr([(f.name, f.size, f.file_id) for f in files]).encode()).hexdigest()[:12]
    if st.session_state.get(f"{prefix}_sig") != sig:
        old = st.session_state.pop(f"{prefix}_upload", None)
        if old is not None:
            old.close()
        for k in ("plan", "raw", "sig", "columns"):
            st.session_state.pop(f"{prefix}_{k}", None)
        st.session_state[f"{prefix}_upload"] = stage_files([(f.name, f.getvalue()) for f in files])
        st.session_state[f"{prefix}_sig"] = sig
    return st.session_state[f"{prefix}_upload"], sig


def _raw(upload, sig: str, layer: str | None, encoding: str | None, prefix: str = "imp"):
    """The chosen layer as read (kept while file, layer and encoding stay the same)."""
    key = (sig, layer, encoding)
    cached = st.session_state.get(f"{prefix}_raw")
    if not cached or cached[0] != key:
        cached = (key, read_layer(upload, upload.layer(layer), encoding))
        st.session_state[f"{prefix}_raw"] = cached
    return cached[1]


def _summary(upload, sig: str, layer: str | None, encoding: str | None) -> tuple[list[str], list[str]]:
    """The chosen layer's columns and GCJ-02 hint, read once per file, layer and encoding (in a child
    process for a large file, so that reading it does not stall the server)."""
    key = (sig, layer, encoding)
    cached = st.session_state.get("imp_columns")
    if not cached or cached[0] != key:
        cached = (key, layer_summary(upload, layer, encoding))
        st.session_state["imp_columns"] = cached
    return cached[1]


def _source_choices(upload, sig: str, prefix: str):
    """Layer, CRS and encoding pickers; returns (layer, crs, encoding, left column, right column)."""
    names = upload.layer_names()
    default = names.index("parcels") if "parcels" in names else 0
    layer = (st.selectbox(tr("import.layer"), names, index=default, key=f"{prefix}_layer_{sig}") if len(names) > 1
             else names[0])
    left, right = st.columns(2)
    crs = left.selectbox(tr("import.crs"), CRS_CHOICES, format_func=_crs_label, key=f"{prefix}_crs")
    crs_other = left.text_input(tr("import.crs_other"), key=f"{prefix}_crs_other").strip()
    encoding = right.selectbox(tr("import.encoding"), ENCODINGS, key=f"{prefix}_enc",
                               format_func=lambda e: tr("import.encoding_auto") if e == "" else e)
    return layer, crs_other or (crs or None), encoding or None, left, right


def _gcj02_choice(column, hint: list[str], sig: str, prefix: str) -> bool:
    """The GCJ-02 conversion: ticked already when the layer looks like AMap/DataV output (``hint``: the
    properties that say so, ``gis.io.importer.gcj02_hint``), for the planner to confirm or untick; never
    applied without the box ticked."""
    ticked = column.checkbox(tr("import.gcj02"), value=bool(hint), key=f"{prefix}_gcj02_{sig}")
    if hint:
        column.caption(plain(tr("import.gcj02_suggested", properties="、".join(hint))))
    return ticked


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


def _warnings(warnings: list[dict]) -> None:
    """The report's warnings, each with the pairs, codes or row it is about."""
    if not warnings:
        return
    st.subheader(tr("import.warnings_title"))
    sep, items = tr("ux.sep"), tr("ux.list_sep")
    for w in warnings:
        detail = ""
        if w.get("pairs"):
            detail = sep + items.join(" ↔ ".join(p) for p in w["pairs"][:10])
        elif w.get("codes"):
            detail = sep + items.join(w["codes"][:20])
        elif w.get("row"):
            detail = tr("ux.paren", text=f"{tr('import.row')} {w['row']} {w.get('code', '') or ''}".strip())
        st.write("- " + plain(w["message"] + detail))


def _rows_table(rows: list[dict], code_label: str) -> None:
    st.dataframe(pd.DataFrame([{tr("import.row"): x["row"], code_label: x["code"] or "",
                                tr("import.reason"): x["reason"] or ""} for x in rows]),
                 hide_index=True, width="stretch")


def _source_report(r: dict, code_label: str) -> None:
    """What both imports report the same way: the coordinate system and text encoding used, the rows refused."""
    source = tr(f"import.crs_source_{r['crs_source']}")
    st.write(plain(tr("import.crs_used", epsg=r["crs"], name=r["crs_name"], source=source)
                   + (tr("ux.sep") + r["crs_note"] if r.get("crs_note") else "")))
    if r["crs_confirm"]:
        st.warning(tr("import.crs_confirm"))
    st.write(plain(tr("import.encoding_used", encoding=r["encoding"],
                      source=tr(f"import.encoding_source_{r['encoding_source']}"))))
    if r["rejected"]:
        st.subheader(tr("import.rejected_title"))
        _rows_table(r["rejected"], code_label)


def _report(plan) -> None:
    r = plan.report
    c = st.columns(6)
    for col, (label, value) in zip(c, (("read", r["features_read"]), ("new_count", r["new"]),
                                       ("updated_count", r["updated"]), ("unchanged_count", r["unchanged"]),
                                       ("repaired_count", r["repaired"]), ("rejected_count", r["rejected_count"]))):
        col.metric(tr(f"import.{label}"), value)
    _source_report(r, tr("import.field_code"))
    if r["repaired_rows"]:
        st.subheader(tr("import.repaired_title"))
        _rows_table(r["repaired_rows"], tr("import.field_code"))
    _warnings(r["warnings"])
    if len(plan.parcels):
        st.caption(tr("import.preview_map"))
        m, shown = preview_map(plan, district=context_layers(store().location).get("district"))
        if shown < len(plan.parcels):
            st.caption(tr("import.preview_capped", shown=shown, total=len(plan.parcels)))
        st_folium(m, height=420, width=None, key="imp_preview", returned_objects=[])


def import_section() -> None:
    s = store()
    st.caption(tr("import.page_caption"))
    st.caption(tr("import.formats", mb=MAX_UPLOAD_BYTES // MB))
    files = _uploader("imp")
    if not files:
        return
    upload, sig = _staged(files)
    layer, crs, encoding, left, right = _source_choices(upload, sig, "imp")
    kinds = list(s.catalog.kinds)
    kind = right.selectbox(tr("import.kind"), kinds, format_func=lambda k: s.catalog.kinds[k].label(lang()),
                           key="imp_kind")
    derive = right.checkbox(tr("import.derive"), value=True, key="imp_derive")
    columns, hint = _summary(upload, sig, layer, encoding)
    gcj02 = _gcj02_choice(left, hint, sig, "imp")
    mapping = _mapping_form(columns, sig)
    by = author_field("imp_by")
    opts = ImportOptions(layer=layer, crs=crs, encoding=encoding, mapping=mapping,
                         kind=kind, gcj02=gcj02, derive=derive, lang=lang())
    key = (sig, repr(opts), s.data_version())
    if st.button(tr("import.check"), type="primary", key="imp_check"):
        # a large file is read and checked in a child process with a memory cap (gis.io.isolation):
        # other planners' clicks are not slowed, and a file too big for memory cannot take the server down
        st.session_state["imp_plan"] = (key, plan_import(s, upload, opts))
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


def cadastre_section() -> None:
    """Replace the store's cadastre (地籍宗地) with a delivered file: check, report, then write (admins)."""
    s = store()
    st.caption(tr("cadastre.import_caption"))
    files = _uploader("cad")
    if not files:
        return
    upload, sig = _staged(files, "cad")
    layer, crs, encoding, left, _ = _source_choices(upload, sig, "cad")
    raw = _raw(upload, sig, layer, encoding, "cad")
    gcj02 = _gcj02_choice(left, gcj02_hint(raw), sig, "cad")
    columns = [str(c) for c in raw.gdf.columns if c != raw.gdf.geometry.name]
    suggestion = suggest_cadastre_mapping(columns)
    options = [""] + columns
    mapping = {}
    for col, target in zip(st.columns(len(CADASTRE_TARGETS)), CADASTRE_TARGETS):
        mapping[target] = col.selectbox(tr(f"cadastre.{target}"), options,
                                        index=options.index(suggestion.get(target, "")),
                                        format_func=lambda c: tr("import.unmapped") if c == "" else c,
                                        key=f"cad_map_{sig}_{target}")
    by = author_field("cad_by")
    opts = CadastreOptions(layer=layer, crs=crs, encoding=encoding, mapping=mapping, gcj02=gcj02, lang=lang())
    key = (sig, repr(opts))
    if st.button(tr("import.check"), type="primary", key="cad_check"):
        st.session_state["cad_plan"] = (key, prepare_cadastre(s, upload, opts))
    held = st.session_state.get("cad_plan")
    if not held:
        return
    if held[0] != key:
        st.info(tr("import.stale"))
        return
    gdf, r = held[1]
    c = st.columns(4)
    for col, (label, value) in zip(c, (("import.read", r["features_read"]), ("cadastre.to_write", r["features_imported"]),
                                       ("import.repaired_count", r["repaired"]),
                                       ("import.rejected_count", len(r["rejected"])))):
        col.metric(tr(label), value)
    if r["land_use"]:
        st.caption(plain(tr("ux.list_sep").join(f"{k} {v:,}" for k, v in r["land_use"].items())))
    _warnings(r["warnings"])
    _source_report(r, tr("cadastre.code"))
    st.warning(tr("cadastre.replaces"))
    if st.button(tr("cadastre.commit"), type="primary", key="cad_commit", disabled=len(gdf) == 0):
        note = tr("cadastre.import_note", source=r["source"], date=office_today().isoformat())
        done = write_cadastre(s, gdf, by=by, note=note)
        st.session_state.pop("cad_plan", None)
        st.session_state["imp_done"] = tr("cadastre.committed", n=done["parcels"])
        st.rerun()


def page() -> None:
    st.title(tr("import.nav_title"))
    if "imp_done" in st.session_state:
        st.success(st.session_state.pop("imp_done"))
    tab_import, tab_cadastre, tab_export = st.tabs([tr("import.page_title"), tr("cadastre.import_title"),
                                                    tr("export.title")])
    for tab, section in ((tab_import, import_section), (tab_cadastre, cadastre_section)):
        with tab, shown_errors():
            try:
                section()
            except RenewalError:  # a refusal is a PermissionError too: shown_errors says what it is
                raise
            except (OSError, MemoryError) as e:  # a full disk or an upload too big for memory: no traceback
                log.exception("import failed")
                st.error(tr("import.failed", name="", detail=type(e).__name__))
    with tab_export, shown_errors():
        st.caption(tr("export.caption"))
        _, codes = sidebar_filters()
        export_downloads(codes)


with shown_errors():
    page()
