"""The ``apptainer`` engine (also Singularity): an argv for ``apptainer exec``, run as a subprocess.

Isolation comes from flags: ``--containall --cleanenv --no-home`` (no host home, env or /tmp), ``--no-mount
bind-paths`` (no site-wide binds), explicit binds only (inputs ``:ro``), ``--net --network none``.
"""

from __future__ import annotations

import shutil
import subprocess

from dicompose.engines.base import EngineInfo, RunResult, TaskSpec
from dicompose.engines.hardening import OUTPUT_DIR
from dicompose.engines.process import run_process
from dicompose.errors import UsageError


def apptainer_argv(spec: TaskSpec, executable: str = "apptainer") -> list[str]:
    """The exact ``apptainer exec`` command for a task (pure)."""
    if spec.image is None:
        raise UsageError("the apptainer engine needs an image (.sif path or docker-daemon:/oras: reference)")
    argv = [executable, "exec", "--containall", "--cleanenv", "--no-home", "--no-mount", "bind-paths", "--no-privs"]
    if not spec.permissions.network:
        argv += ["--net", "--network", "none"]
    if spec.permissions.gpu:
        argv.append("--nv")
    for mount in spec.mounts:
        argv += ["--bind", f"{mount.source}:{mount.target}:{'ro' if mount.read_only else 'rw'}"]
    argv += ["--bind", f"{spec.workdir}:{OUTPUT_DIR}:rw", "--pwd", OUTPUT_DIR, spec.image.digest, *spec.argv]
    return argv


class ApptainerEngine:
    name = "apptainer"
    isolates = True

    def __init__(self) -> None:
        self.executable = shutil.which("apptainer") or shutil.which("singularity")

    def info(self) -> EngineInfo:
        if self.executable is None:
            return EngineInfo(self.name, False, None, "neither apptainer nor singularity is on PATH")
        proc = subprocess.run([self.executable, "--version"], capture_output=True, text=True, check=False)
        return EngineInfo(self.name, proc.returncode == 0, proc.stdout.strip() or None, proc.stderr.strip())

    def command(self, spec: TaskSpec) -> list[str]:
        return apptainer_argv(spec, self.executable or "apptainer")

    def run(self, spec: TaskSpec) -> RunResult:
        digest = spec.image.digest if spec.image else None
        return run_process(self.command(spec), engine=self.name, timeout=spec.resources.timeout_s, image_digest=digest)
