"""Atomic file writes: a temp file in the target's folder, flushed to disk, then renamed.

A reader (or a crash, or a full disk) sees either the old file or the complete new one,
never half of one: when writing fails part way (``ENOSPC``: disk full), the temp file is
removed, the exception propagates (naming the target file), and whatever was at the
target before is untouched.
New files get the permissions ``open()`` would give them (``0o666`` minus the umask).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

_fdopen = os.fdopen  # the file object every write goes through
CHUNK = 1 << 20


def _temp_for(path: Path) -> tuple[int, Path]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    return fd, Path(tmp)


def _commit(tmp: Path, path: Path) -> None:
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)


def atomic_write(path: str | Path, data: bytes | str) -> Path:
    """Write ``data`` (str: UTF-8) to ``path`` atomically; returns ``path``."""
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    fd, tmp = _temp_for(path)
    try:
        with _fdopen(fd, "wb") as f:
            view = memoryview(payload)
            for start in range(0, len(view), CHUNK):
                f.write(view[start:start + CHUNK])
            f.flush()
            os.fsync(f.fileno())
        _commit(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.filename is None:
            exc.filename = str(path)  # a failed write() names no file; the message should
        raise
    return path


def atomic_write_with(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Atomically write ``path`` with ``write(tmp)``, a writer that only takes a file name."""
    path = Path(path)
    fd, tmp = _temp_for(path)
    os.close(fd)
    try:
        write(tmp)
        _commit(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.filename in (None, str(tmp)):
            exc.filename = str(path)
        raise
    return path
