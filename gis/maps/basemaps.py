"""Basemaps planners use, lined up with the parcels.

Kinds (``KINDS``):

| kind | what | requests leave the server? | datum | in exports |
|---|---|---|---|---|
| ``none`` | no basemap | no | — | — |
| ``raster`` | the configured GeoTIFF (``RENEWAL_RASTER``; the demo's imagery) | no | any CRS | yes |
| ``orthophoto`` | the district's orthophoto, a GeoTIFF by path, any CRS and size | no | any CRS | yes |
| ``tianditu_img`` / ``tianditu_vec`` | Tianditu imagery / vector + annotation | browser → tianditu.gov.cn | CGCS2000 | yes |
| ``amap_road`` / ``amap_sat`` | AMap (Gaode) road / satellite | browser → autonavi.com | GCJ-02 | no (terms; GCJ-02) |
| ``custom`` | an XYZ or WMTS URL (an intranet GeoServer) | browser → that server | WGS84 | no (terms unknown) |

The choice is a :class:`BasemapChoice`; :func:`resolve_basemap` turns it
into a :class:`Basemap` the map draws (tile layers for the browser, or a
local raster rendered by ``gis.rasterview``). Over a GCJ-02 basemap the
overlays are shifted to GCJ-02 for display (:func:`to_display`) and clicks
shifted back (:func:`click_to_store`), so a click still finds its parcel.

A basemap the browser cannot reach (no internet on the intranet, a wrong
key) must not hang anything: tiles load asynchronously, and a small script
counts tile errors (and a timeout with no tile loaded) and then shows a
notice over the map, while the data stay on it. A Tianditu choice without a
key never requests anything: the notice comes from the server.

Exports (``gis.briefing``) call :func:`export_basemap`: the same choice where
its terms allow (own rasters, Tianditu), None otherwise.
"""
from __future__ import annotations

# Lazy imports, on purpose: rasterio and Pillow are imported only where tiles are mosaicked for an export,
# so that the command line and the app start without those heavy libraries.
import io
import math
import re
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import quote, urlparse

import numpy as np

from gis.auth.preferences import load_preference, save_preference
from gis.base.errors import InputError
from gis.base.gcj02 import gcj02_to_wgs84, gdf_to_gcj02, wgs84_to_gcj02
from gis.base.i18n import t
from gis.base.settings import BASEMAP_KINDS, ROOT
from gis.base.units import to_web
from gis.maps.raster import read_background
from gis.maps.rasterview import check_raster_path, raster_info

KINDS = BASEMAP_KINDS
LOCAL_KINDS = ("none", "raster", "orthophoto")
GCJ02_KINDS = ("amap_road", "amap_sat")
EXPORT_KINDS = ("raster", "orthophoto", "tianditu_img", "tianditu_vec")
PREFERENCE = "basemap"

TILE_ERRORS_FOR_NOTICE = 4     # tile errors (more than loads) before the notice shows
TILE_TIMEOUT_MS = 8000         # no tile loaded this long after the first request: notice
_TIANDITU_KEY = re.compile(r"^[A-Za-z0-9]{16,64}$")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


@dataclass(frozen=True)
class TileSource:
    """One tile layer: a Leaflet URL template (``{s}``, ``{z}``, ``{x}``, ``{y}`` or ``{-y}``)."""

    url: str
    attribution: str = ""
    subdomains: str = "abc"
    max_native_zoom: int = 18

    def tile_url(self, z: int, x: int, y: int, n: int = 0) -> str:
        """The URL of one tile (``n`` picks the subdomain)."""
        sub = self.subdomains[n % len(self.subdomains)] if self.subdomains else ""
        return (self.url.replace("{s}", sub).replace("{z}", str(z)).replace("{x}", str(x))
                .replace("{-y}", str(2 ** z - 1 - y)).replace("{y}", str(y)))


@dataclass(frozen=True)
class BasemapChoice:
    """What a user chose: a kind, and a path (``orthophoto``) or URL and attribution (``custom``)."""

    kind: str = "raster"
    path: str = ""
    url: str = ""
    attribution: str = ""

    def as_dict(self) -> dict:
        d = {"kind": self.kind}
        if self.kind == "orthophoto" and self.path:
            d["path"] = self.path
        if self.kind == "custom":
            d.update({k: v for k, v in (("url", self.url), ("attribution", self.attribution)) if v})
        return d

    @classmethod
    def from_dict(cls, d) -> "BasemapChoice | None":
        """A choice from stored JSON; None when it is not one (an old or hand-edited file)."""
        if not isinstance(d, dict) or d.get("kind") not in KINDS:
            return None
        return cls(kind=d["kind"], path=str(d.get("path") or ""), url=str(d.get("url") or ""),
                   attribution=str(d.get("attribution") or ""))


@dataclass(frozen=True)
class Basemap:
    """A choice resolved against the settings: what the map draws and what the page says.

    ``tiles``: layers the browser fetches (empty for local kinds).
    ``raster``: a local GeoTIFF (``raster``/``orthophoto``), drawn by ``gis.rasterview``.
    ``datum``: ``wgs84`` or ``gcj02`` — the overlays are shifted to match.
    ``notice``: a catalogue key of a problem found on the server (no key,
    missing file...): shown at once, and nothing is requested.
    """

    choice: BasemapChoice
    label: str
    attribution: str = ""
    tiles: tuple = ()
    raster: Path | None = None
    datum: str = "wgs84"
    notice: str | None = None
    notice_params: dict = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return self.choice.kind

    @property
    def local(self) -> bool:
        """Nothing is requested from another server."""
        return not self.tiles

    @property
    def exportable(self) -> bool:
        """Its terms allow it in briefing exports (own rasters, Tianditu)."""
        return self.kind in EXPORT_KINDS and self.notice is None and (bool(self.tiles) or self.raster is not None)

    def notice_text(self, lang: str = "zh") -> str | None:
        return t(self.notice, lang, **self.notice_params) if self.notice else None


# --------------------------------------------------------------------------- choosing

def kind_label(kind: str, lang: str = "zh") -> str:
    return t(f"basemap.kind_{kind}", lang)


def default_choice(settings) -> BasemapChoice:
    """The settings' basemap (``RENEWAL_BASEMAP``, with ``RENEWAL_ORTHOPHOTO`` / ``RENEWAL_TILE_URL``).

    The default ``raster`` without a raster file (``RENEWAL_RASTER`` empty or
    missing) is ``none``, as before basemaps could be chosen.
    """
    kind = getattr(settings, "basemap", "raster") or "raster"
    if kind not in KINDS:
        kind = "raster"
    if kind == "raster" and not (settings.raster and Path(settings.raster).exists()):
        kind = "none"  # no imagery configured (or it is gone): no basemap, and nothing to warn about
    return BasemapChoice(kind=kind, path=str(settings.orthophoto or "") if kind == "orthophoto" else "",
                         url=settings.tile_url if kind == "custom" else "",
                         attribution=settings.tile_attribution if kind == "custom" else "")


def fill_choice(choice: BasemapChoice, settings) -> BasemapChoice:
    """Fill what a bare kind leaves open from the settings (the configured orthophoto, tile URL)."""
    if choice.kind == "orthophoto" and not choice.path and settings.orthophoto:
        return replace(choice, path=str(settings.orthophoto))
    if choice.kind == "custom" and not choice.url and settings.tile_url:
        return replace(choice, url=settings.tile_url, attribution=choice.attribution or settings.tile_attribution)
    return choice


def stored_choice(settings, user: str | None, store=None) -> BasemapChoice | None:
    """The basemap the user chose last time, or None (no user, nothing stored).

    ``store``: where the app's store keeps users' preferences (shared by every app
    server over it); without one, ``<data_dir>/preferences.json``."""
    value = store.preference(user, PREFERENCE) if store is not None else load_preference(settings, user, PREFERENCE)
    stored = BasemapChoice.from_dict(value)
    return fill_choice(stored, settings) if stored else None


def load_choice(settings, user: str | None, store=None) -> BasemapChoice:
    """The user's remembered basemap, else the settings' default."""
    return stored_choice(settings, user, store) or fill_choice(default_choice(settings), settings)


def save_choice(settings, user: str | None, choice: BasemapChoice, store=None) -> bool:
    """Remember the user's basemap (False: no user name to remember it by), in ``store`` if given.

    Raises:
        OSError: the data folder is not writable (no store given).
        InputError: the store cannot be written.
    """
    if store is not None:
        return store.set_preference(user, PREFERENCE, choice.as_dict())
    return save_preference(settings, user, PREFERENCE, choice.as_dict())


# --------------------------------------------------------------------------- URLs

def normalise_tile_url(url: str) -> str:
    """An XYZ or WMTS (KVP or REST) URL template → a Leaflet template.

    WMTS placeholders ``{TileMatrix}``, ``{TileCol}``, ``{TileRow}`` (any
    case) become ``{z}``, ``{x}``, ``{y}``; ``{s}``, ``{-y}`` are kept. The
    URL must be http(s) (or a path on this server) and name z, x and y.

    Raises:
        InputError: another scheme, a missing or unknown placeholder.
    """
    text = (url or "").strip()
    if not text:
        raise InputError("basemap.no_url")
    parsed = urlparse(text)
    if not ((parsed.scheme in ("http", "https") and parsed.netloc) or (not parsed.scheme and text.startswith("/"))):
        raise InputError("basemap.bad_url", url=text[:200])
    names = {"tilematrix": "z", "tilecol": "x", "tilerow": "y", "z": "z", "x": "x", "y": "y", "-y": "-y", "s": "s"}
    found = set()

    def sub(m):
        name = names.get(m.group(1).strip().lower())
        if name is None:
            raise InputError("basemap.bad_placeholder", name=m.group(0), url=text[:200])
        found.add(name)
        return "{" + name + "}"

    out = _PLACEHOLDER.sub(sub, text)
    if not ({"z", "x"} <= found and ({"y", "-y"} & found)):
        raise InputError("basemap.missing_placeholder", url=text[:200])
    if any(c in out for c in "<>\"'` \n\r\t"):
        raise InputError("basemap.bad_url", url=text[:200])
    return out


def _tianditu(layer: str, key: str, attribution: str) -> TileSource:
    url = (f"https://t{{s}}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
           f"&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles"
           f"&TILEMATRIX={{z}}&TILEROW={{y}}&TILECOL={{x}}&tk={quote(key)}")
    return TileSource(url=url, attribution=attribution, subdomains="01234567", max_native_zoom=18)


def _amap(style: int, host: str, attribution: str) -> TileSource:
    extra = "lang=zh_cn&size=1&scale=1&" if host == "webrd" else ""
    url = f"https://{host}0{{s}}.is.autonavi.com/appmaptile?{extra}style={style}&x={{x}}&y={{y}}&z={{z}}"
    return TileSource(url=url, attribution=attribution, subdomains="1234", max_native_zoom=18)


# --------------------------------------------------------------------------- resolving

def resolve_basemap(choice: BasemapChoice, settings, lang: str = "zh") -> Basemap:
    """What the map draws for a choice. Never raises for a bad choice: the Basemap carries a notice instead."""
    kind = choice.kind if choice.kind in KINDS else "none"
    choice = fill_choice(replace(choice, kind=kind), settings)
    label = kind_label(kind, lang)
    base = Basemap(choice=choice, label=label)
    if kind == "none":
        return base
    if kind in ("raster", "orthophoto"):

        raw = settings.raster if kind == "raster" else choice.path
        if not raw:
            return replace(base, notice=f"basemap.no_{kind}")
        try:
            path = check_raster_path(raw)
            raster_info(path)  # unreadable, no CRS: say so now
        except InputError as e:
            return replace(base, notice=e.key, notice_params=e.params)
        name = t("basemap.demo_raster", lang) if kind == "raster" and _is_demo_raster(path) else path.stem
        return replace(base, raster=path, attribution=t(f"basemap.attr_{kind}", lang, name=name))
    if kind.startswith("tianditu"):
        key = (settings.tianditu_key or "").strip()
        attribution = t("basemap.attr_tianditu", lang)
        if not key:
            return replace(base, attribution=attribution, notice="basemap.no_tianditu_key")
        if not _TIANDITU_KEY.match(key):
            return replace(base, attribution=attribution, notice="basemap.bad_tianditu_key")
        layers = ("img", "cia") if kind == "tianditu_img" else ("vec", "cva")
        return replace(base, attribution=attribution, tiles=tuple(_tianditu(la, key, attribution) for la in layers))
    if kind in GCJ02_KINDS:
        attribution = t("basemap.attr_amap", lang)
        tiles = ((_amap(8, "webrd", attribution),) if kind == "amap_road"
                 else (_amap(6, "webst", attribution), _amap(8, "webst", "")))
        return replace(base, attribution=attribution, tiles=tiles, datum="gcj02")
    # custom
    try:
        url = normalise_tile_url(choice.url)
    except InputError as e:
        return replace(base, notice=e.key, notice_params=e.params)
    attribution = choice.attribution.strip() or (urlparse(url).netloc or t("basemap.attr_custom", lang))
    return replace(base, attribution=attribution, tiles=(TileSource(url=url, attribution=attribution),))


def _is_demo_raster(path: Path) -> bool:
    try:
        return path.resolve() == (ROOT / "data" / "raster" / "demo_basemap.tif").resolve()
    except OSError:
        return False


# --------------------------------------------------------------------------- GCJ-02 display

def _datum(basemap) -> str:
    """A Basemap, a datum name or None → the datum the map draws in."""
    if basemap is None:
        return "wgs84"
    return basemap if isinstance(basemap, str) else basemap.datum


def to_display(gdf, basemap):
    """A layer as drawn over the basemap (a Basemap or a datum name): shifted to GCJ-02 over AMap, else unchanged."""
    if _datum(basemap) != "gcj02" or gdf is None:
        return gdf

    return gdf_to_gcj02(to_web(gdf))


def points_to_display(points: list[dict], basemap) -> list[dict]:
    """Point records with ``lon``/``lat`` (site photos) as drawn over the basemap: shifted over AMap."""
    if _datum(basemap) != "gcj02":
        return points
    out = []
    for p in points:
        lon, lat = wgs84_to_gcj02(float(p["lon"]), float(p["lat"]))
        out.append({**p, "lon": lon, "lat": lat})
    return out


def click_to_store(lon: float, lat: float, basemap) -> tuple[float, float]:
    """A click's lon/lat on the map → the store's coordinates (back from GCJ-02 over AMap)."""
    if _datum(basemap) != "gcj02":
        return float(lon), float(lat)

    return gcj02_to_wgs84(float(lon), float(lat))


def _corners(bounds, convert):
    (s, w), (n, e) = bounds
    w2, s2 = convert(w, s)
    e2, n2 = convert(e, n)
    return [[s2, w2], [n2, e2]]


def bounds_to_display(bounds, basemap):
    """``[[s, w], [n, e]]`` in store coordinates → as drawn (GCJ-02 over AMap)."""
    if bounds is None or _datum(basemap) != "gcj02":
        return bounds

    return _corners(bounds, wgs84_to_gcj02)


def bounds_from_display(bounds, basemap):
    """The map's view bounds → store coordinates (the inverse of :func:`bounds_to_display`)."""
    if bounds is None or _datum(basemap) != "gcj02":
        return bounds

    return _corners(bounds, gcj02_to_wgs84)


# --------------------------------------------------------------------------- exports

EXPORT_TILE_TIMEOUT = 5.0     # seconds per tile request
EXPORT_DEADLINE = 15.0        # seconds for all the tiles of a page
EXPORT_MAX_TILES = 64
USER_AGENT = "Mozilla/5.0 (RenewalAtlas briefing export)"


@dataclass(frozen=True)
class ExportBasemap:
    """The basemap of a briefing export: a local GeoTIFF, or tiles fetched by the server.

    Call :meth:`background` for a page; print ``attribution`` on the page.
    """

    kind: str
    label: str
    attribution: str
    raster: Path | None = None
    tiles: tuple = ()

    def background(self, bounds, epsg: int, width_px: int, height_px: int):
        """The basemap under ``bounds`` (page CRS ``EPSG:epsg``) as a ``gis.raster.Background``, or None.

        A local raster is read by ``gis.raster.read_background`` (the window,
        at the matching overview). Tiles are fetched at the zoom matching the
        page (at most ``EXPORT_MAX_TILES``, ``EXPORT_DEADLINE`` seconds in
        all), mosaicked in Web Mercator and warped onto the page; None when
        any tile cannot be fetched (no internet, wrong key): the page is then
        drawn without background, never half of one.

        Raises:
            InputError: the local raster cannot be read.
        """

        if self.raster is not None:
            return read_background(self.raster, bounds, epsg, width_px, height_px)
        if not self.tiles:
            return None
        return _tiles_background(self.tiles, bounds, epsg, width_px, height_px)


def export_basemap(settings, choice: BasemapChoice | None = None, lang: str = "zh") -> ExportBasemap | None:
    """The basemap briefing exports use: the user's ``choice`` (default: the settings') where its terms allow.

    Own rasters and Tianditu (with a key) are exported; AMap (its terms, and
    GCJ-02 would misplace it on a Gauss-Krüger page), custom tile servers
    (terms unknown) and ``none`` give None, as does a choice with a problem
    (missing file, no key).
    """
    b = resolve_basemap(choice or default_choice(settings), settings, lang)
    if not b.exportable:
        return None
    return ExportBasemap(kind=b.kind, label=b.label, attribution=b.attribution, raster=b.raster, tiles=b.tiles)


def required_export_basemap(settings, kind: str, lang: str = "zh") -> ExportBasemap:
    """The basemap a command line asked for by name (``--basemap KIND``), or the reason it cannot be printed.

    Raises:
        InputError: an unknown kind, a kind whose terms or datum keep it off paper
            (AMap, custom tile servers), or one that cannot be set up (no key).
    """
    if kind not in KINDS or kind == "none":
        raise InputError("basemap.bad_export_kind", kind=kind, known=" ".join(EXPORT_KINDS))
    if kind not in EXPORT_KINDS:
        raise InputError("basemap.not_in_exports")
    b = resolve_basemap(BasemapChoice(kind=kind), settings, lang)
    if b.notice in ("basemap.no_tianditu_key", "basemap.bad_tianditu_key"):
        raise InputError(b.notice.replace("basemap.", "basemap.export_"))
    if b.notice:
        raise InputError(b.notice, **dict(b.notice_params or {}))
    return ExportBasemap(kind=b.kind, label=b.label, attribution=b.attribution, raster=b.raster, tiles=b.tiles)


def _tile_range(bounds_3857, z: int):
    half = 20037508.342789244
    size = 2 * half / 2 ** z
    left, bottom, right, top = bounds_3857
    x0, x1 = int((left + half) // size), int((right + half) // size)
    y0, y1 = int((half - top) // size), int((half - bottom) // size)
    n = 2 ** z - 1
    return max(0, x0), min(n, x1), max(0, y0), min(n, y1), size


def _fetch(url: str, timeout: float) -> bytes:
    req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    with urllib.request.urlopen(req, timeout=timeout) as r:  # noqa: S310 -- fixed https template, see resolve_basemap
        return r.read(8 * 1024 * 1024)


def _tiles_background(tiles, bounds, epsg: int, width_px: int, height_px: int):
    import rasterio
    from PIL import Image
    from rasterio.transform import from_origin
    from rasterio.warp import transform_bounds


    b3857 = transform_bounds(f"EPSG:{epsg}", "EPSG:3857", *bounds, densify_pts=21)
    need = (b3857[2] - b3857[0]) / max(1, width_px)  # metres per page pixel
    z = max(0, min(min(s.max_native_zoom for s in tiles),
                   math.ceil(math.log2(2 * 20037508.342789244 / (256 * need)))))
    while True:
        x0, x1, y0, y1, size = _tile_range(b3857, z)
        if (x1 - x0 + 1) * (y1 - y0 + 1) <= EXPORT_MAX_TILES or z == 0:
            break
        z -= 1
    jobs = [(li, x, y) for li in range(len(tiles)) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]
    deadline = time.monotonic() + EXPORT_DEADLINE
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = {pool.submit(_fetch, tiles[li].tile_url(z, x, y, x + y), EXPORT_TILE_TIMEOUT): (li, x, y)
                   for li, x, y in jobs}
        done, pending = wait(futures, timeout=max(0.0, deadline - time.monotonic()))
        for f in pending:
            f.cancel()
        if pending or any(f.exception() is not None for f in done):
            return None
        results = {futures[f]: f.result() for f in done}
    w, h = (x1 - x0 + 1) * 256, (y1 - y0 + 1) * 256
    mosaic = None
    try:
        for li in range(len(tiles)):  # the base layer, then its annotation over it
            layer = Image.new("RGBA", (w, h), (0, 0, 0, 0))
            for x in range(x0, x1 + 1):
                for y in range(y0, y1 + 1):
                    tile = Image.open(io.BytesIO(results[(li, x, y)])).convert("RGBA")
                    layer.paste(tile.resize((256, 256)), ((x - x0) * 256, (y - y0) * 256))
            mosaic = layer if mosaic is None else Image.alpha_composite(mosaic, layer)
    except (OSError, ValueError):  # not an image: an error page from the server (wrong key...)
        return None
    arr = np.moveaxis(np.asarray(mosaic), -1, 0)
    half = 20037508.342789244
    transform = from_origin(-half + x0 * size, half - y0 * size, size / 256, size / 256)
    with tempfile.TemporaryDirectory(prefix="renewal_tiles_") as tmp:
        path = Path(tmp) / "mosaic.tif"
        with rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=4, dtype="uint8",
                           crs="EPSG:3857", transform=transform, photometric="RGB") as dst:
            dst.write(arr)
            dst.colorinterp = [rasterio.enums.ColorInterp.red, rasterio.enums.ColorInterp.green,
                               rasterio.enums.ColorInterp.blue, rasterio.enums.ColorInterp.alpha]
        return read_background(path, bounds, epsg, width_px, height_px)
