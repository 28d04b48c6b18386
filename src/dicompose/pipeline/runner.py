"""Running a pipeline: tasks planned per series, cached by content, scheduled, retried, published atomically.

The main thread owns all state (the index, the task table); workers only execute :func:`execute` and hand back
a result through a queue. A task whose key already has a ``done`` folder is not launched: its recorded outputs
feed its dependants directly, so a rerun with nothing changed launches nothing.
"""

from __future__ import annotations

import contextlib
import os
import queue
import secrets
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from dicompose.config import load_settings
from dicompose.dicom.identifiers import identifiers
from dicompose.engines.base import Engine, ImageRef, Permissions, Resources
from dicompose.engines.hardening import LABEL_PREFIX
from dicompose.engines.resolve import resolve_engine
from dicompose.errors import UsageError
from dicompose.fileio import atomic_write
from dicompose.pipeline.execute import TaskRequest, TaskResult, execute
from dicompose.pipeline.graph import PipelineGraph, StepNode, build_graph
from dicompose.pipeline.images import image_key, resolve_step_image
from dicompose.pipeline.inputs import DEFAULT_CHUNK, Group, group_input
from dicompose.pipeline.snapshot import graph_from_snapshot, recorded_images, snapshot
from dicompose.records.audit import AuditLog, load_keys
from dicompose.records.hashing import canonical_hash
from dicompose.records.index import FileStat, Index, Memo
from dicompose.records.workspace import Workspace, locked, open_workspace
from dicompose.schedulers.base import Scheduler
from dicompose.tools.invocation import build_invocation

FINISHED = ("ok", "partial")
_BACKOFF_S = 0.5


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


@dataclass
class Task:
    key: str
    step: str
    label: str
    relative_parent: Path
    files: tuple[str, ...]
    inputs: tuple[dict[str, str], ...]
    attempt: int = 1
    status: str = "pending"  # pending | running | ok | partial | failed | blocked
    cached: bool = False
    outputs: tuple[dict[str, str], ...] = ()
    result: TaskResult | None = None


@dataclass
class PipelineReport:
    run_id: str
    workspace: Path
    engine: str
    engine_why: str
    scheduler: str
    tasks: list[Task] = field(default_factory=list)
    launches: int = 0
    published: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(t.status == "ok" for t in self.tasks)

    def counts(self, step: str) -> dict[str, int]:
        """Tasks of ``step`` by outcome; a task found in the cache counts as cached, not ok."""
        result = {"ok": 0, "cached": 0, "partial": 0, "failed": 0, "blocked": 0}
        for task in self.tasks:
            if task.step == step:
                outcome = "cached" if task.cached and task.status == "ok" else task.status
                result[outcome] = result.get(outcome, 0) + 1
        return result


Events = Callable[[Task], None]


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)


def make_scheduler(name: str, workers: int) -> Scheduler:
    from dicompose.schedulers.local import ThreadScheduler

    if name == "local":
        return ThreadScheduler(workers)
    if name == "dask" or name.startswith("tcp://"):
        from dicompose.schedulers.dask import DaskScheduler

        return DaskScheduler(None if name == "dask" else name, workers)
    raise UsageError(f"unknown scheduler {name!r} (local, dask, or tcp://HOST:PORT)")


class _Run:
    def __init__(
        self,
        request: PipelineRequest,
        graph: PipelineGraph,
        workspace: Workspace,
        index: Index,
        engine: Engine,
        images: dict[str, tuple[ImageRef | None, bool]],
        scheduler: Scheduler,
        report: PipelineReport,
        events: Events,
    ) -> None:
        self.request, self.graph, self.workspace, self.index = request, graph, workspace, index
        self.engine, self.images, self.scheduler, self.report, self.events = engine, images, scheduler, report, events
        self.publish_delay = float(os.environ.get("DICOMPOSE_TEST_PUBLISH_DELAY", "0") or 0)
        self.audit = AuditLog(workspace.root / "audit", load_keys())
        self.done: queue.Queue[tuple[Task, TaskResult | None, BaseException | None]] = queue.Queue()
        self.outstanding = 0
        self.consumers: dict[str, list[StepNode]] = {}
        for node in graph.steps:
            if node.source.kind == "step":
                self.consumers.setdefault(node.source.name, []).append(node)

    # --- planning ---------------------------------------------------------------------------------------
    def key_of(self, node: StepNode, inputs: tuple[dict[str, str], ...]) -> str:
        image, _ = self.images[node.name]
        values = build_invocation(node.descriptor, {**node.params, node.batch_input: ["/"]}).values
        params = {k: v for k, v in values.items() if k != node.batch_input}
        return canonical_hash(
            {
                "descriptor": node.descriptor.digest,
                "image": image_key(self.engine, image),
                "params": params,
                "batch-input": node.batch_input,
                "inputs": sorted([i["name"], i["sha256"]] for i in inputs),
            }
        )

    def add_task(
        self, node: StepNode, label: str, parent: Path, files: tuple[str, ...], inputs: tuple[dict[str, str], ...]
    ) -> None:
        task = Task(self.key_of(node, inputs), node.name, label, parent, files, inputs)
        self.report.tasks.append(task)
        record = self.workspace.read_task(task.key)
        if record is not None:
            task.status, task.cached, task.outputs = str(record["status"]), True, tuple(record["outputs"])
            self.index.record_attempt(
                self.report.run_id,
                node.name,
                task.key,
                label,
                0,
                task.status,
                cached=True,
                started=None,
                ended=None,
                exit_code=record.get("exit_code"),
                engine=record.get("engine"),
                image_digest=record.get("image"),
                log_dir=str(self.workspace.task_dir(task.key)),
                inputs=list(inputs),
                outputs=list(task.outputs),
            )
            self.events(task)
            self.feed_consumers(node, task)
            return
        self.submit(node, task)

    def submit(self, node: StepNode, task: Task, delay: float = 0.0) -> None:
        image, _ = self.images[node.name]
        request = TaskRequest(
            key=task.key,
            run_id=self.report.run_id,
            step=node.name,
            label=task.label,
            attempt=task.attempt,
            workspace=str(self.workspace.root.resolve()),
            engine=self.engine.name,
            image=image,
            descriptor=node.descriptor,
            batch_input=node.batch_input,
            params=node.params,
            files=task.files,
            inputs=task.inputs,
            permissions=Permissions(
                bool(node.descriptor.custom.get("network")), bool(node.descriptor.custom.get("gpu"))
            ),
            resources=Resources(
                node.spec.resources.memory_bytes(), node.spec.resources.cpus, node.spec.timeout_seconds()
            ),
            delay_s=delay,
        )
        task.status = "running"
        self.outstanding += 1
        self.report.launches += 1
        self.scheduler.submit(execute, request, lambda result, error: self.done.put((task, result, error)))

    def feed_consumers(self, node: StepNode, task: Task) -> None:
        for consumer in self.consumers.get(node.name, []):
            chosen = tuple(o for o in task.outputs if o.get("id") == consumer.source.output)
            if not chosen:
                continue
            folder = self.workspace.task_dir(task.key) / "out"
            files = tuple(str(folder / o["name"]) for o in chosen)
            inputs = tuple({"name": o["name"], "sha256": o["sha256"], "path": str(folder / o["name"])} for o in chosen)
            self.add_task(consumer, task.label, task.relative_parent, files, inputs)

    # --- the loop ---------------------------------------------------------------------------------------
    def start(self, groups: dict[str, list[Group]]) -> None:
        for node in self.graph.steps:
            if node.source.kind != "input":
                continue
            for group in groups[node.source.name]:
                files = tuple(str(f.path) for f in group.files)  # absolute already (inputs.list_files)
                inputs = tuple({"name": f.name, "sha256": f.sha256, "path": str(f.path)} for f in group.files)
                self.add_task(node, group.label, group.relative_parent, files, inputs)

    def drain(self) -> None:
        while self.outstanding:
            try:
                task, result, error = self.done.get(timeout=0.2)
            except queue.Empty:
                continue
            self.outstanding -= 1
            self.finish(task, result, error)

    def finish(self, task: Task, result: TaskResult | None, error: BaseException | None) -> None:
        node = self.graph.step(task.step)
        if result is None:
            message = f"{type(error).__name__}: {error}" if error else "no result"
            result = TaskResult(task.key, "failed", None, time.time(), time.time(), problems=(message,))
        task.result = result
        self.index.record_attempt(
            self.report.run_id,
            task.step,
            task.key,
            task.label,
            task.attempt,
            result.status,
            cached=False,
            started=result.started,
            ended=result.ended,
            exit_code=result.exit_code,
            engine=self.engine.name,
            image_digest=image.digest if (image := self.images[task.step][0]) is not None else None,
            log_dir=result.log_dir or None,
            inputs=list(task.inputs),
            outputs=list(result.outputs),
            message="; ".join(result.problems),
        )
        if result.status == "failed" and task.attempt <= node.spec.retries:
            task.attempt += 1
            self.submit(node, task, delay=_BACKOFF_S * 2 ** (task.attempt - 2))
            return
        task.status = result.status
        task.outputs = result.outputs
        self.audit_task(node, task, result)
        self.events(task)
        if result.status in FINISHED:
            self.feed_consumers(node, task)
        else:
            self.block_dependants(node, task)

    def audit_task(self, node: StepNode, task: Task, result: TaskResult) -> None:
        """Who read which patient files, ran what on them, and wrote what (see records.audit)."""
        image = self.images[node.name][0]
        tool, digest, run = node.descriptor.name, image.digest if image else None, self.report.run_id
        if node.source.kind == "input":
            for name, item in zip(task.files, task.inputs, strict=True):
                obj = {**identifiers(Path(name)), "path": name, "sha256": item["sha256"]}
                self.audit.append("read", obj=obj, tool=tool, image=digest, run=run)
        step = {"task": task.key, "step": node.name, "group": task.label}
        self.audit.append("execute", obj=step, tool=tool, image=digest, run=run, outcome=result.status)
        folder = self.workspace.task_dir(task.key) / "out"
        for output in result.outputs:
            written = folder / output["name"]
            obj = {**identifiers(written), "path": str(written), "sha256": output["sha256"]}
            self.audit.append("write", obj=obj, tool=tool, image=digest, run=run)

    def block_dependants(self, node: StepNode, task: Task) -> None:
        for consumer in self.consumers.get(node.name, []):
            blocked = Task("", consumer.name, task.label, task.relative_parent, (), (), status="blocked")
            self.report.tasks.append(blocked)
            self.events(blocked)
            self.block_dependants(consumer, blocked)

    def stop_containers(self) -> None:
        if self.engine.name != "docker":
            return
        with contextlib.suppress(Exception):
            client = self.engine.client  # type: ignore[attr-defined]
            label = f"{LABEL_PREFIX}.run={self.report.run_id}"
            for container in client.containers.list(all=True, filters={"label": label}):
                with contextlib.suppress(Exception):
                    container.remove(force=True)

    # --- publishing -------------------------------------------------------------------------------------
    def publish(self) -> None:
        """Copy every pipeline output into ``--out``; files already there with the same content are kept."""
        planned: list[tuple[Path, Path, str]] = []
        for out_name, source in self.graph.outputs.items():
            for task in self.report.tasks:
                if task.step != source.name or task.status not in FINISHED:
                    continue
                folder = self.workspace.task_dir(task.key) / "out"
                target_dir = self.request.out_dir.absolute() / out_name / task.relative_parent
                for output in task.outputs:
                    if output.get("id") == source.output:
                        planned.append((folder / output["name"], target_dir / output["name"], output["sha256"]))
        stats = {str(target): FileStat.maybe(str(target)) for _s, target, _h in planned}
        memo = self.index.memo_lookup([st for st in stats.values() if st is not None])
        written: list[tuple[FileStat, Memo]] = []
        for source_path, target, sha256 in planned:
            known = memo.get(str(target)) if stats[str(target)] is not None else None
            if known is None or known.sha256 != sha256:
                self.publish_file(source_path, target)
                written.append((FileStat.of(target), Memo(sha256, None)))
                self.audit.append(
                    "export", obj={**identifiers(target), "path": str(target), "sha256": sha256}, run=self.report.run_id
                )
            self.report.published.append(target)
        self.index.memo_store(written)

    def publish_file(self, source: Path, target: Path) -> None:
        """Copy through a temp file and a rename: readers see the old file or the new one, never a part."""

        def copy(destination: BinaryIO) -> None:
            with source.open("rb") as src:
                shutil.copyfileobj(src, destination, 1 << 20)
            if self.publish_delay:  # fault-injection point for the crash tests (DICOMPOSE_TEST_PUBLISH_DELAY)
                time.sleep(self.publish_delay)

        atomic_write(target, copy)


def run_pipeline(request: PipelineRequest, events: Events = lambda _t: None) -> PipelineReport:
    if request.recorded is not None:
        graph, _images = graph_from_snapshot(request.recorded, request.pipeline)
    else:
        graph = build_graph(request.pipeline)
    missing = sorted(set(graph.spec.inputs) - set(request.inputs))
    extra = sorted(set(request.inputs) - set(graph.spec.inputs))
    if missing or extra:
        raise UsageError(
            f"{request.pipeline}: inputs {', '.join(graph.spec.inputs)} expected"
            + (f"; missing {', '.join(missing)}" if missing else "")
            + (f"; unknown {', '.join(extra)}" if extra else "")
            + " (give --in NAME=PATH)"
        )
    workspace = open_workspace(request.workspace or request.pipeline.parent / ".dicompose")
    with locked(workspace):
        index = Index(workspace.index_path)
        try:
            return _run_locked(request, graph, workspace, index, events)
        finally:
            index.close()


def _run_locked(
    request: PipelineRequest, graph: PipelineGraph, workspace: Workspace, index: Index, events: Events
) -> PipelineReport:
    resolution = resolve_engine(request.engine)
    engine = resolution.engine
    if request.recorded is not None:
        _graph, recorded = graph_from_snapshot(request.recorded, request.pipeline)
        images = recorded_images(graph, recorded, engine, request.allow_unpinned)
    else:
        images = {n.name: resolve_step_image(n.descriptor, engine, request.allow_unpinned) for n in graph.steps}
    workers = request.workers or load_settings().workers
    scheduler = make_scheduler(request.scheduler, workers)
    report = PipelineReport(new_run_id(), workspace.root, engine.name, resolution.why, scheduler.name)
    index.start_run(
        report.run_id,
        "pipeline",
        str(request.pipeline),
        engine.name,
        resolution.why,
        scheduler.name,
        str(request.out_dir),
        {
            "inputs": {k: str(v.resolve()) for k, v in request.inputs.items()},
            "snapshot": snapshot(graph, images),
            "pipeline": graph.spec.name,
        },
    )
    run = _Run(request, graph, workspace, index, engine, images, scheduler, report, events)
    status = "interrupted"
    try:
        groups: dict[str, list[Group]] = {}
        for name, path in request.inputs.items():
            groups[name], skipped = group_input(path, index, chunk=request.chunk)
            report.skipped.extend(skipped)
            if not groups[name]:
                raise UsageError(f"--in {name}={path}: no DICOM files found")
        run.start(groups)
        run.drain()
        run.publish()
        status = "ok" if report.ok else "failed"
    except (KeyboardInterrupt, SystemExit):
        scheduler.cancel_all()
        run.stop_containers()
        raise
    except BaseException:
        status = "failed"
        scheduler.cancel_all()
        run.stop_containers()
        raise
    finally:
        index.end_run(report.run_id, status)
        scheduler.close()
        run.audit.checkpoint()
    return report
