"""``dicompose report RUN --out DIR``, and the report ``dicompose run --report`` writes at the end of a run."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from dicompose.cli.console import emit_json, fail, plural, stderr, stdout
from dicompose.cli.records import WorkspaceOption, _index, _run_or_fail
from dicompose.errors import DicomposeError

if TYPE_CHECKING:
    from dicompose.records.index import Index
    from dicompose.report.build import Written

REPORT_SCHEMA = "dicompose.report/1"


def report(
    run_id: Annotated[str, typer.Argument(help="Run id (a unique prefix is enough).")],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Report folder (index.html, series/, figures/); replaced if it is one.")
    ],
    workspace: WorkspaceOption = Path(".dicompose"),
    embed: Annotated[
        bool,
        typer.Option("--embed", help="One self-contained page (figures inline); --out DIR/index.html or a .html file."),
    ] = False,
    show_identifiers: Annotated[
        bool,
        typer.Option(
            "--show-identifiers",
            help="Also show patient name and id, study date, descriptions, UIDs and input paths (default: pseudonyms).",
        ),
    ] = False,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers", "-j", min=1, max=256, help="Series drawn at once (default: all cores, or the configuration's)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable summary.")] = False,
) -> None:
    """A run's visual QC report: before/after slices, masks, histograms, header changes, timings, failures."""
    index = _index(workspace)
    run = _run_or_fail(index, run_id, workspace)
    written = make_report(index, run, workspace, out, embed=embed, show_identifiers=show_identifiers, workers=workers)
    if as_json:
        emit_json(REPORT_SCHEMA, summary_document(written))
        return
    say_written(written)


def make_report(
    index: Index,
    run: dict[str, Any],
    workspace: Path,
    out: Path,
    *,
    embed: bool,
    show_identifiers: bool,
    workers: int | None = None,
) -> Written:
    from dicompose.config import load_settings
    from dicompose.report.build import write_report

    try:
        return write_report(
            index,
            run,
            workspace,
            out,
            embed=embed,
            show_identifiers=show_identifiers,
            workers=workers or load_settings().workers,
        )
    except DicomposeError as exc:
        fail(exc)
    except KeyboardInterrupt:
        interrupted(run["id"], None)


def interrupted(run_id: str, workspace: Path | None) -> NoReturn:
    """Ctrl-C while a report is made: one line, exit 130; nothing of the report is left (it was staged)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # stopping already: a second Ctrl-C must not cut this short
    again = f"; make it with: dicompose report {run_id}" + (f" --workspace {workspace}" if workspace else "")
    stderr.print(f"interrupted: no report of run {run_id} was written{again if workspace else ''}", highlight=False)
    raise typer.Exit(130)


def summary_document(written: Written) -> dict[str, Any]:
    report = written.report
    return {
        "run": report.run_id,
        "page": str(written.path.absolute()),
        "series": len(report.rows),
        "failed_series": sum(1 for row in report.rows if row.status == "failed"),
        "figures": written.figures,
        "bytes": written.bytes,
        "seconds": round(written.seconds, 3),
        "identifiers_shown": report.show_identifiers,
    }


def say_written(written: Written) -> None:
    report = written.report
    failed = sum(1 for row in report.rows if row.status == "failed")
    rows = len(report.rows)
    stdout.print(
        f"report of run {report.run_id}: {rows} series"
        f"{f' ({failed} failed)' if failed else ''}, {written.figures} {plural(written.figures, 'figure')}, "
        f"{written.bytes / 1e6:.1f} MB in {written.seconds:.1f} s",
        highlight=False,
    )
    stdout.print(f"open: {written.path.absolute()}", highlight=False, soft_wrap=True)
