"""One task, start to finish, wherever a scheduler runs it: fresh folder, launch, check outputs, mark done.

Everything a worker needs travels in a picklable :class:`TaskRequest`; the result is a small
:class:`TaskResult`. The ``done`` marker is written last, after fsync (see ``records.workspace``).
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dicompose.engines.base import ImageRef, Mount, Permissions, Resources, TaskSpec
from dicompose.engines.hardening import INPUT_ROOT, LABEL_PREFIX, container_user
from dicompose.engines.registry import engine_named
from dicompose.records.hashing import sha256_file
from dicompose.records.workspace import Workspace, finish_task
from dicompose.tools.descriptor import Descriptor
from dicompose.tools.invocation import (
    build_argv,
    build_invocation,
    collect_outputs,
    file_parameters,
    output_patterns,
)

_TAIL = 2000


@dataclass(frozen=True)
class TaskRequest:
    key: str
    run_id: str
    step: str
    label: str
    attempt: int
    workspace: str
    engine: str
    image: ImageRef | None
    descriptor: Descriptor
    batch_input: str
    params: dict[str, Any]
    files: tuple[str, ...]
    inputs: tuple[dict[str, str], ...]  # {"name", "sha256"} for the record
    permissions: Permissions = field(default_factory=Permissions)
    resources: Resources = field(default_factory=Resources)
    delay_s: float = 0.0  # retry backoff, slept by the worker


@dataclass(frozen=True)
class TaskResult:
    key: str
    status: str  # ok | partial | failed
    exit_code: int | None
    started: float
    ended: float
    outputs: tuple[dict[str, str], ...] = ()
    problems: tuple[str, ...] = ()
    stderr_tail: str = ""
    log_dir: str = ""


def _mounts(files: tuple[str, ...]) -> tuple[tuple[Mount, ...], dict[str, str]]:
    """One read-only mount per distinct folder, at neutral paths; host path → container path."""
    folders = sorted({str(Path(f).parent) for f in files})
    mounts = tuple(Mount(Path(folder), f"{INPUT_ROOT}/{i}") for i, folder in enumerate(folders))
    index = {folder: i for i, folder in enumerate(folders)}
    mapping = {str(Path(f).absolute()): f"{INPUT_ROOT}/{index[str(Path(f).parent)]}/{Path(f).name}" for f in files}
    return mounts, mapping


def execute(request: TaskRequest) -> TaskResult:
    """Run one task. Never raises for a failing step: failures come back as a result."""
    if request.delay_s:
        time.sleep(request.delay_s)
    workspace = Workspace(Path(request.workspace))
    folder = workspace.fresh_task_dir(request.key)
    out = folder / "out"
    engine = engine_named(request.engine)
    started = time.time()
    invocation = build_invocation(request.descriptor, {**request.params, request.batch_input: list(request.files)})
    if engine.isolates:
        extra = file_parameters(request.descriptor, invocation.values, exclude=request.batch_input)
        mounts, mapping = _mounts((*request.files, *extra))
        argv = build_argv(request.descriptor, invocation, lambda p: mapping[str(p.absolute())])
        if os.getuid() == 0:
            os.chown(out, *container_user())
    else:
        mounts = ()
        argv = build_argv(request.descriptor, invocation, lambda p: str(p))
    labels = {
        f"{LABEL_PREFIX}.run": request.run_id,
        f"{LABEL_PREFIX}.task": request.key[:16],
        f"{LABEL_PREFIX}.tool": request.descriptor.name,
    }
    spec = TaskSpec(argv, out, mounts, request.image, request.permissions, request.resources, labels)
    try:
        result = engine.run(spec)
    except Exception as exc:  # engine refused (image gone, API error): a failed attempt, not a crash
        (folder / "stderr").write_text(str(exc))
        return TaskResult(request.key, "failed", None, started, time.time(), problems=(str(exc),), log_dir=str(folder))
    if os.getuid() == 0:
        for path in [out, *out.rglob("*")]:
            with contextlib.suppress(OSError):
                os.chown(path, 0, 0, follow_symlinks=False)
    (folder / "stdout").write_bytes(result.stdout)
    (folder / "stderr").write_bytes(result.stderr)
    found, problems = collect_outputs(out, output_patterns(request.descriptor, invocation))
    if result.timed_out:
        problems.append(f"timed out after {request.resources.timeout_s:g} s")
    status = _status(result.exit_code, result.timed_out, request.descriptor, problems, found)
    outputs = tuple(
        {"id": output_id, "name": p.relative_to(out).as_posix(), "sha256": sha256_file(p)}
        for output_id, paths in found.items()
        for p in paths
    )
    ended = time.time()
    if status != "failed":
        record = {
            "key": request.key,
            "step": request.step,
            "label": request.label,
            "tool": request.descriptor.name,
            "descriptor": request.descriptor.digest,
            "engine": request.engine,
            "image": request.image.digest if request.image else None,
            "params": request.params,
            "inputs": list(request.inputs),
            "outputs": list(outputs),
            "status": status,
            "exit_code": result.exit_code,
            "command": result.command,
            "seconds": round(result.seconds, 3),
            "run_id": request.run_id,
        }
        finish_task(folder, record)
    return TaskResult(
        request.key,
        status,
        result.exit_code,
        started,
        ended,
        outputs,
        tuple(problems),
        result.stderr.decode(errors="replace")[-_TAIL:],
        str(folder),
    )


def _status(
    exit_code: int, timed_out: bool, descriptor: Descriptor, problems: list[str], found: dict[str, list[Path]]
) -> str:
    if timed_out or any("outside" in p for p in problems):
        return "failed"
    if exit_code == 0 and not problems:
        return "ok"
    if exit_code in set(descriptor.custom.get("partial-exit-codes", [])) and any(found.values()):
        return "partial"
    return "failed"
