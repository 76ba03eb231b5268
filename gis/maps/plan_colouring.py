"""The map's "计划状态" colouring: each parcel filled by its status against the plan.

``plan_colouring(evaluation, lang)`` is handed to ``build_map(colouring=...)``: the
parcel layers then colour by the ``plan_status`` property instead of the stage's
phase, and the legend lists the statuses (on track, due soon, overdue, stalled,
done, no plan) in the order the colour is decided.
"""
from __future__ import annotations

from gis.base.i18n import t
from gis.model.plans import STATUS_COLORS, Evaluation

#: the legend's order: what needs attention first
LEGEND_ORDER = ("overdue", "stalled", "due_soon", "on_track", "done_late", "done", "no_plan")


def plan_legend(lang: str = "zh") -> dict:
    return {"title": t("plans.legend_title", lang),
            "items": [{"key": s, "label": t(f"plans.status_{s}", lang), "kind": "fill", "fill": STATUS_COLORS[s],
                       "stroke": "#555555"} for s in LEGEND_ORDER]}


def plan_colouring(evaluation: Evaluation, lang: str = "zh") -> dict:
    """``{"field", "values": {code: status}, "colors", "legend"}`` for ``build_map(colouring=...)``."""
    return {"field": "plan_status", "values": evaluation.status_of_parcel(), "default": "no_plan",
            "colors": dict(STATUS_COLORS), "legend": plan_legend(lang), "title": t("plans.ui_colour_plan", lang),
            "labels": {s: t(f"plans.status_{s}", lang) for s in LEGEND_ORDER}}
