"""Concurrent planners, for the concurrency tests and the update benchmark.

Each planner is a separate ``python -m gis.devtools.loadtest`` process (not a
multiprocessing worker, whose start-up depends on the parent's ``__main__``):
it opens the store itself, waits for a start signal so that all begin at once,
does its updates and prints one JSON line with its outcomes and latencies.

    python -m gis.devtools.loadtest WHERE advance CODE[,CODE…] GO_FILE
    python -m gis.devtools.loadtest WHERE race CODE VERSION GO_FILE
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from gis.base.errors import ConflictError, RenewalError
from gis.store.open import open_store_at

STEPS = (("survey", "2025-01-01"), ("listed", "2025-01-15"), ("baseline", "2025-02-01"), ("plan", "2025-02-15"))


def open_store(where: str):
    return open_store_at(where)


def _wait(go: str, timeout: float = 120) -> None:
    end = time.time() + timeout
    while not Path(go).exists():
        if time.time() > end:
            raise SystemExit("no start signal")
        time.sleep(0.01)


def advance_many(store, codes, note="并发测试") -> dict:
    """Every parcel through four stages. Anything but success is reported, never raised."""

    ok, errors, latencies = 0, [], []
    for code in codes:
        for stage, date in STEPS:
            t = time.perf_counter()
            try:
                store.advance(code, stage, date, "admin", note=note)
                ok += 1
                latencies.append(time.perf_counter() - t)
            except RenewalError as e:
                errors.append(e.message("en"))
            except Exception as e:  # e.g. "database is locked": a failure the caller must see
                errors.append(f"{type(e).__name__}: {e}")
    return {"ok": ok, "errors": errors, "latencies": latencies}


def race(store, code, version) -> str:
    try:
        store.advance(code, "survey", "2025-01-01", "admin", expected_version=version)
        return "ok"
    except ConflictError:
        return "conflict"
    except Exception as e:
        return f"{type(e).__name__}: {e}"


def run_planners(where: str, jobs: list[list[str]], go_dir: Path, timeout: float = 600) -> list[dict | str]:
    """Start one process per job (``["advance", "A,B"]`` or ``["race", code, version]``), start them
    together, and collect their JSON results."""
    go = Path(go_dir) / f"go-{time.monotonic_ns()}"
    procs = [subprocess.Popen([sys.executable, "-m", "gis.devtools.loadtest", where, *job, str(go)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for job in jobs]
    time.sleep(0.2)
    go.touch()
    results = []
    for p in procs:
        out, err = p.communicate(timeout=timeout)
        if p.returncode:
            raise RuntimeError(f"planner process failed ({p.returncode}): {err.strip()[-500:]}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def main(argv: list[str]) -> None:
    where, what, *rest = argv
    store = open_store(where)
    if what == "advance":
        codes, go = rest[0].split(","), rest[1]
        _wait(go)
        print(json.dumps(advance_many(store, codes), ensure_ascii=False))
    elif what == "race":
        code, version, go = rest[0], int(rest[1]), rest[2]
        _wait(go)
        print(json.dumps(race(store, code, version)))
    else:
        raise SystemExit(f"unknown job {what}")


if __name__ == "__main__":
    main(sys.argv[1:])
