"""Running an engine's command as a child process: captured output, timeout, no orphans. Shared by the
engines that drive a CLI (local, apptainer)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from dicompose.engines.base import RunResult
from dicompose.lifetime import die_with_parent


class Children:
    """The live step processes of this engine, by run: ``stop(run)`` ends them and everything they started.

    Each step runs in a process group of its own, so a timeout or an interrupt kills the whole tree (a shell
    template's own children too), not just the direct child.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: dict[str, set[subprocess.Popen[bytes]]] = {}

    def add(self, run: str, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._live.setdefault(run, set()).add(proc)

    def discard(self, run: str, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._live.get(run, set()).discard(proc)

    def stop(self, run: str) -> int:
        with self._lock:
            procs = list(self._live.pop(run, set()))
        for proc in procs:
            _kill_group(proc)
        return len(procs)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(OSError):
        os.killpg(proc.pid, signal.SIGKILL)


def run_process(
    argv: list[str],
    *,
    engine: str,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    image_digest: str | None = None,
    children: Children | None = None,
    run: str = "",
) -> RunResult:
    """Run ``argv`` (never through a shell) in its own process group; a missing program is exit 127, a timeout
    exit 124 (the whole group killed)."""
    started = time.perf_counter()
    parent = os.getpid()
    try:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=(lambda: die_with_parent(parent)) if sys.platform == "linux" else None,
        )
    except FileNotFoundError:
        message = f"{argv[0]}: command not found on this host".encode()
        return RunResult(127, b"", message, time.perf_counter() - started, engine, argv, image_digest)
    if children is not None:
        children.add(run, proc)
    timed_out = False
    try:
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(proc)
            stdout, stderr = proc.communicate()
        finally:
            if proc.returncode is None:  # interrupted while waiting: leave nothing running
                _kill_group(proc)
    finally:
        if children is not None:
            children.discard(run, proc)
    elapsed = time.perf_counter() - started
    code = 124 if timed_out else proc.returncode
    return RunResult(code, stdout, stderr, elapsed, engine, argv, image_digest, timed_out=timed_out)
