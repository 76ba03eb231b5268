"""Renewal Atlas (城市更新一张图): Streamlit entry point, page navigation only."""
import streamlit as st

from ui.common import (
    accounts_on,
    cookie_writer,
    current_user,
    keep_widget_state,
    restore_sign_in,
    shown_errors,
    sidebar,
    store,
    tr,
    user_box,
)

st.set_page_config(page_title="城市更新一张图 Renewal Atlas", page_icon="🗺️", layout="wide")
with shown_errors(), store().one_connection():  # one connection for everything this run asks the store
    keep_widget_state()
    restore_sign_in()
    cookie_writer()
    sidebar()
    user = current_user()
    if accounts_on() and user is None:
        pages = [st.Page("ui/login_page.py", title=tr("ui.login"), icon=":material/login:", url_path="login")]
    else:
        user_box()
        pages = [
            # the overview is first in the navigation; the map stays the page a sign-in lands on
            st.Page("ui/dashboard_page.py", title=tr("dash.page"), icon=":material/dashboard:", url_path="overview"),
            st.Page("ui/map_page.py", title=tr("ui.page_map"), icon=":material/map:", default=True, url_path="map"),
            st.Page("ui/board_page.py", title=tr("ui.page_board"), icon=":material/bar_chart:", url_path="board"),
            st.Page("ui/plans_page.py", title=tr("plans.ui_nav"), icon=":material/event_upcoming:", url_path="plans"),
            st.Page("ui/projects_page.py", title=tr("projects_ui.nav"), icon=":material/factory:", url_path="projects"),
            st.Page("ui/my_work_page.py", title=tr("plans.ui_my_work"), icon=":material/task_alt:", url_path="my-work"),
            st.Page("ui/field_page.py", title=tr("field.nav"), icon=":material/my_location:", url_path="field"),
        ]
        pages += [
            st.Page("ui/export_page.py", title=tr("brief.export_title"), icon=":material/picture_as_pdf:",
                    url_path="atlas"),
            st.Page("ui/import_page.py", title=tr("import.nav_title"), icon=":material/upload_file:",
                    url_path="data"),
            st.Page("ui/report_page.py", title=tr("report_ui.nav"), icon=":material/summarize:", url_path="report"),
        ]
        if user is not None and user.role == "admin":
            pages.append(st.Page("ui/audit_page.py", title=tr("ui.page_audit"), icon=":material/history:",
                                 url_path="audit"))
    page = st.navigation(pages)
    page.run()
