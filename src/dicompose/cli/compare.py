"""``dicompose compare A B``: do two runs or output folders agree, within a tolerance?"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Column, Table

from dicompose.cli.console import fail, stdout
from dicompose.errors import EXIT_FAILED, EXIT_OK, UsageError
from dicompose.records.index import Index

if TYPE_CHECKING:
    from dicompose.records.compare import Comparison


def _folder(target: str, workspace: Path) -> Path:
    path = Path(target)
    if path.is_dir():
        return path
    index_path = workspace / "index.sqlite"
    run = Index(index_path).run(target) if index_path.is_file() else None
    if run is None or not run.get("out_dir"):
        fail(UsageError(f"{target}: neither an output folder nor a run in {workspace}"))
    return Path(run["out_dir"])


def compare(
    a: Annotated[str, typer.Argument(help="Run id or output folder.")],
    b: Annotated[str, typer.Argument(help="Run id or output folder.")],
    tolerance: Annotated[float, typer.Option("--tolerance", help="Largest allowed absolute pixel difference.")] = 0.0,
    workspace: Annotated[Path, typer.Option("--workspace", help="Where run ids are looked up.")] = Path(".dicompose"),
    every_file: Annotated[bool, typer.Option("--all", help="List every file, not only those that differ.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable.")] = False,
) -> None:
    """Pair outputs (DICOM by source instance, other files by path) and compare them numerically."""
    from dicompose.records.compare import compare_folders

    result = compare_folders(_folder(a, workspace), _folder(b, workspace), tolerance)
    if as_json:
        print(json.dumps(document(result), indent=2))
    else:
        show(result, every_file=every_file)
    raise typer.Exit(EXIT_OK if result.passed else EXIT_FAILED)


def _number(value: float | None) -> Any:
    return None if value is None or math.isinf(value) else round(value, 6)


def document(result: Comparison) -> dict[str, Any]:
    return {
        "schema": "dicompose.compare/1",
        "a": str(result.a),
        "b": str(result.b),
        "tolerance": result.tolerance,
        "passed": result.passed,
        "files": [
            {
                "name": f.name,
                "status": f.status,
                "passed": f.passed,
                "message": f.message or None,
                **(
                    {
                        "header_differences": list(f.image.header_differences),
                        "max_abs": _number(f.image.max_abs),
                        "mean_abs": _number(f.image.mean_abs),
                        "differing_voxels": f.image.differing,
                        "psnr_db": _number(f.image.psnr),
                        "dice": _number(f.image.dice),
                    }
                    if f.image
                    else {}
                ),
            }
            for f in result.files
        ],
    }


#: Files listed when all agree and --all is not given: a cohort's thousand rows say less than the verdict.
AGREEING_SHOWN = 10


def show(result: Comparison, *, every_file: bool = False) -> None:
    """The files that differ (all of them), a few that agree, the verdict; ``every_file``: every row."""
    differing = [f for f in result.files if not f.passed]
    agreeing = [f for f in result.files if f.passed]
    listed = result.files if every_file else differing + agreeing[: max(0, AGREEING_SHOWN - len(differing))]
    table = Table(
        Column("file", overflow="fold"),
        "result",
        "max |Δ|",
        "mean |Δ|",
        "voxels ≠",
        "PSNR dB",
        "Dice",
        Column("header differences", overflow="fold"),
    )
    for f in listed:
        image = f.image
        colour = "green" if f.passed else "red"
        table.add_row(
            escape(f.name),
            f"[{colour}]{f.status}[/]",
            *(
                (
                    f"{image.max_abs:g}",
                    f"{image.mean_abs:.3g}",
                    str(image.differing),
                    "∞" if image.psnr is None else f"{image.psnr:.1f}",
                    "-" if image.dice is None else f"{image.dice:.4f}",
                    escape(", ".join(image.header_differences)),
                )
                if image
                else ("", "", "", "", "", escape(f.message))
            ),
        )
    if listed:
        stdout.print(table)
    if len(listed) < len(result.files):
        stdout.print(f"… and {len(result.files) - len(listed)} more files that agree (--all lists every file)")
    passed = sum(f.passed for f in result.files)
    verdict = "[green]PASS[/]" if result.passed else "[red]FAIL[/]"
    stdout.print(f"{verdict}: {passed}/{len(result.files)} files agree (tolerance {result.tolerance:g})")
