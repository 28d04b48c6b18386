"""How a run or a plan is shown: the plan of ``--dry-run``, the summary at the end of a run, and the ``--json``
documents (``dicompose.pipeline-run/1``, ``dicompose.run/2``: docs/json.md), names redacted in runs that
de-identify."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.markup import escape

from dicompose.cli.console import plural, stderr, stdout

if TYPE_CHECKING:
    from dicompose.pipeline.graph import PipelineGraph
    from dicompose.pipeline.privacy import Redactor
    from dicompose.pipeline.runner import PipelineReport


RUN_SCHEMA = "dicompose.run/2"  # a tool run (tasks[] are tasks; launches[] the packs that carried them)
PIPELINE_RUN_SCHEMA = "dicompose.pipeline-run/1"


def print_plan(report: PipelineReport, graph: PipelineGraph) -> None:
    """``--dry-run``: the tasks (cached or planned), and the exact command of each launch."""
    redactor = _report_redactor(report)
    stdout.print(
        f"engine: {report.engine} ({escape(report.engine_why)}); scheduler: {report.scheduler}; "
        f"{report.budget} {plural(report.budget, 'core')}"
    )
    for node in graph.steps:
        tasks = [t for t in report.tasks if t.step == node.name]
        cached = sum(1 for t in tasks if t.cached)
        planned = [t for t in tasks if t.status == "planned"]
        line = f"{node.name}: {len(tasks)} {plural(len(tasks), 'task')} ready ({cached} cached, {len(planned)} to run)"
        if node.source.kind == "step" and not tasks:
            line = f"{node.name}: waits for {node.source.name} (tasks are known once its outputs exist)"
        stdout.print(line)
        for launch in (launch for launch in report.launch_log if launch.step == node.name):
            labels = [t.label for t in tasks if t.key in launch.tasks]
            shown = ", ".join(labels[:3]) + (f", … ({len(labels)} tasks)" if len(labels) > 3 else "")
            stdout.print(f"  launch {launch.id.rsplit('-', 1)[-1]} ({launch.processes} proc): {escape(shown)}")
            command = shlex.join(launch.command)
            if redactor is not None:  # a de-identifying run: mounts name the input folders
                command = redactor.text(command)
            stdout.print(f"    {command}", markup=False, highlight=False)


def header(report: PipelineReport) -> None:
    """What the run runs on, said when it starts (a log under nohup shows it before the first launch ends)."""
    stderr.print(f"engine: {report.engine} ({escape(report.engine_why)}); scheduler: {report.scheduler}")
    for name, (image, pinned) in report.images.items():
        if image is not None:
            stderr.print(f"image: {name}: {image.name} {image.digest} ({'pinned' if pinned else 'UNPINNED'})")


def summary(report: PipelineReport, graph: PipelineGraph, out: Path) -> None:
    for path in report.skipped:
        stderr.print(f"[yellow]skipped:[/] {escape(str(path))}: not a DICOM file")
    for line in report.refused:
        stderr.print(f"[red]refused:[/] {escape(line)}")
    for line in report.ignored:
        stderr.print(f"[yellow]skipped:[/] {escape(line)}")
    for task in report.tasks:  # objects the tool does not handle, as the tool itself reports them
        for line in task.skipped:
            stderr.print(f"[yellow]skipped:[/] {escape(line)}")
    for node in graph.steps:
        c = report.counts(node.name)
        line = ", ".join(f"{v} {k}" for k, v in c.items() if v) or "no tasks"
        launches = sum(1 for launch in report.launch_log if launch.step == node.name)
        stdout.print(f"  {node.name:<16} {line}; {launches} launch{'es' if launches != 1 else ''}")
    for task in report.tasks:
        if task.status in ("failed", "partial") and task.result is not None:
            colour = "red" if task.status == "failed" else "yellow"
            stderr.print(
                f"[{colour}]{task.status}[/] {task.step} {escape('[' + task.label + ']')} "
                f"(attempt {task.attempt}, "
                + (f"exit {task.result.exit_code})" if task.result.exit_code is not None else "did not finish)")
            )
            for problem in task.result.problems:
                stderr.print(f"  {escape(problem)}")
            for line in task.result.stderr_tail.strip().splitlines()[-5:]:
                stderr.print(f"  | {escape(line)}")
            stderr.print(f"  logs: {task.result.log_dir}")
        elif task.status in ("failed", "partial") and task.cached:  # done before: what it recorded
            stderr.print(f"[yellow]{task.status}[/] {task.step} {escape('[' + task.label + ']')} (cached)")
            for problem in task.problems:
                stderr.print(f"  {escape(problem)}")
    for conflict in report.conflicts:
        stderr.print(f"[red]conflict:[/] {escape(conflict)}")
    if report.stale:
        done = f"moved to {report.stale_to}" if report.stale_to else "deleted (--prune)"
        stderr.print(
            f"[yellow]stale:[/] {len(report.stale)} outputs of earlier runs that this run no longer produces "
            f"(their inputs are gone) {escape(done)}"
        )
    _transfers(report)
    verdict = "[green]ok[/]" if report.ok else "[red]failed[/]"
    stdout.print(
        f"run {report.run_id} {verdict}: {len(report.tasks)} {plural(len(report.tasks), 'task')} in "
        f"{report.launches} {plural(report.launches, 'launch')}, "
        f"{len(report.published)} outputs in {escape(str(out.resolve()))}"
    )
    here = report.workspace.resolve()
    option = "" if here == Path(".dicompose").resolve() else f" --workspace {here}"  # a hint that works as given
    stdout.print(f"logs and records: {escape(str(here))} (dicompose show {report.run_id}{escape(option)})")


def _transfers(report: PipelineReport) -> None:
    """What came from and went to a PACS (no patient named: the PACS's URL and counts)."""
    for transfer in report.transfers:
        if transfer.action == "receive":
            said = f"{transfer.received} received, {transfer.present} already here"
            stdout.print(f"pulled from {escape(transfer.pacs)}: {said}")
            if transfer.fell_back:
                stderr.print(f"note: {escape(transfer.fell_back)}", highlight=False)
        else:
            said = f"{transfer.received} stored, {transfer.present} already present"
            stdout.print(f"pushed to {escape(transfer.pacs)}: {said}")
            for line in transfer.refused or []:
                stderr.print(f"[red]not stored:[/] {escape(line)}")
    if report.push_problem:
        stderr.print(f"[red]error:[/] {escape(report.push_problem)} (the run's outputs are in place: push them again)")


def document(report: PipelineReport, graph: PipelineGraph, tool: bool) -> dict[str, Any]:
    """The ``--json`` document of a run or plan (docs/json.md). Over 60 lines: one literal, field by field, so
    the contract scripts rely on reads in one place."""
    doc: dict[str, Any] = {
        "schema": RUN_SCHEMA if tool else PIPELINE_RUN_SCHEMA,
        "run": None if report.run_id == "dry-run" else report.run_id,
        "dry_run": report.run_id == "dry-run",
        "ok": report.ok,
        "workspace": str(report.workspace),
        "engine": {"name": report.engine, "why": report.engine_why},
        "scheduler": report.scheduler,
        "cores": report.budget,
        "launches": report.launches,
        "tasks": [
            {
                "step": t.step,
                "label": t.label,
                "key": t.key,
                "status": t.status,
                "cached": t.cached,
                "attempts": 0 if t.status == "planned" or t.cached else t.attempt,
                "launch": t.launch or None,
                "outputs": list(t.outputs),
                "skipped": list(t.skipped),
                "problems": list(t.result.problems) if t.result else [],
                "log_dir": t.result.log_dir if t.result else None,
            }
            for t in report.tasks
        ],
        "launch_log": [
            {
                "id": launch.id,
                "step": launch.step,
                "tasks": launch.tasks,
                "processes": launch.processes,
                "exit_code": launch.exit_code,
                "seconds": round(launch.seconds, 3),
                "command": launch.command,
            }
            for launch in report.launch_log
        ],
        "published": [str(p) for p in report.published],
        "skipped": [str(p) for p in report.skipped],
        "conflicts": report.conflicts,
        "refused": report.refused,
        "ignored": report.ignored,
        "stale": report.stale,
        "stale_to": report.stale_to,
        "pacs": [
            {
                "action": t.action,
                "pacs": t.pacs,
                "instances": t.received,
                "already_present": t.present,
                "refused": t.refused or [],
                "fell_back": t.fell_back or None,
            }
            for t in report.transfers
        ],
        "push_problem": report.push_problem or None,
    }
    if tool:
        (node,) = graph.steps
        image, pinned = report.images[node.name]
        doc["tool"] = node.descriptor.name
        doc["descriptor"] = node.descriptor.digest
        doc["image"] = {"name": image.name, "digest": image.digest, "pinned": pinned} if image else None
        custom = node.descriptor.custom
        doc["permissions"] = {"network": bool(custom.get("network")), "gpu": bool(custom.get("gpu"))}
        doc["warnings"] = [f"running unpinned image {image.name}" for image, p in [(image, pinned)] if image and not p]
    redactor = _report_redactor(report)
    if redactor is not None:  # a de-identifying run: no input's folder or file name in what it reports
        from dicompose.records.audit import load_keys

        pseudonym = load_keys().pseudonym
        doc["stale"] = [_private_stale(p, report.out_dir, graph, pseudonym) for p in report.stale]
        redacted: dict[str, Any] = redactor.value(doc)
        return redacted
    return doc


def _private_stale(path: str, out_dir: str, graph: PipelineGraph, pseudonym: Callable[[str], str | None]) -> str:
    """A stale output of a de-identifying run, as reported: de-identified outputs are named from de-identified
    values (kept as they are); an identified output's input is gone, so no name is left to match: every
    segment below its output folder is replaced by a keyed pseudonym."""
    from dicompose.pipeline.privacy import pseudonymous_path

    relative = path[len(out_dir.rstrip("/")) + 1 :] if path.startswith(out_dir.rstrip("/") + "/") else ""
    if graph.flat_outputs:
        base, step = out_dir, graph.steps[0].name
    else:
        out_name = relative.split("/", 1)[0]
        source = graph.outputs.get(out_name)
        base, step = f"{out_dir.rstrip('/')}/{out_name}", source.name if source is not None else ""
    if step and graph.deidentified(step):
        return path
    return pseudonymous_path(path, base, pseudonym)


def _report_redactor(report: PipelineReport) -> Redactor | None:
    if not report.private:
        return None
    from dicompose.pipeline.privacy import Redactor
    from dicompose.records.audit import load_keys

    return Redactor(report.input_names, report.input_roots, load_keys().pseudonym)
