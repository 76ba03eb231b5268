"""What the projects' pages and the map share: the store's project reads cached on its data version
(a report or an import bumps it), and the words for amounts and stages."""
from __future__ import annotations

import datetime as dt

import streamlit as st

from gis.model import projects as model
from gis.model.project_views import format_wan, project_stage

from .common import lang, live_parcels, store


@st.cache_resource(max_entries=4, show_spinner=False)
def _footprints(path: str, mark: tuple, geometry_epoch: int):
    return store().project_footprints()


@st.cache_resource(max_entries=4, show_spinner=False)
def _footprints_key(path: str, version: int) -> tuple:
    """What the footprints depend on, asked once per data version (a click's run asks nothing)."""
    live = live_parcels(path)
    live.current(version)
    return store().projects_mark(), live.geometry_epoch


def project_footprints():
    """The projects' footprints (EPSG:4490) for the map layer: built again when a project changes or a parcel's
    geometry does (``Store.projects_mark``, ``LiveParcels.geometry_epoch``), not after every stage update."""
    s = store()
    return _footprints(s.location, *_footprints_key(s.location, s.data_version()))


@st.cache_data(max_entries=8, show_spinner=False)
def _projects(path: str, version: int) -> list[dict]:
    return store().projects()


def project_rows() -> list[dict]:
    """Every project (``Store.projects``), cached until the next write."""
    s = store()
    return _projects(s.location, s.data_version())


@st.cache_data(max_entries=16, show_spinner=False)
def _dispatch(path: str, version: int, day: str) -> dict:
    return model.dispatch_table(store(), dt.date.fromisoformat(day))


def dispatch(day: dt.date) -> dict:
    """The dispatch table of ``day`` (``gis.model.projects.dispatch_table``): reported, missing, behind plan."""
    s = store()
    return _dispatch(s.location, s.data_version(), day.isoformat())


@st.cache_data(max_entries=16, show_spinner=False)
def _indicators(path: str, version: int, year: int, as_of: str) -> list[dict]:
    return model.indicators(store(), year, as_of=dt.date.fromisoformat(as_of))


def indicators(year: int, as_of: dt.date) -> list[dict]:
    """The indicator board of ``year`` as of ``as_of`` (``gis.model.projects.indicators``)."""
    s = store()
    return _indicators(s.location, s.data_version(), year, as_of.isoformat())


def wan(amount) -> str:
    return format_wan(amount, lang())


def stage_label(stage: str | None) -> str:
    return project_stage(store().catalog, stage, lang())["label"]
