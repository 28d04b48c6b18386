"""Running a per-file tool over many files: discovery, output naming, optional series pass, parallel workers.

Each file is independent (one bad file never stops the others); work is spread over processes because the
kernel and the codecs are CPU-bound; at most a few files per worker are in flight, so memory stays bounded
whatever the batch size.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import stat
import sys
import threading
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import TypeVar

from dicompose.allocator import keep_freed_buffers
from dicompose.config import data_home
from dicompose.dicom.duplicates import duplicate_instances
from dicompose.dicom.identifiers import Fingerprint, Fingerprints, file_facts
from dicompose.dicom.normalize import measure_file
from dicompose.dicom.reading import Peek, damage, is_whole, same_object
from dicompose.errors import InputError, StorageError, UnsupportedInputError, UsageError
from dicompose.fileio import (
    Digest,
    Hashing,
    check_output_folder,
    check_writable_folder,
    folder_syncs_deferred,
    fsync_directory,
)
from dicompose.lifetime import die_with_parent
from dicompose.params import ValueRange
from dicompose.records.audit import AuditLog, Item, load_keys
from dicompose.tools.discovery import Candidate, Skipped, discover, peek_each

log = logging.getLogger(__name__)
_IN_FLIGHT_PER_WORKER = 4
T = TypeVar("T")
R = TypeVar("R")


class Status(StrEnum):
    PROCESSED = "processed"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass(frozen=True)
class FileResult:
    """One line of the batch report. ``message`` is a single line naming the file and the problem."""

    source: Path
    status: Status
    output: Path | None = None
    message: str = ""
    #: The audit log's objects for the file read and the file written (identifiers, path, sha256), from what
    #: the tool learnt while it worked: nothing is read or hashed again for them.
    audit: tuple[dict[str, object], ...] = ()
    #: The output's place is full or read-only (:class:`StorageError`): the batch attempts no more files.
    stop: bool = False


@dataclass
class Summary:
    results: list[FileResult] = field(default_factory=list)
    seconds: float = 0.0
    #: Why the batch stopped early (a full or read-only output folder), and how many files it did not attempt.
    stopped: str = ""
    not_attempted: int = 0

    def count(self, status: Status) -> int:
        return sum(1 for r in self.results if r.status is status)

    @property
    def ok(self) -> bool:
        return self.count(Status.FAILED) == 0 and not self.stopped


@dataclass(frozen=True)
class Operation:
    """What to do to each file. Holds module-level functions (and frozen params), so it pickles to workers.

    ``apply(source, destination, source_range, hashing)`` returns the two files' fingerprints when
    ``hashing`` is not None (the batch is audited), else None.
    """

    name: str
    apply: Callable[[Path, Path, ValueRange | None, Hashing | None], Fingerprints | None]
    output_name: Callable[[Path], str]
    series_scope: bool = False  # first pass: one value range per series, passed to ``apply``
    flatten: bool = False  # all outputs directly in the output folder (input folder names may identify people)


@dataclass(frozen=True)
class _Job:
    candidate: Candidate
    destination: Path
    source_range: ValueRange | None = None


def plan_outputs(
    candidates: Sequence[Candidate],
    out_dir: Path | None,
    output_name: Callable[[Path], str],
    flatten: bool = False,
    damage: Callable[[Path], str | None] = lambda _path: None,
) -> tuple[list[_Job], list[FileResult]]:
    """Output path per candidate (beside it, or mirrored under ``out_dir``); name collisions fail the later file.

    Files with one SOP Instance UID that reach one output name (de-identified outputs are named from the UID)
    are copies of one object -- different objects sharing a UID were refused before -- or a damaged copy:
    the object is written once, from a whole copy; other whole copies are skipped as copies, a damaged one
    fails on its own damage (``damage(path)``: its one-line refusal, or None; asked only in this case).
    """
    jobs: dict[Path, _Job] = {}
    results: list[FileResult] = []
    for candidate in candidates:
        folder = candidate.path.parent if out_dir is None else out_dir / ("" if flatten else candidate.relative_parent)
        destination = folder / output_name(candidate.path)  # the operation's naming rule
        key = destination.absolute()
        claimed = jobs.get(key)
        if claimed is None:
            jobs[key] = _Job(candidate, destination)
            continue
        other = claimed.candidate
        if not (candidate.instance_uid and candidate.instance_uid == other.instance_uid):
            message = f"{candidate.path}: output {destination} would overwrite the output of {other.path}"
            results.append(FileResult(candidate.path, Status.FAILED, message=message))
            continue
        if (mine := damage(candidate.path)) is not None:
            results.append(FileResult(candidate.path, Status.FAILED, message=mine))
        elif (theirs := damage(other.path)) is not None:  # the first copy is the damaged one: this one writes
            results.append(FileResult(other.path, Status.FAILED, message=theirs))
            jobs[key] = _Job(candidate, destination)
        else:
            message = f"{candidate.path}: a copy of {other.path} (the same object): written once, from that copy"
            results.append(FileResult(candidate.path, Status.SKIPPED, message=message))
    return list(jobs.values()), results


def run_batch(
    inputs: Sequence[Path],
    operation: Operation,
    out_dir: Path | None,
    *,
    workers: int,
    on_result: Callable[[FileResult], None] = lambda _r: None,
    on_total: Callable[[int], None] = lambda _n: None,
    walked: bool = False,
    follow_links: bool = False,
) -> Summary:
    """Apply ``operation`` to every DICOM image under ``inputs``; report each file through ``on_result``."""
    made_out = out_dir is not None and not out_dir.exists()
    if out_dir is not None:
        check_output_folder(inputs, out_dir)
        check_writable_folder(out_dir)
    started = time.perf_counter()
    keep_freed_buffers()  # inline work and the pool's workers (forked from this process) alike
    pool = _process_pool(workers) if workers > 1 and (len(inputs) > 1 or any(p.is_dir() for p in inputs)) else None
    summary = Summary()
    audit = AuditBuffer(open_machine_audit(), operation.name)
    written: set[Path] = set()

    def report(result: FileResult) -> None:
        if result.output is not None:
            written.add(result.output.parent)
        if result.stop and not summary.stopped:
            summary.stopped = result.message
        summary.results.append(result)
        audit.add(result)
        on_result(result)

    try:
        candidates: list[Candidate] = []
        peek_many = partial(_peek_in, pool) if pool is not None else peek_each
        for found in discover(inputs, walked=walked, follow_links=follow_links, peek_many=peek_many):
            if isinstance(found, Skipped):
                report(FileResult(found.path, Status.SKIPPED, message=f"{found.path}: {found.reason}"))
            else:
                candidates.append(found)
        if not candidates:  # no DICOM file at all (DICOM files that are all skipped are a success, reported)
            named = ", ".join(str(p) for p in inputs) or "(no input)"
            if made_out and out_dir is not None:
                with contextlib.suppress(OSError):
                    out_dir.rmdir()  # ours, and empty: refused before any work, nothing is left behind
            raise UsageError(f"no DICOM files found in {named}")
        refused = _duplicate_instances(candidates)
        for candidate in candidates:
            if str(candidate.path) in refused:
                report(FileResult(candidate.path, Status.FAILED, message=refused[str(candidate.path)]))
        candidates = [c for c in candidates if str(c.path) not in refused]
        jobs, collisions = plan_outputs(candidates, out_dir, operation.output_name, operation.flatten, damage=damage)
        for result in collisions:
            report(result)
        on_total(len(jobs) * (2 if operation.series_scope else 1))
        with _executor(pool, len(jobs)) as executor:
            if operation.series_scope:
                jobs = _attach_series_ranges(executor, jobs, workers, report)
            in_process = isinstance(executor, _InlineExecutor)
            hashing = _hashing(workers, len(jobs), in_process) if audit.audit is not None else None
            work = [(job, operation, hashing) for job in jobs]
            done = 0
            in_flight: list[Future[list[FileResult]]] = []
            mapped = _bounded_map(
                executor, _apply_job, work, workers, stop=lambda: bool(summary.stopped), in_flight=in_flight
            )
            try:
                for result in mapped:
                    report(result)
                    done += 1
            except BaseException:  # Ctrl-C, SIGTERM: what the workers are writing is finished and reported
                mapped.close()  # cancels what has not started; the running chunks go to in_flight
                _finish_in_flight(pool, in_flight, report)
                raise
            summary.not_attempted = len(jobs) - done
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)  # not used (one job), or already shut down
        for folder in written:  # the writers deferred these: one fsync per folder, not per file
            fsync_directory(folder)
        audit.close()
    summary.seconds = time.perf_counter() - started
    return summary


def _peek_in(pool: Executor, paths: Sequence[Path]) -> list[Peek]:
    """:func:`peek` at ``paths`` in the pool's workers, a share each (0.17 ms a file, before any work starts)."""
    return [header for chunk in pool.map(peek_each, _chunks(paths, max(1, len(paths) // 8))) for header in chunk]


def _duplicate_instances(candidates: list[Candidate]) -> dict[str, str]:
    """Files sharing a SOP Instance UID with a different file: refused, both (see ``dicom.duplicates``).

    The UIDs come from discovery's look at each file's first bytes; only files that share one are compared.
    """
    return duplicate_instances(
        ((str(c.path), c.instance_uid) for c in candidates),
        lambda a, b: same_object(Path(a), Path(b)),
        lambda name: is_whole(Path(name)),
    )


def _attach_series_ranges(
    pool: Executor, jobs: list[_Job], workers: int, report: Callable[[FileResult], None]
) -> list[_Job]:
    """First pass of ``--scope series``: one min/max over every readable file of each series."""
    measured: list[tuple[_Job, str, ValueRange]] = []
    for job, outcome in zip(jobs, _bounded_map(pool, _measure_job, jobs, workers), strict=True):
        if isinstance(outcome, FileResult):
            report(outcome)
        else:
            measured.append((job, outcome[0], outcome[1]))
    ranges: dict[str, ValueRange] = {}
    for _job, series, value_range in measured:
        if not series:
            continue
        known = ranges.get(series)
        ranges[series] = (
            value_range
            if known is None
            else ValueRange(min(known.low, value_range.low), max(known.high, value_range.high))
        )
    return [
        _Job(job.candidate, job.destination, ranges.get(series, value_range) if series else value_range)
        for job, series, value_range in measured
    ]


def _measure_job(job: _Job) -> tuple[str, ValueRange] | FileResult:
    try:
        return measure_file(job.candidate.path)
    except InputError as exc:
        return _failure(job.candidate, exc)


def _hashing(workers: int, jobs: int, in_process: bool) -> Hashing:
    """Hash for the audit log on a helper thread when the batch leaves a core idle (it then costs the work
    almost nothing), else inline (threads would only compete with the other workers for the cores and the GIL).
    Work done in this process leaves its digests to the audit log's writer thread (``deferred``); a pool
    worker's results cross a process boundary, digests computed."""
    processes = max(1, min(workers, jobs))
    if processes >= len(os.sched_getaffinity(0)):
        return "inline"
    return "deferred" if in_process else "overlapped"


def _apply_job(args: tuple[_Job, Operation, Hashing | None]) -> FileResult:
    job, operation, hashing = args
    try:
        with folder_syncs_deferred():  # run_batch fsyncs each output folder once, before it returns
            prints = operation.apply(job.candidate.path, job.destination, job.source_range, hashing)
    except InputError as exc:
        return _failure(job.candidate, exc)
    except StorageError as exc:  # full or read-only: the next file would fail alike
        return FileResult(job.candidate.path, Status.FAILED, message=str(exc), stop=True)
    except Exception as exc:  # a bug on one odd file must not sink the batch; say so plainly
        log.exception("internal error on %s", job.candidate.path)
        message = f"{job.candidate.path}: internal error ({type(exc).__name__}: {exc}); please report it"
        return FileResult(job.candidate.path, Status.FAILED, message=message)
    audit: tuple[dict[str, object], ...] = ()
    if prints is not None:
        if hashing != "deferred":
            prints = prints.settled()  # the result may be pickled to the main process
        audit = (_audit_object(job.candidate.path, prints.source), _audit_object(job.destination, prints.output))
    return FileResult(job.candidate.path, Status.PROCESSED, output=job.destination, audit=audit)


def auditing() -> bool:
    """Host commands audit into the machine log; a step inside a run is audited by its runner instead."""
    return os.environ.get("DICOMPOSE_AUDIT", "") != "host"


def _audit_object(path: Path, fingerprint: Fingerprint) -> dict[str, object]:
    """The audit log's object for a file: the same keys and values as reading ``identifiers(path)`` and
    ``sha256_file(path)`` from disk would give (the digest may still be computing: :class:`AuditBuffer`
    reads it on its writer thread)."""
    return {**fingerprint.identifiers, "path": str(path.absolute()), "sha256": fingerprint.digest}


def open_machine_audit() -> AuditLog | None:
    """The machine-level audit log of host commands (``$DICOMPOSE_HOME/audit``), or None inside a run."""
    if not auditing():
        return None
    try:
        return AuditLog(data_home() / "audit", load_keys())
    except OSError as exc:
        raise UsageError(
            f"cannot write the audit log in {data_home()} ({exc.strerror or exc}); "
            "set DICOMPOSE_HOME to a writable folder"
        ) from None


class AuditBuffer:
    """Audit entries of a batch, written in small groups (one lock and one fsync per group, not per file:
    per-file fsyncs competed with the outputs' own and halved parallel throughput). At most ``limit`` entries
    or ``seconds`` of work are pending; the rest is flushed when the batch ends, however it ends.

    A group is written on a helper thread while the batch goes on (its fsync would otherwise stall the work
    for milliseconds); at most one group is being written at a time, in order, and a failure to write one
    is raised by the next ``add`` or by ``close``.
    """

    def __init__(self, audit: AuditLog | None, tool: str, limit: int = 64, seconds: float = 0.5) -> None:
        self.audit, self.tool, self.limit, self.seconds = audit, tool, limit, seconds
        self.pending: list[Item] = []
        self.since = time.monotonic()
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="dicompose-audit") if audit is not None else None
        self._writing: Future[object] | None = None

    def add(self, result: FileResult) -> None:
        if self.audit is None:
            return
        if result.status is Status.PROCESSED and len(result.audit) == 2:
            self.pending += [
                ("read", result.audit[0], self.tool, None, None, "ok"),
                ("write", result.audit[1], self.tool, None, None, "ok"),
            ]
        elif result.status is Status.FAILED:
            self.pending.append(("read", _failed_read(result.source), self.tool, None, None, "failed"))
        if len(self.pending) >= self.limit or time.monotonic() - self.since >= self.seconds:
            self.flush()

    def flush(self) -> None:
        self._wait()
        if self._writer is not None and self.audit is not None and self.pending:
            self._writing = self._writer.submit(_append_settled, self.audit, self.pending)
        self.pending = []
        self.since = time.monotonic()

    def _wait(self) -> None:
        """Wait for the group being written; raise its failure, if any."""
        writing, self._writing = self._writing, None
        if writing is not None:
            writing.result()

    def close(self) -> None:
        try:
            self.flush()
            self._wait()
        finally:
            if self._writer is not None:
                self._writer.shutdown()
        if self.audit is not None:
            self.audit.checkpoint()


def _failed_read(path: Path) -> dict[str, object]:
    """The audit object of a file the tool refused: who it is about and its sha256 where it can be read (a
    refused file was still opened: a query by patient must find it), else its path alone."""
    obj: dict[str, object] = {"path": str(path.absolute())}
    try:
        if stat.S_ISREG(path.stat().st_mode):
            sha256, ids = file_facts(path)
            obj = {**ids, **obj, "sha256": sha256}
    except OSError:
        pass
    return obj


def _append_settled(audit: AuditLog, items: list[Item]) -> None:
    """Append ``items`` once their digests are computed (waiting here, on the writer thread, not in the work)."""
    settled: list[Item] = []
    for action, obj, tool, a, b, outcome in items:
        if obj is not None and isinstance(digest := obj.get("sha256"), Digest):
            obj = {**obj, "sha256": digest.hexdigest()}
        settled.append((action, obj, tool, a, b, outcome))
    audit.append_many(settled)


def _failure(candidate: Candidate, exc: InputError) -> FileResult:
    """Unsupported files found while walking a folder are skipped; anything the user named explicitly fails."""
    skipped = isinstance(exc, UnsupportedInputError) and not candidate.explicit
    return FileResult(candidate.path, Status.SKIPPED if skipped else Status.FAILED, message=str(exc))


class _InlineExecutor(Executor):
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


def _process_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of ``workers`` processes, started now: before discovery (which may start the audit log's writer
    thread), while this process has no thread of its own."""
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=_pool_context(), initializer=_worker_start)
    pool.submit(int)  # a fork pool starts all its processes at the first submit
    return pool


def _executor(pool: ProcessPoolExecutor | None, jobs: int) -> Executor:
    """The pool for many jobs; the caller's own process for one (no pool start-up, no pickling)."""
    return pool if pool is not None and jobs > 1 else _InlineExecutor()


def _bounded_map(
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
        for chunk in _chunks(items, size):
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


def _finish_in_flight(
    pool: ProcessPoolExecutor | None, in_flight: list[Future[list[FileResult]]], report: Callable[[FileResult], None]
) -> None:
    """After an interrupt: let the chunks being worked on end (the workers ignore SIGINT, so no output is left
    half-written) and report them, so every output on disk is in the audit log. A second Ctrl-C meanwhile is
    ignored (at most a chunk per worker is left to finish): interrupting the pool's shutdown left it hung."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if _main_thread() else None
    try:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        for future in in_flight:
            if future.done() and not future.cancelled() and future.exception() is None:
                for result in future.result():
                    report(result)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _next_done(pending: list[Future[list[R]]]) -> list[R]:
    """The first chunk's results, in order; it leaves ``pending`` only once they are in hand (an interrupt
    while waiting leaves it there, for :func:`_finish_in_flight`)."""
    results = pending[0].result()
    pending.pop(0)
    return results


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    return (items[first : first + size] for first in range(0, len(items), size))


def _chunk_size(items: int, workers: int) -> int:
    """Up to 8 items per round trip, and at least 8 chunks per worker (so that workers end together)."""
    return max(1, min(8, items // (8 * max(1, workers))))


def _until_stop(fn: Callable[[T], R], chunk: Sequence[T]) -> list[R]:
    """``fn`` over ``chunk``, in a worker; ends after a result that stops the batch (a full output folder)."""
    results: list[R] = []
    for item in chunk:
        results.append(outcome := fn(item))
        if isinstance(outcome, FileResult) and outcome.stop:
            break
    return results
