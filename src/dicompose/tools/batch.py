"""Running a per-file tool over many files: discovery, output naming, optional series pass, parallel workers.

Each file is independent (one bad file never stops the others); work is spread over processes because the
kernel and the codecs are CPU-bound; at most a few files per worker are in flight, so memory stays bounded
whatever the batch size.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from dicompose.allocator import keep_freed_buffers
from dicompose.dicom.duplicates import duplicate_instances
from dicompose.dicom.normalize import measure_file
from dicompose.dicom.reading import Peek, damage, is_whole, same_object
from dicompose.errors import InputError, StorageError, UnsupportedInputError, UsageError
from dicompose.fileio import (
    Hashing,
    check_output_folder,
    check_writable_folder,
    folder_syncs_deferred,
    fsync_directory,
)
from dicompose.params import ValueRange
from dicompose.tools.batch_audit import AuditBuffer, audit_object, auditing, open_machine_audit
from dicompose.tools.batch_types import FileResult, Operation, Status, Summary
from dicompose.tools.discovery import Candidate, Skipped, discover, peek_each
from dicompose.tools.pool import InlineExecutor, bounded_map, chunks, executor_for, finish_in_flight, process_pool

__all__ = ["FileResult", "Operation", "Status", "Summary", "auditing", "plan_outputs", "run_batch"]

log = logging.getLogger(__name__)


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
            message = (
                f"{candidate.path}: output {destination} would overwrite the output of {other.path} "
                "(input folders share --out: give each its own)"
            )
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
    pool = process_pool(workers) if workers > 1 and (len(inputs) > 1 or any(p.is_dir() for p in inputs)) else None
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
        candidates = _candidates(inputs, walked, follow_links, pool, report)
        if not candidates:  # no DICOM file at all (DICOM files that are all skipped are a success, reported)
            if made_out and out_dir is not None:
                with contextlib.suppress(OSError):
                    out_dir.rmdir()  # ours, and empty: refused before any work, nothing is left behind
            raise UsageError(f"no DICOM files found in {', '.join(str(p) for p in inputs) or '(no input)'}")
        jobs, collisions = plan_outputs(candidates, out_dir, operation.output_name, operation.flatten, damage=damage)
        for result in collisions:
            report(result)
        on_total(len(jobs) * (2 if operation.series_scope else 1))
        with executor_for(pool, len(jobs)) as executor:
            if operation.series_scope:
                jobs = _attach_series_ranges(executor, jobs, workers, report)
            hashing = (
                _hashing(workers, len(jobs), isinstance(executor, InlineExecutor)) if audit.audit is not None else None
            )
            done = _apply_all(executor, pool, [(job, operation, hashing) for job in jobs], workers, summary, report)
            summary.not_attempted = len(jobs) - done
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)  # not used (one job), or already shut down
        for folder in written:  # the writers deferred these: one fsync per folder, not per file
            fsync_directory(folder)
        audit.close()
        if made_out and out_dir is not None and not written:
            _remove_empty(out_dir)  # ours, and nothing was written into it: leave nothing behind
    summary.seconds = time.perf_counter() - started
    return summary


def _candidates(
    inputs: Sequence[Path],
    walked: bool,
    follow_links: bool,
    pool: ProcessPoolExecutor | None,
    report: Callable[[FileResult], None],
) -> list[Candidate]:
    """The DICOM files to work on; what is not DICOM is reported skipped, files sharing one SOP Instance UID
    with different content are reported failed (:mod:`dicompose.dicom.duplicates`)."""
    candidates: list[Candidate] = []
    peek_many = partial(_peek_in, pool) if pool is not None else peek_each
    for found in discover(inputs, walked=walked, follow_links=follow_links, peek_many=peek_many):
        if isinstance(found, Skipped):
            report(FileResult(found.path, Status.SKIPPED, message=f"{found.path}: {found.reason}"))
        else:
            candidates.append(found)
    refused = _duplicate_instances(candidates)
    for candidate in candidates:
        if str(candidate.path) in refused:
            report(FileResult(candidate.path, Status.FAILED, message=refused[str(candidate.path)]))
    return [c for c in candidates if str(c.path) not in refused]


def _apply_all(
    executor: Executor,
    pool: ProcessPoolExecutor | None,
    work: list[tuple[_Job, Operation, Hashing | None]],
    workers: int,
    summary: Summary,
    report: Callable[[FileResult], None],
) -> int:
    """Every job through the workers, reported in order until the batch stops; how many were done."""
    done = 0
    in_flight: list[Future[list[FileResult]]] = []
    mapped = bounded_map(executor, _apply_job, work, workers, stop=lambda: bool(summary.stopped), in_flight=in_flight)
    try:
        for result in mapped:
            report(result)
            done += 1
    except BaseException:  # Ctrl-C, SIGTERM: what the workers are writing is finished and reported
        mapped.close()  # cancels what has not started; the running chunks go to in_flight
        finish_in_flight(pool, in_flight, report)
        raise
    return done


def _remove_empty(folder: Path) -> None:
    """Remove ``folder`` and the folders in it if no file is left anywhere in them."""
    with contextlib.suppress(OSError):
        for sub in sorted((p for p in folder.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            sub.rmdir()
        folder.rmdir()


def _peek_in(pool: Executor, paths: Sequence[Path]) -> list[Peek]:
    """:func:`peek` at ``paths`` in the pool's workers, a share each (0.17 ms a file, before any work starts)."""
    return [header for chunk in pool.map(peek_each, chunks(paths, max(1, len(paths) // 8))) for header in chunk]


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
    for job, outcome in zip(jobs, bounded_map(pool, _measure_job, jobs, workers), strict=True):
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
        audit = (audit_object(job.candidate.path, prints.source), audit_object(job.destination, prints.output))
    return FileResult(job.candidate.path, Status.PROCESSED, output=job.destination, audit=audit)


def _failure(candidate: Candidate, exc: InputError) -> FileResult:
    """Unsupported files found while walking a folder are skipped; anything the user named explicitly fails."""
    skipped = isinstance(exc, UnsupportedInputError) and not candidate.explicit
    return FileResult(candidate.path, Status.SKIPPED if skipped else Status.FAILED, message=str(exc))
