"""``dicompose gc``: free a workspace of what its recorded runs no longer need.

A workspace keeps every task's outputs (the cache that makes a rerun a no-op), logs and launch folders; a
cohort processed with several parameter sets, or interrupted and resumed, leaves folders no later run uses.
The rule: for each target (a pipeline file or a tool), the task folders and launch folders of its latest
``keep`` runs stay (a failed attempt's too: its logs say why it failed), so rerunning any of those is still a
no-op and their logs stay readable; everything else in ``work/`` and ``launches/`` goes — folders only older
runs used, incomplete folders no kept run recorded (a killed attempt's) and folders no run recorded. Published outputs
are hard links or copies in ``--out``: they stay. Older runs keep their records, marked as collected.
"""

from __future__ import annotations

import os
import shutil
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from dicompose.records.index import Index
from dicompose.records.workspace import DONE, Workspace


@dataclass(frozen=True)
class GcPlan:
    """What a collection removes, and why it may."""

    task_dirs: tuple[Path, ...]
    launch_dirs: tuple[Path, ...]
    collected_runs: tuple[str, ...]  # runs whose folders go (their records stay)
    kept_runs: tuple[str, ...]
    bytes: int = 0
    details: dict[str, int] = field(default_factory=dict)  # task folders by reason


def plan_gc(workspace: Workspace, index: Index, keep: int = 1) -> GcPlan:
    """The folders to remove so that the latest ``keep`` runs of each target keep all they use."""
    by_target: dict[tuple[str, str], list[str]] = defaultdict(list)
    for run in index.runs():  # oldest first
        by_target[(run["kind"], run["target"])].append(run["id"])
    kept = [run_id for runs in by_target.values() for run_id in runs[len(runs) - keep :]] if keep > 0 else []
    collected = [run_id for runs in by_target.values() for run_id in runs if run_id not in kept]
    needed = {key for run_id in kept for key in index.task_keys(run_id)}
    reasons: dict[str, int] = defaultdict(int)
    task_dirs = []
    for folder in sorted((workspace.root / "work").glob("*/*")):
        if not folder.is_dir():
            continue
        if folder.name in needed:
            continue
        reasons["older runs or none" if (folder / DONE).exists() else "incomplete"] += 1
        task_dirs.append(folder)
    launch_dirs = [
        folder
        for folder in sorted((workspace.root / "launches").glob("*"))
        if folder.is_dir() and not any(folder.name.startswith(run_id + "-") for run_id in kept)
    ]
    size = sum(_size(folder) for folder in [*task_dirs, *launch_dirs])
    return GcPlan(tuple(task_dirs), tuple(launch_dirs), tuple(collected), tuple(kept), size, dict(reasons))


def apply_gc(plan: GcPlan, index: Index) -> None:
    """Remove the planned folders (the caller holds the workspace lock) and mark the collected runs."""
    for folder in [*plan.task_dirs, *plan.launch_dirs]:
        shutil.rmtree(folder, ignore_errors=True)
    index.mark_collected(plan.collected_runs)


def _size(folder: Path) -> int:
    """Bytes of the files only this folder holds (a file hard-linked into --out is freed only there)."""
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            try:
                info = (Path(root) / name).lstat()
            except OSError:
                continue
            if info.st_nlink == 1:
                total += info.st_size
    return total
