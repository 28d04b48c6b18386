"""``dicompose run TOOL --in PATH --out DIR``: one tool, hardened, batched, on the chosen engine."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from dicompose.cli.console import fail, stderr, stdout
from dicompose.errors import EXIT_FAILED, EXIT_OK, DicomposeError
from dicompose.pipeline.tool_run import TaskOutcome, ToolRunReport, ToolRunRequest, run_tool
from dicompose.tools.invocation import parse_pairs, read_invocation_file


def run(
    tool: Annotated[str, typer.Argument(help="Built-in tool name or Boutiques descriptor path.")],
    source: Annotated[Path, typer.Option("--in", help="DICOM file or folder (fed to the tool's File input).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")],
    params: Annotated[list[str] | None, typer.Option("-p", "--param", help="ID=VALUE (repeatable).")] = None,
    invocation: Annotated[Path | None, typer.Option("--invocation", help="Boutiques invocation JSON.")] = None,
    engine: Annotated[str, typer.Option("--engine", help="auto | docker | apptainer | local")] = "auto",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the exact engine commands; run nothing.")] = False,
    allow_unpinned: Annotated[
        bool, typer.Option("--allow-unpinned", help="Run an image not pinned by digest (with a warning).")
    ] = False,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Files per container launch.")] = 500,
    timeout: Annotated[float | None, typer.Option("--timeout", help="Seconds per launch.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable report.")] = False,
) -> None:
    """Run one tool over a file or folder: many files per launch, inputs read-only, no network."""
    try:
        raw: dict[str, Any] = read_invocation_file(invocation) if invocation else {}
        raw.update(parse_pairs(params or []))
        request = ToolRunRequest(tool, source, out, raw, engine, allow_unpinned, dry_run, batch_size, timeout)
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


def _document(report: ToolRunReport) -> dict[str, Any]:
    return {
        "schema": "dicompose.run/1",
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
