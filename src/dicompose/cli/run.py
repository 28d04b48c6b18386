"""``dicompose run TARGET --in ... --out DIR``: a pipeline file, or one tool, hardened, on the chosen engine."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from dicompose.cli.console import fail, stderr, stdout
from dicompose.errors import EXIT_FAILED, EXIT_OK, DicomposeError, UsageError
from dicompose.pipeline.tool_run import TaskOutcome, ToolRunReport, ToolRunRequest, run_tool
from dicompose.tools.invocation import parse_pairs, read_invocation_file


def run(
    target: Annotated[str, typer.Argument(help="Pipeline file (.yaml), built-in tool name, or descriptor path.")],
    sources: Annotated[list[str], typer.Option("--in", help="PATH, or NAME=PATH for a pipeline input (repeatable).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")],
    params: Annotated[list[str] | None, typer.Option("-p", "--param", help="ID=VALUE (repeatable, tools).")] = None,
    invocation: Annotated[Path | None, typer.Option("--invocation", help="Boutiques invocation JSON (tools).")] = None,
    engine: Annotated[str, typer.Option("--engine", help="auto | docker | apptainer | local")] = "auto",
    workspace: Annotated[
        Path | None,
        typer.Option(
            "--workspace",
            help="Workspace folder [default: .dicompose beside the pipeline, or in the current folder for a tool].",
        ),
    ] = None,
    scheduler: Annotated[str, typer.Option("--scheduler", help="local | dask | tcp://HOST:PORT (pipelines)")] = "local",
    workers: Annotated[int | None, typer.Option("--workers", "-j", min=1, help="Parallel tasks (pipelines).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the exact engine commands; run nothing.")] = False,
    allow_unpinned: Annotated[
        bool, typer.Option("--allow-unpinned", help="Run an image not pinned by digest (with a warning).")
    ] = False,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Files per container launch.")] = 500,
    timeout: Annotated[float | None, typer.Option("--timeout", help="Seconds per launch (tools).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable report.")] = False,
) -> None:
    """Run a pipeline (each step in its own container, cached, resumable) or one tool over a file or folder."""
    if target.endswith((".yaml", ".yml")):
        from dicompose.cli.pipeline import run_pipeline_command

        if params or invocation or dry_run or timeout is not None:
            fail(UsageError("-p, --invocation, --dry-run and --timeout are for tools; a pipeline sets them per step"))
        run_pipeline_command(
            Path(target),
            sources,
            out,
            engine=engine,
            workspace=workspace,
            scheduler=scheduler,
            workers=workers,
            allow_unpinned=allow_unpinned,
            chunk=batch_size,
            as_json=as_json,
        )
        return
    if len(sources) != 1 or ("=" in sources[0] and not Path(sources[0]).exists()):
        fail(UsageError("a tool takes exactly one --in PATH"))
    try:
        raw: dict[str, Any] = read_invocation_file(invocation) if invocation else {}
        raw.update(parse_pairs(params or []))
        request = ToolRunRequest(
            target,
            Path(sources[0]),
            out,
            raw,
            engine,
            allow_unpinned,
            dry_run,
            batch_size,
            timeout,
            workspace or Path(".dicompose"),
        )
        report = run_tool(request, on_task=(lambda _t: None) if as_json else _show_task)
    except DicomposeError as exc:
        fail(exc)
    if as_json:
        print(json.dumps(_document(report), indent=2))
    else:
        _summary(report)
    raise typer.Exit(EXIT_OK if report.ok else EXIT_FAILED)


def _show_task(task: TaskOutcome) -> None:
    if task.status == "planned":
        stdout.print(shlex.join(task.command), markup=False, highlight=False)
        return
    colour = {"ok": "green", "partial": "yellow", "failed": "red"}[task.status]
    stderr.print(
        f"[{colour}]{task.status}[/] task {task.task_id}: {task.files} files → {len(task.outputs)} outputs, "
        f"exit {task.exit_code}, {task.seconds:.2f} s"
    )
    for problem in task.problems:
        stderr.print(f"  [red]{escape(problem)}[/]")
    if task.status != "ok" and task.stderr_tail:
        for line in task.stderr_tail.strip().splitlines()[-5:]:
            stderr.print(f"  | {escape(line)}")
    if task.log_dir is not None:
        stderr.print(f"  logs: {task.log_dir}")


def _summary(report: ToolRunReport) -> None:
    stderr.print(f"engine: {report.engine} ({escape(report.engine_why)})")
    if report.image is not None:
        stderr.print(f"image: {report.image.name} {report.image.digest} ({'pinned' if report.pinned else 'UNPINNED'})")
    for warning in report.warnings:
        stderr.print(f"[yellow]warning:[/] {escape(warning)}")
    extra = [name for name, on in (("network", report.permissions.network), ("gpu", report.permissions.gpu)) if on]
    if extra:
        stderr.print(f"[yellow]this tool asked for: {', '.join(extra)}[/]")
    for path in report.skipped:
        stderr.print(f"[yellow]skipped:[/] {escape(str(path))}: not a DICOM file")
    outputs = sum(len(t.outputs) for t in report.tasks)
    failed = sum(1 for t in report.tasks if t.status not in ("ok", "planned"))
    if any(t.status != "planned" for t in report.tasks):
        stdout.print(f"{len(report.tasks)} launches, {outputs} outputs, {failed} launches with failures")
    if report.run_id:
        stderr.print(f"run {report.run_id} (dicompose show {report.run_id})")


def _document(report: ToolRunReport) -> dict[str, Any]:
    return {
        "schema": "dicompose.run/1",
        "run": report.run_id,
        "tool": report.tool,
        "descriptor": report.descriptor_digest,
        "engine": {"name": report.engine, "why": report.engine_why},
        "image": {"name": report.image.name, "digest": report.image.digest, "pinned": report.pinned}
        if report.image
        else None,
        "permissions": {"network": report.permissions.network, "gpu": report.permissions.gpu},
        "warnings": report.warnings,
        "skipped": [str(p) for p in report.skipped],
        "tasks": [
            {
                "id": t.task_id,
                "status": t.status,
                "files": t.files,
                "exit_code": t.exit_code,
                "seconds": round(t.seconds, 3),
                "command": t.command,
                "outputs": [str(p) for p in t.outputs],
                "problems": t.problems,
                "logs": str(t.log_dir) if t.log_dir else None,
            }
            for t in report.tasks
        ],
    }
