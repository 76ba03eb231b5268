"""Heavy import work in a child process, with a memory cap and a time limit.

Reading and checking a big file (a million polygons: a minute, gigabytes) in
the app server's own process stalls every other planner's clicks — the work
holds the interpreter lock, and a file that needs more memory than the machine
has would take the server down with it. So the data page hands the read and
the check of a large upload to a child process (a fresh interpreter: none of
the server's threads, sockets or connections, nor its Streamlit page), whose
address space is capped with ``RLIMIT_AS``, which runs at a lower priority
(``nice``) and which is killed past its time limit; the parent gets back the
plan (or the columns) or an ``InputError``. Writing (``commit_import``) stays
in the server: it is one transaction.
"""
from __future__ import annotations

import os
import pickle
import resource
import subprocess
import sys
from pathlib import Path

import gis
from gis.base import errors
from gis.base.errors import InputError, RenewalError
from gis.io import importer
from gis.io.readers import read_layer
from gis.io.uploads import MB, Upload

#: address space a child may use (bytes): room for GDAL, PROJ and a million polygons
MEMORY_LIMIT = 6 * 1024 * MB
#: seconds a child may take
TIME_LIMIT_S = 900
#: the child's scheduling priority below the server's (nice), so that the check takes what the server leaves
NICENESS = 10
#: uploads at least this large are read in a child; smaller ones in the process (a child costs ~2 s to start)
ISOLATE_FROM_BYTES = 16 * MB
# the folder holding the ``gis`` package, so that the child imports the same code as the server
_CODE_ROOT = str(Path(gis.__file__).resolve().parent.parent)


def _child() -> int:
    """The child (``python -m gis.io.isolation``): the work arrives pickled on stdin, its outcome leaves
    pickled on stdout — ("ok", result), ("error", parts of a RenewalError), ("memory", None) or
    ("failed", text). Whatever a library prints goes to stderr, so it cannot spoil the answer."""
    answer = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    fn, args, kwargs, memory_limit = pickle.loads(sys.stdin.buffer.read())  # imports what the work needs
    if memory_limit:  # capped after the imports: the cap is for the file's data
        resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
    try:  # on a busy machine the server's clicks come first
        os.nice(NICENESS)
    except OSError:
        pass
    try:
        outcome = ("ok", fn(*args, **kwargs))
    except RenewalError as e:  # sent as parts: the errors' keyword-only constructor does not pickle
        outcome = ("error", (type(e).__name__, e.key, e.params))
    except MemoryError:
        outcome = ("memory", None)
    except Exception as e:  # anything else: the parent says so without a traceback
        outcome = ("failed", f"{type(e).__name__}: {e}"[:200])
    try:
        data = pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL)
    except MemoryError:
        data = pickle.dumps(("memory", None))
    answer.write(data)
    answer.close()
    return 0


def run_isolated(fn, *args, name: str = "", memory_limit: int | None = MEMORY_LIMIT,
                 time_limit_s: float = TIME_LIMIT_S, **kwargs):
    """``fn(*args, **kwargs)`` in a child process; its result, or its error raised here.

    The child is a fresh interpreter (``python -m gis.io.isolation``), not a fork and not
    multiprocessing's ``spawn``, which would run the parent's main module again — under
    Streamlit, the page that asked. ``fn`` and its arguments must pickle (a module-level
    function, a store, an upload, options).

    Raises:
        InputError: ``import.too_much_memory`` (over ``memory_limit``, or killed by the kernel),
            ``import.too_slow`` (over ``time_limit_s``, the child is killed), ``import.failed``;
            or the error ``fn`` raised.
    """
    payload = pickle.dumps((fn, args, kwargs, memory_limit), protocol=pickle.HIGHEST_PROTOCOL)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (_CODE_ROOT, os.environ.get("PYTHONPATH")) if p))
    child = subprocess.Popen([sys.executable, "-m", "gis.io.isolation"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, env=env, cwd=_CODE_ROOT)
    try:
        out, _ = child.communicate(payload, timeout=time_limit_s)
    except subprocess.TimeoutExpired:
        child.kill()
        child.communicate()
        raise InputError("import.too_slow", name=name, seconds=int(time_limit_s)) from None
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    try:
        status, value = pickle.loads(out)
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError):  # died before answering: killed, out of memory
        status, value = ("memory", None) if child.returncode in (-9, 137) or not out else ("failed", "?")
    if status == "ok":
        return value
    if status == "error":
        cls_name, key, params = value
        cls = getattr(errors, cls_name, InputError)
        raise cls(key, **params)
    if status == "memory":
        raise InputError("import.too_much_memory", name=name, mb=(memory_limit or 0) // MB)
    raise InputError("import.failed", name=name, detail=value)


def _upload_bytes(upload: Upload) -> int:
    return sum(p.stat().st_size for p in upload.folder.rglob("*") if p.is_file())


def _summary(upload: Upload, layer: str | None, encoding: str | None) -> tuple[list[str], list[str]]:
    raw = read_layer(upload, upload.layer(layer), encoding)
    return [str(c) for c in raw.gdf.columns if c != raw.gdf.geometry.name], importer.gcj02_hint(raw)


def _plan(store, upload: Upload, options) -> importer.ImportPlan:
    return importer.prepare_import(store, upload, options)


def layer_summary(upload: Upload, layer: str | None, encoding: str | None,
                  isolate: bool | None = None) -> tuple[list[str], list[str]]:
    """The columns of a layer of ``upload`` (for the field mapping) and its GCJ-02 hint
    (``importer.gcj02_hint``); read in a child when the upload is large."""
    if isolate is None:
        isolate = _upload_bytes(upload) >= ISOLATE_FROM_BYTES
    if not isolate:
        return _summary(upload, layer, encoding)
    return run_isolated(_summary, upload, layer, encoding, name=upload.source_name)


def plan_import(store, upload: Upload, options, isolate: bool | None = None, **limits) -> importer.ImportPlan:
    """``importer.prepare_import`` — in a child process, capped, when the upload is large (or ``isolate``).

    Raises:
        InputError, UnknownCRSError: as ``prepare_import``, and as :func:`run_isolated`.
    """
    if isolate is None:
        isolate = _upload_bytes(upload) >= ISOLATE_FROM_BYTES
    if not isolate:
        return importer.prepare_import(store, upload, options)
    return run_isolated(_plan, store, upload, options, name=upload.source_name, **limits)


if __name__ == "__main__":
    raise SystemExit(_child())
