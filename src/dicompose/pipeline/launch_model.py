"""What a launch is asked to do and what it gives back: picklable, so any scheduler's worker can run it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dicompose.descriptors.descriptor import Descriptor
from dicompose.engines.base import ImageRef, Permissions, Resources


@dataclass(frozen=True)
class TaskItem:
    key: str
    label: str
    files: tuple[str, ...]
    inputs: tuple[dict[str, str], ...]  # {"name", "sha256", "path"} for the record


@dataclass(frozen=True)
class LaunchRequest:
    launch_id: str
    run_id: str
    step: str
    workspace: str
    engine: str
    image: ImageRef | None
    descriptor: Descriptor
    batch_input: str
    params: dict[str, Any]
    tasks: tuple[TaskItem, ...]
    processes: int = 1
    permissions: Permissions = field(default_factory=Permissions)
    resources: Resources = field(default_factory=Resources)  # timeout_s: per task
    delay_s: float = 0.0  # retry backoff, slept by the worker

    @property
    def packed(self) -> bool:
        return self.descriptor.manifest_flag is not None


@dataclass(frozen=True)
class TaskResult:
    key: str
    status: str  # ok | partial | skipped | failed
    exit_code: int | None
    started: float
    ended: float
    outputs: tuple[dict[str, str], ...] = ()
    problems: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()  # one line per input file the tool skipped
    stopped: str = ""  # the task's output folder (the workspace) is full or read-only: the run stops
    stderr_tail: str = ""
    log_dir: str = ""
    engine_error: bool = False
    #: For the audit log only, in memory (never stored in records): identifiers of each input and output,
    #: read by the worker after the launch so that the main thread, which keeps launches flowing, need not.
    input_ids: tuple[dict[str, str | None], ...] = ()
    output_ids: tuple[dict[str, str | None], ...] = ()


@dataclass(frozen=True)
class LaunchResult:
    launch_id: str
    exit_code: int | None
    started: float
    ended: float
    command: list[str]
    tasks: tuple[TaskResult, ...]
    message: str = ""
