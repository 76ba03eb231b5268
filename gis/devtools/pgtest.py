"""A throwaway PostgreSQL/PostGIS cluster in a temporary folder, for tests and
benchmarks: ``initdb`` + ``pg_ctl`` from Debian's packages, listening on a
Unix socket and a free loopback port, removed on exit. Root cannot run the
server, so it runs as the ``postgres`` system user when started as root.
"""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


class PostgresUnavailable(RuntimeError):
    pass


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise PostgresUnavailable(
            f"{name} not found: install Debian's postgresql and postgresql-*-postgis-3 (bash .ci/install)")
    return found[-1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TempPostgres:
    """``with TempPostgres() as pg: pg.url`` — a fresh cluster with a PostGIS-enabled database."""

    def __init__(self, dbname: str = "renewal"):
        self.dbname = dbname
        self.port = _free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="renewal-pg-"))
        self.data = self.dir / "data"
        self._as_postgres = os.geteuid() == 0

    def _run(self, *cmd, check=True):
        if self._as_postgres:
            cmd = ("runuser", "-u", "postgres", "--") + cmd
        return subprocess.run(cmd, check=check, capture_output=True, text=True)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{self.dbname}"

    def start(self) -> "TempPostgres":
        initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
        if self._as_postgres:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run(initdb, "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C.UTF-8")
        opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60"
        self._run(pg_ctl, "-D", str(self.data), "-o", opts, "-l", str(self.dir / "log"), "-w", "start")
        psql = _bin("psql")
        self._run(psql, "-h", str(self.dir), "-p", str(self.port), "-U", "postgres", "-c",
                  f"CREATE DATABASE {self.dbname}")
        out = self._run(psql, "-h", str(self.dir), "-p", str(self.port), "-U", "postgres", "-d", self.dbname,
                        "-c", "CREATE EXTENSION postgis", check=False)
        if out.returncode:
            self.stop()
            raise PostgresUnavailable("PostGIS is not installed: " + out.stderr.strip())
        return self

    def stop(self) -> None:
        try:
            self._run(_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop", check=False)
        finally:
            time.sleep(0.2)
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
