"""The ``dicompose`` Typer application: every command, registered (``main.py`` is the entry point).

Light at module level (typer, rich.console, stdlib, our leaf modules): pydicom, numpy, docker, dask and the
pipeline code are imported inside the commands that use them, so ``--help``, ``runs``, ``show`` and ``logs``
start fast (``bench/startup.py``, ``tests/unit/test_startup.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, NoReturn

import typer

from dicompose.cli import compare as compare_cli
from dicompose.cli import help_style
from dicompose.cli import images as images_cli
from dicompose.cli import pipeline as pipeline_cli
from dicompose.cli import records as records_cli
from dicompose.cli import report as report_cli
from dicompose.cli import rerun as rerun_cli
from dicompose.cli.audit import app as audit_app
from dicompose.cli.console import (
    ENGINE_HELP,
    ImageDirOption,
    batch_and_report,
    fail,
    new_site_key_noted,
    parse_number,
    stdout,
)
from dicompose.cli.pacs import app as pacs_app
from dicompose.cli.run import run as run_command
from dicompose.cli.tool import app as tool_app
from dicompose.errors import UsageError

if TYPE_CHECKING:
    from dicompose.tools.batch import Operation

Scope = Literal["file", "series"]  # dicompose.params.Scope, spelled out for typer's choices (a test keeps them equal)

help_style.apply()
app = typer.Typer(
    name="dicompose",
    help="Portable, reproducible, secure container-based medical image analysis.",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from dicompose import __version__  # importlib.metadata: ~25 ms, only when asked

        typer.echo(f"dicompose {__version__}")
        raise typer.Exit()


Inputs = Annotated[
    list[Path] | None,
    typer.Argument(help="DICOM files and/or folders (searched recursively).", show_default=False),
]
MirroredOut = Annotated[
    Path,
    typer.Option(
        "--out",
        "-o",
        help="Output folder: what is inside each input folder is mirrored into it (several inputs share it).",
        show_default=False,
    ),
]
FollowLinks = Annotated[
    bool,
    typer.Option(
        "--follow-links",
        help="Also follow symbolic links that lead outside the inputs (by default: reported, never read).",
    ),
]
ManifestOption = Annotated[
    Path | None,
    typer.Option(
        "--manifest",
        help="Run the tasks of a task manifest (dicompose.manifest/1), each into its own folder; "
        "what packed launches use. INPUTS are then ignored; --out is still asked for (packed launches give --out .).",
        show_default=False,
    ),
]


def _inputs(inputs: list[Path] | None) -> list[Path]:
    """The files and folders given, each absolute and clean (:func:`~dicompose.walk.as_given`); one that does
    not exist is a usage error before anything is made."""
    from dicompose.walk import as_given

    if not inputs:
        fail(UsageError("give the DICOM files or folders to process (or --manifest FILE)"))
    missing = [str(p) for p in inputs if not p.exists() and not p.is_symlink()]
    if missing:
        fail(UsageError(f"{', '.join(missing)}: no such file or folder"))
    return [as_given(p) for p in inputs]


def _run_manifest(manifest: Path, operation: Callable[[], Operation], workers: int | None) -> NoReturn:
    """A packed launch: every task of the manifest, one result file each; exit with the worst task's code."""
    from dicompose.config import load_settings
    from dicompose.tools.manifest import run_operation

    code = run_operation(manifest, operation(), workers or load_settings().workers)
    raise typer.Exit(code)


def _run_tool(
    operation: Callable[[], Operation],
    parameters: Mapping[str, object],
    inputs: list[Path] | None,
    out: Path | None,
    workers: int | None,
    as_json: bool,
    quiet: bool,
    follow_links: bool,
    manifest: Path | None,
) -> NoReturn:
    """The built-in tools' one way to run: a manifest (a packed launch inside a run), else a batch over the
    inputs with its report; exits with the outcome's code."""
    if manifest is not None:
        _run_manifest(manifest, operation, workers)
    from dicompose.walk import as_given

    code = batch_and_report(
        _inputs(inputs),
        operation(),
        parameters,
        as_given(out) if out is not None else None,
        workers=workers,
        as_json=as_json,
        quiet=quiet,
        follow_links=follow_links,
    )
    raise typer.Exit(code)


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Portable, reproducible, secure container-based medical image analysis."""


@app.command(context_settings={"ignore_unknown_options": False})
def normalize(
    out: MirroredOut,
    inputs: Inputs = None,
    minimum: Annotated[str, typer.Option("--min", help="Value each scan's minimum maps to.")] = "0",
    maximum: Annotated[str, typer.Option("--max", help="Value each scan's maximum maps to.")] = "100",
    scope: Annotated[
        Scope, typer.Option("--scope", help="Min/max per file (the paper's behaviour) or per series.")
    ] = "file",
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers", "-j", min=1, max=256, help="Parallel processes (default: all cores, or the configuration's)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a machine-readable JSON report.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only print problems.")] = False,
    follow_links: FollowLinks = False,
    manifest: ManifestOption = None,
) -> None:
    """Remap intensities of many DICOM scans to [--min, --max], in parallel, into --out."""
    from dicompose.params import NormalizeParams
    from dicompose.tools.normalize import normalize_operation

    params = NormalizeParams(parse_number(minimum, "--min"), parse_number(maximum, "--max"), scope)  # its rules
    parameters = {"min": params.low, "max": params.high, "scope": params.scope}
    operation = partial(normalize_operation, params)
    _run_tool(operation, parameters, inputs, out, workers, as_json, quiet, follow_links, manifest)


@app.command()
def threshold(
    out: MirroredOut,
    inputs: Inputs = None,
    level: Annotated[str, typer.Option("--level", help="Pixels with value >= level are inside the mask.")] = "50",
    upper: Annotated[str | None, typer.Option("--upper", help="Optional upper bound (inclusive).")] = None,
    workers: Annotated[int | None, typer.Option("--workers", "-j", min=1, max=256, help="Parallel processes.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a machine-readable JSON report.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only print problems.")] = False,
    follow_links: FollowLinks = False,
    manifest: ManifestOption = None,
) -> None:
    """Binary masks (1 inside [--level, --upper], else 0) of DICOM images, written as <stem>-mask.dcm."""
    from dicompose.params import ThresholdParams
    from dicompose.tools.threshold import threshold_operation

    params = ThresholdParams(parse_number(level, "--level"), parse_number(upper, "--upper") if upper else None)
    parameters = {"level": params.level, "upper": params.upper}
    operation = partial(threshold_operation, params)
    _run_tool(operation, parameters, inputs, out, workers, as_json, quiet, follow_links, manifest)


@app.command()
def deidentify(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (flat: folder names may identify people).")],
    inputs: Inputs = None,
    retain_dates: Annotated[
        bool, typer.Option("--retain-dates", help="Shift dates by a per-patient offset instead of removing them.")
    ] = False,
    retain_private: Annotated[
        list[str] | None, typer.Option("--retain-private", help="A private tag to keep, as GGGGEEEE (repeatable).")
    ] = None,
    key_file: Annotated[Path | None, typer.Option("--key-file", help="Key for UID mapping and pseudonyms.")] = None,
    workers: Annotated[int | None, typer.Option("--workers", "-j", min=1, max=256, help="Parallel processes.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a machine-readable JSON report.")] = False,
    follow_links: FollowLinks = False,
    manifest: ManifestOption = None,
) -> None:
    """De-identify DICOM files (PS3.15 Annex E Basic Profile; keyed, consistent UIDs and pseudonyms)."""
    from pydicom.tag import Tag

    from dicompose.dicom.deidentify import DeidParams
    from dicompose.tools.deidentify import deidentify_operation, load_key

    try:
        tags = frozenset(Tag(int(t, 16)) for t in (retain_private or []))
    except ValueError:
        fail(UsageError("--retain-private takes tags as 8 hex digits, e.g. 00091001"))
    with new_site_key_noted():
        params = DeidParams(load_key(key_file), retain_dates, tags)
    parameters = {"retain_dates": retain_dates, "retain_private": sorted(str(t) for t in tags)}
    operation = partial(deidentify_operation, params)
    _run_tool(operation, parameters, inputs, out, workers, as_json, False, follow_links, manifest)


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the results.")] = Path("demo-output"),
    engine: Annotated[
        str | None,
        typer.Option("--engine", help=ENGINE_HELP),
    ] = None,
    image_dir: ImageDirOption = None,
) -> None:
    """Run the demo pipeline on the bundled sample scans: normalize (per series) → threshold mask."""
    from dicompose import __version__
    from dicompose.cli.pipeline import demo_engine, run_pipeline_command
    from dicompose.tools.samples import demo_pipeline, sample_data_folder

    samples = sample_data_folder()
    from dicompose.config import configured, use_image_dir

    use_image_dir(image_dir)
    chosen, why = demo_engine(configured("run", "engine", engine, "auto"))
    scheduler = configured("run", "scheduler", None, "local")
    stdout.print(f"dicompose {__version__} demo: {demo_pipeline()} on {samples}")
    run_pipeline_command(
        demo_pipeline(),
        [str(samples)],
        out / "results",
        engine=chosen,
        workspace=out / ".dicompose",
        scheduler=scheduler,
        workers=None,
        allow_unpinned=False,
        chunk=500,
        as_json=False,
        engine_why=why,
        report_to=out / "report",  # what a person looks at first: the QC report of the demo run
    )


app.add_typer(tool_app, name="tool")
app.command("run")(run_command)
app.command("check")(pipeline_cli.check)
app.command("runs")(records_cli.runs)
app.command("compare")(compare_cli.compare)
app.command("rerun")(rerun_cli.rerun_command)
app.command("verify")(rerun_cli.verify_command)
app.command("export-provenance")(rerun_cli.export_provenance_command)
app.add_typer(audit_app, name="audit")
app.add_typer(pacs_app, name="pacs")
app.command("show")(records_cli.show)
app.command("logs")(records_cli.logs)
app.command("report")(report_cli.report)
app.command("gc")(records_cli.gc)
app.command("build")(images_cli.build)
app.command("base-image")(images_cli.base_image)
app.command("export-apptainer")(images_cli.export_apptainer_command)
app.command("export-charliecloud")(images_cli.export_charliecloud_command)
