"""The ``local`` engine: the step runs as a subprocess on the host, no container (the fallback)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from dicompose import __version__
from dicompose.engines.base import EngineInfo, ImageRef, RunResult, TaskSpec
from dicompose.engines.hardening import LABEL_PREFIX
from dicompose.engines.process import Children, run_process
from dicompose.errors import UsageError


class LocalEngine:
    """No isolation: inputs are read where they are; only the working directory is the task's folder."""

    name = "local"
    isolates = False

    def info(self) -> EngineInfo:
        return EngineInfo(self.name, True, f"dicompose {__version__} / Python {sys.version.split()[0]}")

    def resolve_image(
        self, name: str, pin: str | None, *, allow_unpinned: bool, hint: str, tool: str = "TOOL"
    ) -> tuple[ImageRef, bool]:
        raise UsageError(f"the local engine runs no image ({name})")

    def has_image(self, image: ImageRef) -> bool:
        return False

    def __init__(self) -> None:
        self.children = Children()

    def cleanup(self, run_id: str | None = None) -> int:
        """Stop a run's steps (after Ctrl-C or SIGTERM); a killed run's steps died with it (PR_SET_PDEATHSIG)."""
        return self.children.stop(run_id) if run_id is not None else 0

    def site_pin(self, tool: str, descriptor_digest: str) -> str | None:
        return None

    def not_enforced(self) -> tuple[str, ...]:
        return ()  # no container at all: the reason the engine was chosen says so

    def command(self, spec: TaskSpec) -> list[str]:
        return self._resolved_argv(spec)

    def _resolved_argv(self, spec: TaskSpec) -> list[str]:
        """Run our own console scripts from this interpreter's environment, whatever PATH says."""
        argv = list(spec.argv)
        if argv and "/" not in argv[0] and (Path(sys.executable).parent / argv[0]).exists():
            argv[0] = str(Path(sys.executable).parent / argv[0])
        return argv

    def run(self, spec: TaskSpec) -> RunResult:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DICOMPOSE_REQUIRE")}
        env["DICOMPOSE_AUDIT"] = "host"  # the runner audits this step; the tool must not log it again
        env.update(spec.environment)
        return run_process(
            self._resolved_argv(spec),
            engine=self.name,
            cwd=spec.workdir,
            env=env,
            timeout=spec.resources.timeout_s,
            children=self.children,
            run=spec.labels.get(f"{LABEL_PREFIX}.run", ""),
        )
