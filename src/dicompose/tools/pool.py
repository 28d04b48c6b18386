"""Worker processes for a batch: a pool forked from the tool process, files handed over in chunks, never more
than a few in flight per worker, and an orderly end after Ctrl-C (every output written is reported)."""

from __future__ import annotations

import multiprocessing
import signal
import sys
import threading
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from typing import TypeVar

from dicompose.lifetime import die_with_parent

_IN_FLIGHT_PER_WORKER = 4
T = TypeVar("T")
R = TypeVar("R")


class InlineExecutor(Executor):
    """Runs calls in this process: no pool start-up cost for one file or one worker."""

    def submit(self, fn: Callable[..., T], /, *args: object, **kwargs: object) -> Future[T]:
        future: Future[T] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
        return future


def _pool_context() -> multiprocessing.context.BaseContext:
    """Workers forked from this process, which has imported the tools already (a forkserver cost 0.3 s of
    imports before the first result, a third of a 300-file batch); made before this process starts any thread
    (fork after threads is unsafe), and set to die with it. Where fork is not the platform's safe default
    (macOS, Windows), the platform's default."""
    return multiprocessing.get_context("fork" if sys.platform == "linux" else None)


def _worker_start() -> None:
    """A pool worker dies with the tool process, and leaves Ctrl-C to it: the terminal sends SIGINT to the
    whole process group, and a worker interrupted mid-file left a temp file and broke the pool (a hang)."""
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def process_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of ``workers`` processes, started now: before discovery (which may start the audit log's writer
    thread), while this process has no thread of its own."""
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=_pool_context(), initializer=_worker_start)
    pool.submit(int)  # a fork pool starts all its processes at the first submit
    return pool


def executor_for(pool: ProcessPoolExecutor | None, jobs: int) -> Executor:
    """The pool for many jobs; the caller's own process for one (no pool start-up, no pickling)."""
    return pool if pool is not None and jobs > 1 else InlineExecutor()


def bounded_map(
    pool: Executor,
    fn: Callable[[T], R],
    items: Sequence[T],
    workers: int,
    stop: Callable[[], bool] = lambda: False,
    in_flight: list[Future[list[R]]] | None = None,
) -> Generator[R, None, None]:
    """Like ``pool.map`` in order, but never more than a few items per worker in flight (bounded memory);
    once ``stop()`` says so, nothing more is submitted (the items in flight still report).

    A pool gets the items in chunks (one round trip to a worker per chunk, not per file: the main process's
    pickling and wake-ups cost about 0.5 ms of CPU per file, a tenth of the work); a chunk stops at the
    first result ``stop`` would be set by (see :func:`_until_stop`).
    """
    size = _chunk_size(len(items), workers) if isinstance(pool, ProcessPoolExecutor) else 1
    limit = max(1, workers) * max(2, _IN_FLIGHT_PER_WORKER // size)  # chunks: one running, one queued per worker
    pending: list[Future[list[R]]] = []
    try:
        for chunk in chunks(items, size):
            if stop():
                break
            pending.append(pool.submit(_until_stop, fn, chunk))
            if len(pending) >= limit:
                yield from _next_done(pending)
        while pending:
            yield from _next_done(pending)
    finally:
        for future in pending:  # chunks already running cannot be cancelled: the caller may collect them
            if not future.cancel() and in_flight is not None:
                in_flight.append(future)


def finish_in_flight(
    pool: ProcessPoolExecutor | None, in_flight: list[Future[list[R]]], report: Callable[[R], None]
) -> None:
    """After an interrupt: let the chunks being worked on end (the workers ignore SIGINT, so no output is left
    half-written) and report them, so every output on disk is in the audit log. Further Ctrl-C are ignored
    from here to the process's end (the batch is ending anyway): one during the pool's shutdown left it hung,
    one during the audit log's last write lost the entries of files already written."""
    if _main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)
    for future in in_flight:
        if future.done() and not future.cancelled() and future.exception() is None:
            for result in future.result():
                report(result)


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _next_done(pending: list[Future[list[R]]]) -> list[R]:
    """The first chunk's results, in order; it leaves ``pending`` only once they are in hand (an interrupt
    while waiting leaves it there, for :func:`finish_in_flight`)."""
    results = pending[0].result()
    pending.pop(0)
    return results


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    return (items[first : first + size] for first in range(0, len(items), size))


def _chunk_size(items: int, workers: int) -> int:
    """Up to 8 items per round trip, and at least 8 chunks per worker (so that workers end together)."""
    return max(1, min(8, items // (8 * max(1, workers))))


def _until_stop(fn: Callable[[T], R], chunk: Sequence[T]) -> list[R]:
    """``fn`` over ``chunk``, in a worker; ends after a result that stops the batch (a full output folder)."""
    results: list[R] = []
    for item in chunk:
        results.append(outcome := fn(item))
        if getattr(outcome, "stop", False) is True:  # a FileResult whose folder is full or read-only
            break
    return results


def pool_map(fn: Callable[[T], R], items: Sequence[T], workers: int) -> list[R]:
    """``fn`` over ``items`` in order, in a pool of ``workers`` forked processes (:func:`process_pool`: they
    die with this process and leave Ctrl-C to it), or in this process for one worker or one item. After a
    Ctrl-C the workers finish the item they hold, nothing more is started, and the interrupt goes on."""
    if workers <= 1 or len(items) < 2:
        return [fn(item) for item in items]
    pool = process_pool(min(workers, len(items)))
    try:
        return list(pool.map(fn, items, chunksize=max(1, len(items) // (4 * workers))))
    except KeyboardInterrupt:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        pool.shutdown(wait=True)
