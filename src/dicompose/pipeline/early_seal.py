"""Read a packed launch's outputs back while it still runs, task by task, so its seal does not wait for them.

Sealing a task means hashing every output and reading its identifiers (for the record, the cache and the
audit log) and fsyncing it. Done after the launch ends, that work sat between a step's last file and its
dependants' start, with one core idle (cohort a of bench/cohort.py: 0.3 s per step). The pack contract says a
tool writes a task's result file after its outputs, so once that file is there the task's outputs are
final: they are read (and fsynced) on the seal threads while the tool goes on with the next task.

Nothing read early is trusted blindly: the seal after the launch uses a file's early facts only if its
inode, size, mtime and ctime are unchanged (a tool that writes after its result file gets its file read
again; a container's task folder is handed back to the caller first, its owner change being part of
that check), and it decides everything else (status, problems, which outputs count) as before.
"""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, Future
from pathlib import Path
from typing import Any

from dicompose.tools.manifest import RESULT_NAME

_POLL_S = 0.05
Facts = tuple[str, dict[str, str | None]]  # (sha256, identifiers) as dicom.identifiers.file_facts gives them


def stamp(st: os.stat_result) -> tuple[int, int, int, int, int]:
    """What must not change between the early read and the seal (ctime: any write or chmod moves it)."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class EarlySeal:
    """Watches the task folders of one launch; :meth:`facts` and :meth:`synced` answer for unchanged files."""

    def __init__(
        self,
        outs: Iterable[Path],
        pool: Executor,
        read: Callable[[Path], Facts],
        take_back: Callable[[Path], None] | None = None,
    ) -> None:
        self._waiting = list(outs)
        self._pool, self._read, self._take_back = pool, read, take_back
        self._seen: dict[Path, tuple[tuple[int, int, int, int, int], Future[Facts]]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="dicompose-early-seal", daemon=True)

    def __enter__(self) -> EarlySeal:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        while self._waiting and not self._stop.wait(_POLL_S):
            for out in [o for o in self._waiting if (o / RESULT_NAME).is_file()]:
                self._waiting.remove(out)
                self._read_task(out)

    def _read_task(self, out: Path) -> None:
        if self._take_back is not None:  # a container's task folder: its user may write there no more
            self._take_back(out)
        for path in sorted(out.rglob("*")):
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode) and path.name != RESULT_NAME:
                self._seen[path] = (stamp(st), self._pool.submit(_sync_then_read, path, self._read))

    def facts(self, path: Path) -> Facts | None:
        """The early facts of ``path`` if it is still the file that was read, else None (read it now)."""
        entry = self._seen.get(path)
        if entry is None or not _unchanged(path, entry[0]):
            return None
        try:
            return entry[1].result()
        except OSError:
            return None

    def synced(self, folder: Path) -> set[Path]:
        """The files under ``folder`` fsynced early and unchanged since."""
        return {
            p
            for p, (s, f) in self._seen.items()
            if p.is_relative_to(folder) and f.done() and not f.exception() and _unchanged(p, s)
        }


def _sync_then_read(path: Path, read: Callable[[Path], Facts]) -> Facts:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return read(path)


def _unchanged(path: Path, before: tuple[int, int, int, int, int]) -> bool:
    try:
        return stamp(os.lstat(path)) == before
    except OSError:
        return False
