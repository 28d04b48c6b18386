"""Atomic file publication, shared by every layer that writes results: temp file, fsync, rename, fsync dir.

Readers see either the old file or the complete new one; on any failure the temp file is removed, so no
half-written output is ever left behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def atomic_write(destination: Path, write: Callable[[BinaryIO], None]) -> None:
    """Call ``write(fh)`` on a hidden temp file beside ``destination``, then make it ``destination``."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{destination.name}.", suffix=".partial", dir=destination.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.chmod(0o644)
        tmp.replace(destination)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    fsync_directory(destination.parent)


def fsync_directory(folder: Path) -> None:
    """Make a rename durable (POSIX: the directory entry lives in the folder)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
