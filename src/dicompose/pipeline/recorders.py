"""What a run leaves on record, as subscribers to its events: the SQLite index and the audit log.

The runner (``execution``, ``runner``) decides; it only *says* what happened -- a run started, an attempt
ended (or was a cache hit), a launch ended, patient files were read, written or exported, the run ended --
and each recorder keeps what it is for. The index keeps the run's history (``runs``, ``show``, ``rerun``,
``export-provenance``); the audit log keeps who touched which patient's files, signed, and anchors its
checkpoint in the index so that deleting the log is noticed. A new kind of record (a syslog forwarder, a
metrics exporter) is one more subscriber, not a change to the runner.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dicompose.config import data_home
from dicompose.errors import StorageError
from dicompose.records.audit import AuditLog, Item, Keys, load_keys
from dicompose.records.index import Attempt, Index, Launch

if TYPE_CHECKING:
    from dicompose.pipeline.launch_model import TaskResult
    from dicompose.pipeline.tasks import Task


@dataclass(frozen=True)
class RunStart:
    """What is known of a run when it starts (the index's ``runs`` row)."""

    run_id: str
    kind: str  # "pipeline" or "tool"
    target: str  # the pipeline file, or the tool
    engine: str
    engine_why: str
    scheduler: str
    out_dir: str
    details: dict[str, Any]  # inputs, the pipeline snapshot, budget, privacy


class Recorder:
    """A subscriber to a run's events; every event is ignored unless a recorder says otherwise."""

    def run_started(self, start: RunStart) -> None:
        pass

    def attempt(self, attempt: Attempt) -> None:
        """An attempt of a task ended, or a task was found done already (``attempt.cached``)."""

    def launch_started(self, launch: Launch) -> None:
        """A launch was dispatched (no exit code, no end yet): recorded at once, so the tasks a launch of an
        interrupted or killed run sealed (and later runs reuse) always name a launch on record."""

    def launch(self, launch: Launch) -> None:
        """A launch ended, with the tasks it carried."""

    def files(self, items: list[Item]) -> None:
        """Patient files were read, processed, written or exported (audit items, one append)."""

    def run_ended(self, run_id: str, status: str) -> None:
        pass


class IndexRecorder(Recorder):
    """The run's history in the workspace's SQLite index."""

    def __init__(self, index: Index) -> None:
        self.index = index

    def run_started(self, start: RunStart) -> None:
        self.index.start_run(
            start.run_id,
            start.kind,
            start.target,
            start.engine,
            start.engine_why,
            start.scheduler,
            start.out_dir,
            start.details,
        )

    def attempt(self, attempt: Attempt) -> None:
        self.index.record_attempt(attempt)

    def launch_started(self, launch: Launch) -> None:
        self.index.record_launch(launch)

    def launch(self, launch: Launch) -> None:
        self.index.record_launch(launch)

    def run_ended(self, run_id: str, status: str) -> None:
        self.index.end_run(run_id, status)


class AuditRecorder(Recorder):
    """The workspace's audit log. Entries it cannot write (a full disk) go to the machine log
    (``$DICOMPOSE_HOME/audit``) before the run stops: every read of patient data stays on record."""

    def __init__(self, workspace: Path, index: Index) -> None:
        self.log = AuditLog(workspace / "audit", load_keys())
        self.index = index  # where the log's checkpoint is anchored
        self.entries = 0

    @property
    def keys(self) -> Keys:
        return self.log.keys

    def files(self, items: list[Item]) -> None:
        if not items:
            return
        try:
            self.log.append_many(items)
        except OSError as exc:  # the workspace is full: the reads happened, so they are logged elsewhere
            where = self.to_machine_log(items)
            raise StorageError(
                self.log.path,
                f"cannot write the audit log ({exc.strerror or exc}); this run's entries went to the machine "
                f"log {where}; stopped",
            ) from None
        self.entries += len(items)

    def rescue(self, items: list[Item]) -> None:
        """The run is ending on an error: write what is left, here or (full disk) in the machine log."""
        if not items:
            return
        try:
            self.log.append_many(items)
        except OSError:
            self.to_machine_log(items)
        else:
            self.entries += len(items)

    def to_machine_log(self, items: list[Item]) -> Path:
        fallback = AuditLog(data_home() / "audit", self.log.keys)
        fallback.append_many(items)
        fallback.checkpoint()
        return fallback.path

    def run_ended(self, run_id: str, status: str) -> None:
        """Sign what this run added (a no-op rerun adds nothing and signs nothing); the checkpoint is kept in
        the index too, so a deleted audit folder is detected."""
        if self.entries:
            checkpoint = self.log.checkpoint()
            if checkpoint is not None:
                self.index.add_anchor(checkpoint, self.log.id)


class Recorders(Recorder):
    """Every subscriber, told in order (the index before the audit log: a run's end is on record before the
    log that points at it is signed)."""

    def __init__(self, *recorders: Recorder) -> None:
        self.recorders = recorders

    def run_started(self, start: RunStart) -> None:
        for recorder in self.recorders:
            recorder.run_started(start)

    def attempt(self, attempt: Attempt) -> None:
        for recorder in self.recorders:
            recorder.attempt(attempt)

    def launch_started(self, launch: Launch) -> None:
        for recorder in self.recorders:
            recorder.launch_started(launch)

    def launch(self, launch: Launch) -> None:
        for recorder in self.recorders:
            recorder.launch(launch)

    def files(self, items: list[Item]) -> None:
        for recorder in self.recorders:
            recorder.files(items)

    def run_ended(self, run_id: str, status: str) -> None:
        for recorder in self.recorders:
            recorder.run_ended(run_id, status)


def cached_attempt(run_id: str, task: Task, record: dict[str, Any], log_dir: str) -> Attempt:
    """A task found done already (attempt 0): what it repeats, from its ``task.json``."""
    return Attempt(
        run_id,
        task.step,
        task.key,
        task.label,
        0,
        task.status,
        cached=True,
        exit_code=record.get("exit_code"),
        engine=record.get("engine"),
        image_digest=record.get("image"),
        log_dir=log_dir,
        inputs=list(task.inputs),
        outputs=list(task.outputs),
        message="; ".join(str(p) for p in record.get("problems", [])),
        launch_id=record.get("launch"),
    )


def executed_attempt(run_id: str, task: Task, result: TaskResult, engine: str, image_digest: str | None) -> Attempt:
    """One attempt of a task that ran (or could not), as its launch reported it."""
    return Attempt(
        run_id,
        task.step,
        task.key,
        task.label,
        task.attempt,
        result.status,
        started=result.started,
        ended=result.ended,
        exit_code=result.exit_code,
        engine=engine,
        image_digest=image_digest,
        log_dir=result.log_dir or None,
        inputs=list(task.inputs),
        outputs=list(result.outputs),
        message="; ".join(result.problems),
        launch_id=task.launch,
    )


def task_items(tool: str, digest: str | None, run_id: str, task: Task, result: TaskResult, out: Path) -> list[Item]:
    """The audit items of one settled task: every patient file it read (the pipeline's inputs and an upstream
    step's derived outputs alike), what it ran, every file it wrote (``out``: its output folder)."""
    items: list[Item] = []
    input_ids = result.input_ids or tuple({} for _ in task.files)  # a task that failed before its files were read
    for name, item, ids in zip(task.files, task.inputs, input_ids, strict=True):
        items.append(("read", {**ids, "path": name, "sha256": item["sha256"]}, tool, digest, run_id, "ok"))
    step = {"task": task.key, "step": task.step, "group": task.label}
    items.append(("execute", step, tool, digest, run_id, result.status))
    output_ids = result.output_ids or tuple({} for _ in result.outputs)
    for output, ids in zip(result.outputs, output_ids, strict=True):
        obj = {**ids, "path": str(out / output["name"]), "sha256": output["sha256"]}
        items.append(("write", obj, tool, digest, run_id, "ok"))
    return items
