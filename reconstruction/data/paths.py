"""Paths named inside a capture stay inside the capture folder.

A capture's camera file names its images (``file_path`` in transforms.json, image names in
a COLMAP model, ``mask_path``, ``ply_file_path``). :func:`safe_path` joins such a name to
the capture folder and refuses names that leave it: absolute paths (``/etc/passwd``),
``..`` that climbs out (``../x.png``), and symlinks whose target is outside the folder.
A symlink loop is refused too (it could only hang or fail later). Links and ``..`` that
stay inside the folder are fine.

Only the name is checked here; the file itself may still be missing (the caller reports
that).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

FIX_OUTSIDE = "copy the file into the capture folder and name it relative to that folder"


class UnsafePathError(ValueError):
    """A name that points outside its capture folder (or into a symlink loop).

    ``str(err)`` is one line: the path as given, why it is refused, the fix.
    """

    def __init__(self, path: str | Path, problem: str, fix: str = FIX_OUTSIDE):
        self.path = str(path)
        self.problem = problem
        self.fix = fix
        super().__init__(f"{self.path}: {problem}. {fix}")


def _resolve(p: Path) -> Path:
    try:
        return Path(os.path.realpath(p))
    except (OSError, RuntimeError) as e:  # RuntimeError: pathlib's symlink loop (< 3.13)
        raise UnsafePathError(p, "is a symlink loop", "replace the link with the file itself") from e


def is_symlink_loop(p: Path) -> bool:
    """True if ``p`` is a symlink that never reaches a real file (``a -> b -> a``)."""
    try:
        os.stat(p)
    except OSError as e:
        return e.errno == errno.ELOOP
    return False


def safe_path(base: str | Path, rel: str | Path, what: str = "file") -> Path:
    """``base / rel``, refused with :class:`UnsafePathError` if it leaves ``base``.

    ``rel`` is a name from a capture file; ``what`` names it in the message ("image",
    "mask"). Returns the joined (not resolved) path, so messages show the user's spelling.
    """
    base = Path(base)
    text = os.fspath(rel)
    if "\x00" in text:
        raise UnsafePathError(repr(text), f"{what} name holds a NUL character", "fix the name")
    p = Path(text)
    if p.is_absolute() or p.drive:
        raise UnsafePathError(
            text,
            f"{what} path is absolute (outside the capture folder {base})",
            f"{FIX_OUTSIDE} (e.g. images/{p.name})",
        )
    joined = base / p
    real_base = _resolve(base)
    real = _resolve(joined)
    if is_symlink_loop(joined):
        raise UnsafePathError(joined, "is a symlink loop", "replace the link with the file itself")
    if real != real_base and real_base not in real.parents:
        why = ("climbs with '..' to" if ".." in p.parts
               else "is a symlink to" if joined.is_symlink() else "resolves to")
        raise UnsafePathError(
            joined, f"{what} path {why} {real}, outside the capture folder {real_base}"
        )
    return joined
