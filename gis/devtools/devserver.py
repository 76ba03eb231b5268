"""The app as a child process (``streamlit run app.py``) on a working folder, for browser tests and benchmarks.

It imports no Streamlit: it starts one, waits for its health check, and stops it.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from gis.base.settings import ROOT

# settings a developer's shell may carry that would point the child at another store, language or basemap
ISOLATED = ("RENEWAL_STORE", "RENEWAL_LANG", "RENEWAL_DATABASE_URL", "RENEWAL_CONFIG", "RENEWAL_BASEMAP")


def free_port() -> int:
    """A TCP port on localhost that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_app(work: Path, env: dict | None = None, timeout: float = 90):
    """``streamlit run app.py`` with ``RENEWAL_DATA_DIR=work`` (plus ``env``), on a free port of localhost.

    Yields ``{"url", "pid", "log"}`` once ``/_stcore/health`` answers; stops the
    process on the way out. The server's output goes to ``work/streamlit.log``.

    Raises:
        RuntimeError: the server did not answer within ``timeout`` seconds (its log attached).
    """
    work = Path(work)
    port = free_port()
    child_env = dict(os.environ, RENEWAL_DATA_DIR=str(work))
    for key in ISOLATED:
        child_env.pop(key, None)
    child_env.update(env or {})
    log_path = work / "streamlit.log"
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "ui" / "serve.py"), "run", str(ROOT / "app.py"), "--server.port", str(port),
         "--server.headless", "true", "--server.address", "127.0.0.1"],
        cwd=ROOT, env=child_env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + timeout
        while True:
            try:
                if urllib.request.urlopen(url + "/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError("streamlit did not start: " + log_path.read_text()[-3000:]) from None
                time.sleep(0.3)
        yield {"url": url, "pid": proc.pid, "log": log_path}
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
