"""The floor for bench/interaction.py: a bare Streamlit page with the same parcels in st_folium.

A login form, the parcels as one folium GeoJSON (Leaflet from the app's static/),
a text filter, a click that opens a minimal panel with a button, and a table
page. Nothing of the app's own: what Streamlit and st_folium cost by themselves.
Run by the benchmark (``BARE_STORE`` names the store); not part of the app.
"""
import os

import folium
import shapely
import streamlit as st
from streamlit_folium import st_folium

from gis.store import open_store_at

st.set_page_config(page_title="bare", layout="wide")


@st.cache_resource
def parcels():
    return open_store_at(os.environ["BARE_STORE"]).parcels()


@st.cache_resource
def tree():
    return shapely.STRtree(parcels().geometry.values)


if not st.session_state.get("user"):
    with st.form("login"):
        user = st.text_input("用户名")
        st.text_input("密码", type="password")
        if st.form_submit_button("登录"):
            st.session_state["user"] = user
            st.rerun()
    st.stop()

if st.sidebar.button("旧村改造进度"):
    st.session_state["board"] = True
if st.session_state.pop("board", False):
    st.header("30个旧村改造进度")
    st.dataframe(parcels().drop(columns="geometry").groupby("village").size().rename("地块数"))
    st.stop()

search = st.sidebar.text_input("搜索名称或编号")
df = parcels()
shown = df[df["code"].str.contains(search.strip(), regex=False)] if search.strip() else df
if search.strip():
    st.caption(f"符合条件的地块：{len(shown)} 个")
m = folium.Map(tiles=None, control_scale=True)
m.default_js = [("leaflet", "/app/static/vendor/leaflet/leaflet.js")]
m.default_css = [("leaflet_css", "/app/static/vendor/leaflet/leaflet.css")]
folium.GeoJson(shown[["code", "name", "geometry"]].to_json(), style_function=lambda f: {"weight": 1}).add_to(m)
minx, miny, maxx, maxy = shown.total_bounds
m.fit_bounds([[miny, minx], [maxy, maxx]])
left, right = st.columns([3, 2])
with left:
    out = st_folium(m, height=680, width=None, key="map", returned_objects=["last_clicked"])
click = (out or {}).get("last_clicked")
if click and repr(click) != st.session_state.get("_click"):
    st.session_state["_click"] = repr(click)
    hits = tree().query(shapely.Point(click["lng"], click["lat"]), predicate="intersects")
    st.session_state["sel"] = str(df["code"].iat[int(hits[0])]) if len(hits) else None
code = st.session_state.get("sel")
if code:
    with right:
        row = df[df["code"] == code].iloc[0]
        st.header(row["name"])
        st.write(code, row["stage"])
        if st.button("提交"):
            st.success(f"已将 {code} 推进到下一阶段")
