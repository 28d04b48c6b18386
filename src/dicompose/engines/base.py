"""The engine interface and the task/result records every engine shares.

An engine turns a :class:`TaskSpec` (argv, mounts, permissions, limits) into a :class:`RunResult`.
``command(spec)`` is pure (the exact command, for ``--dry-run`` and tests); ``run(spec)`` executes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class Mount:
    """A host path made visible to the task at ``target``; read-only unless it is the output folder."""

    source: Path
    target: str
    read_only: bool = True


@dataclass(frozen=True)
class Permissions:
    """What a step asked for beyond the hardened default (from its descriptor's ``custom.dicompose``)."""

    network: bool = False
    gpu: bool = False


@dataclass(frozen=True)
class Resources:
    memory_bytes: int | None = None
    cpus: float | None = None
    timeout_s: float | None = None


@dataclass(frozen=True)
class ImageRef:
    """An image as run: the name people read and the digest/ID that is actually used."""

    name: str
    digest: str


@dataclass(frozen=True)
class TaskSpec:
    argv: list[str]
    workdir: Path  # host path of the task's output folder (the only writable place)
    mounts: tuple[Mount, ...] = ()
    image: ImageRef | None = None
    permissions: Permissions = field(default_factory=Permissions)
    resources: Resources = field(default_factory=Resources)
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RunResult:
    exit_code: int
    stdout: bytes
    stderr: bytes
    seconds: float
    engine: str
    command: list[str]
    image_digest: str | None = None
    timed_out: bool = False


@dataclass(frozen=True)
class EngineInfo:
    """Probed once: is the engine usable here, which version, and if not, why."""

    name: str
    available: bool
    version: str | None = None
    why: str = ""


class Engine(Protocol):
    name: str
    #: True when the task sees its own filesystem (paths must be mapped to mount targets).
    isolates: bool

    def info(self) -> EngineInfo: ...

    def command(self, spec: TaskSpec) -> list[str]: ...

    def run(self, spec: TaskSpec) -> RunResult: ...
