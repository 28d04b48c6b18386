"""Shared CLI plumbing: one error line and exit code per failure, progress bars, batch summaries.

Imported by every command, so it stays light at module level (typer, rich.console, stdlib, our leaves): the
batch machinery (pydicom, numpy) is imported inside the functions that run a batch (docs/benchmarks.md, Start-up).
"""

from __future__ import annotations

import json
import signal
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from dicompose.errors import EXIT_FAILED, EXIT_OK, DicomposeError

if TYPE_CHECKING:
    from dicompose.params import NormalizeParams
    from dicompose.tools.batch import FileResult, Operation, Summary

stdout = Console(highlight=False, soft_wrap=True, emoji=False)  # a path may hold ":thumbs_up:"
stderr = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)


ENGINE_HELP = "auto | docker | apptainer | charliecloud | local (default: auto, or the configuration's)"
ImageDirOption = Annotated[
    Path | None,
    typer.Option(
        "--image-dir",
        help="Folder of exported Charliecloud images (default: $DICOMPOSE_IMAGE_DIR, the configuration's image_dir, "
        "else $DICOMPOSE_HOME/charliecloud).",
    ),
]


def plural(count: int, word: str) -> str:
    """``word`` for one, its plural otherwise ("launch" → "launches", "entry" → "entries")."""
    if count == 1:
        return word
    if word.endswith("y") and word[-2:-1] not in ("a", "e", "i", "o", "u"):
        return word[:-1] + "ies"
    return word + "es" if word.endswith(("ch", "sh", "s", "x")) else word + "s"


def print_error(error: DicomposeError) -> None:
    """One line, never a traceback."""
    stderr.print(f"[bold red]error:[/] {escape(str(error))}")


def fail(error: DicomposeError) -> NoReturn:
    """Print one line and exit with the error's code (commands may also just raise: ``main`` does this)."""
    print_error(error)
    raise typer.Exit(error.exit_code)


def emit_json(schema: str | None, payload: object) -> None:
    """Every ``--json`` output: an object carries its versioned ``schema`` name first (a field whose meaning
    changes bumps the version); a bare list (runs, logs, audit show) stays a list (``schema`` None)."""
    document = {"schema": schema, **payload} if schema is not None and isinstance(payload, dict) else payload
    sys.stdout.write(json.dumps(document, indent=2) + "\n")


def parse_number(text: str, name: str) -> float:
    """MIN/MAX as finite numbers, with a usage error (exit 2) naming the argument otherwise."""
    try:
        value = float(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a number", param_hint=name) from None
    if value != value or value in (float("inf"), float("-inf")):
        raise typer.BadParameter(f"{text!r} is not a finite number", param_hint=name)
    return value


@contextmanager
def progress_bar(label: str, enabled: bool) -> Iterator[tuple[Callable[[FileResult], None], Callable[[int], None]]]:
    """(on_result, on_total) callbacks driving a rich progress bar; silent when output is not a terminal."""
    if not enabled:
        yield (lambda _r: None), (lambda _n: None)
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    # no refresh thread: the batch forks its pool from this process, and fork after threads is unsafe
    with Progress(*columns, console=stderr, transient=True, auto_refresh=False) as progress:
        task = progress.add_task(label, total=None)
        shown = [0.0]

        def advance(_result: FileResult) -> None:
            progress.advance(task)
            if (now := time.monotonic()) - shown[0] >= 0.1:
                shown[0] = now
                progress.refresh()

        def total(count: int) -> None:
            progress.update(task, total=count)
            progress.refresh()

        yield advance, total


def normalize_and_report(
    inputs: Sequence[Path],
    params: NormalizeParams,
    out_dir: Path | None,
    *,
    workers: int | None,
    as_json: bool,
    quiet: bool,
    follow_links: bool = False,
) -> int:
    """Normalize a batch and report it; return the exit code."""
    from dicompose.tools.normalize import normalize_operation

    operation = normalize_operation(params)
    parameters = {"min": params.low, "max": params.high, "scope": params.scope}
    return batch_and_report(
        inputs, operation, parameters, out_dir, workers=workers, as_json=as_json, quiet=quiet, follow_links=follow_links
    )


def batch_and_report(
    inputs: Sequence[Path],
    operation: Operation,
    parameters: Mapping[str, object],
    out_dir: Path | None,
    *,
    workers: int | None,
    as_json: bool,
    quiet: bool,
    follow_links: bool = False,
) -> int:
    """Run a batch and print problems as they happen, then the summary; return the exit code."""
    from dicompose.tools.batch import Status
    from dicompose.tools.host import run_on_host, summary_document

    counts: dict[str, int] = {}

    def show(result: FileResult) -> None:
        if result.status is not Status.PROCESSED and not as_json:
            colour = "yellow" if result.status is Status.SKIPPED else "red"
            stderr.print(f"[{colour}]{result.status.value}:[/] {escape(result.message)}")

    try:
        with progress_bar(operation.name, enabled=stderr.is_terminal and not as_json and not quiet) as (
            advance,
            total,
        ):

            def on_result(result: FileResult) -> None:
                show(result)
                advance(result)
                counts[result.status.value] = counts.get(result.status.value, 0) + 1

            summary = run_on_host(
                inputs,
                operation,
                out_dir,
                workers=workers,
                on_result=on_result,
                on_total=total,
                follow_links=follow_links,
            )
    except DicomposeError as exc:
        fail(exc)
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # stopping already: another Ctrl-C must not cut this short
        done = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "nothing done"
        stderr.print(
            f"interrupted ({done}): every output written is complete and in the audit log; "
            "run the same command again to do the rest"
        )
        raise typer.Exit(130) from None
    if as_json:
        sys.stdout.write(json.dumps(summary_document(summary, operation.name, parameters), indent=2) + "\n")
    elif not quiet:
        print_summary(summary, out_dir)
    return EXIT_OK if summary.ok else EXIT_FAILED


def print_summary(summary: Summary, out_dir: Path | None) -> None:
    from dicompose.tools.batch import Status

    processed, skipped, failed = (summary.count(s) for s in (Status.PROCESSED, Status.SKIPPED, Status.FAILED))
    where = f" → {escape(str(out_dir))}" if out_dir is not None and processed else ""
    if processed == 1 and out_dir is None:
        only = next(r for r in summary.results if r.status is Status.PROCESSED)
        where = f" → {escape(str(only.output))}"
    style = "red" if failed or summary.stopped else "green"
    stdout.print(
        f"[{style}]{processed} processed, {skipped} skipped, {failed} failed[/] in {summary.seconds:.1f} s{where}"
    )
    if summary.stopped:
        stderr.print(
            f"[bold red]stopped:[/] {escape(summary.stopped)}; {summary.not_attempted} files not attempted; "
            "the outputs written are complete; free space (or fix the folder) and run the same command"
        )


@contextmanager
def notes_shown(enabled: bool = True) -> Iterator[None]:
    """While a command runs, what ``dicompose.notes`` says (a long wait's reason) goes to stderr as ``note:``."""
    import logging

    from dicompose.notes import NOTES

    class ToStderr(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            stderr.print(f"note: {escape(record.getMessage())}", highlight=False)

    handler = ToStderr()
    if enabled:
        NOTES.addHandler(handler)
        NOTES.setLevel(logging.INFO)
        NOTES.propagate = False
    try:
        yield
    finally:
        NOTES.removeHandler(handler)


@contextmanager
def new_site_key_noted() -> Iterator[None]:
    """Say once, when the command just made the site's de-identification key: a run under another
    ``DICOMPOSE_HOME`` (another account, a cluster node) would otherwise map the same patients to other
    pseudonyms without a word."""
    from dicompose.tools.site_keys import site_key_file

    key = site_key_file()
    existed = key.exists()
    try:
        yield
    finally:
        if not existed and key.exists():
            stderr.print(
                f"note: created the site's de-identification key {escape(str(key))}; pseudonyms, new UIDs and "
                "date shifts follow it: back it up, and give the same key (--key-file, or the same "
                "DICOMPOSE_HOME) to every run that must map patients alike",
                highlight=False,
            )
