"""Packing ready tasks into launches under a core budget (pure: unit-tested without any engine).

The task (one series, or a chunk of a folder) is the unit of caching and retry; the launch is the unit of
start-up cost (~0.3 s for a container, ~0.6 s for an interpreter that imports pydicom and numpy). So the
runner starts as few launches as keep every core busy: with ``free`` cores and enough ready tasks it starts
``free`` packs of one process each, balanced by file count; with fewer ready tasks than free cores each task
gets its own launch and the cores are shared among them (processes inside the launch). Scheduler workers ×
processes per launch never exceed the budget.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

#: Files per launch at most: bounds how long a launch runs before its results (and dependants) move on.
MAX_PACK_FILES = 2000


@dataclass(frozen=True)
class Candidate:
    """A ready task, as packing sees it."""

    files: int
    alone: bool = False  # a retry runs alone, so one bad task cannot fail its pack again


@dataclass(frozen=True)
class Plan:
    tasks: tuple[int, ...]  # indices into the candidates
    processes: int


def processes_for(cpus: float | None, budget: int) -> int | None:
    """Processes a step's launch must get if its ``resources.cpus`` says so (within the budget)."""
    if cpus is None:
        return None
    return max(1, min(budget, math.ceil(cpus)))


def plan_launches(
    candidates: list[Candidate],
    free: int,
    *,
    budget: int,
    packable: bool,
    cpus: float | None = None,
    max_tasks: int | None = None,
    max_files: int = MAX_PACK_FILES,
    per_launch: int | None = None,
) -> list[Plan]:
    """Launches to start now from ``candidates`` with ``free`` of ``budget`` cores idle (maybe none);
    ``per_launch``: the most cores one launch can have (a SLURM worker job's), where the budget spans several."""
    if free < 1 or not candidates:
        return []
    fixed = processes_for(cpus, min(budget, per_launch or budget))
    if fixed is not None:
        if fixed > free:
            return []  # wait until enough cores are idle
        slots, processes = free // fixed, fixed
    else:
        slots, processes = min(free, len(candidates)), 0
    alone = [i for i, c in enumerate(candidates) if c.alone or not packable]
    packs: list[list[int]] = [[i] for i in alone[:slots]]
    rest = [i for i, c in enumerate(candidates) if not (c.alone or not packable)]
    bins = slots - len(packs)
    if bins > 0 and rest:
        packs += _balanced(candidates, rest, bins, max_tasks, max_files)
    if processes == 0:
        processes = max(1, free // len(packs)) if packs else 1
        processes = min(processes, per_launch or processes)
    return [Plan(tuple(pack), processes) for pack in packs if pack]


def _balanced(
    candidates: list[Candidate], chosen: list[int], bins: int, max_tasks: int | None, max_files: int
) -> list[list[int]]:
    """Longest-first into the emptiest bin; tasks that fit no bin wait for a later launch."""
    bins = min(bins, len(chosen))
    heap = [(0, number) for number in range(bins)]
    packs: list[list[int]] = [[] for _ in range(bins)]
    for index in sorted(chosen, key=lambda i: -candidates[i].files):
        size = candidates[index].files
        load, number = heapq.heappop(heap)
        full = (max_tasks is not None and len(packs[number]) >= max_tasks) or (
            packs[number] and load + size > max_files
        )
        if not full:
            packs[number].append(index)
            load += size
        heapq.heappush(heap, (load, number))
    return [sorted(pack) for pack in packs]
