"""``dicompose run PIPELINE.yaml`` and ``dicompose check``: progress per step, then where results and logs are."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.progress import Progress, TaskID, TextColumn, TimeElapsedColumn

from dicompose.cli.console import fail, stderr, stdout
from dicompose.errors import EXIT_FAILED, EXIT_OK, DicomposeError, UsageError
from dicompose.pipeline.graph import build_graph
from dicompose.pipeline.runner import PipelineReport, PipelineRequest, Task, run_pipeline


def parse_inputs(sources: list[str], names: list[str]) -> dict[str, Path]:
    """``--in NAME=PATH`` (repeatable), or a bare ``--in PATH`` when the pipeline has one input."""
    result: dict[str, Path] = {}
    for source in sources:
        name, sep, path = source.partition("=")
        if sep and name in names:
            result[name] = Path(path)
        elif len(names) == 1 and not (sep and name not in names and not Path(source).exists()):
            result[names[0]] = Path(source)
        else:
            raise UsageError(f"--in {source!r}: expected NAME=PATH with NAME one of {', '.join(names)}")
    return result


def check(pipeline: Path) -> None:
    """Validate a pipeline (tools, references, types, cycles) without running anything."""
    try:
        graph = build_graph(pipeline)
    except DicomposeError as exc:
        fail(exc)
    order = " → ".join(node.name for node in graph.steps)
    stdout.print(f"{pipeline}: valid ({len(graph.steps)} steps: {order}; inputs: {', '.join(graph.spec.inputs)})")


def run_pipeline_command(
    pipeline: Path,
    sources: list[str],
    out: Path,
    *,
    engine: str,
    workspace: Path | None,
    scheduler: str,
    workers: int | None,
    allow_unpinned: bool,
    chunk: int,
    as_json: bool,
) -> None:
    try:
        graph = build_graph(pipeline)
        inputs = parse_inputs(sources, list(graph.spec.inputs))
        request = PipelineRequest(pipeline, inputs, out, workspace, engine, scheduler, workers, allow_unpinned, chunk)
        with _StepProgress([n.name for n in graph.steps], enabled=stderr.is_terminal and not as_json) as progress:
            report = run_pipeline(request, events=progress.update)
    except DicomposeError as exc:
        fail(exc)
    if as_json:
        print(json.dumps(document(report), indent=2))
    else:
        summary(report, [n.name for n in graph.steps], out)
    raise typer.Exit(EXIT_OK if report.ok else EXIT_FAILED)


class _StepProgress:
    """One live line per step: tasks done / cached / failed."""

    def __init__(self, steps: list[str], enabled: bool) -> None:
        self.enabled = enabled
        self.counts = {step: {"ok": 0, "cached": 0, "failed": 0} for step in steps}
        self.progress = Progress(TextColumn("{task.description}"), TimeElapsedColumn(), console=stderr, transient=True)
        self.rows: dict[str, TaskID] = {}

    def __enter__(self) -> _StepProgress:
        if self.enabled:
            self.progress.start()
            for step in self.counts:
                self.rows[step] = self.progress.add_task(self._text(step))
        return self

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self.progress.stop()

    def _text(self, step: str) -> str:
        c = self.counts[step]
        return f"{step:<16} {c['ok']} done, {c['cached']} cached, {c['failed']} failed"

    def update(self, task: Task) -> None:
        kind = "cached" if task.cached else ("ok" if task.status in ("ok", "partial") else "failed")
        self.counts[task.step][kind] += 1
        if self.enabled:
            self.progress.update(self.rows[task.step], description=self._text(task.step))


def summary(report: PipelineReport, steps: list[str], out: Path) -> None:
    stderr.print(f"engine: {report.engine} ({escape(report.engine_why)}); scheduler: {report.scheduler}")
    for path in report.skipped:
        stderr.print(f"[yellow]skipped:[/] {escape(str(path))}: not a DICOM file")
    for step in steps:
        c = report.counts(step)
        line = ", ".join(f"{v} {k}" for k, v in c.items() if v) or "no tasks"
        stdout.print(f"  {step:<16} {line}")
    for task in report.tasks:
        if task.status in ("failed", "partial") and task.result is not None:
            colour = "red" if task.status == "failed" else "yellow"
            stderr.print(
                f"[{colour}]{task.status}[/] {task.step} [{escape(task.label)}] "
                f"(attempt {task.attempt}, exit {task.result.exit_code})"
            )
            for problem in task.result.problems:
                stderr.print(f"  {escape(problem)}")
            for line in task.result.stderr_tail.strip().splitlines()[-5:]:
                stderr.print(f"  | {escape(line)}")
            stderr.print(f"  logs: {task.result.log_dir}")
    verdict = "[green]ok[/]" if report.ok else "[red]failed[/]"
    stdout.print(
        f"run {report.run_id} {verdict}: {report.launches} launches, {len(report.published)} outputs in "
        f"{escape(str(out.resolve()))}"
    )
    stdout.print(f"logs and records: {escape(str(report.workspace.resolve()))} (dicompose show {report.run_id})")


def document(report: PipelineReport) -> dict[str, Any]:
    return {
        "schema": "dicompose.pipeline-run/1",
        "run": report.run_id,
        "ok": report.ok,
        "workspace": str(report.workspace),
        "engine": {"name": report.engine, "why": report.engine_why},
        "scheduler": report.scheduler,
        "launches": report.launches,
        "tasks": [
            {
                "step": t.step,
                "label": t.label,
                "key": t.key,
                "status": t.status,
                "cached": t.cached,
                "attempts": t.attempt,
                "outputs": list(t.outputs),
                "log_dir": t.result.log_dir if t.result else None,
            }
            for t in report.tasks
        ],
        "published": [str(p) for p in report.published],
        "skipped": [str(p) for p in report.skipped],
    }


def demo_engine(requested: str) -> tuple[str, str]:
    """For the demo: ``auto`` means docker only if its images are built, else the local engine (and why)."""
    if requested != "auto":
        return requested, "requested"
    from dicompose.engines.resolve import resolve_engine
    from dicompose.pipeline.images import resolve_step_image
    from dicompose.tools.samples import demo_pipeline

    resolution = resolve_engine("auto")
    if resolution.engine.name == "local":
        return "local", resolution.why
    try:
        for node in build_graph(demo_pipeline()).steps:
            resolve_step_image(node.descriptor, resolution.engine, allow_unpinned=False)
    except UsageError as exc:
        return "local", f"{resolution.engine.name} answers but {exc}"
    return resolution.engine.name, resolution.why
