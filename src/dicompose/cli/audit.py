"""``dicompose audit verify`` and ``dicompose audit show``: the tamper-evident log of patient-data access."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.markup import escape
from rich.table import Column, Table

from dicompose.cli.console import emit_json, fail, plural, stdout
from dicompose.errors import EXIT_FAILED, UsageError
from dicompose.records.audit import ACTIONS, home_anchors, load_keys, read_entries, verify

app = typer.Typer(help="The audit log of patient-data access (hash-chained, signed checkpoints).", no_args_is_help=True)
WorkspaceOption = Annotated[Path, typer.Option("--workspace", help="Workspace folder.")]


def _no_log_here(workspace: Path) -> UsageError:
    """Runs keep their log in their workspace; host commands (dicompose normalize ...) in $DICOMPOSE_HOME."""
    from dicompose.config import data_home

    return UsageError(
        f"{workspace}: no audit log here (a run's log: --workspace WORKSPACE; "
        f"the host commands' log: --workspace {data_home()})"
    )


def _folder(workspace: Path) -> Path:
    folder = workspace / "audit"
    if not (folder / "audit.jsonl").is_file():
        fail(_no_log_here(workspace))
    return folder


def _index_anchors(workspace: Path) -> list[dict[str, Any]]:
    """The checkpoints the workspace index keeps of its audit log (none where there is no index)."""
    from dicompose.records.index import existing_index
    from dicompose.records.workspace import Workspace

    if not Workspace(workspace).index_path.is_file():
        return []
    index = existing_index(workspace)
    try:
        return index.anchors()
    finally:
        index.close()


@app.command("verify")
def verify_command(workspace: WorkspaceOption = Path(".dicompose")) -> None:
    """Check the hash chain, the signed checkpoints and the checkpoints kept outside the log.

    Outside: in the workspace index and $DICOMPOSE_HOME. An edited, cut, rolled back or deleted log is named."""
    folder = workspace / "audit"
    anchors = _index_anchors(workspace)
    if not (folder / "audit.jsonl").is_file() and not anchors and not home_anchors(folder):
        fail(_no_log_here(workspace))
    verdict = verify(folder, anchors)
    if verdict.ok:
        entries, signed = verdict.entries, verdict.checkpoints
        stdout.print(
            f"audit log intact: {entries} {plural(entries, 'entry')}, {signed} signed {plural(signed, 'checkpoint')}"
        )
        return
    stdout.print(f"[bold red]audit log TAMPERED[/]: {escape(verdict.problem)}")
    raise typer.Exit(EXIT_FAILED)


def _is_iso_time(text: str) -> bool:
    """The log's times are ISO 8601 UTC text: filters compare as text, so they must be ISO too."""
    from datetime import datetime

    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def _what(obj: dict[str, Any]) -> str:
    """The entry's object in a few words: a file's path, a task's step, or a transfer's PACS and count."""
    if obj.get("pacs"):
        count = obj.get("instances")
        return f"{obj['pacs']}" + (
            f" ({count} instances, study {obj.get('study') or '-'})" if count is not None else ""
        )
    return str(obj.get("path") or obj.get("step") or "-")


# Over 60 lines: a Typer command whose options (filters) and two layouts (80 and 120 columns) read as one.
@app.command("show")
def show_command(
    workspace: WorkspaceOption = Path(".dicompose"),
    run: Annotated[str | None, typer.Option("--run", help="Only this run.")] = None,
    patient: Annotated[str | None, typer.Option("--patient", help="A patient pseudonym (p-…) as logged.")] = None,
    patient_id: Annotated[
        str | None, typer.Option("--patient-id", help="A raw Patient ID: pseudonymised with the site key first.")
    ] = None,
    action: Annotated[str | None, typer.Option("--action", help=f"One of {', '.join(ACTIONS)}.")] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="From this UTC date/time (ISO, e.g. 2026-11-26).")
    ] = None,
    until: Annotated[str | None, typer.Option("--until", help="Before this UTC date/time (ISO).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable.")] = False,
) -> None:
    """Entries filtered by run, patient, action or date."""
    if action is not None and action not in ACTIONS:
        fail(UsageError(f"--action {action!r}: choose from {', '.join(ACTIONS)}"))
    for option, value in (("--since", since), ("--until", until)):
        if value is not None and not _is_iso_time(value):
            example = "e.g. 2026-11-26 or 2026-11-26T14:00"
            fail(UsageError(f"{option} {value!r}: give an ISO UTC date or date-time, {example}"))
    if patient_id is not None:
        patient = load_keys().pseudonym(patient_id)
    entries = [
        e
        for e in read_entries(_folder(workspace))
        if (run is None or e.get("run") == run)
        and (patient is None or e.get("object", {}).get("patient") == patient)
        and (action is None or e.get("action") == action)
        and (since is None or e["time"] >= since)
        and (until is None or e["time"] < until)
    ]
    if as_json:
        emit_json(None, entries)  # a bare list
        return
    if not entries:
        stdout.print("no entries match")
        return
    if stdout.width < 160:  # a table would fold the paths to nothing: an entry per two lines, nothing cut
        for e in entries:
            obj = e.get("object", {})
            when = e["time"][5:19].replace("T", " ")
            patient = obj.get("patient") or "-"
            stdout.print(f"{e['seq']:>6}  {when}  {e['action']:<8} {patient}  {e['outcome']}", highlight=False)
            stdout.print(f"        {escape(_what(obj))}", highlight=False)
        return
    table = Table(
        Column("seq", justify="right", no_wrap=True),
        Column("time (UTC)", no_wrap=True),
        Column("user", no_wrap=True),
        Column("action", no_wrap=True),
        Column("patient", no_wrap=True),  # pasted into --patient: never cut
        Column("path", overflow="fold"),
        Column("tool", no_wrap=True),
        Column("outcome", no_wrap=True),
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    for e in entries:
        obj = e.get("object", {})
        table.add_row(
            str(e["seq"]),
            e["time"][:19].replace("T", " "),
            e["actor"]["user"],
            e["action"],
            obj.get("patient") or "-",
            escape(_what(obj)),
            e.get("tool") or "-",
            e["outcome"],
        )
    stdout.print(table)
