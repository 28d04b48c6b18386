"""The Dask scheduler: a LocalCluster (``--scheduler dask``) or an existing cluster (``tcp://HOST:PORT``).

Tasks are plain picklable calls; a SLURM cluster is the same thing behind dask-jobqueue. Cancelling a Dask
future does not stop a running container, so the runner also stops containers by their run label.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import warnings
from collections.abc import Callable
from concurrent.futures import CancelledError
from typing import Any

from dicompose.errors import ClusterError, UsageError
from dicompose.schedulers.base import Done


class DaskScheduler:
    cores_per_worker: int | None = None
    cores: int | None = None
    reports_cancelled = False  # cancelled futures are forgotten: their callbacks return without a word

    def __init__(self, address: str | None, workers: int, cluster: Any = None) -> None:
        """A LocalCluster (``address`` None), an existing cluster at ``address``, or ``cluster`` (one made by
        the caller, e.g. dask-jobqueue's: closed with this scheduler)."""
        from distributed import Client, LocalCluster

        # Dask's own log lines (a worker job lost at its walltime, a result it took with it) are events the run
        # handles and reports in its own words: not tracebacks on the user's terminal
        logging.getLogger("distributed").setLevel(logging.CRITICAL)

        self._cluster = cluster
        self._resources = cluster is not None  # its workers advertise their cores (schedulers.slurm)
        try:
            if cluster is not None:
                self._client = Client(cluster)
                self.name = "dask (cluster)"
            elif address is None:
                with warnings.catch_warnings():  # "port 8787 is in use": Dask takes another; not the user's news
                    warnings.filterwarnings("ignore", message=".*already in use", category=UserWarning)
                    self._cluster = LocalCluster(
                        n_workers=max(1, workers), threads_per_worker=1, processes=True, dashboard_address=None
                    )
                self._client = Client(self._cluster)
                self.name = "dask (LocalCluster)"
            else:
                self._client = Client(address, timeout="20s")
                self.name = f"dask ({address})"
        except OSError as exc:
            raise UsageError(f"cannot reach the Dask scheduler {address or '(local cluster)'}: {exc}") from None
        self._futures: list[Any] = []

    def submit(
        self,
        fn: Callable[[Any], Any],
        arg: Any,
        done: Done,
        cores: int = 1,
        memory_bytes: int | None = None,
        gpus: int = 0,
    ) -> None:
        resources = None
        if self._resources:  # a cluster whose workers advertise what they have (schedulers.slurm)
            resources = {"cores": cores, **({"memory": memory_bytes} if memory_bytes else {})}
            resources.update({"gpus": gpus} if gpus else {})
        future = self._client.submit(fn, arg, pure=False, resources=resources)

        def callback(f: Any) -> None:
            if f.status == "cancelled":
                return
            try:
                result = f.result()
            except CancelledError:  # cancelled while its result was fetched (a run winding down): forgotten
                return
            except Exception as exc:  # the launch raised, or its worker (job) was lost with its result
                done(None, exc)
            else:
                done(result, None)

        future.add_done_callback(callback)
        self._futures.append(future)

    def wait_for_workers(
        self,
        count: int,
        grace_s: float,
        gone: Callable[[], str | None] | None = None,
        waiting: Callable[[], None] | None = None,
    ) -> None:
        """Until one worker is up, then up to ``grace_s`` more for ``count`` of them: launches with resource
        needs are placed when submitted (Dask neither queues nor rebalances them well), so submitted while one
        worker is up they would all wait on it while the others idle. ``gone`` (asked every 2 s while none is
        up) says why none ever will be: then :class:`ClusterError`; ``waiting`` is told each time too (to say
        why)."""
        while True:
            try:
                self._client.wait_for_workers(1, timeout=2)
                break
            except TimeoutError:
                if waiting is not None:
                    waiting()
                if gone is not None and (why := gone()) is not None and not self._client.scheduler_info()["workers"]:
                    raise ClusterError(why) from None
        with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
            self._client.wait_for_workers(count, timeout=grace_s)

    def check_health(self, progressed_at: float) -> None:
        """Nothing to watch: a launch that fails comes back as a failed attempt."""

    def cancel_all(self) -> None:
        with contextlib.suppress(Exception):
            self._client.cancel(self._futures)

    def close_workers(self, timeout_s: float) -> set[str]:
        """A clean end of a cluster of our own making (dask-jobqueue's; never a user's ``tcp://`` scheduler):
        each connected worker's nanny is told to stop its worker and end, so a worker job's process exits 0 by
        itself, its log without a signal or a traceback. Returns the names of the workers told (those that had
        joined); a job whose worker had not is the caller's to cancel. The results are fetched already: the
        futures are dropped. Afterwards only :meth:`close` is of use."""
        self._futures.clear()
        if not self._resources:
            return set()

        async def stop_adapting() -> None:  # on the cluster's loop: no job submitted while the others close
            with contextlib.suppress(AttributeError):
                self._cluster._adaptive.stop()

        self._cluster.sync(stop_adapting)
        told = {str(worker["name"]) for worker in self._client.scheduler_info()["workers"].values()}
        # each nanny stops its worker and ends: told by the scheduler instead, a worker process waits 2 s for its
        # nanny's word (distributed's stop-queue thread) and logs a closed-stream traceback
        scheduler: Any = self._client.scheduler  # an rpc to it: None only before the client connects
        self._client.sync(
            scheduler.broadcast,
            msg={"op": "terminate", "reason": "run-ended"},
            nanny=True,
            on_error="ignore",
            callback_timeout=timeout_s,
        )
        return told

    def job_ids(self) -> dict[str, str]:
        """Worker name → SLURM (or other batch system) job id of a dask-jobqueue cluster's jobs."""
        workers = getattr(self._cluster, "workers", {}) if self._resources else {}
        return {str(name): str(job.job_id) for name, job in workers.items() if getattr(job, "job_id", None)}

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._client.close()
        if self._cluster is not None:
            with contextlib.suppress(Exception):
                self._cluster.close()
