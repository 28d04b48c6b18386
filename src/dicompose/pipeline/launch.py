"""One launch, start to finish, wherever a scheduler runs it: a pack of tasks of one step in one container.

Everything a worker needs travels in a picklable :class:`LaunchRequest`; the result is a small
:class:`LaunchResult` with one :class:`TaskResult` per task. A tool that declares the pack contract
(``custom.dicompose.pack``, see ``tools/manifest.py``) gets a manifest and writes each task's outputs into that
task's own folder; any other tool gets one task per launch, its files on the command line. Each task folder
gets its ``done`` marker last, after fsync, only if the task finished (see ``records.workspace``).
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import shutil
import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dicompose.descriptors.config_files import config_files
from dicompose.descriptors.descriptor import Descriptor
from dicompose.descriptors.invocation import (
    build_argv,
    build_invocation,
    collect_outputs,
    environment_of,
    file_parameters,
    output_patterns,
    with_batch,
)
from dicompose.engines.base import ImageRef, Mount, Permissions, Resources, RunResult, TaskSpec
from dicompose.engines.hardening import INPUT_ROOT, LABEL_PREFIX, OUTPUT_DIR, container_user
from dicompose.engines.registry import engine_named
from dicompose.errors import EngineError
from dicompose.pipeline.early_seal import EarlySeal
from dicompose.records.workspace import Workspace, finish_task
from dicompose.tools.manifest import RESULT_NAME, SCHEMA

TASKS_ROOT = "/dicompose/tasks"
MANIFEST_NAME = "manifest.json"
_TAIL = 2000
_RESULT_LIMIT = 1 << 20


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


class _Paths:
    """Host path → the path the step sees, through read-only mounts at neutral paths (no patient data in them).

    The batch files' folders are mounted (one mount per folder, whatever the number of files); any other File
    parameter (a key, a table) is mounted as that one file, so its folder's other contents stay invisible.
    """

    def __init__(
        self, files: list[str], extra: list[str], isolates: bool, staged: Mapping[str, str] | None = None
    ) -> None:
        self.isolates = isolates
        # a symbolic link (one the walk allowed) is mounted as its target file under the link's own name: the
        # container sees what the local engine reads, named as the host tool names it
        links = {f for f in files if Path(f).is_symlink()} if isolates else set()
        folders = sorted({str(Path(f).parent) for f in files if f not in links})
        folder_mounts = [Mount(Path(folder), f"{INPUT_ROOT}/{i}") for i, folder in enumerate(folders)]
        singles = sorted(set(extra))
        targets = {f: f"{INPUT_ROOT}/p{i}/{Path(f).name}" for i, f in enumerate(singles)}
        targets.update({f: f"{INPUT_ROOT}/l{i}/{Path(f).name}" for i, f in enumerate(sorted(links))})
        staged = {**(staged or {}), **{f: os.path.realpath(f) for f in links}}
        # a private file is mounted from a copy the container user may read
        file_mounts = [Mount(Path(staged.get(f, f)), target) for f, target in targets.items()]
        self.mounts = (*folder_mounts, *file_mounts)
        self._folders = {m.source.as_posix(): m.target for m in folder_mounts}
        self._files = {Path(f).as_posix(): target for f, target in targets.items()}

    def __call__(self, path: Path) -> str:
        if not self.isolates:
            return str(path)
        absolute = path.absolute()
        return self._files.get(absolute.as_posix()) or f"{self._folders[absolute.parent.as_posix()]}/{absolute.name}"

    def to_host(self, text: str) -> str:
        """Container paths in a message → host paths (errors name the user's files, not ours)."""
        for target, source in sorted(self._folders.items(), key=lambda item: -len(item[1])):
            text = text.replace(source + "/", target + "/")
        for target, source in self._files.items():
            text = text.replace(source, target)
        return text


def launch_spec(
    request: LaunchRequest,
    workspace: Workspace,
    isolates: bool,
    *,
    write_manifest: bool = True,
    staged: Mapping[str, str] | None = None,
) -> tuple[TaskSpec, _Paths]:
    """The engine-neutral description of this launch (pure but for the manifest file it writes)."""
    descriptor, tasks = request.descriptor, request.tasks
    all_files = [f for t in tasks for f in t.files]
    invocation = build_invocation(
        descriptor,
        with_batch(descriptor, request.batch_input, request.params, all_files[:1] or ["-"]),
    )
    extra = file_parameters(descriptor, invocation.values, exclude=request.batch_input)
    paths = _Paths(all_files, extra, isolates, staged)
    labels = {
        f"{LABEL_PREFIX}.run": request.run_id,
        f"{LABEL_PREFIX}.task": request.launch_id,
        f"{LABEL_PREFIX}.tool": descriptor.name,
    }
    environment = {"DICOMPOSE_WORKERS": str(request.processes), "OMP_NUM_THREADS": str(request.processes)}
    timeout = request.resources.timeout_s
    if timeout is not None:  # per task; a pack's tasks share its processes
        timeout *= math.ceil(len(tasks) / max(1, request.processes))
    cpus = request.resources.cpus or float(request.processes)  # a step's own limit, else what it was granted
    resources = Resources(request.resources.memory_bytes, cpus, timeout)
    flag = descriptor.manifest_flag
    if flag is None:
        (task,) = tasks
        invocation = build_invocation(
            descriptor,
            with_batch(descriptor, request.batch_input, request.params, list(task.files)),
        )
        argv = build_argv(descriptor, invocation, paths)
        workdir = workspace.task_dir(task.key) / "out"
        environment.update(environment_of(descriptor, invocation, paths))
        for name, text in config_files(descriptor, invocation, paths).items() if write_manifest else ():
            (workdir / name).parent.mkdir(parents=True, exist_ok=True)
            (workdir / name).write_text(text)  # the tool reads it from its working folder, as under bosh
        spec = TaskSpec(argv, workdir, paths.mounts, request.image, request.permissions, resources, labels, environment)
        return spec, paths
    folder = workspace.launch_dir(request.launch_id)
    outs, entries = [], []
    for number, task in enumerate(tasks):
        host_out = workspace.task_dir(task.key) / "out"
        target = f"{TASKS_ROOT}/{number}/out" if isolates else str(host_out)
        outs.append(Mount(host_out, target, read_only=False))
        entries.append({"id": task.key[:16], "inputs": [paths(Path(f)) for f in task.files], "out": target})
    manifest = {"schema": SCHEMA, "tasks": entries}
    if write_manifest:
        (folder / MANIFEST_NAME).write_text(json.dumps(manifest, indent=1))
    manifest_path = f"{OUTPUT_DIR}/{MANIFEST_NAME}" if isolates else str(folder / MANIFEST_NAME)
    argv = build_argv(descriptor, invocation, paths, substitute={request.batch_input: [flag, manifest_path]})
    mounts = (*paths.mounts, *outs) if isolates else ()
    spec = TaskSpec(
        argv, folder, mounts, request.image, request.permissions, resources, labels, environment, workdir_read_only=True
    )
    return spec, paths


def execute_launch(request: LaunchRequest) -> LaunchResult:
    """Run one launch. Never raises for a failing step or engine: failures come back as task results."""
    if request.delay_s:
        time.sleep(request.delay_s)
    workspace = Workspace(Path(request.workspace))
    engine = engine_named(request.engine)
    folders = [workspace.fresh_task_dir(t.key) for t in request.tasks]
    if request.packed:
        workspace.fresh_launch_dir(request.launch_id)
    started = time.time()
    hand_over = engine.isolates and os.getuid() == 0  # containers never run as root: lend them the out folders
    staging = workspace.root / "staged" / request.launch_id
    staged = _stage_files(request, staging) if hand_over else {}
    spec, paths = launch_spec(request, workspace, engine.isolates, staged=staged)
    if hand_over:
        for folder in folders:
            os.chown(folder / "out", *container_user())
    from dicompose.dicom.identifiers import file_facts, identifiers

    pool = _facts_pool()
    # the inputs' identifiers (for the audit log) are read while the tool starts, not after it ends
    input_ids = {f: pool.submit(identifiers, Path(f)) for t in request.tasks for f in t.files}
    outs = [f / "out" for f in folders] if request.packed else []
    early = EarlySeal(outs, pool, file_facts, _take_back if hand_over else None)
    try:
        with early:
            result: RunResult | None = engine.run(spec)
        message = ""
    except EngineError as exc:
        result, message = None, str(exc)
    finally:
        if hand_over:
            for folder in folders:
                _take_back(folder / "out")
        shutil.rmtree(staging, ignore_errors=True)
    log_folder = spec.workdir if request.packed else folders[0]
    if result is not None:
        (log_folder / "stdout").write_bytes(result.stdout)
        (log_folder / "stderr").write_bytes(result.stderr)
    else:
        (log_folder / "stderr").write_text(message + "\n")
    task_results = tuple(
        _finish_task(request, workspace, task, folder, log_folder, result, message, paths, started, early, input_ids)
        for task, folder in zip(request.tasks, folders, strict=True)
    )
    command = result.command if result is not None else engine.command(spec)
    exit_code = result.exit_code if result is not None else None
    return LaunchResult(request.launch_id, exit_code, started, time.time(), command, task_results, message)


@functools.cache
def _facts_pool() -> ThreadPoolExecutor:
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
        _take_back(out)  # written as the container user
    recovered = RunResult(0, b"", b"", 0.0, request.engine, ["(recovered after the launch was killed)"])
    paths = _Paths(list(task.files), [], isolates)
    result = _finish_task(request, workspace, task, folder, folder, recovered, "", paths, time.time())
    return result if result.status != "failed" else None


def _stage_files(request: LaunchRequest, folder: Path) -> dict[str, str]:
    """Copies of the launch's File parameters (a key, a table) that the container user may read, 0400: the
    container never runs as root, and loosening the host file (a 0600 key) is not ours to do. Removed when the
    launch ends; the workspace they sit in is private (0700)."""
    invocation = build_invocation(
        request.descriptor,
        with_batch(request.descriptor, request.batch_input, request.params, ["-"]),
    )
    staged: dict[str, str] = {}
    for number, path in enumerate(
        sorted(set(file_parameters(request.descriptor, invocation.values, request.batch_input)))
    ):
        if not Path(path).is_file():
            continue  # the tool says what is missing
        copy = folder / str(number) / Path(path).name
        copy.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        shutil.copyfile(path, copy)
        os.chown(copy, *container_user())
        copy.chmod(0o400)
        staged[path] = str(copy)
    return staged


def _take_back(out: Path) -> None:
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


def _finish_task(
    request: LaunchRequest,
    workspace: Workspace,
    task: TaskItem,
    folder: Path,
    log_folder: Path,
    result: RunResult | None,
    message: str,
    paths: _Paths,
    started: float,
    early: EarlySeal | None = None,
    input_ids: Mapping[str, Future[dict[str, str | None]]] | None = None,
) -> TaskResult:
    if result is None:
        return TaskResult(
            task.key, "failed", None, started, time.time(), problems=(message,), log_dir=str(folder), engine_error=True
        )
    out = folder / "out"
    code, problems, skipped, stopped = _task_exit(request, out, result)
    problems = [paths.to_host(p) for p in problems]
    skipped = [paths.to_host(p) for p in skipped]
    invocation = build_invocation(
        request.descriptor,
        with_batch(request.descriptor, request.batch_input, request.params, list(task.files)),
    )
    found, output_problems = collect_outputs(out, output_patterns(request.descriptor, invocation))
    all_skipped = code == 0 and bool(skipped) and not any(found.values()) and not problems
    if not all_skipped:  # a task whose every file was skipped owes no output
        problems += output_problems
    if result.timed_out and code is None:
        problems.append(f"timed out after {request.resources.timeout_s:g} s per task")
    timed_out = result.timed_out and code is None
    status = "skipped" if all_skipped else _status(code, timed_out, request.descriptor, problems, found)
    if stopped:  # cut short by a full or read-only workspace: never sealed, it runs again once that is fixed
        status = "failed"
    from dicompose.dicom.identifiers import file_facts, identifiers

    produced = list(dict.fromkeys(p for files in found.values() for p in files))  # a file two outputs name: once
    facts = {p: known for p in produced if early is not None and (known := early.facts(p)) is not None}
    unread = [p for p in produced if p not in facts]
    facts.update(zip(unread, _facts_pool().map(file_facts, unread), strict=True))  # each output read once
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
        record = {
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
        finish_task(folder, record, synced=early.synced(folder) if early is not None else frozenset())
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
