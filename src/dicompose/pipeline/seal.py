"""Sealing a task once its launch has ended: its verdict (exit code or result file, problems, the outputs its
descriptor promises), its outputs' facts (sha256 and identifiers, read once, or early: ``early_seal``), its
record and ``done`` marker (``records.workspace.finish_task``). A task that finished inside a pack whose
dicompose was killed is sealed the same way on the next run (:func:`recover_task`) instead of computed again.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from dicompose.descriptors.descriptor import Descriptor
from dicompose.descriptors.invocation import build_invocation, collect_outputs, output_patterns, with_batch
from dicompose.engines.base import RunResult
from dicompose.pipeline.early_seal import EarlySeal
from dicompose.pipeline.launch_model import LaunchRequest, TaskItem, TaskResult
from dicompose.pipeline.path_map import PathMap
from dicompose.records.workspace import Workspace, finish_task
from dicompose.tools.manifest import RESULT_NAME

_TAIL = 2000
_RESULT_LIMIT = 1 << 20


@functools.cache
def facts_pool() -> ThreadPoolExecutor:
    """Threads that hash a launch's outputs (hashlib lets go of the GIL): the seal of a task of 500 outputs is
    on the run's critical path, between a step's last file and its dependants' start."""
    return ThreadPoolExecutor(max(1, len(os.sched_getaffinity(0))), thread_name_prefix="dicompose-seal")


def recover_task(request: LaunchRequest, workspace: Workspace, isolates: bool) -> TaskResult | None:
    """Seal a task that finished in a packed launch whose dicompose was killed before it could seal it.

    The tool writes a task's result file last, after its outputs; a folder holding one (and no ``done``) is a
    finished computation for this very cache key, so it is checked and sealed instead of computed again. The
    leftover container or process was stopped before this is asked (``Engine.cleanup``). None: run it.
    """
    (task,) = request.tasks
    folder = workspace.task_dir(task.key)
    out = folder / "out"
    if not request.packed or not (out / RESULT_NAME).is_file():
        return None
    if isolates and os.getuid() == 0:
        take_back(out)  # written as the container user
    recovered = RunResult(0, b"", b"", 0.0, request.engine, ["(recovered after the launch was killed)"])
    paths = PathMap(list(task.files), [], isolates)
    result = seal_task(request, task, folder, folder, recovered, "", paths, time.time())
    return result if result.status != "failed" else None


def take_back(out: Path) -> None:
    """Own (as root) what the container user wrote; files already ours keep their ctime (the early seal's check)."""
    for path in [out, *out.rglob("*")]:
        with contextlib.suppress(OSError):
            st = os.lstat(path)
            if st.st_uid or st.st_gid:
                os.chown(path, 0, 0, follow_symlinks=False)


def _task_exit(request: LaunchRequest, out: Path, result: RunResult) -> tuple[int | None, list[str], list[str], str]:
    """(exit code, problems, skipped, why it stopped) of one task: its result file in a pack, the launch's exit
    code otherwise."""
    if not request.packed:
        return (None if result.timed_out else result.exit_code), [], [], ""
    path = out / RESULT_NAME
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)  # written by the tool: never follow its links
        with os.fdopen(fd, "rb") as fh:
            doc = json.loads(fh.read(_RESULT_LIMIT))
        path.unlink()
        code = int(doc["exit_code"])
        problems, skipped = [str(p) for p in doc.get("problems", [])], [str(p) for p in doc.get("skipped", [])]
        return code, problems, skipped, str(doc.get("stopped") or "")
    except (OSError, ValueError, KeyError, TypeError):
        return None, [f"the launch ended (exit {result.exit_code}) before this task finished"], [], ""


def seal_task(
    request: LaunchRequest,
    task: TaskItem,
    folder: Path,
    log_folder: Path,
    result: RunResult | None,
    message: str,
    paths: PathMap,
    started: float,
    early: EarlySeal | None = None,
    input_ids: Mapping[str, Future[dict[str, str | None]]] | None = None,
) -> TaskResult:
    """The task's result after its launch; sealed (record, ``done``) unless it failed. ``message``: why the
    engine could not run the launch at all (``result`` None); ``early``: its outputs' facts read while the
    launch ran; ``input_ids``: its inputs' identifiers, read while the launch started."""
    if result is None:
        return TaskResult(
            task.key, "failed", None, started, time.time(), problems=(message,), log_dir=str(folder), engine_error=True
        )
    out = folder / "out"
    code, problems, skipped, stopped = _task_exit(request, out, result)
    problems, skipped = [paths.to_host(p) for p in problems], [paths.to_host(p) for p in skipped]
    found, status = _verdict(request, task, out, result, code, problems, skipped, stopped)
    facts = _output_facts(found, early)
    outputs = tuple(
        {"id": output_id, "name": p.relative_to(out).as_posix(), "sha256": facts[p][0]}
        for output_id, files in found.items()
        for p in files
    )
    if request.packed:
        for name in ("stdout", "stderr"):  # the launch's logs, shared by its tasks (a link, not a copy)
            with contextlib.suppress(OSError):
                os.link(log_folder / name, folder / name)
    if status != "failed":
        record = _record(request, task, result, outputs, skipped, status, code)
        record["problems"] = problems  # a partial task's failed files: said again when it is a cache hit
        finish_task(folder, record, synced=early.synced(folder) if early is not None else frozenset())
    from dicompose.dicom.identifiers import identifiers

    # a pack's stderr belongs to every task in it: shown with a task only if it did not finish (no result file)
    tail = "" if request.packed and code is not None else result.stderr.decode(errors="replace")[-_TAIL:]
    return TaskResult(
        task.key,
        status,
        code,
        started,
        time.time(),
        outputs,
        tuple(problems),
        tuple(skipped),
        paths.to_host(stopped),
        paths.to_host(tail),
        str(folder),
        input_ids=tuple(
            input_ids[f].result() if input_ids is not None and f in input_ids else identifiers(Path(f))
            for f in task.files
        ),
        output_ids=tuple(facts[p][1] for files in found.values() for p in files),  # one per entry of outputs
    )


def _verdict(
    request: LaunchRequest,
    task: TaskItem,
    out: Path,
    result: RunResult,
    code: int | None,
    problems: list[str],
    skipped: list[str],
    stopped: str,
) -> tuple[dict[str, list[Path]], str]:
    """(the outputs found per output id, the task's status); ``problems`` gets what is missing or wrong."""
    invocation = build_invocation(
        request.descriptor,
        with_batch(request.descriptor, request.batch_input, request.params, list(task.files)),
    )
    found, output_problems = collect_outputs(out, output_patterns(request.descriptor, invocation))
    all_skipped = code == 0 and bool(skipped) and not any(found.values()) and not problems
    if not all_skipped:  # a task whose every file was skipped owes no output
        problems += output_problems
    timed_out = result.timed_out and code is None
    if timed_out:
        problems.append(f"timed out after {request.resources.timeout_s:g} s per task")
    status = "skipped" if all_skipped else _status(code, timed_out, request.descriptor, problems, found)
    if stopped:  # cut short by a full or read-only workspace: never sealed, it runs again once that is fixed
        status = "failed"
    return found, status


def _output_facts(
    found: dict[str, list[Path]], early: EarlySeal | None
) -> dict[Path, tuple[str, dict[str, str | None]]]:
    """(sha256, identifiers) of every output, each read once (a file two outputs name too), or known early."""
    from dicompose.dicom.identifiers import file_facts

    produced = list(dict.fromkeys(p for files in found.values() for p in files))
    facts = {p: known for p in produced if early is not None and (known := early.facts(p)) is not None}
    unread = [p for p in produced if p not in facts]
    facts.update(zip(unread, facts_pool().map(file_facts, unread), strict=True))
    return facts


def _record(
    request: LaunchRequest,
    task: TaskItem,
    result: RunResult,
    outputs: tuple[dict[str, str], ...],
    skipped: list[str],
    status: str,
    code: int | None,
) -> dict[str, Any]:
    """The task's ``task.json``: what a cache hit needs to stand in for running it again."""
    return {
        "key": task.key,
        "step": request.step,
        "label": task.label,
        "tool": request.descriptor.name,
        "descriptor": request.descriptor.digest,
        "engine": request.engine,
        "image": request.image.digest if request.image else None,
        "params": request.params,
        "inputs": list(task.inputs),
        "outputs": list(outputs),
        "skipped": skipped,
        "status": status,
        "exit_code": code,
        "launch": request.launch_id,
        "command": result.command,
        "seconds": round(result.seconds, 3),
        "run_id": request.run_id,
    }


def _status(
    exit_code: int | None, timed_out: bool, descriptor: Descriptor, problems: list[str], found: dict[str, list[Path]]
) -> str:
    if timed_out or exit_code is None or any("outside the output folder" in p for p in problems):
        return "failed"
    if exit_code == 0 and not any(p.startswith(("required output", "output ")) for p in problems):
        return "ok"
    if exit_code in set(descriptor.custom.get("partial-exit-codes", [])) and any(found.values()):
        return "partial"
    return "failed"
