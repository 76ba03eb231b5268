"""Download buttons for the exports (GeoPackage, GeoJSON, zipped Shapefile, the ledger).

``export_downloads(codes)`` shows one button per format for the parcels of
the current filter (``None``: all). Files are built only when a button is
clicked (deferred ``data``), and clicking does not rerun the page.
"""
from __future__ import annotations

import streamlit as st

from gis.io.exporter import MIME, export_bytes, export_filename
from ui.common import current_user, lang, store, tr


def export_downloads(codes: tuple | list | None, key: str = "export") -> None:
    """Buttons for gpkg, geojson, shp (zip, UTF-8 or GBK) and xlsx of ``codes`` (None: every parcel)."""
    s = store()
    language = lang()
    n = len(codes) if codes is not None else len(s.parcels(geometry=False))
    st.caption(tr("export.filtered", n=n) if codes is not None else tr("export.all", n=n))
    if n == 0:
        st.info(tr("export.nothing"))
        return
    selection = list(codes) if codes is not None else None
    user = current_user()
    viewer = user.username if user is not None else None  # a GeoPackage carries the documents this account may see
    gbk = st.checkbox(tr("export.shp_gbk"), key=f"{key}-gbk", help=tr("export.shp_encoding"))
    cols = st.columns(4)
    for col, fmt in zip(cols, ("gpkg", "geojson", "shp", "xlsx")):
        enc = "gbk" if fmt == "shp" and gbk else None
        col.download_button(
            tr(f"export.{fmt}"),
            # deferred: the file is made when the button is clicked, from the store as it is then
            data=lambda fmt=fmt, enc=enc: export_bytes(s, fmt, selection, enc, language, viewer),
            file_name=export_filename(fmt, language),
            mime=MIME[fmt],
            key=f"{key}-{fmt}",
            on_click="ignore",
            icon=":material/download:",
            help=tr("export.gpkg_help") if fmt == "gpkg" else None,
            width="stretch",
        )
