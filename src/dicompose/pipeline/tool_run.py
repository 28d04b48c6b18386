"""``dicompose run TOOL``: one tool over a file or folder, in batches, on the chosen engine.

Each batch is one launch with many files. Its output folder (under ``--out/.dicompose-tasks``) is the only
writable place and the working directory; outputs are checked against the descriptor (present, inside the
folder, no symlinks out) and then moved into ``--out`` one by one with rename, so a reader never sees a
half-written file. A failed batch keeps its folder, with stdout/stderr, for inspection.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dicompose.dicom.identifiers import identifiers
from dicompose.engines.base import Engine, ImageRef, Mount, Permissions, Resources, RunResult, TaskSpec
from dicompose.engines.hardening import INPUT_ROOT, LABEL_PREFIX, container_user
from dicompose.engines.resolve import resolve_engine
from dicompose.errors import UsageError
from dicompose.pipeline.batches import DEFAULT_BATCH_SIZE, Batch, plan_batches
from dicompose.pipeline.images import resolve_step_image
from dicompose.pipeline.runner import new_run_id
from dicompose.records.audit import AuditLog, load_keys
from dicompose.records.hashing import sha256_file
from dicompose.records.index import Index
from dicompose.records.workspace import locked, open_workspace
from dicompose.tools.descriptor import Descriptor, load_descriptor
from dicompose.tools.invocation import (
    build_argv,
    build_invocation,
    collect_outputs,
    file_parameters,
    output_patterns,
)

TASKS_FOLDER = ".dicompose-tasks"
_TAIL = 2000


@dataclass(frozen=True)
class ToolRunRequest:
    tool: str
    source: Path
    out_dir: Path
    params: dict[str, Any]
    engine: str = "auto"
    allow_unpinned: bool = False
    dry_run: bool = False
    batch_size: int = DEFAULT_BATCH_SIZE
    timeout_s: float | None = None
    workspace: Path | None = None  # where the run is recorded (runs/show/logs); None: not recorded


@dataclass
class TaskOutcome:
    task_id: str
    files: int
    status: str  # ok | partial | failed | planned
    command: list[str]
    exit_code: int | None = None
    seconds: float = 0.0
    outputs: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    stderr_tail: str = ""
    log_dir: Path | None = None
    inputs: list[Path] = field(default_factory=list)


@dataclass
class ToolRunReport:
    tool: str
    descriptor_digest: str
    engine: str
    engine_why: str
    image: ImageRef | None
    pinned: bool
    permissions: Permissions
    tasks: list[TaskOutcome] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    run_id: str | None = None

    @property
    def ok(self) -> bool:
        return all(t.status in ("ok", "planned") for t in self.tasks)


def batch_input_id(descriptor: Descriptor) -> str:
    """The File input ``--in`` feeds: ``custom.dicompose.batch-input``, else the only File input."""
    chosen = descriptor.custom.get("batch-input")
    if chosen:
        return str(chosen)
    files = [spec["id"] for spec in descriptor.inputs if spec["type"] == "File"]
    if len(files) != 1:
        raise UsageError(f"{descriptor.name}: --in needs exactly one File input (found {len(files)}); use -p")
    return str(files[0])


def permissions_of(descriptor: Descriptor) -> Permissions:
    return Permissions(network=bool(descriptor.custom.get("network")), gpu=bool(descriptor.custom.get("gpu")))


def _task_id(descriptor: Descriptor, batch: Batch, params: dict[str, Any]) -> str:
    text = json.dumps([descriptor.digest, [str(f) for f in batch.files], params], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _mounts_and_paths(
    batch: Batch, isolates: bool, extra: list[str]
) -> tuple[tuple[Mount, ...], Callable[[Path], str]]:
    """Mounts for the batch (one folder, or one file) and for other File parameters (each file read-only)."""
    if not isolates:
        return (), lambda path: str(path.absolute())
    extra_mounts = tuple(Mount(Path(f), f"{INPUT_ROOT}/p{i}/{Path(f).name}") for i, f in enumerate(extra))
    extra_map = {str(m.source): m.target for m in extra_mounts}
    mounts, batch_map = _batch_mounts(batch)
    return (*mounts, *extra_mounts), lambda path: extra_map.get(str(path.absolute())) or batch_map(path)


def _batch_mounts(batch: Batch) -> tuple[tuple[Mount, ...], Callable[[Path], str]]:
    root = batch.root
    if len(batch.files) == 1 and batch.files[0].parent == root and batch.relative_parent == Path():
        only = batch.files[0]
        target = f"{INPUT_ROOT}/0/{only.name}"
        return (Mount(only.absolute(), target),), lambda path: target
    target_root = f"{INPUT_ROOT}/0"
    return (Mount(root.absolute(), target_root),), lambda path: f"{target_root}/{path.relative_to(root).as_posix()}"


def _prepare_task_dir(path: Path) -> None:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    if os.getuid() == 0:  # the container runs as nobody, never root: give it (only) this folder
        uid, gid = container_user()
        os.chown(path, uid, gid)


def _publish(found: dict[str, list[Path]], destination: Path) -> list[Path]:
    """Move outputs into place with rename (same filesystem: atomic per file), owned by the caller."""
    destination.mkdir(parents=True, exist_ok=True)
    published = []
    for paths in found.values():
        for path in paths:
            target = destination / path.name
            path.replace(target)
            if os.getuid() == 0:
                with contextlib.suppress(OSError):
                    os.chown(target, 0, 0)
            published.append(target)
    return published


def _status(result: RunResult, descriptor: Descriptor, problems: list[str], found: dict[str, list[Path]]) -> str:
    if result.timed_out:
        return "failed"
    partial_codes = set(descriptor.custom.get("partial-exit-codes", []))
    produced = any(found.values())
    if result.exit_code == 0 and not problems:
        return "ok"
    if result.exit_code in partial_codes and produced and not any("outside" in p for p in problems):
        return "partial"
    return "failed"


def run_tool(request: ToolRunRequest, on_task: Callable[[TaskOutcome], None] = lambda _t: None) -> ToolRunReport:
    """Run the tool; with ``request.workspace``, under its lock and recorded in its index."""
    if request.workspace is None or request.dry_run:
        return _run_tool(request, on_task)
    workspace = open_workspace(request.workspace)
    with locked(workspace):
        index = Index(workspace.index_path)
        run_id = new_run_id()
        try:
            index.start_run(
                run_id,
                "tool",
                request.tool,
                request.engine,
                "",
                "inline",
                str(request.out_dir),
                {"in": str(request.source), "params": request.params},
            )
            status = "failed"
            try:
                report = _run_tool(request, on_task)
                status = "ok" if report.ok else "failed"
                report.run_id = run_id
                audit = AuditLog(workspace.root / "audit", load_keys())
                _record(index, run_id, report, audit)
                audit.checkpoint()
            finally:
                index.end_run(run_id, status)
            index.db.execute(
                "UPDATE runs SET engine = ?, engine_why = ? WHERE id = ?", (report.engine, report.engine_why, run_id)
            )
        finally:
            index.close()
    return report


def _record(index: Index, run_id: str, report: ToolRunReport, audit: AuditLog) -> None:
    image = report.image.digest if report.image else None
    for task in report.tasks:
        for path in task.inputs:
            obj = {**identifiers(path), "path": str(path.absolute()), "sha256": sha256_file(path)}
            audit.append("read", obj=obj, tool=report.tool, image=image, run=run_id)
        audit.append(
            "execute",
            obj={"task": task.task_id, "step": report.tool},
            tool=report.tool,
            image=image,
            run=run_id,
            outcome=task.status,
        )
        for path in task.outputs:
            obj = {**identifiers(path), "path": str(path.absolute()), "sha256": sha256_file(path)}
            audit.append("export", obj=obj, tool=report.tool, image=image, run=run_id)
        index.record_attempt(
            run_id,
            report.tool,
            task.task_id,
            task.task_id,
            1,
            task.status,
            cached=False,
            started=None,
            ended=None,
            exit_code=task.exit_code,
            engine=report.engine,
            image_digest=report.image.digest if report.image else None,
            log_dir=str(task.log_dir) if task.log_dir else None,
            inputs=[],
            outputs=[{"name": p.name, "sha256": sha256_file(p)} for p in task.outputs],
            message="; ".join(task.problems),
        )


def _run_tool(request: ToolRunRequest, on_task: Callable[[TaskOutcome], None]) -> ToolRunReport:
    descriptor = load_descriptor(request.tool)
    input_id = batch_input_id(descriptor)
    if input_id in request.params:
        raise UsageError(f"input {input_id!r} comes from --in; do not also give it with -p")
    build_invocation(descriptor, {**request.params, input_id: [str(request.source)]})  # validate before work
    resolution = resolve_engine(request.engine)
    engine = resolution.engine
    image, is_pinned = resolve_step_image(descriptor, engine, request.allow_unpinned)
    report = ToolRunReport(
        descriptor.name, descriptor.digest, engine.name, resolution.why, image, is_pinned, permissions_of(descriptor)
    )
    if image is not None and not is_pinned:
        report.warnings.append(f"running unpinned image {image.name} ({image.digest[:19]})")
    batches, report.skipped = plan_batches(request.source, request.batch_size)
    if not batches:
        raise UsageError(f"{request.source}: no DICOM files to process")
    tasks_root = request.out_dir / TASKS_FOLDER
    for batch in batches:
        outcome = _run_batch(request, descriptor, engine, image, report.permissions, batch, input_id, tasks_root)
        report.tasks.append(outcome)
        on_task(outcome)
    with contextlib.suppress(OSError):
        tasks_root.rmdir()  # only if empty: failed tasks stay for inspection
    return report


def _run_batch(
    request: ToolRunRequest,
    descriptor: Descriptor,
    engine: Engine,
    image: ImageRef | None,
    permissions: Permissions,
    batch: Batch,
    input_id: str,
    tasks_root: Path,
) -> TaskOutcome:
    task_id = _task_id(descriptor, batch, request.params)
    invocation = build_invocation(descriptor, {**request.params, input_id: [str(f) for f in batch.files]})
    extra = file_parameters(descriptor, invocation.values, exclude=input_id)
    mounts, path_map = _mounts_and_paths(batch, engine.isolates, extra)
    argv = build_argv(descriptor, invocation, path_map)
    task_dir = tasks_root / task_id
    labels = {f"{LABEL_PREFIX}.task": task_id, f"{LABEL_PREFIX}.tool": descriptor.name}
    spec = TaskSpec(
        argv, task_dir.absolute(), mounts, image, permissions, Resources(timeout_s=request.timeout_s), labels
    )
    if request.dry_run:
        return TaskOutcome(task_id, len(batch.files), "planned", engine.command(spec))
    _prepare_task_dir(task_dir)
    result = engine.run(spec)
    found, problems = collect_outputs(task_dir, output_patterns(descriptor, invocation))
    if result.timed_out:
        problems.append(f"timed out after {request.timeout_s:g} s")
    status = _status(result, descriptor, problems, found)
    outcome = TaskOutcome(
        task_id,
        len(batch.files),
        status,
        result.command,
        result.exit_code,
        result.seconds,
        problems=problems,
        stderr_tail=result.stderr.decode(errors="replace")[-_TAIL:],
        inputs=list(batch.files),
    )
    if status in ("ok", "partial"):
        outcome.outputs = _publish(found, request.out_dir / batch.relative_parent)
    if status == "ok":
        shutil.rmtree(task_dir, ignore_errors=True)
    else:
        (task_dir / "stdout.log").write_bytes(result.stdout)
        (task_dir / "stderr.log").write_bytes(result.stderr)
        outcome.log_dir = task_dir
    return outcome
