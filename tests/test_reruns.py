"""ui.common.rerun_parts: from a callback, only the named fragments run again; where one is not on
the page, the whole page does (the parcel panel's writes, issue 19)."""
from __future__ import annotations

from streamlit.testing.v1 import AppTest


def _script():
    import streamlit as st

    from ui.common import rerun_parts

    st.session_state["page_runs"] = st.session_state.get("page_runs", 0) + 1

    @st.fragment(key="part")
    def part():
        st.session_state["part_runs"] = st.session_state.get("part_runs", 0) + 1

    part()
    st.button("known", on_click=rerun_parts, args=(("part",),))
    st.button("unknown", on_click=rerun_parts, args=(("part", "elsewhere"),))


def test_a_keyed_rerun_runs_the_fragment_alone_and_an_unknown_key_the_whole_page():
    at = AppTest.from_function(_script).run()
    assert (at.session_state["page_runs"], at.session_state["part_runs"]) == (1, 1)
    next(b for b in at.button if b.label == "known").click().run()
    assert not at.exception
    assert (at.session_state["page_runs"], at.session_state["part_runs"]) == (1, 2)  # the fragment alone
    at.run()
    next(b for b in at.button if b.label == "unknown").click().run()
    assert not at.exception
    assert (at.session_state["page_runs"], at.session_state["part_runs"]) == (3, 4)  # the whole page
