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
