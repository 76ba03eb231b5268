"""The store: parcels, their stage events, accounts and the audit, on a GeoPackage or PostGIS.

Back-end differences live only in this package. Open one with
``open_store(settings)`` or ``open_store_at(path_or_url)``.
"""
from gis.store.base import CONTEXT_LAYERS, PARCEL_FIELDS, StageEvent, parse_date, utcnow_iso
from gis.store.open import (
                            as_store,
                            cadastre_at,
                            cadastre_key,
                            cadastre_parcel,
                            has_cadastre,
                            open_store,
                            open_store_at,
                            seed_store,
                            write_cadastre,
)
from gis.store.pg import PostgisStore
from gis.store.store import Store

__all__ = ["CONTEXT_LAYERS", "PARCEL_FIELDS", "StageEvent", "parse_date", "utcnow_iso", "as_store", "cadastre_at",
           "cadastre_key", "cadastre_parcel", "has_cadastre", "open_store", "open_store_at", "seed_store",
           "write_cadastre", "PostgisStore", "Store"]
