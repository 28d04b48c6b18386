"""The workspace: ``.dicompose/`` holding the index, one folder per task key, and the run lock.

Layout::

    .dicompose/
      index.sqlite          runs, tasks, attempts, file-hash memo
      lock                  flock'ed by the running dicompose (pid and host written inside, for messages)
      lock.lease            the same run's lease, for hosts a shared filesystem's flock does not reach
      work/ab/<key>/        one task: out/, stdout, stderr, task.json, done (written last, after fsync)
      launches/<id>/        one packed launch: manifest.json, stdout, stderr (shared by its tasks)

A task folder without ``done`` is incomplete (killed or failed) and is discarded before the task runs again.
The lock is an OS lock: the kernel releases it when its process dies, so a lock left by a killed run is taken
over without any manual unlock, while a second concurrent run fails fast with a clear message. On a shared
filesystem whose locks stay local to each node, the lease (``records.lease``) refuses a run on another host.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import socket
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dicompose.errors import UsageError
from dicompose.records.lease import LEASE, holder, leased

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

    def launch_dir(self, launch_id: str) -> Path:
        return self.root / "launches" / launch_id

    def fresh_launch_dir(self, launch_id: str) -> Path:
        folder = self.launch_dir(launch_id)
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        return folder

    def read_task(self, key: str) -> dict[str, Any] | None:
        """The record of a completed task, or None (incomplete, unreadable, or an output changed: it reruns).

        Outputs are shared with ``--out`` by hard links; one edited in place (size or mtime changed since the
        task finished) makes the task incomplete, so a corrupted file is never fed to a later step.
        """
        folder = self.task_dir(key)
        try:
            data = json.loads((folder / "task.json").read_text())
            if not (folder / DONE).is_file() or not isinstance(data, dict):
                return None
            out = f"{folder}/out/"  # strings, not pathlib: hot path of no-op reruns
            for output in data.get("outputs", []):
                if "size" in output:
                    st = os.stat(out + output["name"])  # noqa: PTH116
                    if (st.st_size, st.st_mtime_ns) != (output["size"], output["mtime_ns"]):
                        return None
        except (OSError, json.JSONDecodeError, KeyError, TypeError):
            return None
        return data

    def fresh_task_dir(self, key: str) -> Path:
        """An empty folder for ``key``, discarding whatever an interrupted attempt left."""
        folder = self.task_dir(key)
        if folder.exists():
            shutil.rmtree(folder)
        (folder / "out").mkdir(parents=True)
        return folder


def open_workspace(root: Path) -> Workspace:
    """Open (creating it private to the user, 0700: it holds patient data) the workspace at ``root``."""
    try:
        if not root.exists():
            root.parent.mkdir(parents=True, exist_ok=True)
            root.mkdir(mode=0o700)
            root.chmod(0o700)  # mkdir applies the umask to its mode: make it exactly 0700
        (root / "work").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create workspace {root} ({exc.strerror or exc})") from None
    return Workspace(root.resolve())


def finish_task(folder: Path, record: dict[str, Any], *, synced: Collection[Path] = frozenset()) -> None:
    """Seal outputs read-only, write task.json, fsync everything, then ``done`` last: only then is it complete.

    Read-only because published outputs are hard links to these files; each output's size and mtime go into
    the record so :meth:`Workspace.read_task` notices one edited anyway (root ignores the mode). ``synced``:
    files already fsynced and unchanged since (read while the launch ran: ``pipeline.early_seal``).
    """
    for output in record.get("outputs", []):
        path = folder / "out" / output["name"]
        st = os.lstat(path)
        os.chmod(path, st.st_mode & ~0o222)  # noqa: PTH101
        output["size"], output["mtime_ns"] = st.st_size, st.st_mtime_ns
        output["inode"] = [st.st_dev, st.st_ino]  # publishing knows a target is this file without a stat
    # compact: a no-op rerun parses every task's record (40 records of 500 files: 9.4 MB indented, 7.5 MB not)
    _write_synced(folder / "task.json", json.dumps(record, sort_keys=True, separators=(",", ":")).encode())
    for path in sorted(folder.rglob("*")):
        if path not in synced and path.is_file() and not path.is_symlink():
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


def is_locked(workspace: Workspace) -> bool:
    """Is a live process holding the workspace lock? (Readers use it to tell a dead run from a running one.)"""
    if holder(workspace.root / LEASE) is not None and not _mine(workspace.root / LEASE):
        return True  # a run on another host of a shared filesystem (or another process here)
    try:
        fd = os.open(workspace.lock_path, os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # closing releases a lock we may have taken
    return False


def _mine(lease: Path) -> bool:
    found = holder(lease)
    return found is not None and found[:2] == (socket.gethostname(), os.getpid())


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
        except OSError as exc:  # e.g. a shared filesystem without flock support
            raise UsageError(f"cannot lock workspace {workspace.root} ({exc.strerror or exc})") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        with leased(workspace.root):  # the flock may not reach other hosts of a shared filesystem
            yield
    finally:
        os.close(fd)  # closing releases the flock
