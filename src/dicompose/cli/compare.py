"""``dicompose compare A B``: do two runs or output folders agree, within a tolerance?"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import box
from rich.markup import escape
from rich.table import Column, Table

from dicompose.cli.console import fail, stdout
from dicompose.errors import EXIT_FAILED, EXIT_OK, UsageError
from dicompose.records.index import existing_index
from dicompose.records.workspace import Workspace

if TYPE_CHECKING:
    from dicompose.records.compare import Comparison


def _folder(target: str, workspace: Path) -> Path:
    path = Path(target)
    if path.is_dir():
        return path
    run = existing_index(workspace).run(target) if Workspace(workspace).index_path.is_file() else None
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


def _row(f: Any) -> list[str]:
    image = f.image
    colour = "green" if f.passed else "red"
    status = f"[{colour}]{f.status}[/]"
    if not image:
        return [escape(f.name), status, "", "", "", "", "", escape(f.message)]
    if not image.same_shape:  # no figure means anything: say why instead
        return [
            escape(f.name),
            status,
            "-",
            "-",
            "-",
            "-",
            "-",
            escape("; ".join([*image.notes, *image.header_differences])),
        ]
    return [
        escape(f.name),
        status,
        f"{image.max_abs:g}",
        f"{image.mean_abs:.3g}",
        str(image.differing),
        "∞" if image.psnr is None else f"{image.psnr:.1f}",
        "-" if image.dice is None else f"{image.dice:.4f}",
        escape(", ".join([*image.notes, *image.header_differences])),  # notes: why figures are infinite
    ]


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
                        "notes": list(f.image.notes),
                        "max_abs": _number(f.image.max_abs),
                        "mean_abs": _number(f.image.mean_abs),
                        "differing_voxels": f.image.differing if f.image.same_shape else None,
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


#: Rows listed without --all: the first files that differ, then a few that agree (a cohort's thousand rows say
#: less than the verdict line; --json always has them all).
DIFFERING_SHOWN = 20
AGREEING_SHOWN = 10


def show(result: Comparison, *, every_file: bool = False) -> None:
    """A table of the first files that differ and a few that agree (every file with ``every_file``), then the
    verdict. Columns every listed row leaves blank (image figures of unpaired files, notes) are left out."""
    differing = [f for f in result.files if not f.passed]
    agreeing = [f for f in result.files if f.passed]
    shown_differing = differing if every_file else differing[:DIFFERING_SHOWN]
    shown_agreeing = agreeing if every_file else agreeing[: max(0, AGREEING_SHOWN - len(shown_differing))]
    listed = shown_differing + shown_agreeing
    rows = [_row(f) for f in listed]
    narrow = stdout.width < 100  # mean |Δ| and voxels ≠ give way (they are in --json)
    columns = [
        Column("file", overflow="fold", min_width=16),
        Column("result", no_wrap=True),
        Column("max |Δ|", justify="right", no_wrap=True),
        None if narrow else Column("mean |Δ|", justify="right", no_wrap=True),
        None if narrow else Column("voxels ≠", justify="right", no_wrap=True),
        Column("PSNR", justify="right", no_wrap=True),
        Column("Dice", justify="right", no_wrap=True),
    ]
    used = [i for i, c in enumerate(columns) if c is not None and (i < 2 or any(row[i] for row in rows))]
    table = Table(
        *(c for i, c in enumerate(columns) if i in used and c is not None), box=box.SIMPLE_HEAD, pad_edge=False
    )
    for row in rows:
        table.add_row(*(row[i] for i in used))
    if listed:
        stdout.print(table)
    for f, row in zip(listed, rows, strict=True):  # header differences and reasons: a line each, not a column
        if row[-1]:
            stdout.print(f"  {escape(f.name)}: {row[-1]}")
    left = [(len(differing) - len(shown_differing), "differ"), (len(agreeing) - len(shown_agreeing), "agree")]
    if any(count for count, _ in left):
        more = " and ".join(f"{count} more files that {what}" for count, what in left if count)
        stdout.print(f"… {more} (--all lists every file, --json gives them all)")
    passed = sum(f.passed for f in result.files)
    verdict = "[green]PASS[/]" if result.passed else "[red]FAIL[/]"
    stdout.print(f"{verdict}: {passed}/{len(result.files)} files agree (tolerance {result.tolerance:g})")
