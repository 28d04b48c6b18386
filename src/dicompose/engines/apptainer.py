"""The ``apptainer`` engine (also Singularity): an argv for ``apptainer exec``, run as a subprocess.

The shared hardening policy (``hardening.Hardening``) as Apptainer flags: ``--containall --cleanenv --no-home``
(no host home, environment or /tmp: a private /tmp), ``--no-mount bind-paths`` (no site-wide binds), explicit
binds only (inputs ``:ro``), ``--net --network none``, ``--no-privs`` (every capability dropped); the image
(a SIF) is read-only and Apptainer always sets no-new-privileges. Limits (``--memory``, ``--cpus``,
``--pids-limit``) need cgroup delegation, which many clusters do not give ordinary users, so they are passed
only when the policy's ``apptainer_limits`` says so; :func:`not_enforced` names what is then left to the site.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping

from dicompose.engines.base import EngineInfo, ImageRef, RunResult, TaskSpec
from dicompose.engines.hardening import DEFAULT, LABEL_PREFIX, OUTPUT_DIR, Hardening, gpu_environment
from dicompose.engines.process import Children, run_process
from dicompose.errors import UnpinnedImageError, UsageError


def not_enforced(policy: Hardening = DEFAULT) -> list[str]:
    """Parts of the hardening policy these command lines leave to the site (said in --dry-run and the docs)."""
    if policy.apptainer_limits:
        return []
    return ["memory limit", "pids limit", "CPU limit"]


def apptainer_argv(
    spec: TaskSpec,
    executable: str = "apptainer",
    policy: Hardening = DEFAULT,
    environ: Mapping[str, str] | None = None,
) -> list[str]:
    """The exact ``apptainer exec`` command for a task (pure)."""
    if spec.image is None:
        raise UsageError("the apptainer engine needs an image (.sif path or docker-daemon:/oras: reference)")
    argv = [executable, "exec", "--containall", "--cleanenv", "--no-home", "--no-mount", "bind-paths"]
    if policy.drop_all_capabilities:
        argv.append("--no-privs")
    if policy.apptainer_limits:
        argv += ["--memory", str(spec.resources.memory_bytes or policy.memory_bytes)]
        argv += ["--pids-limit", str(policy.pids_limit)]
        if spec.resources.cpus:
            argv += ["--cpus", f"{spec.resources.cpus:g}"]
    if not spec.permissions.network:
        argv += ["--net", "--network", "none"]
    environment = dict(spec.environment)
    if spec.permissions.gpu:
        argv.append("--nv")
        environment.update(gpu_environment(os.environ if environ is None else environ))
    for key, value in sorted(environment.items()):
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

    def __init__(self, policy: Hardening = DEFAULT) -> None:
        self.executable = shutil.which("apptainer") or shutil.which("singularity")
        self.policy = policy
        self.children = Children()
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

    def resolve_image(
        self, name: str, pin: str | None, *, allow_unpinned: bool, hint: str, tool: str = "TOOL"
    ) -> tuple[ImageRef, bool]:
        """Apptainer runs what it is given (a .sif path or a docker-daemon:/oras: reference) by that name."""
        if not pin and not allow_unpinned:
            raise UnpinnedImageError(name, "a descriptor container-hash or dicompose build pins it")
        return ImageRef(name, name), bool(pin)

    def has_image(self, image: ImageRef) -> bool:
        return True  # a .sif is checked when it runs; references are resolved by apptainer itself

    def cleanup(self, run_id: str | None = None) -> int:
        """Stop a run's containers (processes); a killed run's died with it (PR_SET_PDEATHSIG)."""
        return self.children.stop(run_id) if run_id is not None else 0

    def site_pin(self, tool: str, descriptor_digest: str) -> str | None:
        return None

    def not_enforced(self) -> tuple[str, ...]:
        return tuple(not_enforced(self.policy))

    def command(self, spec: TaskSpec) -> list[str]:
        return apptainer_argv(spec, self.executable or "apptainer", self.policy)

    def run(self, spec: TaskSpec) -> RunResult:
        digest = spec.image.digest if spec.image else None
        run = spec.labels.get(f"{LABEL_PREFIX}.run", "")
        return run_process(
            self.command(spec),
            engine=self.name,
            timeout=spec.resources.timeout_s,
            image_digest=digest,
            children=self.children,
            run=run,
        )
