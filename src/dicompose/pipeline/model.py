"""What a run is asked to do and what it reports: the request, the report, the launches, the events."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from dicompose.engines.base import ImageRef
from dicompose.pipeline.inputs import DEFAULT_CHUNK

if TYPE_CHECKING:
    from dicompose.pipeline.graph import PipelineGraph
    from dicompose.pipeline.tasks import Task

FINISHED = ("ok", "partial", "skipped")  # "skipped": every file was one the tool does not handle


@dataclass(frozen=True)
class PipelineRequest:
    pipeline: Path
    inputs: dict[str, Path]
    out_dir: Path
    workspace: Path | None = None
    engine: str = "auto"
    scheduler: str = "local"
    workers: int | None = None
    allow_unpinned: bool = False
    chunk: int = DEFAULT_CHUNK
    recorded: dict[str, Any] | None = None  # a run's snapshot: rerun exactly that recipe (see snapshot.py)
    graph: PipelineGraph | None = None  # prebuilt (a tool run's one-step graph); else read from ``pipeline``
    kind: str = "pipeline"  # "pipeline" | "tool": what the run record calls it
    dry_run: bool = False  # plan only: tasks, which are cached, the exact command of each launch
    follow_links: bool = False  # follow symbolic links to targets outside the inputs too (dicompose.walk)
    prune: bool = False  # delete stale outputs instead of moving them into --out/.stale/<run id>/
    engine_why: str | None = None  # why the caller chose ``engine`` (the demo's choice), said instead of ours
    slurm: tuple[str, ...] = ()  # --slurm KEY=VALUE, over the configuration's [slurm] (schedulers.slurm)
    pacs_inputs: dict[str, str] = field(default_factory=dict)  # input name → dicom://…?study=UID (pipeline.pacs_io)
    push_to: tuple[tuple[str | None, str], ...] = ()  # (output or None for all, PACS URL), after a run that succeeded


@dataclass
class LaunchInfo:
    """A launch as the report and the progress display see it."""

    id: str
    step: str
    tasks: list[str]
    processes: int
    command: list[str] = field(default_factory=list)
    exit_code: int | None = None
    seconds: float = 0.0
    message: str = ""


@dataclass
class PipelineReport:
    run_id: str
    workspace: Path
    engine: str
    engine_why: str
    scheduler: str
    budget: int = 1
    images: dict[str, tuple[ImageRef | None, bool]] = field(default_factory=dict)
    tasks: list[Task] = field(default_factory=list)
    launch_log: list[LaunchInfo] = field(default_factory=list)
    published: list[str] = field(default_factory=list)  # paths (strings: there may be 100,000s)
    skipped: list[Path] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    expected: int = 0  # tasks this run will have (series flow 1:1 through the steps), for progress displays

    @property
    def launches(self) -> int:
        return len(self.launch_log)

    conflicts: list[str] = field(default_factory=list)  # outputs of two tasks that would land on one file
    refused: list[str] = field(default_factory=list)  # input files refused before any task (one line each)
    input_names: list[str] = field(default_factory=list)  # every input file found (absolute)
    ignored: list[str] = field(default_factory=list)  # links not followed and the like, one line each
    left_out: list[str] = field(default_factory=list)  # the paths of the input files skipped, refused, ignored
    input_roots: list[str] = field(default_factory=list)  # the folders (or files' folders) given as inputs
    private: bool = False  # a step de-identifies: reports must not name the inputs (pipeline.privacy)
    stale: list[str] = field(default_factory=list)  # outputs of earlier runs no longer produced, moved aside
    stale_to: str | None = None  # where they went (None: pruned, or none)
    out_dir: str = ""  # --out, absolute
    transfers: list[Any] = field(default_factory=list)  # PACS pulls and pushes (pipeline.pacs_io.Transfer)
    push_problem: str = ""  # why --push-to could not deliver (the run itself succeeded)

    @property
    def ok(self) -> bool:
        return all(t.status in ("ok", "skipped") for t in self.tasks) and not self.conflicts and not self.refused

    def counts(self, step: str) -> dict[str, int]:
        """Tasks of ``step`` by outcome; a task found in the cache counts as cached, not ok."""
        result = {"ok": 0, "cached": 0, "skipped": 0, "partial": 0, "failed": 0, "blocked": 0}
        for task in self.tasks:
            if task.step == step:
                outcome = "cached" if task.cached and task.status == "ok" else task.status
                result[outcome] = result.get(outcome, 0) + 1
        return result

    def finished(self) -> int:
        return sum(1 for t in self.tasks if t.status in (*FINISHED, "failed", "blocked"))


class Events(Protocol):
    """What the runner tells its caller as it goes (progress displays)."""

    def started(self, report: PipelineReport) -> None:
        """The run starts: its engine, scheduler and images are known, nothing has been launched."""

    def task(self, task: Task) -> None:
        """A task finished (ran, cached, failed, or blocked by a failed dependency)."""

    def launch(self, launch: LaunchInfo, report: PipelineReport) -> None:
        """A launch ended."""


class NoEvents:
    def started(self, report: PipelineReport) -> None:
        pass

    def task(self, task: Task) -> None:
        pass

    def launch(self, launch: LaunchInfo, report: PipelineReport) -> None:
        pass
