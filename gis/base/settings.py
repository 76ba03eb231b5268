"""One settings object for the whole project.

Values come, lowest precedence first, from the defaults below, a TOML file
(``RENEWAL_CONFIG``, else ``<data_dir>/renewal.toml`` if present) and
environment variables ``RENEWAL_<NAME>`` (e.g. ``RENEWAL_STORE``,
``RENEWAL_LANG``). Paths default to places inside the checkout; the working
store lives in the git-ignored ``var/`` so that using the app never modifies
tracked files.
"""
from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gis.base import clock
from gis.base.errors import InputError
from gis.base.proxies import parse_networks

ROOT = Path(__file__).resolve().parents[2]
ENV_PREFIX = "RENEWAL_"
#: the basemap kinds a setting may name (gis/maps/basemaps.py implements them)
BASEMAP_KINDS = ("none", "raster", "orthophoto", "tianditu_img", "tianditu_vec", "amap_road", "amap_sat", "custom")


@dataclass(frozen=True)
class Settings:
    """Every setting the project reads. Each field is documented in README.md (a test checks)."""

    #: folder for the working store, caches and generated files
    data_dir: Path = ROOT / "var"
    #: working store (GeoPackage); seeded from ``demo_store`` on first use
    store: Path | None = None
    #: the committed demo district the working store is seeded from
    demo_store: Path = ROOT / "data" / "parcels" / "demo.gpkg"
    #: PostgreSQL/PostGIS URL (postgresql://user@host/db); empty: the embedded GeoPackage
    database_url: str = ""
    #: how people log in where the store has accounts: ``password`` (accounts in the store) or
    #: ``oidc`` (the office's OpenID Connect provider through Streamlit's st.login; the [auth]
    #: section of .streamlit/secrets.toml names it; the user name is the account's e-mail)
    auth: str = "password"
    #: offline basemap GeoTIFF (any CRS); empty for none
    raster: Path | None = ROOT / "data" / "raster" / "demo_basemap.tif"
    #: basemap shown when a user has chosen none: ``none``, ``raster``, ``orthophoto``,
    #: ``tianditu_img``, ``tianditu_vec``, ``amap_road``, ``amap_sat`` or ``custom`` (gis/basemaps.py)
    basemap: str = "raster"
    #: the district's orthophoto (DOM) GeoTIFF, any CRS and size; empty for none
    orthophoto: Path | None = None
    #: Tianditu key (tk); from the environment or the data folder's config, never the repository
    tianditu_key: str = field(default="", repr=False)
    #: XYZ or WMTS tile URL template of an intranet tile server (``custom`` basemap)
    tile_url: str = ""
    #: attribution shown for ``tile_url``
    tile_attribution: str = ""
    #: group-robot webhook (WeCom, DingTalk or the intranet's) for ``renewal digest``; empty: off
    digest_webhook: str = field(default="", repr=False)
    #: folder with ``pipelines.toml`` and ``catalog.toml``
    layers_dir: Path = ROOT / "layers"
    #: interface language: ``zh`` (default) or ``en``
    lang: str = "zh"
    #: classification line printed on maps and exports
    classification: str = "内部资料 注意保存"
    #: name recorded as the author of writes when none is given
    user: str = ""
    #: port of ``renewal serve``
    port: int = 8501
    #: the office's time zone (IANA name): "today", business dates and the dates on exports follow it,
    #: whatever the server's clock zone (gis/base/clock.py)
    timezone: str = clock.DEFAULT_TIMEZONE
    #: addresses or networks of the office's reverse proxies, comma-separated (``10.0.0.5,
    #: 192.168.1.0/24``): from these the login throttle believes ``X-Forwarded-For``
    #: (gis.base.proxies.py); empty: every connection is counted by its own address
    trusted_proxies: str = ""
    _extra: dict = field(default_factory=dict, repr=False)

    @property
    def store_path(self) -> Path:
        return self.store or self.data_dir / "renewal.gpkg"

    @property
    def trusted_networks(self) -> tuple:
        return parse_networks(self.trusted_proxies)

    @property
    def generated_dir(self) -> Path:
        """Files the app writes for the browser (rendered basemap PNGs)."""
        return ROOT / "static" / "generated"

    @classmethod
    def load(cls, env: dict | None = None, **overrides) -> "Settings":
        """Settings from defaults, the config file, the environment, then ``overrides``.

        Raises:
            InputError: the config file is unreadable, names an unknown setting
                or gives a value of the wrong type.
        """
        env = os.environ if env is None else env
        values: dict = {}
        data_dir = Path(env.get(ENV_PREFIX + "DATA_DIR") or overrides.get("data_dir") or cls.data_dir)
        config = env.get(ENV_PREFIX + "CONFIG")
        config_path = Path(config) if config else data_dir / "renewal.toml"
        if config or config_path.exists():
            try:
                with open(config_path, "rb") as f:
                    values.update(tomllib.load(f))
            except (OSError, tomllib.TOMLDecodeError) as e:
                raise InputError("error.bad_config", path=str(config_path), detail=str(e)) from e
        for f in dataclasses.fields(cls):
            if f.name.startswith("_"):
                continue
            v = env.get(ENV_PREFIX + f.name.upper())
            if v is not None:
                values[f.name] = v
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls._coerce(values)

    @classmethod
    def _coerce(cls, values: dict) -> "Settings":
        known = {f.name: f for f in dataclasses.fields(cls) if not f.name.startswith("_")}
        kwargs = {}
        for k, v in values.items():
            if k not in known:
                raise InputError("error.unknown_setting", name=k, known=", ".join(known))
            if k in ("data_dir", "demo_store", "layers_dir"):
                kwargs[k] = Path(v).expanduser()
            elif k in ("store", "raster", "orthophoto"):
                kwargs[k] = Path(v).expanduser() if str(v) else None
            elif k == "port":
                try:
                    kwargs[k] = int(v)
                except (TypeError, ValueError):
                    raise InputError("error.bad_setting", name=k, value=str(v)) from None
            elif k == "basemap":
                if v not in BASEMAP_KINDS:
                    raise InputError("error.bad_setting", name=k, value=str(v))
                kwargs[k] = v
            elif k == "auth":
                if v not in ("password", "oidc"):
                    raise InputError("error.bad_setting", name=k, value=str(v))
                kwargs[k] = v
            elif k == "lang":
                if v not in ("zh", "en"):
                    raise InputError("error.bad_setting", name=k, value=str(v))
                kwargs[k] = v
            elif k == "timezone":
                try:
                    ZoneInfo(str(v))
                except (ZoneInfoNotFoundError, ValueError):
                    raise InputError("error.bad_setting", name=k, value=str(v)) from None
                kwargs[k] = str(v)
            elif k == "trusted_proxies":
                parse_networks(str(v))  # refuses a malformed entry now, not at the first login
                kwargs[k] = str(v)
            else:
                kwargs[k] = str(v)
        return cls(**kwargs)
