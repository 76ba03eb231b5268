"""gis.model.board.village_progress: each village's row is what its own parcels add up to."""
from __future__ import annotations

import pandas as pd

from gis.model.board import village_progress
from gis.store.open import open_store_at


def _row_reference(g: pd.DataFrame, pipe, catalog, last) -> dict:
    """One village's numbers from a frame of its parcels, as the board first computed them."""
    idx = {k: i for i, k in enumerate(pipe.keys)}
    i = g["stage"].map(lambda s: idx.get(s, -1) if isinstance(s, str) and s else -1)
    phase = g["stage"].map(lambda s: catalog.phase_of("village", s if isinstance(s, str) and s else None).key)
    area = g["area_m2"].astype(float)
    total = float(area.sum())
    past = {s.key for s in pipe.stages if s.past_clearance}
    row = {"parcels": len(g), "area_m2": round(total, 1),
           "cleared_share": round(float(area[g["stage"].isin(past)].sum()) / total, 4) if total else 0.0,
           "signed_share": round(float((i >= idx["signing"]).mean()), 4) if len(g) else 0.0,
           "demolished_share": round(float((i >= idx["demolition"] + 1).mean()), 4) if len(g) else 0.0,
           "blocked": int(g["blocked"].astype(bool).sum()), "last_activity": last}
    for ph in catalog.phases:
        row[f"phase_{ph}"] = int((phase == ph).sum())
        row[f"area_{ph}"] = round(float(area[phase == ph].sum()), 1)
    return row


def test_each_village_row_adds_up_its_own_parcels(demo_where):
    s = open_store_at(demo_where)
    parcels, villages, events = s.parcels(kind="village", geometry=False), s.layer("villages"), s.events()
    board = village_progress(parcels, villages, events, s.catalog, "zh")
    assert list(board["code"]) == sorted(villages["code"]) and len(board) == 30
    pipe = s.catalog.pipeline_for("village")
    for row in board.to_dict("records"):
        g = parcels[parcels["village"] == row["code"]]
        mine = events[events["parcel"].isin(g["code"])]["event_date"]
        want = _row_reference(g, pipe, s.catalog, mine.max() if len(mine) else None)
        got_last, want_last = row.pop("last_activity"), want.pop("last_activity")
        assert (pd.isna(got_last) and pd.isna(want_last)) or got_last == want_last, row["code"]  # none yet: blank
        assert {k: row[k] for k in want} == want, row["code"]
    assert board["parcels"].sum() == len(parcels[parcels["village"].isin(villages["code"])])
    assert set(board["status"]) <= {"done", "in_progress", "not_started"}
