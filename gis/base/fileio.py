"""Writing files that concurrent readers (other sessions, the browser) never see half-written.

One mechanism: write to a temporary name in the target's own folder (so the
rename is atomic), then rename it over the target; on any failure the
temporary file is removed and the target is untouched.
"""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

from gis.base.errors import InputError

#: the files SQLite keeps beside a database while it is open: writing over one breaks the store as surely
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def umask() -> int:
    """The process's umask, read without changing it (os.umask would, for a moment, for every thread)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o022


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def check_output(path: Path | str, *, protected=(), suffixes=None) -> Path:
    """Where a command may write its output file, checked before anything is written (README, *Output files*).

    Refused: an empty name; an existing folder, or a name ending in a slash; one of the ``protected`` files
    (the live store) or the files SQLite keeps beside it (``-wal``, ``-shm``, ``-journal``), by identity (a
    link or another spelling of the same file counts); a name whose extension is not one of ``suffixes``
    (when given, lower case with the dot); a folder that does not exist (it is never created); a
    "folder" that is a file; a folder this login cannot write in (tried by creating a temporary file there,
    so a read-only mount or /proc is found too). An existing file is replaced, atomically, by the writer.

    Returns:
        the path, ``~`` expanded.

    Raises:
        InputError: the reason, naming the path (every message in Chinese and English).
    """
    text = str(path)
    if not text.strip():
        raise InputError("outpath.empty")
    out = Path(text).expanduser()
    if out.is_dir() or text.endswith(("/", os.sep)):
        raise InputError("outpath.is_folder", path=text)
    for p in protected:
        if p is None:
            continue
        p = Path(p)
        if _same_file(out, p):
            raise InputError("outpath.onto_store", path=text)
        for base in {p, p.resolve()}:  # SQLite names the side files after the file a link points to
            if any(_same_file(out, base.with_name(base.name + side)) for side in SQLITE_SIDE_FILES):
                raise InputError("outpath.onto_store_side", path=text, store=str(p))
    if suffixes is not None and out.suffix.lower() not in suffixes:
        raise InputError("outpath.bad_suffix", path=text, known=", ".join(suffixes))
    parent = out.parent
    if not parent.is_dir():
        up = parent
        while not up.exists() and up != up.parent:
            up = up.parent
        if up.exists() and not up.is_dir():
            raise InputError("outpath.under_file", path=text, file=str(up))
        raise InputError("outpath.no_folder", path=text, folder=str(parent))
    try:
        fd, probe = tempfile.mkstemp(dir=parent, prefix=f".{out.name}.", suffix=".probe")
    except OSError:
        raise InputError("outpath.unwritable", path=text, folder=str(parent)) from None
    os.close(fd)
    os.unlink(probe)
    return out


@contextmanager
def atomic_path(path: Path | str):
    """A temporary path beside ``path`` for a writer to fill (a tool, GDAL, sqlite); renamed over ``path`` when
    the block ends, removed if it raises. The name keeps ``path``'s suffix, for writers that go by it, and the
    result gets ordinary permissions (mkstemp makes files private).

    Raises:
        OSError: the folder cannot be written to.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part" + path.suffix)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~umask())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write(path: Path | str, write) -> None:
    """``write(f)`` into a binary file that replaces ``path`` only once it is complete."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        write(f)
