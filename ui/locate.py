""""Where am I": the browser's position for the field page (a components-v2 widget whose JavaScript is
``static/js/field-locate.js``: one tap, ``navigator.geolocation``, the position back to Python).

The last position is kept in ``st.session_state["field_here"]`` (``{lon, lat, accuracy, at}`` or
``{error, detail}``), which is also how a test puts the phone somewhere.
"""
from __future__ import annotations

import streamlit as st

from gis.maps.mapview import STATIC_DIR
from ui.common import tr

HERE = "field_here"
# registered once per process (a second registration under the same name only logs a warning)
_LOCATE = st.components.v2.component(
    "renewal_atlas.locate",
    html="",
    js=(STATIC_DIR / "js" / "field-locate.js").read_text(encoding="utf-8"),
    css=(STATIC_DIR / "css" / "field-locate.css").read_text(encoding="utf-8"),
)


def where_am_i(key: str = "field-locate") -> dict | None:
    """The button, and the last position the browser gave (or why it gave none); None before a tap."""
    result = _LOCATE(data={"labels": {"locate": tr("field.locate"), "locating": tr("field.locating")}},
                     key=key, on_position_change=lambda: None, height=60)
    pos = getattr(result, "position", None) if result is not None else None
    if isinstance(pos, dict) and pos.get("at") != st.session_state.get("_field_here_at"):
        st.session_state["_field_here_at"] = pos.get("at")
        st.session_state[HERE] = pos
    return st.session_state.get(HERE)


def position_message(pos: dict | None) -> tuple[str, str] | None:
    """``(level, text)`` to show for a position: ``caption`` where it is, ``warning`` why there is none."""
    if not pos:
        return None
    if "lon" in pos and "lat" in pos:
        acc = pos.get("accuracy")
        return "caption", tr("field.located", lat=f"{float(pos['lat']):.5f}", lon=f"{float(pos['lon']):.5f}",
                             accuracy=f"{float(acc):.0f}" if acc is not None else "?")
    err = pos.get("error")
    if err == "denied":
        return "warning", tr("field.locate_denied")
    if err == "insecure":
        return "warning", tr("field.locate_insecure")
    return "warning", tr("field.locate_unavailable", detail=str(pos.get("detail") or err or ""))
