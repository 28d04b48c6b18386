"""Running a pipeline (a tool run is a one-step pipeline): tasks cached by content, packed into launches,
scheduled under a core budget, retried alone, published atomically as they finish.

The main thread owns all state (the index, the task table); workers only execute :func:`execute_launch` on a
picklable request and hand back a result through a queue. A task whose key already has a ``done`` folder is
not launched: its recorded outputs feed its dependants directly, so a rerun with nothing changed launches
nothing.
"""

from __future__ import annotations

import contextlib
import gc
import secrets
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dicompose.config import load_settings
from dicompose.engines.base import Engine, ImageRef
from dicompose.errors import PacsError, RunInterruptedError, StorageError, UsageError, storage_error
from dicompose.fileio import check_not_a_file, check_output_folder, check_writable_folder
from dicompose.pipeline.execution import Execution
from dicompose.pipeline.graph import PipelineGraph, bind_files, build_graph
from dicompose.pipeline.images import Images, choose_engine, step_images
from dicompose.pipeline.inputs import Group, group_input
from dicompose.pipeline.model import FINISHED, Events, LaunchInfo, NoEvents, PipelineReport, PipelineRequest
from dicompose.pipeline.preflight import resource_problems
from dicompose.pipeline.publish import publication_scope
from dicompose.pipeline.recorders import AuditRecorder, IndexRecorder, Recorder, Recorders, RunStart
from dicompose.pipeline.snapshot import graph_from_snapshot, recorded_images, snapshot
from dicompose.records.index import Index
from dicompose.records.workspace import Workspace, locked, open_workspace
from dicompose.schedulers.base import Scheduler
from dicompose.tools.site_keys import site_key_path

if TYPE_CHECKING:
    from dicompose.pipeline.pacs_io import Transfer

__all__ = ["FINISHED", "Events", "LaunchInfo", "NoEvents", "PipelineReport", "PipelineRequest", "run_pipeline"]


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic garbage collection while a run is planned: planning 10,000 files makes ~500,000 objects,
    none of them in a cycle, and the collections they set off cost 50 ms of a 0.55 s no-op rerun."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)


def make_scheduler(
    name: str,
    workers: int,
    request: PipelineRequest | None = None,
    workspace: Path | None = None,
    run_id: str = "",
    eager: bool = False,
) -> Scheduler:
    """The scheduler ``name`` asks for; SLURM worker jobs are named after the run (``squeue -n``) and log into
    the workspace (one file per job), submitted at once when ``eager``, else at the first launch."""
    from dicompose.schedulers.local import ThreadScheduler

    if name == "local":
        return ThreadScheduler(workers)
    if name == "slurm":
        from dicompose.config import load_config
        from dicompose.schedulers.slurm import SlurmScheduler, log_folder, options_from

        options = options_from(list(request.slurm) if request else [], load_config().get("slurm", {}))
        job_name = f"dicompose-{run_id}" if run_id else "dicompose"
        logs = log_folder(workspace or Path(".dicompose"), run_id or "run")
        return SlurmScheduler(options, logs, job_name, eager=eager)
    if name == "dask" or name.startswith("tcp://"):
        from dicompose.schedulers.dask import DaskScheduler

        return DaskScheduler(None if name == "dask" else name, workers)
    raise UsageError(f"unknown scheduler {name!r} (local, dask, slurm, or tcp://HOST:PORT)")


def load_graph(request: PipelineRequest) -> PipelineGraph:
    if request.recorded is not None:
        return graph_from_snapshot(request.recorded, request.pipeline)[0]
    return request.graph or build_graph(request.pipeline)


def run_pipeline(
    request: PipelineRequest, events: Events | None = None, recorders: Sequence[Recorder] = ()
) -> PipelineReport:
    """Run (or plan) ``request``. ``events``: progress for the caller's display; ``recorders``: subscribers told
    what happens, after the index and the audit log (``pipeline.recorders``)."""
    graph = bind_files(load_graph(request), request.inputs, site_key_path)
    expected = set(graph.spec.inputs)
    if request.kind == "tool":  # a tool run without --in binds no input
        expected = {node.source.name for node in graph.steps if node.source.kind == "input"}
    given = set(request.inputs) | set(request.pacs_inputs)
    missing = sorted(expected - given)
    extra = sorted(given - set(graph.spec.inputs))
    if missing or extra:
        raise UsageError(
            f"{request.pipeline}: inputs {', '.join(graph.spec.inputs)} expected"
            + (f"; missing {', '.join(missing)}" if missing else "")
            + (f"; unknown {', '.join(extra)}" if extra else "")
            + " (give --in NAME=PATH)"
        )
    if request.pacs_inputs:  # each URL checked before anything is made or asked of a PACS
        from dicompose.pipeline.pacs_io import pacs_address

        for name, url in request.pacs_inputs.items():
            pacs_address(name, url)
            if graph.spec.inputs.get(name) != "dicom":
                raise UsageError(f"--in {name}=…: a PACS study can feed a dicom input only ({name} is a file input)")
    for name, path in request.inputs.items():  # before any folder is made
        if not path.exists() and not path.is_symlink():
            raise UsageError(
                f"--in {name}={path}: no such file or folder"
                if len(request.inputs) > 1
                else f"{path}: no such file or folder"
            )
    check_output_folder(request.inputs.values(), request.out_dir)
    workspace_root = request.workspace or default_workspace(request.pipeline)
    check_not_a_file(workspace_root, "workspace")
    workspace = open_workspace(workspace_root)  # created private (0700)
    check_writable_folder(workspace.root, "workspace")
    made_out = not request.out_dir.exists()
    if not request.dry_run:  # checked (and created) once the workspace is known to be usable
        check_writable_folder(request.out_dir)
    with locked(workspace):
        index = Index(workspace.index_path)
        succeeded = False
        try:
            index.mark_interrupted()  # we hold the lock: any run still "running" here died
            report = _run_locked(request, graph, workspace, index, events or NoEvents(), recorders)
            succeeded = report.ok
            return report
        except (sqlite3.OperationalError, OSError) as exc:  # the workspace filled up (or went read-only) mid-run
            if isinstance(exc, OSError) and storage_error(workspace.root, exc) is None:
                raise
            raise StorageError(
                workspace.root,
                f"cannot record the run ({exc}); finished work is kept: free space and run the same command",
            ) from None
        finally:
            if made_out and not succeeded:  # refused, failed or interrupted: no empty output folder of ours left
                with contextlib.suppress(OSError):
                    request.out_dir.rmdir()  # only if empty
            with contextlib.suppress(sqlite3.Error):
                index.close()


def default_workspace(pipeline: Path) -> Path:
    """``.dicompose`` beside the pipeline, or in the current folder for one that ships with dicompose (the
    demo's): a run never writes into the installed package."""
    package = Path(__file__).resolve().parents[1]
    if pipeline.resolve().is_relative_to(package):
        return Path(".dicompose")
    return pipeline.parent / ".dicompose"


def resolve_images(request: PipelineRequest, graph: PipelineGraph, engine: Engine) -> Images:
    if request.recorded is not None:
        _graph, recorded = graph_from_snapshot(request.recorded, request.pipeline)
        return recorded_images(graph, recorded, engine, request.allow_unpinned)
    return step_images(graph.steps, engine, request.allow_unpinned)


def _groups(
    request: PipelineRequest, graph: PipelineGraph, index: Index, report: PipelineReport
) -> dict[str, list[Group]]:
    groups: dict[str, list[Group]] = {}
    files = {name for name, kind in graph.spec.inputs.items() if kind == "file"}
    for name, path in request.inputs.items():
        if name in files:  # a key or table: bound to its steps' File inputs (bind_files), not grouped
            continue
        roots = [p for n, p in request.inputs.items() if n not in files]
        listing = group_input(path, index, chunk=request.chunk, roots=roots, follow_links=request.follow_links)
        groups[name] = listing.groups
        report.skipped.extend(listing.skipped)
        report.refused.extend(listing.refused)
        report.input_names.extend(listing.names)
        report.ignored.extend(listing.ignored)
        report.left_out.extend(listing.left_out)
        report.input_roots.append(str((path if path.is_dir() else path.parent).absolute()))
        if not groups[name] and not listing.refused:  # all refused: the run reports them and fails
            given = str(path) if request.kind == "tool" else f"{name}={path}"
            raise UsageError(f"--in {given}: no DICOM files found")
    return groups


def _run_start(request: PipelineRequest, graph: PipelineGraph, report: PipelineReport, why: str) -> RunStart:
    """The run as recorded when it starts: what it runs, on what, and the exact recipe (the snapshot)."""
    return RunStart(
        report.run_id,
        request.kind,
        str(request.pipeline),
        report.engine,
        why,
        report.scheduler,
        str(request.out_dir),
        {
            "inputs": {k: str(v.resolve()) for k, v in request.inputs.items()},
            "snapshot": snapshot(graph, report.images),
            "pipeline": graph.spec.name,
            "budget": report.budget,
            "private": report.private,
            "not_processed": _not_processed(report),
        },
    )


#: Lines kept per kind of input file the run did not process (all are counted).
NOT_PROCESSED_LINES = 200


def _not_processed(report: PipelineReport) -> dict[str, dict[str, Any]]:
    """Input files the run left out, for its records and its QC report: not DICOM, refused before any task
    (damaged, duplicate), links not followed. A reviewer must see that a cohort is incomplete."""
    kinds = (("not DICOM", report.skipped), ("refused", report.refused), ("not followed", report.ignored))
    found: dict[str, dict[str, Any]] = {
        kind: {"count": len(lines), "lines": [str(line) for line in lines[:NOT_PROCESSED_LINES]]}
        for kind, lines in kinds
        if lines
    }
    if found:  # the files those lines name, so that a report can blank their folder and file names
        found["paths"] = {"count": len(report.left_out), "lines": report.left_out[: 3 * NOT_PROCESSED_LINES]}
    return found


def _finish(request: PipelineRequest, run: Execution, report: PipelineReport) -> None:
    """After the last launch: stop on a full workspace, else settle what this run published in its scope."""
    if run.storage_problem:
        done = sum(1 for t in report.tasks if t.status in FINISHED)
        raise StorageError(
            None,  # the problem names the file
            f"{run.storage_problem}; stopped after {done} tasks, finished work is kept: "
            f"free space and run the same command (run {report.run_id})",
        )
    scope = publication_scope(request.out_dir, _target(request), request.inputs)
    report.out_dir = str(request.out_dir.absolute())
    report.stale = run.publisher.reconcile(scope, sweep=report.ok, prune=request.prune)
    if report.stale and not request.prune:
        report.stale_to = str(request.out_dir.absolute() / ".stale" / report.run_id)


def _target(request: PipelineRequest) -> str:
    """What the run runs, as publication scopes name it."""
    return str(request.pipeline.resolve()) if request.kind == "pipeline" else f"tool:{request.pipeline}"


def _interrupted(exc: BaseException, request: PipelineRequest, report: PipelineReport) -> RunInterruptedError:
    """Ctrl-C or SIGTERM, once what finished is sealed: one line saying what is kept and how to resume."""
    code = 143 if isinstance(exc, SystemExit) and exc.code == 143 else 130
    done = sum(1 for t in report.tasks if t.status in FINISHED)
    total = max(report.expected, len(report.tasks))
    where = f" and its {len(report.published)} outputs are in {request.out_dir}" if report.published else ""
    return RunInterruptedError(
        f"interrupted after {done} of {total} tasks; finished work is kept{where}; "
        f"resume with the same command (run {report.run_id})",
        code,
    )


def _plan(
    request: PipelineRequest,
    graph: PipelineGraph,
    workspace: Workspace,
    index: Index,
    engine: Engine,
    why: str,
    images: dict[str, tuple[ImageRef | None, bool]],
    budget: int,
    scheduler: Scheduler | None = None,
) -> PipelineReport:
    name = scheduler.name if scheduler is not None else request.scheduler
    report = PipelineReport("dry-run", workspace.root, engine.name, why, name, budget, images)
    report.private = graph.deidentifying
    audit = AuditRecorder(workspace.root, index)  # its keys name private groups; a plan records nothing
    run = Execution(request, graph, workspace, index, engine, None, report, NoEvents(), audit, Recorder())  # type: ignore[arg-type]
    run.start(_groups(request, graph, index, report))
    run.plan_only(scheduler.cores_per_worker if scheduler is not None else None)
    return report


def _run_locked(
    request: PipelineRequest,
    graph: PipelineGraph,
    workspace: Workspace,
    index: Index,
    events: Events,
    recorders: Sequence[Recorder] = (),
) -> PipelineReport:
    if problems := resource_problems(graph, request.scheduler, request.slurm):  # before anything runs, as check says
        raise UsageError(f"{graph.path}: " + "; ".join(problems))
    resolution, images = choose_engine(request.engine, partial(resolve_images, request, graph))
    resolution = replace(resolution, why=request.engine_why) if request.engine_why else resolution
    engine = resolution.engine
    engine.cleanup()  # containers that killed runs on this host left behind
    budget = request.workers or load_settings().workers
    transfers: list[Transfer] = []
    if request.pacs_inputs:  # pulled into the workspace first (a plan needs the files too): then plain folders
        from dicompose.pipeline.pacs_io import fetch_inputs

        folders, transfers = fetch_inputs(request.pacs_inputs, workspace.root)
        request = replace(request, inputs={**request.inputs, **folders})
    if request.dry_run:
        planner = None
        if request.scheduler == "slurm":  # its name, its cores, and sbatch --test-only's verdict (no job submitted)
            planner = make_scheduler(request.scheduler, budget, request, workspace.root, "dry-run")
            budget = planner.cores if planner.cores is not None and not request.workers else budget
        plan = _plan(request, graph, workspace, index, engine, resolution.why, images, budget, planner)
        plan.transfers = transfers
        return plan
    report = PipelineReport(
        new_run_id(), workspace.root, engine.name, resolution.why, request.scheduler, budget, images
    )
    report.private = graph.deidentifying
    report.transfers = transfers
    # made first: a cluster's workers come up while we plan. SLURM's worker jobs too on a first run of this
    # target here; a rerun (which may have nothing to do) submits them at its first launch, if it has one
    eager = not index.has_run(str(request.pipeline))  # as the run records its target
    scheduler = make_scheduler(request.scheduler, budget, request, workspace.root, report.run_id, eager)
    try:
        with paused_gc():
            groups = _groups(request, graph, index, report)  # inputs with nothing to do: refused before any record
    except BaseException:
        scheduler.cancel_all()  # the worker jobs submitted for nothing: at once, not asked to end
        scheduler.close()
        raise
    report.scheduler = scheduler.name
    if scheduler.cores is not None and not request.workers:  # a cluster's worker jobs: their cores in all
        report.budget = scheduler.cores
    audit = AuditRecorder(workspace.root, index)
    audit.files([item for transfer in transfers for item in transfer.audit_items(report.run_id)])
    record = Recorders(IndexRecorder(index), audit, *recorders)
    record.run_started(_run_start(request, graph, report, resolution.why))
    run = Execution(request, graph, workspace, index, engine, scheduler, report, events, audit, record)
    events.started(report)
    status = "interrupted"
    try:
        with paused_gc():  # a rerun's cached tasks: planned, recorded and published here
            run.start(groups)
            run.dispatch()
            run.flush()
        run.drain()
        _finish(request, run, report)
        status = "ok" if report.ok else "failed"
        if report.ok and request.push_to:  # results back to the PACS, once the run has them all
            from dicompose.pipeline.pacs_io import push_outputs

            outputs = [] if graph.flat_outputs else list(graph.outputs)
            try:
                pushed = push_outputs(request.push_to, request.out_dir, outputs, workspace.root)
            except PacsError as exc:  # the run did its work: it stays ok, the delivery is what failed
                report.push_problem = str(exc)
            else:
                report.transfers.extend(pushed)
                audit.files([item for transfer in pushed for item in transfer.audit_items(report.run_id)])
    except (KeyboardInterrupt, SystemExit) as exc:
        scheduler.cancel_all()
        engine.cleanup(report.run_id)  # stops the steps still running
        with contextlib.suppress(Exception, KeyboardInterrupt):
            run.wind_down()  # what finished is sealed, published and audited before we go
        raise _interrupted(exc, request, report) from None
    except BaseException:
        status = "failed"
        scheduler.cancel_all()
        engine.cleanup(report.run_id)
        with contextlib.suppress(Exception):
            run.rescue_audit()
        raise
    finally:
        try:
            scheduler.close()
        finally:  # recorded however the close went: a finished run must not be taken for an interrupted one
            try:
                record.run_ended(report.run_id, status)
            except (sqlite3.Error, OSError):
                if status == "ok":  # else the error that ended the run is the one to report
                    raise
    return report
