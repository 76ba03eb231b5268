"""The map's comparison of two dates: each parcel filled by what happened to it between them.

``change_colouring(before, after, catalog, lang)`` takes the parcels as of the
two dates (``gis.model.timeline``) and is handed to ``build_map(colouring=...)``:
parcels that advanced, went back, were newly blocked or unblocked are drawn
distinctly, the rest grey, and the legend counts each.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from gis.base.i18n import t
from gis.model.pipelines import Catalog
from gis.model.timeline import stage_positions

CHANGES = ("advanced", "back", "blocked", "unblocked", "unchanged")
COLORS = {"advanced": "#1a9850", "back": "#d73027", "blocked": "#7b3294", "unblocked": "#4575b4",
          "unchanged": "#d9d9d9"}


def changes(before: pd.DataFrame, after: pd.DataFrame, catalog: Catalog) -> dict[str, str]:
    """Parcel code → its change between two states of the same parcels (a move of stage wins over a flag)."""
    b = before.set_index("code").reindex(after["code"])
    i0 = stage_positions(catalog, b["kind"].to_numpy(dtype=object), b["stage"].to_numpy(dtype=object))
    i1 = stage_positions(catalog, after["kind"].to_numpy(dtype=object), after["stage"].to_numpy(dtype=object))
    f0 = b["blocked"].fillna(0).astype(bool).to_numpy()
    f1 = after["blocked"].fillna(0).astype(bool).to_numpy()
    change = np.select([i1 > i0, i1 < i0, f1 & ~f0, f0 & ~f1], list(CHANGES[:4]), default="unchanged")
    return dict(zip(after["code"], change))


def change_colouring(before: pd.DataFrame, after: pd.DataFrame, catalog: Catalog, since: str, until: str,
                     lang: str = "zh") -> dict:
    """``{"field", "values", "colors", "legend", "labels", "counts"}`` for ``build_map(colouring=...)``."""
    values = changes(before, after, catalog)
    counts = pd.Series(list(values.values()), dtype=object).value_counts().to_dict()
    labels = {c: t(f"timeline.change_{c}", lang) for c in CHANGES}
    legend = {"title": t("timeline.compare_legend", lang, since=since, until=until),
              "items": [{"key": c, "label": f"{labels[c]} {int(counts.get(c, 0))}", "kind": "fill",
                         "fill": COLORS[c], "stroke": "#555555"} for c in CHANGES]}
    return {"field": "change", "values": values, "default": "unchanged", "colors": dict(COLORS), "legend": legend,
            "labels": labels, "title": t("timeline.compare_title", lang), "counts": {c: int(counts.get(c, 0))
                                                                                      for c in CHANGES}}
