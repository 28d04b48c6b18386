"""``dicompose tool validate FILE``: every problem of a descriptor, each with its JSON path."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from dicompose.cli.console import emit_json, fail, stdout
from dicompose.errors import UsageError

SCHEMA = "dicompose.tool-validate/2"
app = typer.Typer(help="Tool descriptors (Boutiques-compatible).", no_args_is_help=True)


@app.command("validate")
def validate_command(
    file: Annotated[str, typer.Argument(help="Descriptor JSON file (or a built-in tool name).")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable list of problems.")] = False,
    strict: Annotated[
        bool, typer.Option("--strict", help="dicompose's checks beyond Boutiques' count as errors, not warnings.")
    ] = False,
) -> None:
    """Judge a descriptor as bosh validate does, then with dicompose's own checks.

    Ours are warnings (errors with --strict). Exit 1 when it is invalid."""
    from dicompose.descriptors.descriptor import read_document, resolve_tool
    from dicompose.descriptors.validation import errors, validate

    try:
        path = resolve_tool(file)
        problems = validate(read_document(Path(path)), strict=strict)
    except UsageError as exc:
        if not as_json:
            fail(exc)
        document = {"file": file, "valid": False}
        refusal = {"path": "$", "message": str(exc), "severity": "error"}
        emit_json(SCHEMA, {**document, "problems": [refusal]})
        raise typer.Exit(2) from None
    valid = not errors(problems)
    if as_json:
        listing = [{"path": p.path, "message": p.message, "severity": p.severity} for p in problems]
        emit_json(SCHEMA, {"file": str(path), "valid": valid, "problems": listing})
    else:
        for problem in problems:
            colour = "red" if problem.severity == "error" else "yellow"
            stdout.print(f"[{colour}]{problem.severity}[/] {escape(str(path))}: {escape(str(problem))}", markup=True)
        if valid:
            stdout.print(f"{escape(str(path))}: valid" + (" (with warnings)" if problems else ""))
    raise typer.Exit(0 if valid else 1)
