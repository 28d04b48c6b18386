"""The scheduler interface: submit a picklable call, get told when it finishes, cancel what is left."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

Done = Callable[[Any, BaseException | None], None]


class Scheduler(Protocol):
    name: str
    #: The most cores one call may use where it runs (a SLURM worker job's), or None (this machine's budget).
    cores_per_worker: int | None
    #: All the cores the scheduler can use at once, or None (the run's budget decides).
    cores: int | None
    #: Whether calls running when :meth:`cancel_all` is called still report (a thread pool's do, once the engine
    #: has stopped their steps); a Dask cluster forgets cancelled calls, so nobody waits for them.
    reports_cancelled: bool

    def submit(
        self,
        fn: Callable[[Any], Any],
        arg: Any,
        done: Done,
        cores: int = 1,
        memory_bytes: int | None = None,
        gpus: int = 0,
    ) -> None:
        """Run ``fn(arg)`` somewhere with ``cores`` cores (and ``memory_bytes``, ``gpus`` where the scheduler
        places work by them); call ``done(result, error)`` when it ends (from any thread)."""

    def check_health(self, progressed_at: float) -> None:
        """Raise :class:`~dicompose.errors.ClusterError` when the work can no longer finish here (worker jobs
        that die at their walltime while no task succeeds: ``progressed_at``, the time one last did); asked
        while the run waits (cheap: rate-limited)."""

    def cancel_all(self) -> None:
        """Cancel everything not yet started (running tasks are stopped by the engine cleanup)."""

    def close(self) -> None: ...
