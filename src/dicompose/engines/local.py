"""The ``local`` engine: the step runs as a subprocess on the host, no container (the fallback)."""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from dicompose import __version__
from dicompose.engines.base import EngineInfo, RunResult, TaskSpec

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child, before exec: get SIGKILL if dicompose dies, so a crashed run leaves no orphan steps.

    Linux only (prctl); elsewhere a no-op. Runs between fork and exec, so it only calls into libc.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass


class LocalEngine:
    """No isolation: inputs are read where they are; only the working directory is the task's folder."""

    name = "local"
    isolates = False

    def info(self) -> EngineInfo:
        return EngineInfo(self.name, True, f"dicompose {__version__} / Python {sys.version.split()[0]}")

    def command(self, spec: TaskSpec) -> list[str]:
        return list(spec.argv)

    def _resolved_argv(self, spec: TaskSpec) -> list[str]:
        """Run our own console scripts from this interpreter's environment, whatever PATH says."""
        argv = list(spec.argv)
        if argv:
            sibling = Path(sys.executable).parent / argv[0]
            if "/" not in argv[0] and sibling.exists():
                argv[0] = str(sibling)
            elif shutil.which(argv[0]) is None and "/" not in argv[0]:
                return argv
        return argv

    def run(self, spec: TaskSpec) -> RunResult:
        started = time.perf_counter()
        argv = self._resolved_argv(spec)
        env = {k: v for k, v in os.environ.items() if not k.startswith("DICOMPOSE_REQUIRE")}
        try:
            proc = subprocess.run(
                argv,
                cwd=spec.workdir,
                capture_output=True,
                timeout=spec.resources.timeout_s,
                env=env,
                check=False,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        except FileNotFoundError:
            message = f"{argv[0]}: command not found on this host".encode()
            return RunResult(127, b"", message, time.perf_counter() - started, self.name, argv)
        except subprocess.TimeoutExpired as exc:
            return RunResult(
                124,
                exc.stdout or b"",
                exc.stderr or b"",
                time.perf_counter() - started,
                self.name,
                argv,
                timed_out=True,
            )
        return RunResult(proc.returncode, proc.stdout, proc.stderr, time.perf_counter() - started, self.name, argv)
