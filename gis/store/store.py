"""The store: one class of named methods, assembled from its concerns.

Each concern is a mixin of its own module — parcels and their events
(``parcels``), accounts, permissions and the audit (``users``), sign-in sessions (``sessions``), imports
(``bulk``), the cadastre (``cadastre``), key projects (``projects``), users' preferences (``preferences``), evidence (``attachments``) — over ``StoreBase``, which opens the
store, runs its migrations and reads its layers. ``Store`` is the GeoPackage
back end; ``PostgisStore`` (gis/store/pg.py) overrides the primitives only.

Layers are read through pyogrio (GDAL); writes go through SQLite directly, each
in one ``BEGIN IMMEDIATE`` transaction that appends the event, updates the
parcel's current stage beside it and bumps ``meta.data_version`` — so a write
lands whole or not at all, and caches can key on the version. Only attribute
columns are updated, never geometry, so GDAL's R-tree triggers stay untouched
and the file still opens in QGIS (see docs/DATA_MODEL.md).

A new concern (plans, follow-up orders, attachments, …) is a new mixin module
here and one more base below.
"""
from __future__ import annotations

from gis.store.attachments import AttachmentsMixin
from gis.store.base import StoreBase
from gis.store.bulk import BulkMixin
from gis.store.bulk_updates import BulkUpdatesMixin
from gis.store.cadastre import CadastreMixin
from gis.store.parcels import ParcelsMixin
from gis.store.plans import PlansMixin
from gis.store.preferences import PreferencesMixin
from gis.store.projects import ProjectsMixin
from gis.store.sessions import SessionsMixin
from gis.store.tiles import TilesMixin
from gis.store.timeline import TimelineMixin
from gis.store.users import UsersMixin


class Store(TimelineMixin, AttachmentsMixin, ProjectsMixin, PlansMixin, CadastreMixin, BulkMixin, BulkUpdatesMixin,
            ParcelsMixin, PreferencesMixin, SessionsMixin, TilesMixin, UsersMixin, StoreBase):
    """A GeoPackage store (the embedded back end). Cheap to construct; a connection per operation."""
