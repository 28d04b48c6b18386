"""Packed launches, the tool's side: one process runs many tasks from a manifest, each into its own folder.

A container start (~0.3 s) and an interpreter start (~0.6 s) are paid once per launch instead of once per
series. The runner writes the manifest (``dicompose.manifest/1``)::

    {"schema": "dicompose.manifest/1",
     "tasks": [{"id": "3fa1…", "inputs": ["/dicompose/in/0/a.dcm", …], "out": "/dicompose/tasks/0/out"}, …]}

For each task in order the tool processes the task's inputs into the task's ``out`` folder (and nowhere else),
then writes ``<out>/.dicompose-result.json`` = ``{"exit_code": 0|1|2, "problems": [one line each]}`` last,
by rename. A task without its result file did not finish: the runner fails that task alone and retries it
alone, while the tasks that finished are kept. A descriptor declares the contract under
``custom.dicompose.pack`` (``{"manifest-flag": "--manifest"}``): the batch input's value-key then becomes
``--manifest PATH``.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dicompose.errors import UsageError

if TYPE_CHECKING:
    from dicompose.tools.batch import Operation

SCHEMA = "dicompose.manifest/1"
RESULT_NAME = ".dicompose-result.json"


@dataclass(frozen=True)
class ManifestTask:
    id: str
    inputs: tuple[Path, ...]
    out: Path


def read_manifest(path: Path) -> list[ManifestTask]:
    """The tasks of a manifest; anything malformed is a usage error naming the file."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"{path}: cannot read the task manifest ({exc})") from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA or not isinstance(doc.get("tasks"), list):
        raise UsageError(f"{path}: not a {SCHEMA} task manifest")
    tasks = []
    for number, item in enumerate(doc["tasks"]):
        try:
            tasks.append(ManifestTask(str(item["id"]), tuple(Path(p) for p in item["inputs"]), Path(item["out"])))
        except (KeyError, TypeError) as exc:
            raise UsageError(f"{path}: task {number} is malformed ({exc})") from None
    return tasks


def write_result(
    out: Path, exit_code: int, problems: list[str], skipped: list[str] | None = None, stopped: str = ""
) -> None:
    """The task's result file, written last and by rename: present means the task finished. ``stopped``: the
    output folder is full or read-only (one line): the launch runs no further task."""
    doc = {"exit_code": exit_code, "problems": problems, "skipped": skipped or [], "stopped": stopped or None}
    fd, tmp = tempfile.mkstemp(prefix=".dicompose-result.", suffix=".partial", dir=out)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(doc, fh)
    Path(tmp).replace(out / RESULT_NAME)


TaskOutcome = tuple[int, list[str], list[str], str]  # exit code, problems, skipped, why it stopped ("" if not)


def run_manifest(path: Path, run_task: Callable[[ManifestTask], TaskOutcome]) -> int:
    """Run the manifest's tasks with ``run_task``; the worst exit code. A task that stopped on a full or
    read-only folder ends the launch: the tasks after it have no result (the runner retries them later)."""
    worst = 0
    for task in read_manifest(path):
        if not task.out.is_dir():
            raise UsageError(f"{path}: task {task.id}: output folder {task.out} does not exist")
        code, problems, skipped, stopped = run_task(task)
        with contextlib.suppress(OSError):  # a full disk may refuse the result file too: no result = not done
            write_result(task.out, code, problems, skipped, stopped)
        worst = max(worst, code)
        if stopped:
            break
    return worst


def run_operation(path: Path, operation: Operation, workers: int) -> int:
    """A built-in tool's ``--manifest`` mode: the batch runner once per task, into the task's own folder."""
    from dicompose.tools.batch import Status, run_batch

    def run_task(task: ManifestTask) -> TaskOutcome:
        # a task's files come from folders the user named: what the tool does not handle is skipped, as in a
        # folder walk (a study folder holds SR, RT structure sets, colour images...)
        summary = run_batch(list(task.inputs), operation, task.out, workers=workers, walked=True)
        failed = [r.message for r in summary.results if r.status is Status.FAILED]
        skipped = [r.message for r in summary.results if r.status is Status.SKIPPED]
        return (1 if failed or summary.stopped else 0), failed, skipped, summary.stopped

    return run_manifest(path, run_task)
