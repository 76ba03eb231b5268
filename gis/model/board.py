"""The village board: how far each of the old villages has come.

"成熟一个、启动一个，干一个、成一个": the board shows, per village, its parcels
and area per stage phase, the share of area past site clearance, the signing
and demolition rates, the last activity and the blocked parcels.
"""
from __future__ import annotations

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

    p = parcels[parcels["village"].isin(villages["code"])].copy()
    stage = [s if isinstance(s, str) and s else None for s in p["stage"]]
    p["phase"] = [catalog.phase_of("village", s).key for s in stage]
    p["i"] = [idx.get(s, -1) if s else -1 for s in stage]
    p["cleared"] = p["stage"].isin(past_clear)
    p["area_m2"] = p["area_m2"].astype(float)
    last = (events.merge(p[["code", "village"]], left_on="parcel", right_on="code")
            .groupby("village")["event_date"].max()) if len(events) else pd.Series(dtype=str)

    rows = []
    for v in villages.sort_values("code").itertuples():
        g = p[p["village"] == v.code]
        total = float(g["area_m2"].sum())
        row = {
            "code": v.code,
            "name": v.name_en if lang == "en" and getattr(v, "name_en", None) else v.name,
            "zone": v.zone,
            "parcels": len(g),
            "area_m2": round(total, 1),
            "area_mu": round(total / M2_PER_MU, 1),
            "area_ha": round(total / M2_PER_HA, 2),
        }
        for ph in catalog.phases:
            sel = g["phase"] == ph
            row[f"phase_{ph}"] = int(sel.sum())
            row[f"area_{ph}"] = round(float(g.loc[sel, "area_m2"].sum()), 1)
        row["cleared_share"] = round(float(g.loc[g["cleared"], "area_m2"].sum()) / total, 4) if total else 0.0
        row["signed_share"] = round(float((g["i"] >= signed_from).mean()), 4) if len(g) else 0.0
        row["demolished_share"] = round(float((g["i"] >= demolished_from).mean()), 4) if len(g) else 0.0
        row["blocked"] = int(g["blocked"].astype(bool).sum())
        row["last_activity"] = last.get(v.code) if len(last) else None
        if len(g) and (g["i"] == len(pipe.keys) - 1).all():
            row["status"] = "done"
        elif len(g) == 0 or (g["i"] == -1).all():
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
