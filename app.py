"""Renewal Atlas (城市更新一张图): Streamlit entry point, page navigation only."""
import streamlit as st

from ui.common import shown_errors, sidebar, tr

st.set_page_config(page_title="城市更新一张图 Renewal Atlas", page_icon="🗺️", layout="wide")
with shown_errors():
    sidebar()
    page = st.navigation([
        st.Page("ui/map_page.py", title=tr("ui.page_map"), icon=":material/map:", default=True, url_path="map"),
        st.Page("ui/board_page.py", title=tr("ui.page_board"), icon=":material/bar_chart:", url_path="board"),
    ])
    page.run()
