"""``dicompose tool validate FILE``: every problem of a descriptor, each with its JSON path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from dicompose.cli.console import fail, stdout
from dicompose.errors import UsageError

app = typer.Typer(help="Tool descriptors (Boutiques-compatible).", no_args_is_help=True)


@app.command("validate")
def validate_command(
    file: Annotated[str, typer.Argument(help="Descriptor JSON file (or a built-in tool name).")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable list of problems.")] = False,
) -> None:
    """Check a descriptor against the Boutiques schema and dicompose's semantic rules."""
    from dicompose.tools.descriptor import read_document, resolve_tool, validate

    try:
        path = resolve_tool(file)
        problems = validate(read_document(Path(path)))
    except UsageError as exc:
        fail(exc)
    if as_json:
        stdout.print_json(
            json.dumps(
                {
                    "file": str(path),
                    "valid": not problems,
                    "problems": [{"path": p.path, "message": p.message} for p in problems],
                }
            )
        )
    elif problems:
        for problem in problems:
            stdout.print(f"[red]{path}[/]: {problem}", markup=True)
    else:
        stdout.print(f"{path}: valid")
    raise typer.Exit(1 if problems else 0)
