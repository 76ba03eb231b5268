"""Opening a store: the one place that knows both back ends and picks one.

``open_store(settings)`` is the app's store (PostGIS when a database URL is set,
else the working GeoPackage, seeded from the demo on first use);
``open_store_at(where)`` opens a GeoPackage path or a ``postgresql://`` URL.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import geopandas as gpd

from gis.base.errors import NotFoundError
from gis.base.fileio import atomic_write
from gis.model.pipelines import Catalog, load_catalog
from gis.store.cadastre import CadastreMixin
from gis.store.pg import PostgisStore
from gis.store.store import Store


def open_store(settings) -> Store:
    """The store of ``settings``: PostGIS when ``database_url`` is set, else the
    working GeoPackage, seeded from the demo on first use."""
    catalog = load_catalog(settings.layers_dir / "pipelines.toml")
    if settings.database_url:
        return PostgisStore(settings.database_url, catalog)
    path = settings.store_path
    if not path.exists():
        seed_store(settings.demo_store, path)
    return Store(path, catalog)

def open_store_at(where: str, catalog: Catalog | None = None) -> "Store":
    """The store at a GeoPackage path or a ``postgresql://`` URL."""
    if str(where).startswith(("postgresql://", "postgres://")):
        return PostgisStore(str(where), catalog)
    return Store(where, catalog)


def seed_store(demo: Path, target: Path) -> Path:
    """Copy the committed demo GeoPackage to ``target`` (atomically: a copy then a rename).

    Raises:
        NotFoundError: the demo file is missing.
    """
    demo, target = Path(demo), Path(target)
    if not demo.exists():
        raise NotFoundError("error.no_store", path=str(demo))
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(demo, "rb") as src:
        atomic_write(target, lambda out: shutil.copyfileobj(src, out))
    return target


def as_store(store) -> Store:
    """A store object for a store, a GeoPackage path or a postgresql:// URL."""
    return store if isinstance(store, CadastreMixin) else open_store_at(str(store))


# Module-level forms of the look-ups, for callers holding a store, a path or a URL.
def write_cadastre(store, gdf: gpd.GeoDataFrame, by: str | None = None, note: str = "") -> dict:
    """``Store.write_cadastre`` on a store, a GeoPackage path or a ``postgresql://`` URL."""
    return as_store(store).write_cadastre(gdf, by=by, note=note)


def has_cadastre(store) -> bool:
    return as_store(store).has_cadastre()


def cadastre_key(store) -> str | None:
    return as_store(store).cadastre_key()


def cadastre_at(store, lon: float, lat: float) -> dict | None:
    return as_store(store).cadastre_at(lon, lat)


def cadastre_parcel(store, code: str) -> dict:
    return as_store(store).cadastre_parcel(code)
