"""Running an engine's command as a child process: captured output, timeout, no orphans. Shared by the
engines that drive a CLI (local, apptainer)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from dicompose.engines.base import RunResult
from dicompose.lifetime import die_with_parent


def run_process(
    argv: list[str],
    *,
    engine: str,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    image_digest: str | None = None,
) -> RunResult:
    """Run ``argv`` (never through a shell); a missing program is exit 127, a timeout exit 124."""
    started = time.perf_counter()
    parent = os.getpid()
    try:
        proc = subprocess.run(
            argv,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            capture_output=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
            preexec_fn=(lambda: die_with_parent(parent)) if sys.platform == "linux" else None,
        )
    except FileNotFoundError:
        message = f"{argv[0]}: command not found on this host".encode()
        return RunResult(127, b"", message, time.perf_counter() - started, engine, argv, image_digest)
    except subprocess.TimeoutExpired as exc:
        elapsed = time.perf_counter() - started
        return RunResult(124, exc.stdout or b"", exc.stderr or b"", elapsed, engine, argv, image_digest, timed_out=True)
    elapsed = time.perf_counter() - started
    return RunResult(proc.returncode, proc.stdout, proc.stderr, elapsed, engine, argv, image_digest)
