"""``dicompose runs``, ``show RUN``, ``logs RUN STEP``: what ran, where, with which image, how long."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import box
from rich.markup import escape
from rich.table import Column, Table

from dicompose.cli.console import emit_json, fail, plural, stderr, stdout
from dicompose.errors import UsageError
from dicompose.records.index import Index, existing_index
from dicompose.records.workspace import Workspace, is_locked

if TYPE_CHECKING:
    from dicompose.pipeline.privacy import Redactor

WorkspaceOption = Annotated[Path, typer.Option("--workspace", help="Workspace folder.")]


def _index(workspace: Path) -> Index:
    """The workspace's index; runs left "running" by a killed dicompose (its lock is free) become "interrupted"."""
    index = existing_index(workspace)
    if not is_locked(Workspace(workspace)):
        index.mark_interrupted()
    return index


def _when(timestamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp)) if timestamp else "-"


def _run_or_fail(index: Index, run_id: str, workspace: Path) -> dict[str, Any]:
    run = index.run(run_id)
    if run is None:
        candidates = index.run_ids_starting(run_id)
        if len(candidates) > 1:
            listed = ", ".join(candidates[:5]) + (", ..." if len(candidates) > 5 else "")
            fail(UsageError(f"run id prefix {run_id!r} matches {len(candidates)} runs ({listed}); give more of it"))
        fail(UsageError(f"no run {run_id!r} in {workspace} (see dicompose runs{workspace_option(workspace)})"))
    return run


def workspace_option(workspace: Path) -> str:
    """`` --workspace W`` for a hint to copy, unless W is the default the command would use anyway."""
    return "" if Path(workspace) == Path(".dicompose") else f" --workspace {workspace}"


def _redactor(run: dict[str, Any], attempts: list[dict[str, Any]]) -> Redactor | None:
    from dicompose.pipeline.privacy import run_redactor
    from dicompose.records.audit import load_keys

    if not (run.get("details") or {}).get("private"):
        return None
    return run_redactor(run, attempts, load_keys().pseudonym)


def runs(
    workspace: WorkspaceOption = Path(".dicompose"),
    as_json: Annotated[bool, typer.Option("--json", help="A JSON list, newest last.")] = False,
) -> None:
    """List the runs recorded in a workspace, oldest first."""
    index = _index(workspace)
    items = index.runs()
    counts = index.run_counts()
    for item in items:
        launches, ran, cached = counts.get(item["id"], (0, 0, 0))
        item["launches"] = launches or ran  # runs recorded before packed launches: one per attempt
        item["cached"] = cached
    if as_json:
        emit_json(None, items)  # a bare list, newest last
        return
    wide = stdout.width >= 100  # at 80 columns the engine (in show and --json) gives way to what ran
    columns = [
        Column("run", no_wrap=True),  # copied into show/logs/rerun: never cut
        Column("started", no_wrap=True),
        Column("status", no_wrap=True),
        *([Column("engine", no_wrap=True)] if wide else []),
        Column("launches" if wide else "launch", justify="right", no_wrap=True),
        Column("cached", justify="right", no_wrap=True),
        Column("what", overflow="fold", min_width=10),  # the full target path: --json
    ]
    table = Table(*columns, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for item in items:
        started = time.strftime("%Y-%m-%d %H:%M" if wide else "%m-%d %H:%M", time.localtime(item["started"]))
        table.add_row(
            item["id"],
            started,
            item["status"],
            *([item["engine"] or "-"] if wide else []),
            str(item["launches"]),
            str(item["cached"]),
            escape(f"{item['kind']} {Path(item['target']).name or item['target']}"),
        )
    stdout.print(table)


def show(
    run_id: Annotated[str, typer.Argument(help="Run id (a unique prefix is enough).")],
    workspace: WorkspaceOption = Path(".dicompose"),
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable.")] = False,
) -> None:
    """One run: engine and why, every task attempt with its image digest, exit code, duration and logs."""
    index = _index(workspace)
    run = _run_or_fail(index, run_id, workspace)
    attempts = index.attempts(run["id"])
    jobs = _worker_jobs(workspace, run)
    if as_json:
        doc = {**run, "attempts": attempts, "launches": index.launches(run["id"])}
        if jobs is not None:
            doc["slurm"] = {"jobs": jobs[1], "logs": str(jobs[0])}
        redactor = _redactor(run, attempts)
        emit_json("dicompose.show/1", redactor.value(doc) if redactor else doc)
        return
    duration = f"{run['ended'] - run['started']:.1f} s" if run["ended"] else f"started {_when(run['started'])}"
    if collected := (run.get("details") or {}).get("collected"):
        duration += f"; its task folders and logs were removed by dicompose gc on {_when(collected)}"
    stdout.print(f"run {run['id']}: {run['status']} ({run['kind']} {escape(run['target'])}), {duration}")
    stdout.print(f"engine: {run['engine']} ({escape(run['engine_why'] or '')})")
    stdout.print(f"scheduler: {run['scheduler']}", highlight=False)
    if jobs is not None and jobs[1]:
        stdout.print(f"slurm worker jobs: {', '.join(jobs[1])}; their logs: {escape(str(jobs[0]))}", highlight=False)
    elif jobs is not None:
        stdout.print("slurm worker jobs: none submitted (nothing to launch)")
    launches = index.launches(run["id"])
    if launches:
        per_step: dict[str, list[int]] = {}
        for launch in launches:
            per_step.setdefault(launch["step"], []).append(len(launch["tasks"]))
        parts = [f"{step} {len(n)} ({sum(n)} {plural(sum(n), 'task')})" for step, n in per_step.items()]
        stdout.print(f"{len(launches)} {plural(len(launches), 'launch')}: " + ", ".join(parts))
    # a task label is what logs and the workspace name: folded, never cut
    table = Table("step", Column("task", overflow="fold"), "attempt", "status", "exit", "seconds", "image")
    for a in attempts:
        seconds = f"{a['ended'] - a['started']:.2f}" if a["started"] and a["ended"] else "-"
        status = "cached" if a["cached"] else a["status"]
        table.add_row(
            a["step"],
            escape(a["task_label"]),
            str(a["attempt"]),
            status,
            str(a["exit_code"]),
            seconds,
            (a["image_digest"] or "-")[:19],
        )
    stdout.print(table)
    redactor = _redactor(run, attempts)  # a de-identifying run: messages may name input files
    for a in attempts:  # why a task did not simply succeed: what its tool or the runner said
        if a["message"]:
            said = redactor.value(a["message"]) if redactor else a["message"]
            stdout.print(f"{a['step']} {escape('[' + a['task_label'] + ']')} {a['status']}: {escape(said)}")


def _worker_jobs(workspace: Path, run: dict[str, Any]) -> tuple[Path, list[str]] | None:
    """A SLURM run's worker jobs (their ids, from their logs' names) and the folder of their logs; None for
    another scheduler's run."""
    if not str(run.get("scheduler") or "").startswith("slurm"):
        return None
    from dicompose.schedulers.slurm import log_folder

    folder = log_folder(workspace, run["id"]).absolute()
    ids = {log.stem.rsplit("-", 1)[-1] for log in folder.glob("*.err")} if folder.is_dir() else set()
    return folder, sorted(ids, key=lambda job: (len(job), job))


def logs(
    run_id: Annotated[str, typer.Argument(help="Run id (a unique prefix is enough).")],
    step: Annotated[str | None, typer.Argument(help="Step name (default: every step).")] = None,
    workspace: WorkspaceOption = Path(".dicompose"),
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable.")] = False,
) -> None:
    """stdout and stderr of every attempt of a run's steps (or of one step)."""
    index = _index(workspace)
    run = _run_or_fail(index, run_id, workspace)
    attempts = index.attempts(run["id"], step)
    if not attempts:
        fail(UsageError(f"run {run['id']} has no step {step!r}" if step else f"run {run['id']} has no attempts"))
    if (run.get("details") or {}).get("collected") and not as_json:
        stderr.print(f"run {run['id']}: its logs were removed by dicompose gc ({_when(run['details']['collected'])})")
    entries = []
    for a in attempts:
        folder = Path(a["log_dir"]) if a["log_dir"] else None
        entry = {
            "step": a["step"],
            "task": a["task_label"],
            "attempt": a["attempt"],
            "status": a["status"],
            "cached": a["cached"],
            "log_dir": a["log_dir"],
            "message": a["message"] or None,  # the problems the runner recorded (a partial task's files)
            "stdout": _read(folder, "stdout"),
            "stderr": _read(folder, "stderr"),
        }
        entries.append(entry)
    redactor = _redactor(run, index.attempts(run["id"]))
    if redactor is not None:  # a de-identifying run: the tools' own messages may name input files
        entries = redactor.value(entries)
    if as_json:
        emit_json(None, entries)  # a bare list
        return
    for entry in entries:
        task = escape("[" + str(entry["task"]) + "]")
        stdout.print(
            f"[bold]{entry['step']} {task} attempt {entry['attempt']}: {entry['status']}"
            f"{' (cached)' if entry['cached'] else ''}[/] {entry['log_dir'] or ''}"
        )
        if entry["message"]:
            stdout.print(f"--- problems\n{entry['message']}", markup=False, highlight=False)
        for name in ("stdout", "stderr"):
            if entry[name]:
                stdout.print(f"--- {name}", markup=False)
                stdout.print(entry[name].rstrip(), markup=False, highlight=False)


def _read(folder: Path | None, name: str) -> str:
    if folder is None:
        return ""
    for candidate in (folder / name, folder / f"{name}.log"):
        if candidate.is_file():
            return candidate.read_text(errors="replace")
    return ""


def gc(
    workspace: WorkspaceOption = Path(".dicompose"),
    keep: Annotated[
        int, typer.Option("--keep", min=0, help="Latest runs of each pipeline or tool whose cache and logs stay.")
    ] = 1,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be freed; remove nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable.")] = False,
) -> None:
    """Free a workspace of what its latest runs no longer need (older runs' task folders, incomplete ones)."""
    from dicompose.records.gc import apply_gc, plan_gc
    from dicompose.records.workspace import locked

    index = _index(workspace)
    space = Workspace(workspace)
    try:
        with locked(space):
            plan = plan_gc(space, index, keep)
            if not dry_run:
                apply_gc(plan, index)
    except UsageError as exc:
        fail(exc)
    if as_json:
        document = {
            "dry_run": dry_run,
            "freed_bytes": plan.bytes,
            "task_folders": len(plan.task_dirs),
            "launch_folders": len(plan.launch_dirs),
            "collected_runs": list(plan.collected_runs),
            "kept_runs": list(plan.kept_runs),
        }
        emit_json("dicompose.gc/1", document)
        return
    verb = "would free" if dry_run else "freed"
    why = ", ".join(f"{n} {reason}" for reason, n in sorted(plan.details.items())) or "none"
    tasks, launches, kept, collected = (
        len(x) for x in (plan.task_dirs, plan.launch_dirs, plan.kept_runs, plan.collected_runs)
    )
    stdout.print(
        f"{verb} {plan.bytes / 1e6:.1f} MB in {workspace}: {tasks} task {plural(tasks, 'folder')} ({why}), "
        f"{launches} launch {plural(launches, 'folder')}; kept the latest {keep} {plural(keep, 'run')} of each "
        f"pipeline or tool ({kept} kept, {collected} {'to collect' if dry_run else 'collected'})",
        highlight=False,
    )
