"""What a planner did to the map that a rerun of the page must keep: the layer
groups switched off and the view (centre and zoom).

A rerun that changes the map's script or moves it in the page (a panel opening
beside it, another basemap, the other language) makes streamlit-folium mount a
new map, which would come up with every group on and the district in view.
So the map's support JS reports, with every click and every switch of a group
in the layer control, each group's visibility and the current view through
streamlit-folium's ``selected_layers`` (entries whose ``url`` starts with
:data:`REPORT`); the page keeps one :class:`MapState` per session, reads each
report into it, and hands :meth:`MapState.restore` to the next map (through a
``feature_group_to_add`` element, so that the map's own script, and so the
component, stays the same while nothing else changes). A new map hides those
groups and goes back to the view, unless the page fits it to a new result.
Panning sends nothing (no rerun per pan): the browser keeps its latest view in
``sessionStorage`` under the session's token and prefers it when it restores.

The same state decides what a click may pick: only parcels of the groups that
are drawn (``LayerCatalog.drawn_kinds(state.hidden)``).
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field

REPORT = "ratlas:"  # prefix of the url of our entries in selected_layers
ON, OFF, VIEW = "ratlas:on", "ratlas:off", "ratlas:view"  # static/js/renewal-atlas.js writes these


def view_key(bounds) -> str | None:
    """What identifies bounds to fit (``[[s, w], [n, e]]``): equal bounds, one fit. The page's
    :meth:`MapState.restore` and the browser's filter (``gis.maps.mapview.filter_group``) key on it."""
    if bounds is None:
        return None
    return ",".join(f"{float(v):.7f}" for pair in bounds for v in pair)


@dataclass
class MapState:
    """Layer groups switched off, the last view reported, the bounds last fitted."""

    hidden: frozenset = frozenset()
    center: tuple | None = None  # (lat, lon)
    zoom: float | None = None
    fitted: str | None = None  # view_key of the bounds last fitted
    token: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    _seen: str | None = field(default=None, repr=False)

    def read(self, returned: dict | None) -> bool:
        """Take in the map's last report (streamlit-folium's return value); True when it is a new one.

        Reports carry every group the map has (``on``/``off``) and the view; anything else in
        ``selected_layers`` (WMS layers streamlit-folium tracks itself) is ignored.
        """
        entries = [e for e in ((returned or {}).get("selected_layers") or [])
                   if isinstance(e, dict) and str(e.get("url", "")).startswith(REPORT)]
        if not entries:
            return False
        seen = repr(entries)
        if seen == self._seen:
            return False
        self._seen = seen
        self.hidden = frozenset(str(e["name"]) for e in entries if e.get("url") == OFF)
        view = next((e for e in entries if e.get("url") == VIEW), None)
        try:
            if view is not None:
                self.center = (float(view["lat"]), float(view["lng"]))
                self.zoom = float(view["zoom"])
        except (KeyError, TypeError, ValueError):
            pass
        return True

    def restore(self, bounds=None) -> dict:
        """What the next map must restore, for ``bounds`` the page asks to fit (None: keep the view).

        The view is kept unless ``bounds`` is new (a new filter result, a cadastre parcel opened):
        then the map fits them, once; the same bounds again keep the planner's view.
        """
        key = view_key(bounds)
        fit = key is not None and key != self.fitted
        self.fitted = key
        out = {"hidden": sorted(self.hidden), "fit": fit, "token": self.token}
        if not fit and self.center is not None:
            out.update(center=list(self.center), zoom=self.zoom)
        return out

    def shows(self, group: str) -> bool:
        """Whether the layer group ``group`` is switched on."""
        return group not in self.hidden

