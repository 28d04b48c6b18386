"""The default scheduler: a thread pool in this process (tasks mostly wait on containers or subprocesses)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from dicompose.schedulers.base import Done


class ThreadScheduler:
    name = "local"
    cores_per_worker: int | None = None
    cores: int | None = None
    reports_cancelled = True  # a running launch returns once the engine has stopped its step

    def __init__(self, workers: int) -> None:
        self.workers = max(1, workers)
        self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="dicompose-task")
        self._futures: list[Future[Any]] = []

    def submit(
        self,
        fn: Callable[[Any], Any],
        arg: Any,
        done: Done,
        cores: int = 1,
        memory_bytes: int | None = None,
        gpus: int = 0,
    ) -> None:
        future = self._pool.submit(fn, arg)  # this machine's budget is the runner's to keep

        def callback(f: Future[Any]) -> None:
            if f.cancelled():
                return
            error = f.exception()
            done(None if error else f.result(), error)

        future.add_done_callback(callback)
        self._futures.append(future)

    def check_health(self, progressed_at: float) -> None:
        """Nothing to watch: a launch that fails comes back as a failed attempt."""

    def cancel_all(self) -> None:
        for future in self._futures:
            future.cancel()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
