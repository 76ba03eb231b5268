"""`renewal serve` is the Streamlit server itself: stopping it stops the server, nothing stays behind."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

from gis.devtools.devserver import ISOLATED, free_port

ROOT = Path(__file__).resolve().parent.parent


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def group_alive(pgid: int) -> bool:
    """Whether any process of the process group ``pgid`` is still there."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@contextmanager
def renewal_serve(store: str, tmp_path: Path):
    """``renewal serve`` on ``store`` and a free port, once its health check answers: ``(proc, port)``.
    It runs in a session of its own: whatever the command starts stays in its process group, where we can
    look; what is left of the group is killed on the way out."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ISOLATED}
    env["RENEWAL_DATA_DIR"] = str(tmp_path)
    log = open(tmp_path / "serve.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "gis.cli", "--store", store, "serve", "--port", str(port)],
                            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
                time.sleep(0.3)
        yield proc, port
    finally:
        if group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
        log.close()


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_to_renewal_serve_stops_streamlit_and_frees_the_port(sig, demo_where, tmp_path):
    with renewal_serve(demo_where, tmp_path) as (proc, port):
        proc.send_signal(sig)
        assert proc.wait(30) in (0, -sig, 128 + sig)
        # the process that was signalled was the server: its group is empty and the port is free at once
        assert not group_alive(proc.pid), "a process of `renewal serve` outlived it"
        assert not _listening(port), f"port {port} still answers after `renewal serve` stopped"


def test_a_kept_alive_connection_gets_its_replies_without_nagles_delay(tmp_path):
    """Streamlit's own server waited ~40 ms for a delayed ACK on every reply of a kept-alive connection (its
    listening socket has protocol 0, so asyncio left Nagle's algorithm on): a map's dozen scripts and layer
    files, fetched one after another, paid it each. `renewal serve` (ui/serve.py) answers at once."""
    import http.client
    import shutil
    import statistics

    demo_where = str(tmp_path / "demo.gpkg")
    shutil.copy(ROOT / "data" / "parcels" / "demo.gpkg", demo_where)
    with renewal_serve(demo_where, tmp_path) as (_, port):
        con = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        times = {}
        for path in ("/_stcore/health", "/app/static/js/renewal-atlas.js"):
            for i in range(12):
                t0 = time.perf_counter()
                con.request("GET", path)
                reply = con.getresponse()
                body = reply.read()
                times.setdefault(path, []).append(time.perf_counter() - t0)
                assert reply.status == 200 and body, (path, reply.status)
        con.close()
    # one connection throughout (kept alive); with the delay every reply after the first took 40–48 ms
    for path, ts in times.items():
        assert statistics.median(ts[1:]) < 0.02, (path, [round(t * 1000, 1) for t in ts])
