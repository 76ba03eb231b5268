"""What every page shares: settings, the store, cached data, language, the
error edge and the sidebar. The only place, with the pages, that imports
streamlit; everything it caches is computed by ``gis`` functions."""
from __future__ import annotations

import re
import threading
from contextlib import contextmanager

import streamlit as st
from streamlit.errors import StreamlitAPIException

from gis.auth import sessions
from gis.base import clock
from gis.base.errors import RenewalError
from gis.base.i18n import LANGUAGES, t
from gis.base.proxies import client_address
from gis.base.settings import Settings
from gis.model.board import village_progress
from gis.model.dashboard import dashboard_of
from gis.model.search import SearchIndexes, village_names
from gis.model.spatial import ParcelIndex
from gis.store import Store, open_store
from gis.store.live import LiveParcels

LANG_NAMES = {"zh": "中文", "en": "English"}


# --------------------------------------------------------------- language
def lang() -> str:
    return st.session_state.get("lang") or settings().lang


def tr(key: str, **params) -> str:
    return t(key, lang(), **params)


_MD_SPECIAL = set("\\`*_{}[]()<>#+-.!|~$:")


# Streamlit's markdown (GFM) turns bare "https://…", "www.…" and "name@host.cn" into live links even when
# every markup character is escaped; an invisible word joiner after the scheme or "www", and before "@",
# breaks each pattern while the text reads (and copies) the same.
_WORD_JOINER = "\u2060"
_AUTOLINK_START = re.compile(r"(?i)(https?|ftps?|mailto|xmpp|www)(?=[:.])|(?=@)")


def plain(text) -> str:
    """User data made safe for Streamlit's markdown: every markup character escaped, nothing made a link."""
    text = _AUTOLINK_START.sub(lambda m: (m.group(1) or "") + _WORD_JOINER, str(text or ""))
    return "".join("\\" + c if c in _MD_SPECIAL else c for c in text)


@contextmanager
def shown_errors():
    """The one edge where project errors become a message in the user's language.

    Streamlit's own control flow (rerun, page switch) passes through untouched.
    """
    try:
        yield
    except RenewalError as e:
        st.error(e.message(lang()))


def rerun_parts(keys) -> None:
    """From a widget callback: rerun only the page's fragments named ``keys`` (``@st.fragment(key=...)``),
    or the whole page where one of them is not on it (the panel on another page) or outside a callback."""
    try:
        st.rerun(list(keys))
    except StreamlitAPIException:  # an unknown key, or not in a callback: Streamlit refuses a keyed rerun
        st.rerun()


# --------------------------------------------------------------- resources
@st.cache_resource(show_spinner=False)
def settings() -> Settings:
    s = Settings.load()
    clock.configure(s.timezone)  # the office's day for every date the pages and the core use
    return s


@st.cache_resource(show_spinner=False)
def store() -> Store:
    return open_store(settings())


def data_version() -> int:
    return store().data_version()


# Caches key on the store path and its data version: a click or a filter
# change reuses them; a stage update (which bumps the version) refreshes them.
@st.cache_resource(max_entries=2, show_spinner=False)
def context_layers(path: str) -> dict:
    return store().context()


@st.cache_resource(show_spinner=False)
def live_parcels(path: str) -> LiveParcels:
    """The parcels in memory for this app process: a write re-reads only what changed."""
    return LiveParcels(store())


@st.cache_resource(max_entries=4, show_spinner=False)
def all_parcels(path: str, version: int):
    return live_parcels(path).current(version)[0]


@st.cache_resource(max_entries=4, show_spinner=False)
def parcel_index(path: str, version: int) -> ParcelIndex:
    return live_parcels(path).current(version)[1]


@st.cache_data(max_entries=8, show_spinner=False)
def board_table(path: str, version: int, language: str):
    s = store()
    return village_progress(s.parcels(kind="village", geometry=False), s.layer("villages"),
                            s.events(), s.catalog, language)


@st.cache_data(max_entries=8, show_spinner=False)
def dashboard_figures(path: str, version: int, language: str) -> dict:
    return dashboard_of(store(), language)


@st.cache_resource(show_spinner=False)
def _search_indexes(path: str, language: str) -> tuple[threading.Lock, SearchIndexes]:
    return threading.Lock(), SearchIndexes()


@st.cache_resource(max_entries=4, show_spinner=False)
def search_index(path: str, version: int, language: str) -> list:
    """The quick find's entries (``gis.model.search``): villages, units, parcels; a stage update keeps them."""
    lock, indexes = _search_indexes(path, language)
    with lock:
        return indexes.of(all_parcels(path, version), village_names(store(), language))


def current_parcels():
    s = store()
    return all_parcels(s.location, s.data_version())


@st.cache_resource(max_entries=4, show_spinner=False)
def _code_rows(path: str, version: int) -> dict[str, int]:
    return {c: i for i, c in enumerate(all_parcels(path, version)["code"])}


def parcel_rows(codes):
    """The current parcels' rows of ``codes`` (unknown codes left out), by a cached code → row map instead
    of comparing every code on every run."""
    s = store()
    at = _code_rows(s.location, s.data_version())
    return current_parcels().iloc[[at[c] for c in codes if c in at]]


# --------------------------------------------------------------- sidebar
def sidebar() -> None:
    with st.sidebar:
        st.radio(
            t("ux.language", lang()),  # 语言 / Language; in English once
            LANGUAGES,
            format_func=LANG_NAMES.get,
            key="lang",
            horizontal=True,
            index=LANGUAGES.index(settings().lang),
        )
        if store().is_demo:
            st.caption("⚠️ " + tr("ui.demo_notice"))
        st.caption(settings().classification)


# --------------------------------------------------------------- filters
def _choice(label: str, options: list, fmt, key: str, on_change=None):
    if st.session_state.get(key) not in options:
        st.session_state.pop(key, None)
    return st.selectbox(label, options, format_func=lambda v: tr("ui.all") if v == "" else fmt(v), key=key,
                        on_change=on_change)


# widgets whose values a planner expects to find again after visiting another page
KEPT_WIDGETS = ("f_zone", "f_kind", "f_village", "f_stage", "f_search", "bm_kind", "bm_path", "bm_url", "bm_attr",
                "as_of_month", "as_of_compare", "as_of_since")


def keep_widget_state() -> None:
    """Streamlit drops a widget's value on a page that does not draw it (the board has no filters):
    reassigning it on every run, before any page draws, keeps it for when the widget comes back."""
    for key in KEPT_WIDGETS:
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]


def sidebar_filters():
    """Zone, kind, village, stage and text filters in the sidebar.

    Returns their result (:func:`filter_result`): the filtered parcels (from the cached table:
    nothing is re-read) and their codes as a tuple, or None for the codes when no filter is set.
    """
    s = store()
    if "goto_village" in st.session_state:  # set by the village board
        st.session_state["f_village"] = st.session_state.pop("goto_village")
        st.session_state.pop("f_zone", None)
    cat = s.catalog
    zones, villages = s.attributes("zones"), s.attributes("villages")
    name = (lambda r: r.get("name_en") or r["name"]) if lang() == "en" else (lambda r: r["name"])
    with st.sidebar:
        st.subheader(tr("ui.filters"))
        zone = _choice(tr("ui.zone"), [""] + sorted(zones), lambda c: name(zones[c]), "f_zone")
        kind = _choice(tr("ui.kind"), [""] + list(cat.kinds), lambda k: cat.kinds[k].label(lang()), "f_kind")
        vcodes = sorted(c for c, r in villages.items() if not zone or r.get("zone") == zone)
        village = _choice(tr("ui.village"), [""] + vcodes, lambda c: name(villages[c]), "f_village")
        if kind or village:
            pipe = cat.pipeline_for(kind or "village")
            stages = ["not_started"] + pipe.keys
            label = lambda k: cat.stage_label(kind or "village", k, lang())
        else:
            stages = ["not_started"] + sorted({k for p in cat.pipelines.values() for k in p.keys})
            first = {k: p for p in cat.pipelines.values() for k in reversed(p.keys)}
            label = lambda k: cat.stage_label("village", None, lang()) if k == "not_started" else first[k].stage(k).label(lang())
        _choice(tr("ui.stage"), [""] + stages, label, "f_stage", on_change=_rerun_views)
        st.text_input(tr("ui.search"), key="f_search", on_change=_rerun_views)
    return filter_result()


# the keyed fragments of the map page (ui/map_page.py) that show the parcels and take the filter's result
# from the state (``filter_result``): the map with its panel, and what is below the map (the table, a
# village's charts). A new search or stage, an advance or a block reruns these two only (issue 19).
MAP_VIEWS = ("map", "below")


def _rerun_views() -> None:
    """A new search text or stage: no other widget of the sidebar changes with them (a zone narrows the
    villages, a kind or village the stages), so only the map and the table run again, not the sidebar and
    its quick find (issue 19)."""
    rerun_parts(MAP_VIEWS)


# Of these, only the stage reads what a write to one parcel changes (a stage update): the panel's writes
# rerun the list below the map for it (ui.parcel_panel._rerun_after_write); a filter on another changing
# field must be named there too.
FILTER_WIDGETS = ("f_zone", "f_kind", "f_village", "f_stage", "f_search")


def filter_result():
    """The sidebar filters' values (their widgets' state) applied to the parcels of the current data
    version: ``(filtered, codes)``, codes None when no filter is set. A fragment that runs alone after a
    write calls this rather than taking the result of the last full run as its argument."""
    s = store()
    values = tuple(st.session_state.get(k) or "" for k in FILTER_WIDGETS)
    if not any((*values[:4], values[4].strip())):
        return current_parcels(), None
    return _filtered(s.location, s.data_version(), *values)


@st.cache_resource(max_entries=16, show_spinner=False)
def _filtered(path: str, version: int, zone: str, kind: str, village: str, stage: str, search: str):
    """A filter's result at a data version, shared by the page's fragments (an advance runs two) and
    sessions; never modified by a page."""
    s = store()
    filtered = s.filter(all_parcels(path, version), kind=kind or None, zone=zone or None,
                        village=village or None, stage=stage or None, search=search or None)
    return filtered, tuple(filtered["code"])


# --------------------------------------------------------------- accounts
def accounts_on() -> bool:
    return store().accounts_enabled()


def current_user():
    """The logged-in User, or None (not logged in, or a store without accounts)."""
    name = st.session_state.get("user")
    return store().user(name) if name else None


def author_field(key: str) -> str:
    """Who records a change: the logged-in user where the store has accounts, else a name typed in."""
    user = current_user()
    if user is not None:
        st.caption(f"{tr('ui.by')}{tr('ux.sep')}{plain(user.label)}")
        return user.username
    value = st.text_input(tr("ui.by"), value=st.session_state.get("author", settings().user), key=key)
    st.session_state["author"] = value
    return value


def sign_in(username: str) -> None:
    """Sign ``username`` in for this session and, through a cookie (``gis.auth.sessions``), for a reload."""
    st.session_state["user"] = username
    st.session_state.pop("signed_out", None)
    token = store().issue_session(username)
    if token is not None:
        st.session_state["session_token"] = token  # what sign-out revokes
        st.session_state["cookie_js"] = sessions.cookie_script(token)


def restore_sign_in() -> None:
    """After a reload the session is new: a valid sign-in cookie signs its planner in again."""
    if st.session_state.get("user") or st.session_state.get("signed_out") or st.session_state.get("cookie_seen"):
        return
    st.session_state["cookie_seen"] = True  # the session's cookies are those of its first request: look once
    token = st.context.cookies.get(sessions.COOKIE)
    if token and accounts_on():
        name = store().verify_session(token)
        if name:
            st.session_state["user"] = name
            st.session_state["session_token"] = token


def login_client() -> str:
    """Who is knocking, for the login throttle: the connection's address (``localhost`` on this machine),
    or behind one of the office's trusted reverse proxies the address it forwarded (gis/base/proxies.py)."""
    try:
        ip = st.context.ip_address
    except AttributeError:  # an older Streamlit
        ip = None
    peer = ip if isinstance(ip, str) and ip else None  # None on this machine; not a str under AppTest
    try:
        forwarded = st.context.headers.get("X-Forwarded-For")
    except AttributeError:
        forwarded = None
    return client_address(peer, forwarded if isinstance(forwarded, str) else None, settings().trusted_networks)


def cookie_writer() -> None:
    """Sets or clears the sign-in cookie (a zero-height component whose script writes the page's cookie)."""
    js = st.session_state.get("cookie_js")
    if js:
        import streamlit.components.v1 as components

        with st.sidebar:
            components.html(js, height=0)


def user_box() -> None:
    """The sidebar's signed-in user with a log-out button."""
    user = current_user()
    if user is None:
        return
    with st.sidebar:
        st.caption(tr("ui.signed_in", user=plain(user.label), role=tr(f"ui.roles.{user.role}")))
        if st.button(tr("ui.logout"), key="logout"):
            st.session_state.pop("user", None)
            st.session_state["signed_out"] = True  # this session still carries the old cookie: ignore it
            # and end the token on the server: a copied cookie no longer signs in, on any app server
            store().end_session(st.session_state.pop("session_token", None) or st.context.cookies.get(sessions.COOKIE))
            st.session_state["cookie_js"] = sessions.cookie_script(None)
            st.rerun()
