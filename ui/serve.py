"""``python ui/serve.py run app.py …``: Streamlit's command line, with its server's Nagle delay taken out.

Streamlit 1.67 serves over uvicorn from a listening socket it binds itself as ``socket.socket(family)``,
protocol 0. asyncio turns Nagle's algorithm off (TCP_NODELAY) only on connections whose protocol is
``IPPROTO_TCP``, so on every kept-alive connection a reply's second write waited for the browser's
delayed ACK: 41–48 ms per request against 0.3 ms from uvicorn's own socket (measured, issue 19). The
map's iframe loads its scripts and its layers' files one after another, so a new map paid that a dozen
times (≈0.6 s of a login). Linux hands TCP_NODELAY from a listening socket to the connections it accepts:
setting it once on the listening socket is enough. Should Streamlit's server change, Streamlit runs as is.

``renewal serve`` and the tests' and benchmarks' servers (``gis.devtools.devserver``) start the app with
this file instead of ``python -m streamlit``; the command line is Streamlit's own.
"""
from __future__ import annotations

import os
import socket
import sys


def _without_nagle() -> None:
    try:
        from streamlit.web.server.starlette import starlette_server as server
    except ImportError:  # another Streamlit: its server as it is
        return
    bind = getattr(server, "_bind_socket", None)
    if bind is None or getattr(bind, "_ratlas_nodelay", False):
        return

    def bind_socket(*args, **kwargs):
        sock = bind(*args, **kwargs)
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    bind_socket._ratlas_nodelay = True
    server._bind_socket = bind_socket


if __name__ == "__main__":
    if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
        sys.path[0] = os.getcwd()  # as ``python -m streamlit`` has it: ui/'s modules are not top-level names
    _without_nagle()
    from streamlit.web.cli import main

    main(prog_name="streamlit")  # the same command line as ``python -m streamlit``
