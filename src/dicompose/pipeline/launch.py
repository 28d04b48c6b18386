"""One launch, start to finish, wherever a scheduler runs it: a pack of tasks of one step in one container.

Everything a worker needs travels in a picklable :class:`LaunchRequest`; the result is a small
:class:`LaunchResult` with one :class:`TaskResult` per task. A tool that declares the pack contract
(``custom.dicompose.pack``, see ``tools/manifest.py``) gets a manifest and writes each task's outputs into that
task's own folder; any other tool gets one task per launch, its files on the command line. Each task folder
gets its ``done`` marker last, after fsync, only if the task finished (see ``records.workspace``).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Mapping
from pathlib import Path

from dicompose.descriptors.config_files import config_files
from dicompose.descriptors.invocation import (
    build_argv,
    build_invocation,
    environment_of,
    file_parameters,
    with_batch,
)
from dicompose.engines.base import Mount, Resources, RunResult, TaskSpec
from dicompose.engines.hardening import LABEL_PREFIX, OUTPUT_DIR, TASKS_ROOT, container_user
from dicompose.engines.registry import engine_named
from dicompose.errors import EngineError
from dicompose.pipeline.early_seal import EarlySeal
from dicompose.pipeline.launch_model import LaunchRequest, LaunchResult, TaskItem, TaskResult
from dicompose.pipeline.path_map import PathMap
from dicompose.pipeline.seal import facts_pool, recover_task, seal_task, take_back
from dicompose.records.workspace import Workspace
from dicompose.tools.manifest import SCHEMA

__all__ = ["LaunchRequest", "LaunchResult", "TaskItem", "TaskResult", "execute_launch", "launch_spec", "recover_task"]

MANIFEST_NAME = "manifest.json"


def launch_spec(
    request: LaunchRequest,
    workspace: Workspace,
    isolates: bool,
    *,
    write_manifest: bool = True,
    staged: Mapping[str, str] | None = None,
) -> tuple[TaskSpec, PathMap]:
    """The engine-neutral description of this launch (pure but for the manifest file it writes)."""
    descriptor, tasks = request.descriptor, request.tasks
    all_files = [f for t in tasks for f in t.files]
    invocation = build_invocation(
        descriptor,
        with_batch(descriptor, request.batch_input, request.params, all_files[:1] or ["-"]),
    )
    extra = file_parameters(descriptor, invocation.values, exclude=request.batch_input)
    paths = PathMap(all_files, extra, isolates, staged)
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
    resources = Resources(request.resources.memory_bytes, cpus, timeout, request.resources.gpus)
    scratch = workspace.root / "staged" / request.launch_id  # the engine's, for this launch (removed after it)
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
        spec = TaskSpec(
            argv,
            workdir,
            paths.mounts,
            request.image,
            request.permissions,
            resources,
            labels,
            environment,
            scratch=scratch,
        )
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
        argv,
        folder,
        mounts,
        request.image,
        request.permissions,
        resources,
        labels,
        environment,
        workdir_read_only=True,
        scratch=scratch,
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

    pool = facts_pool()
    # the inputs' identifiers (for the audit log) are read while the tool starts, not after it ends
    input_ids = {f: pool.submit(identifiers, Path(f)) for t in request.tasks for f in t.files}
    outs = [f / "out" for f in folders] if request.packed else []
    early = EarlySeal(outs, pool, file_facts, take_back if hand_over else None)
    try:
        with early:
            result: RunResult | None = engine.run(spec)
        message = ""
    except EngineError as exc:
        result, message = None, str(exc)
    finally:
        if hand_over:
            for folder in folders:
                take_back(folder / "out")
        shutil.rmtree(staging, ignore_errors=True)
    log_folder = spec.workdir if request.packed else folders[0]
    if result is not None:
        (log_folder / "stdout").write_bytes(result.stdout)
        (log_folder / "stderr").write_bytes(result.stderr)
    else:
        (log_folder / "stderr").write_text(message + "\n")
    task_results = tuple(
        seal_task(request, task, folder, log_folder, result, message, paths, started, early, input_ids)
        for task, folder in zip(request.tasks, folders, strict=True)
    )
    command = result.command if result is not None else engine.command(spec)
    exit_code = result.exit_code if result is not None else None
    return LaunchResult(request.launch_id, exit_code, started, time.time(), command, task_results, message)


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
