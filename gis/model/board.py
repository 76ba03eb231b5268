"""The village board: how far each of the old villages has come.

"成熟一个、启动一个，干一个、成一个": the board shows, per village, its parcels
and area per stage phase, the share of area past site clearance, the signing
and demolition rates, the last activity and the blocked parcels.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from gis.base.i18n import t
from gis.base.units import M2_PER_HA, M2_PER_MU
from gis.model.pipelines import NOT_STARTED, Catalog


def village_progress(parcels: pd.DataFrame, villages: pd.DataFrame, events: pd.DataFrame,
                     catalog: Catalog, lang: str = "zh") -> pd.DataFrame:
    """One row per village, sorted by code.

    ``parcels``: village parcels (code, village, stage, blocked, area_m2);
    ``villages``: code, name, name_en, zone; ``events``: parcel, event_date.
    Columns: code, name, zone, parcels, area_m2, area_mu, area_ha, one
    ``phase_<key>`` count per phase, ``area_<key>`` area (m²) per phase,
    cleared_share, signed_share, demolished_share, blocked, last_activity, status.
    """
    pipe = catalog.pipeline_for("village")
    idx = {k: i for i, k in enumerate(pipe.keys)}
    past_clear = {s.key for s in pipe.stages if s.past_clearance}
    signed_from = idx["signing"] if "signing" in idx else len(pipe.keys)
    demolished_from = idx["demolition"] + 1 if "demolition" in idx else len(pipe.keys)

    p = parcels[parcels["village"].isin(villages["code"])]
    stage = [s if isinstance(s, str) and s else None for s in p["stage"]]
    phase = np.array([catalog.phase_of("village", s).key for s in stage], dtype=object)
    step = np.array([idx.get(s, -1) if s else -1 for s in stage], dtype=np.int64)
    cleared = p["stage"].isin(past_clear).to_numpy(bool)
    area = p["area_m2"].astype(float).to_numpy()
    blocked = p["blocked"].astype(bool).to_numpy()
    last = (events.merge(p[["code", "village"]], left_on="parcel", right_on="code")
            .groupby("village")["event_date"].max()) if len(events) else pd.Series(dtype=str)

    # each village's parcels as one slice of the parcels sorted by village (kept in their order within it):
    # NumPy over a slice instead of a dozen pandas selections per village (~100 ms for the 30 villages,
    # paid by the board after every write, issue 19); sums skip a missing area as pandas' do
    ordered = villages.sort_values("code")
    codes = pd.Index(ordered["code"])
    vi = codes.get_indexer(p["village"])
    order = np.argsort(vi, kind="stable")
    bounds = np.searchsorted(vi[order], np.arange(len(codes) + 1))
    rows = []
    for k, v in enumerate(ordered.itertuples()):
        g = order[bounds[k]:bounds[k + 1]]
        a, ph, i = area[g], phase[g], step[g]
        n = len(g)
        total = float(np.nansum(a))
        row = {
            "code": v.code,
            "name": v.name_en if lang == "en" and getattr(v, "name_en", None) else v.name,
            "zone": v.zone,
            "parcels": n,
            "area_m2": round(total, 1),
            "area_mu": round(total / M2_PER_MU, 1),
            "area_ha": round(total / M2_PER_HA, 2),
        }
        for key in catalog.phases:
            sel = ph == key
            row[f"phase_{key}"] = int(sel.sum())
            row[f"area_{key}"] = round(float(np.nansum(a[sel])), 1)
        row["cleared_share"] = round(float(np.nansum(a[cleared[g]])) / total, 4) if total else 0.0
        row["signed_share"] = round(float((i >= signed_from).mean()), 4) if n else 0.0
        row["demolished_share"] = round(float((i >= demolished_from).mean()), 4) if n else 0.0
        row["blocked"] = int(blocked[g].sum())
        row["last_activity"] = last.get(v.code) if len(last) else None
        if n and (i == len(pipe.keys) - 1).all():
            row["status"] = "done"
        elif n == 0 or (i == -1).all():
            row["status"] = NOT_STARTED
        else:
            row["status"] = "in_progress"
        rows.append(row)
    return pd.DataFrame(rows)


#: the board table's columns, in order, and the width (px) each gets so that the table fits a
#: 1,400 px screen beside the sidebar (about 900 px) in Chinese and English
BOARD_COLUMNS = {"code": 48, "name": 124, "zone": 56, "parcels": 60, "area_mu": 76, "cleared_share": 100,
                 "signed_share": 80, "demolished_share": 84, "blocked": 64, "last_activity": 92, "status": 88}


def board_rows(board: pd.DataFrame, zone_names: dict, lang: str = "zh") -> pd.DataFrame:
    """:func:`village_progress` as the board shows it: zone names, shares in per cent, dates as dates,
    the status in the language; columns :data:`BOARD_COLUMNS`, no empty cell shown as ``None``."""
    return pd.DataFrame({
        "code": board["code"],
        "name": board["name"],
        "zone": board["zone"].map(lambda z: zone_names.get(z, z or "")),
        "parcels": board["parcels"],
        "area_mu": board["area_mu"],
        "cleared_share": board["cleared_share"] * 100,
        "signed_share": board["signed_share"] * 100,
        "demolished_share": board["demolished_share"] * 100,
        "blocked": board["blocked"],
        # ISO dates as text: sortable, and blank (not "None") where a village has no activity yet
        "last_activity": board["last_activity"].map(lambda d: str(d)[:10] if isinstance(d, str) and d else ""),
        "status": board["status"].map(lambda v: t(f"board.{v}", lang)),
    }, columns=list(BOARD_COLUMNS))
