"""External components the tests need (Docker engine, dciodvfy, ...): skip with a reason where one is missing,
fail instead when ``DICOMPOSE_REQUIRE`` names it (CI), so nothing passes by being skipped."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest


def required_components() -> set[str]:
    return {c.strip() for c in os.environ.get("DICOMPOSE_REQUIRE", "").split(",") if c.strip()}


def need(component: str, available: bool, reason: str) -> None:
    """Skip (or fail, when DICOMPOSE_REQUIRE names ``component``) unless the component is available."""
    if available:
        return
    message = f"{component} unavailable: {reason}"
    if component in required_components() or "all" in required_components():
        pytest.fail(f"{message} (required by DICOMPOSE_REQUIRE)")
    pytest.skip(message)


def slurm_up() -> tuple[bool, str]:
    """Whether a SLURM controller answers with a node that can run jobs (scripts/slurm-up.sh), and why not."""
    if shutil.which("sbatch") is None or shutil.which("squeue") is None:
        return False, "sbatch/squeue not on PATH (run scripts/slurm-up.sh as root)"
    proc = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, check=False)
    usable = [s for s in proc.stdout.split() if not s.startswith(("down", "drain", "drng", "fail", "unk", "inval"))]
    if proc.returncode != 0 or not usable:  # idle, mix, alloc, comp (a job just ended): a node that runs jobs
        return False, f"no SLURM node answers (sinfo: {proc.stdout.strip() or proc.stderr.strip()})"
    return True, ""
