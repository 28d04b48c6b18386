"""The workspace: ``.dicompose/`` holding the index, one folder per task key, and the run lock.

Layout::

    .dicompose/
      index.sqlite          runs, tasks, attempts, file-hash memo
      lock                  flock'ed by the running dicompose (pid and host written inside, for messages)
      work/ab/<key>/        one task: out/, stdout, stderr, task.json, done (written last, after fsync)

A task folder without ``done`` is incomplete (killed or failed) and is discarded before the task runs again.
The lock is an OS lock: the kernel releases it when its process dies, so a lock left by a killed run is taken
over without any manual unlock, while a second concurrent run fails fast with a clear message.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dicompose.errors import UsageError

DONE = "done"


@dataclass(frozen=True)
class Workspace:
    root: Path

    @property
    def index_path(self) -> Path:
        return self.root / "index.sqlite"

    @property
    def lock_path(self) -> Path:
        return self.root / "lock"

    def task_dir(self, key: str) -> Path:
        return self.root / "work" / key[:2] / key

    def is_done(self, key: str) -> bool:
        return (self.task_dir(key) / DONE).is_file()

    def read_task(self, key: str) -> dict[str, Any] | None:
        """The record of a completed task (None if incomplete or unreadable: then it reruns)."""
        if not self.is_done(key):
            return None
        try:
            data = json.loads((self.task_dir(key) / "task.json").read_text())
        except (OSError, json.JSONDecodeError):
            return None
        return data if isinstance(data, dict) else None

    def fresh_task_dir(self, key: str) -> Path:
        """An empty folder for ``key``, discarding whatever an interrupted attempt left."""
        folder = self.task_dir(key)
        if folder.exists():
            shutil.rmtree(folder)
        (folder / "out").mkdir(parents=True)
        return folder


def open_workspace(root: Path) -> Workspace:
    try:
        (root / "work").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create workspace {root} ({exc.strerror or exc})") from None
    return Workspace(root.resolve())


def finish_task(folder: Path, record: dict[str, Any]) -> None:
    """Write task.json, fsync everything, then the ``done`` marker last: only then is the task complete."""
    _write_synced(folder / "task.json", json.dumps(record, indent=2, sort_keys=True).encode())
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            _fsync_path(path)
    for sub in sorted({p.parent for p in folder.rglob("*")} | {folder}):
        _fsync_path(sub, directory=True)
    _write_synced(folder / DONE, b"ok\n")
    _fsync_path(folder, directory=True)


def _write_synced(path: Path, data: bytes) -> None:
    with path.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _fsync_path(path: Path, *, directory: bool = False) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def locked(workspace: Workspace) -> Iterator[None]:
    """Hold the workspace lock for the duration; fail fast (one clear line) if another run holds it."""
    fd = os.open(workspace.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            raise UsageError(
                f"workspace {workspace.root} is in use by {holder}; wait for it or use --workspace"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the flock
