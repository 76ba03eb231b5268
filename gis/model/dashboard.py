"""The district dashboard (总览): the figures a leader reads first.

Totals in 亩 and parcel counts by zone, kind and phase; the progress of each
kind of site (the share of area at or past its pipeline's key stage — the
first stage marked ``past_clearance`` in ``layers/pipelines.toml``, e.g. 清表
for villages and parks, 收储 for ministry land); the blocked parcels by reason;
the latest changes. Computed from tables in memory, so the app, the command
line and the tests share one function and no store is imported here.
"""
from __future__ import annotations

import pandas as pd

from gis.base.i18n import local_time, t
from gis.base.units import M2_PER_HA, M2_PER_MU
from gis.model.pipelines import NOT_STARTED, Catalog


def _mu(m2: float) -> float:
    return round(float(m2) / M2_PER_MU, 1)


def _share(part: float, whole: float) -> float:
    return round(float(part) / float(whole), 4) if whole else 0.0


def key_stage(catalog: Catalog, kind: str) -> str | None:
    """The stage whose reaching counts as the key step of a kind's pipeline: the first ``past_clearance`` one."""
    return next((s.key for s in catalog.pipeline_for(kind).stages if s.past_clearance), None)


def _stage_or_none(value) -> str | None:
    return value if isinstance(value, str) and value and value != NOT_STARTED else None


def _groups(p: pd.DataFrame, column: str, order: list[str], label) -> list[dict]:
    rows = []
    for key in order:
        g = p[p[column] == key]
        rows.append({"key": key, "label": label(key), "parcels": int(len(g)), "area_mu": _mu(g["area_m2"].sum()),
                     "blocked": int(g["blocked"].sum())})
    return rows


def district_dashboard(parcels: pd.DataFrame, events: pd.DataFrame, catalog: Catalog, *,
                       zone_names: dict[str, str] | None = None, display_names: dict[str, str] | None = None,
                       lang: str = "zh", latest: int = 12) -> dict:
    """The dashboard's figures, JSON-ready.

    Args:
        parcels: tracked parcels (code, name, kind, zone, stage, blocked, blocked_reason, area_m2).
        events: stage events (id, parcel, action, from_stage, to_stage, event_date, recorded_at, recorded_by).
        zone_names: ``{zone code: name}`` in ``lang`` (else the codes are shown).
        display_names: ``{username: display name}``; names not in it are shown as recorded.
        latest: how many of the latest changes to list.

    Returns a dict: ``totals`` (parcels, area_mu, area_ha, blocked, blocked_area_mu); ``by_zone``,
    ``by_kind`` and ``by_phase`` (lists of key, label, parcels, area_mu, blocked; phases with their
    colour); ``progress`` (one row per kind present: its key stage, area past it in 亩 and as a share,
    the completed share, blocked parcels); ``blocked_by_reason`` (reason, parcels, area_mu, most first);
    ``latest`` (the newest recorded events: parcel, name, action label, stages, business date, time
    recorded in Beijing time, who by display name).
    """
    zone_names = zone_names or {}
    display_names = display_names or {}
    p = parcels.copy()
    p["area_m2"] = p["area_m2"].astype(float).fillna(0.0)
    p["blocked"] = p["blocked"].fillna(0).astype(bool)
    stages = [_stage_or_none(s) for s in p["stage"]]  # a list: a column would turn None into NaN
    p["phase"] = [catalog.phase_of(k, s).key for k, s in zip(p["kind"], stages)]
    p["started"] = [s is not None for s in stages]
    total = float(p["area_m2"].sum())

    p["zone"] = [z if isinstance(z, str) else "" for z in p["zone"]]
    present = set(p["zone"])  # zones in the order of the zones layer (north, central, south), then any other
    zones = [z for z in zone_names if z in present] + sorted(present - set(zone_names) - {""})
    zones += [""] if "" in present else []
    kinds = [k for k in catalog.kinds if (p["kind"] == k).any()]
    out = {
        "totals": {
            "parcels": int(len(p)),
            "area_mu": _mu(total),
            "area_ha": round(total / M2_PER_HA, 1),
            "blocked": int(p["blocked"].sum()),
            "blocked_area_mu": _mu(p.loc[p["blocked"], "area_m2"].sum()),
        },
        "by_zone": _groups(p, "zone", zones, lambda z: zone_names.get(z) or z or t("dash.no_zone", lang)),
        "by_kind": _groups(p, "kind", kinds, lambda k: catalog.kinds[k].label(lang)),
        "by_phase": [dict(r, color=catalog.phases[r["key"]].color)
                     for r in _groups(p, "phase", list(catalog.phases), lambda k: catalog.phases[k].label(lang))],
    }

    progress = []
    for kind in kinds:
        in_kind = (p["kind"] == kind).to_numpy()
        g = p[in_kind]
        pipe = catalog.pipeline_for(kind)
        key = key_stage(catalog, kind)
        i_key = pipe.index(key) if key else len(pipe.keys)
        index = [pipe.index(s) for s, k in zip(stages, in_kind) if k]
        past = g[[i >= i_key for i in index]]
        done = g[[i == len(pipe.keys) - 1 for i in index]]
        area = float(g["area_m2"].sum())
        progress.append({
            "kind": kind,
            "label": catalog.kinds[kind].label(lang),
            "parcels": int(len(g)),
            "area_mu": _mu(area),
            "key_stage": key,
            "key_stage_label": catalog.stage_label(kind, key, lang) if key else "",
            "past_key_parcels": int(len(past)),
            "past_key_mu": _mu(past["area_m2"].sum()),
            "past_key_share": _share(past["area_m2"].sum(), area),
            "completed_share": _share(done["area_m2"].sum(), area),
            "started_share": _share(g.loc[g["started"], "area_m2"].sum(), area),
            "blocked": int(g["blocked"].sum()),
        })
    out["progress"] = progress

    b = p[p["blocked"]].copy()
    b["reason"] = [r.strip() if isinstance(r, str) and r.strip() else t("dash.no_reason", lang)
                   for r in b["blocked_reason"]]
    reasons = (b.groupby("reason").agg(parcels=("code", "size"), area_m2=("area_m2", "sum"))
               .reset_index().sort_values(["parcels", "area_m2", "reason"], ascending=[False, False, True]))
    out["blocked_by_reason"] = [{"reason": r.reason, "parcels": int(r.parcels), "area_mu": _mu(r.area_m2)}
                                for r in reasons.itertuples(index=False)]

    out["latest"] = latest_changes(events, p, catalog, display_names=display_names, lang=lang, limit=latest)
    return out


def latest_changes(events: pd.DataFrame, parcels: pd.DataFrame, catalog: Catalog, *,
                   display_names: dict[str, str] | None = None, lang: str = "zh", limit: int = 12) -> list[dict]:
    """The newest recorded events, newest first, with labels, Beijing time and display names."""
    display_names = display_names or {}
    if events is None or not len(events) or limit <= 0:
        return []
    ev = events.sort_values(["recorded_at", "id"], ascending=False).head(limit)
    info = parcels.set_index("code")[["name", "kind"]].to_dict("index")
    rows = []
    for e in ev.itertuples(index=False):
        meta = info.get(e.parcel, {})
        kind = meta.get("kind")
        label = ((lambda s: catalog.stage_label(kind, _stage_or_none(s), lang)) if kind in catalog.kinds
                 else (lambda s: _stage_or_none(s) or ""))
        rows.append({
            "parcel": e.parcel,
            "name": meta.get("name") or "",
            "action": e.action,
            "action_label": t(f"ui.actions.{e.action}", lang),
            "from_label": label(e.from_stage),
            "to_label": label(e.to_stage),
            "event_date": e.event_date,
            "recorded_at": local_time(e.recorded_at),
            "by": display_names.get(e.recorded_by) or e.recorded_by or "",
            "reason": e.reason if isinstance(e.reason, str) else "",
        })
    return rows


def dashboard_of(store, lang: str = "zh", latest: int = 12) -> dict:
    """:func:`district_dashboard` of a store (anything with ``parcels``, ``events``, ``names``, ``users``)."""
    zones = {c: (en if lang == "en" and en else zh) for c, (zh, en) in store.names("zones").items()}
    people = {u["username"]: u["display_name"] for u in store.users() if u.get("display_name")}
    return district_dashboard(store.parcels(geometry=False), store.events(), store.catalog,
                              zone_names=zones, display_names=people, lang=lang, latest=latest)
