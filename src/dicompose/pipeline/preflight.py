"""What a run would trip over that the pipeline file alone cannot tell: resources this machine cannot give, and
images the engine does not have. ``dicompose check`` reports these with the pipeline's own problems, all at
once; ``dicompose run`` refuses on them before anything runs (a step asking 10 TB of memory would otherwise be
retried against Docker's refusal, and a missing image found one step in)."""

from __future__ import annotations

import os
from collections.abc import Sequence

from dicompose.engines.base import Engine
from dicompose.errors import UsageError
from dicompose.pipeline.graph import PipelineGraph, line_at
from dicompose.pipeline.images import resolve_step_image

#: Schedulers whose workers are this machine: resources are judged against it.
_THIS_MACHINE = ("local",)


def machine_memory() -> int:
    """Physical memory of this machine, in bytes (0 where the OS does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 0


def machine_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def resource_problems(graph: PipelineGraph, scheduler: str, slurm: Sequence[str] = ()) -> list[str]:
    """Steps asking more CPUs, memory or GPUs than the scheduler's workers have: this machine, for ``local``;
    each worker job, for ``slurm`` (one pool of identical jobs, ``--slurm`` over ``[slurm]``: a step that needs
    more than a job has would wait forever); another Dask cluster judges its own requests."""
    if scheduler == "slurm":
        from dicompose.config import load_config
        from dicompose.schedulers.slurm import options_from

        options = options_from(list(slurm), load_config().get("slurm", {}))
        cores, memory, gpus = options.cores, options.memory_bytes, options.gpus
        has = "each worker job has"
    elif scheduler in _THIS_MACHINE:
        cores, memory, gpus, has = machine_cores(), machine_memory(), None, "this machine has"
    else:
        return []
    problems = []
    asks_gpus = {node.name: node.gpus for node in graph.steps}
    for name, step in graph.spec.steps.items():  # every step, including those with other problems
        resources = step.resources
        where = f"{line_at(graph.document, 'steps', name, 'resources')}steps.{name}.resources"
        if resources.cpus is not None and resources.cpus > cores:
            problems.append(f"{where}.cpus: {resources.cpus:g} CPUs asked; {has} {cores}")
        asked = resources.memory_bytes()
        if asked is not None and memory and asked > memory:
            problems.append(f"{where}.memory: {resources.memory} asked; {has} {_size(memory)}")
        wanted = asks_gpus.get(name, 0)
        if gpus is not None and wanted > gpus:
            problems.append(
                f"{where}.gpus: {wanted} GPU{'s' if wanted > 1 else ''} asked; {has} {gpus} (ask with --slurm "
                f"gres=gpu:{wanted})"
            )
    return problems


def image_problems(graph: PipelineGraph, engine: Engine, *, allow_unpinned: bool = False) -> list[str]:
    """Steps whose image the engine lacks, or has unpinned (nothing to check without a container engine)."""
    problems = []
    for node in graph.steps:
        try:
            resolve_step_image(node.descriptor, engine, allow_unpinned)
        except UsageError as exc:
            problems.append(f"{line_at(graph.document, 'steps', node.name, 'tool')}steps.{node.name}.tool: {exc}")
    return problems


def _size(count: int) -> str:
    return f"{count / 1024**3:.1f} GiB"


def check_scheduler(name: str, slurm: list[str]) -> None:
    """A scheduler name dicompose knows, and ``--slurm`` options only for SLURM, checked as a run would
    (before a plan or a run starts anything): one line for everything wrong."""
    from dicompose.config import load_config, value_problem

    if (problem := value_problem("run", "scheduler", name)) is not None:
        raise UsageError(f"--scheduler: {problem}")
    if slurm and name != "slurm":
        raise UsageError(f"--slurm is for --scheduler slurm (this run's scheduler: {name})")
    if name == "slurm":
        from dicompose.schedulers.slurm import options_from

        options_from(slurm, load_config().get("slurm", {}))


def scheduler_problems(name: str, slurm: Sequence[str] = ()) -> list[str]:
    """What ``check`` says of a scheduler: unknown, or SLURM where ``sbatch`` is not, or refuses the worker
    jobs ``--slurm`` over ``[slurm]`` describe (``sbatch --test-only``: a partition, account or resources this
    cluster does not have; nothing is submitted)."""
    try:
        check_scheduler(name, list(slurm))
    except UsageError as exc:
        return [str(exc)]
    if name == "slurm":
        from pathlib import Path

        from dicompose.config import load_config
        from dicompose.schedulers.slurm import log_folder, options_from, submission_problem

        options = options_from(list(slurm), load_config().get("slurm", {}))
        problem = submission_problem(options, log_folder(Path(".dicompose"), "check"), "dicompose-check")
        return [problem] if problem else []
    return []
