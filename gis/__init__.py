"""Renewal Atlas core library: data, stages, maps and exports. Never imports streamlit."""
import os as _os

__version__ = "0.1.0"

# Uploaded files are untrusted and GDAL opens by content, not by extension: an
# OGR VRT (or a GDALG pipeline) disguised as GeoJSON would make GDAL read local
# files or fetch URLs. GDAL reads GDAL_SKIP once, when its drivers are
# registered, i.e. when pyogrio is first imported — so it is set here, before
# any module of ours imports pyogrio. gis.uploads checks (and enforces) it again
# before every read, for processes that imported pyogrio first.
_skip = set(_os.environ.get("GDAL_SKIP", "").replace(",", " ").split())
_os.environ["GDAL_SKIP"] = " ".join(sorted(_skip | {"OGR_VRT", "GDALG"}))
del _skip
