"""The engine interface and the task/result records every engine shares.

An engine turns a :class:`TaskSpec` (argv, mounts, permissions, limits) into a :class:`RunResult`.
``command(spec)`` is pure (the exact command, for ``--dry-run`` and tests); ``run(spec)`` executes it.
The runner never asks which engine it has: images are resolved and checked (``resolve_image``,
``has_image``), leftovers removed (``cleanup``) and the engine probed (``info``, once) through this interface.
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
    cpus: float | None = None  # CPU limit of the launch (the runner sets it to the processes it grants)
    timeout_s: float | None = None
    gpus: int = 0  # GPUs the launch asks for (with Permissions.gpu)


@dataclass(frozen=True)
class ImageRef:
    """An image as run: the name people read and the digest/ID that is actually used."""

    name: str
    digest: str
    location: str | None = None  # where an engine that runs image folders found it (charliecloud)


@dataclass(frozen=True)
class TaskSpec:
    """One launch: argv, the working folder (a task's output folder, or a pack's launch folder) and mounts.

    ``workdir`` appears at ``OUTPUT_DIR`` in a container, writable unless ``workdir_read_only`` (a pack's
    launch folder holds only its manifest; each task's output folder is then one of the writable mounts).
    ``environment`` carries settings only (process counts, thread limits), never patient data.
    """

    argv: list[str]
    workdir: Path
    mounts: tuple[Mount, ...] = ()
    image: ImageRef | None = None
    permissions: Permissions = field(default_factory=Permissions)
    resources: Resources = field(default_factory=Resources)
    labels: dict[str, str] = field(default_factory=dict)
    environment: dict[str, str] = field(default_factory=dict)
    workdir_read_only: bool = False
    scratch: Path | None = None  # a folder the engine may use for this launch alone (removed after it)


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

    def info(self) -> EngineInfo:
        """Probe once (cached by the engine): usable here? which version? if not, why."""

    def command(self, spec: TaskSpec) -> list[str]:
        """The exact command a launch runs (pure)."""

    def run(self, spec: TaskSpec) -> RunResult:
        """Run a launch; a failing tool is a result, an engine that refuses raises :class:`EngineError`."""

    def resolve_image(
        self, name: str, pin: str | None, *, allow_unpinned: bool, hint: str, tool: str = "TOOL"
    ) -> tuple[ImageRef, bool]:
        """(the image to run, pinned?) for ``name``; a pin that does not match is a UsageError. ``hint`` says how
        to get a missing image where it is built; ``tool`` is the tool's name, for an engine whose images come
        from elsewhere (an image folder) to phrase its own advice."""

    def has_image(self, image: ImageRef) -> bool:
        """Is this exact image (by digest) still available to run?"""

    def cleanup(self, run_id: str | None = None) -> int:
        """Stop and remove what a run left (``run_id``), or what killed runs on this host left (None)."""

    def site_pin(self, tool: str, descriptor_digest: str) -> str | None:
        """The digest a site pinned ``tool`` (at this descriptor) to where the engine finds its images, or None."""

    def not_enforced(self) -> tuple[str, ...]:
        """Parts of the hardening policy this engine cannot enforce here (said in --dry-run and the record)."""
