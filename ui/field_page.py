"""The field page for the phone (现场核查, issue 17 item 4): one column, thumb-sized targets.

Where am I (the browser's location), the parcels around me nearest first with their distance, a small
map of them, the chosen parcel's facts and next stage; then its photos and documents, an upload of
several photos at once (each with an idempotency key: a retried upload is stored once), a site visit
with a note, and the advance or the block with the evidence attached. Every write goes to the store,
which checks permissions and the stage's evidence rule; errors are shown in the user's language."""
from __future__ import annotations

import streamlit as st
from streamlit_folium import st_folium

from gis.base.units import format_area
from gis.maps.fieldmap import field_map
from gis.maps.mapview import STATIC_DIR, selection_group
from gis.model.spatial import ParcelIndex, compass_point, fit_bounds, nearest_parcels
from ui import evidence_widgets as ev
from ui.common import current_parcels, current_user, lang, plain, shown_errors, store, tr
from ui.locate import position_message, where_am_i

FIELD_CSS = STATIC_DIR / "css" / "field.css"
CHOSEN = "field_code"
NEAR_N = 6
NEAR_MAX_M = 5000.0
MAP_KEY = "field-map"


def _distance(m: float) -> str:
    return tr("field.metres", m=f"{m:.0f}") if m < 1000 else tr("field.kilometres", km=f"{m / 1000:.1f}")


def _where(row) -> str:
    if row["inside"]:
        return tr("field.inside")
    point = compass_point(row["bearing"])
    return tr("field.away", distance=_distance(row["distance_m"]), direction=tr(f"field.compass.{point}") if point else "")


def _choose(code: str) -> None:
    st.session_state[CHOSEN] = code


def _pick_list(rows, key: str, where=None) -> None:
    """One wide button per parcel: code, name and (around me) how far and which way."""
    for _, row in rows.iterrows():
        text = f"**{row['code']}** {row['name'] or ''}"
        if where is not None:
            text += f"  \n{where(row)}"
        st.button(text, key=f"{key}-{row['code']}", on_click=_choose, args=(row["code"],), width="stretch",
                  type="primary" if row["code"] == st.session_state.get(CHOSEN) else "secondary")


def _find(parcels) -> None:
    """By code or name, for a phone without a location (denied, no HTTPS) or a parcel farther away."""
    text = st.text_input(tr("field.find"), key="field-find")
    if text.strip():
        found = store().filter(parcels, search=text).head(NEAR_N)
        if len(found):
            _pick_list(found, "find")
        else:
            st.caption(tr("field.find_none", text=plain(text)))


def _map(parcels, near, here) -> None:
    """The parcels around me on a small map, my position, the chosen one outlined; a tap chooses a parcel."""
    shown = parcels[parcels["code"].isin(near["code"])]
    chosen = st.session_state.get(CHOSEN)
    bounds = fit_bounds(shown, pad=0.15)
    out = st_folium(field_map(shown, store().catalog, lang(), here=(here["lon"], here["lat"], here.get("accuracy")),
                              bounds=bounds, photos=ev.photo_points(bounds), demo=store().is_demo),
                    height=320, width=None, key=MAP_KEY,
                    feature_group_to_add=[selection_group(shown[shown["code"] == chosen], lang=lang())],
                    returned_objects=["last_clicked"])
    click = (out or {}).get("last_clicked")
    if click and repr(click) != st.session_state.get("_field_click"):
        st.session_state["_field_click"] = repr(click)
        hit = ParcelIndex(shown).at(float(click["lng"]), float(click["lat"]))
        if hit and hit != chosen:
            st.session_state[CHOSEN] = hit
            st.rerun()


def _facts(p: dict) -> None:
    rows = [
        (tr("ui.code"), p["code"]),
        (tr("ui.kind"), p["kind_label"]),
        (tr("ui.village"), p["village_name"] or p["park_name"]),
        (tr("ui.area"), format_area(p["area_m2"], lang())),
        (tr("ui.current_stage"), p["stage_label"] + (tr("ux.paren", text=p["stage_date"]) if p["stage_date"] else "")),
        (tr("ui.next_stage"), p["next_stage_label"] or tr("ui.finished")),
        (tr("ui.unit"), p["unit"]),
    ]
    st.markdown("  \n".join(f"**{k}**{tr('ux.sep')}{plain(v)}" for k, v in rows if v))
    if p["blocked"]:
        st.warning(f"{tr('ui.blocked')}{tr('ux.sep')}{plain(p['blocked_reason'] or '')}")


def _chosen(code: str) -> None:
    s = store()
    p = s.parcel(code, lang())
    st.subheader(f"{tr('field.chosen')}{tr('ux.sep')}{plain(p['name'])}")
    _facts(p)
    need = ev.stage_evidence(p["kind"], p["next_stage"])
    if need:
        st.info(tr("field.next_needs", stage=plain(p["next_stage_label"]), evidence=tr(f"field.evidence.{need}")))
    ev.gallery(code, editor=False)
    user = current_user()
    if not s.may_edit(code, user.username if user else None):
        st.info(tr("field.read_only"))
        return
    ev.field_actions(p)


def page() -> None:
    st.html(f"<style>{FIELD_CSS.read_text(encoding='utf-8')}</style>")
    ev.page_styles()
    st.title(tr("field.title"))
    notice = st.container()  # always there: a message coming and going does not move (remount) the map below
    if "flash" in st.session_state:
        notice.success(st.session_state.pop("flash"))
    here = where_am_i()
    shown = position_message(here)
    if shown:
        level, text = shown
        (st.caption if level == "caption" else st.warning)(plain(text) if level == "warning" else text)
    parcels = current_parcels()
    if here and "lon" in here:
        near = nearest_parcels(parcels, float(here["lon"]), float(here["lat"]), n=NEAR_N, max_m=NEAR_MAX_M)
        if len(near):
            _map(parcels, near, here)
            # once a parcel is chosen the list folds away: its facts and forms come right under the map
            chosen = st.session_state.get(CHOSEN)
            box = st.expander(tr("field.nearby"), expanded=False) if chosen else st.container()
            with box:
                if not chosen:
                    st.subheader(tr("field.nearby"))
                _pick_list(near, "near", where=_where)
        else:
            st.caption(tr("field.nearby_none", km=f"{NEAR_MAX_M / 1000:.0f}"))
    _find(parcels)
    code = st.session_state.get(CHOSEN)
    if code:
        _chosen(code)
    else:
        st.caption(tr("field.choose_hint"))


with shown_errors():
    page()
