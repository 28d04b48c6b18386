"""The ``apptainer`` engine (also Singularity): an argv for ``apptainer exec``, run as a subprocess.

Isolation comes from flags: ``--containall --cleanenv --no-home`` (no host home, env or /tmp), ``--no-mount
bind-paths`` (no site-wide binds), explicit binds only (inputs ``:ro``), ``--net --network none``.
"""

from __future__ import annotations

import shutil
import subprocess

from dicompose.engines.base import EngineInfo, ImageRef, RunResult, TaskSpec
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
    for key, value in sorted(spec.environment.items()):
        argv += ["--env", f"{key}={value}"]
    for mount in spec.mounts:
        argv += ["--bind", f"{mount.source}:{mount.target}:{'ro' if mount.read_only else 'rw'}"]
    workdir_mode = "ro" if spec.workdir_read_only else "rw"
    argv += [
        "--bind",
        f"{spec.workdir}:{OUTPUT_DIR}:{workdir_mode}",
        "--pwd",
        OUTPUT_DIR,
        spec.image.digest,
        *spec.argv,
    ]
    return argv


class ApptainerEngine:
    name = "apptainer"
    isolates = True

    def __init__(self) -> None:
        self.executable = shutil.which("apptainer") or shutil.which("singularity")
        self._info: EngineInfo | None = None

    def info(self) -> EngineInfo:
        if self._info is None:
            if self.executable is None:
                self._info = EngineInfo(self.name, False, None, "neither apptainer nor singularity is on PATH")
            else:
                proc = subprocess.run([self.executable, "--version"], capture_output=True, text=True, check=False)
                self._info = EngineInfo(
                    self.name, proc.returncode == 0, proc.stdout.strip() or None, proc.stderr.strip()
                )
        return self._info

    def resolve_image(self, name: str, pin: str | None, *, allow_unpinned: bool, hint: str) -> tuple[ImageRef, bool]:
        """Apptainer runs what it is given (a .sif path or a docker-daemon:/oras: reference) by that name."""
        if not pin and not allow_unpinned:
            raise UsageError(f"image {name} is not pinned by digest; pass --allow-unpinned to run it anyway")
        return ImageRef(name, name), bool(pin)

    def has_image(self, image: ImageRef) -> bool:
        return True  # a .sif is checked when it runs; references are resolved by apptainer itself

    def cleanup(self, run_id: str | None = None) -> int:
        """Nothing to do: apptainer processes are children that die with dicompose (PR_SET_PDEATHSIG)."""
        return 0

    def command(self, spec: TaskSpec) -> list[str]:
        return apptainer_argv(spec, self.executable or "apptainer")

    def run(self, spec: TaskSpec) -> RunResult:
        digest = spec.image.digest if spec.image else None
        return run_process(self.command(spec), engine=self.name, timeout=spec.resources.timeout_s, image_digest=digest)
