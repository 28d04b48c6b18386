"""``dicompose rerun RUN`` and ``dicompose verify RUN --engine OTHER``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from dicompose.cli.compare import document, show
from dicompose.cli.console import ImageDirOption, emit_json, notes_shown, stdout
from dicompose.errors import EXIT_FAILED, EXIT_OK

if TYPE_CHECKING:
    from dicompose.pipeline.rerun import RerunResult

WorkspaceOption = Annotated[Path, typer.Option("--workspace", help="Workspace of the recorded run.")]


def _report(result: RerunResult, as_json: bool, what: str) -> None:
    if as_json:
        payload = {
            "original": result.original,
            "rerun": result.report.run_id,
            "engine": result.report.engine,
            "identical": result.identical,
            "outputs": str(result.comparison.b),
            "comparison": document(result.comparison),
        }
        emit_json("dicompose.verify/1" if what == "verification" else "dicompose.rerun/1", payload)
    else:
        show(result.comparison)
        verdict = (
            "byte-identical"
            if result.identical
            else ("agree within tolerance" if result.comparison.passed else "DIFFER")
        )
        stdout.print(
            f"{what} {result.report.run_id} of run {result.original} on {result.report.engine}: outputs {verdict}"
        )
        stdout.print(f"its outputs: {escape(str(result.comparison.b))}")
        where = escape(str(result.report.workspace))
        stdout.print(f"its records: {where} (dicompose show {result.report.run_id} --workspace {where})")


def rerun_command(
    run_id: Annotated[str, typer.Argument(help="The recorded run.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder for the rerun.")],
    workspace: WorkspaceOption = Path(".dicompose"),
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable.")] = False,
    image_dir: ImageDirOption = None,
) -> None:
    """Re-execute a recorded run (same descriptors, image digests, parameters) and check its outputs match."""
    from dicompose.config import use_image_dir
    from dicompose.pipeline.rerun import rerun

    use_image_dir(image_dir)
    with notes_shown(not as_json):
        result = rerun(run_id, workspace, out)
    _report(result, as_json, "rerun")
    raise typer.Exit(EXIT_OK if result.identical else EXIT_FAILED)


def verify_command(
    run_id: Annotated[str, typer.Argument(help="The recorded run.")],
    engine: Annotated[
        str, typer.Option("--engine", help="The other engine: docker | apptainer | charliecloud | local.")
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="Output folder, new or empty (default: RUN-verify-ENGINE, or RUN-verify-ENGINE-2...)."
        ),
    ] = None,
    tolerance: Annotated[float, typer.Option("--tolerance", help="Largest allowed absolute pixel difference.")] = 0.0,
    workspace: WorkspaceOption = Path(".dicompose"),
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable.")] = False,
    image_dir: ImageDirOption = None,
) -> None:
    """Rerun a recorded run on another engine and compare: the cross-environment check in one command."""
    from dicompose.config import use_image_dir
    from dicompose.pipeline.rerun import rerun

    use_image_dir(image_dir)
    target = out or _unused(Path(f"{run_id}-verify-{engine}"))
    with notes_shown(not as_json):
        result = rerun(run_id, workspace, target, engine=engine, tolerance=tolerance)
    _report(result, as_json, "verification")
    raise typer.Exit(EXIT_OK if result.comparison.passed else EXIT_FAILED)


def export_provenance_command(
    run_id: Annotated[str, typer.Argument(help="The recorded run (a pipeline or a tool run).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the RO-Crate.")],
    workspace: WorkspaceOption = Path(".dicompose"),
) -> None:
    """Write a Workflow Run RO-Crate (Provenance Run Crate profile) describing a run."""
    from dicompose.provenance.export import export_provenance

    metadata = export_provenance(workspace, run_id, out)
    stdout.print(f"RO-Crate written: {metadata}")


def _unused(folder: Path) -> Path:
    """``folder``, or ``folder-2``, ``-3``... if it holds an earlier verification (each recomputes from nothing)."""
    number = 1
    candidate = folder
    while candidate.exists() and any(candidate.iterdir()):
        number += 1
        candidate = folder.with_name(f"{folder.name}-{number}")
    return candidate
