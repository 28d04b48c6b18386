"""``normalize-scan FILE MIN MAX``: the 2018 paper's command line, exactly, done right.

Writes ``<stem>-normalized.dcm`` beside FILE (or in ``-o/--out DIR``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dicompose.cli.console import normalize_and_report, parse_number

app = typer.Typer(
    add_completion=False,
    # "-1000" is a value, not an option: let negative numbers through as MIN/MAX.
    context_settings={"ignore_unknown_options": True, "help_option_names": ["-h", "--help"]},
)


@app.command()
def normalize_scan(
    file: Annotated[Path, typer.Argument(help="DICOM file to normalize.", show_default=False)],
    minimum: Annotated[str, typer.Argument(metavar="MIN", help="Value the scan's minimum maps to.")],
    maximum: Annotated[str, typer.Argument(metavar="MAX", help="Value the scan's maximum maps to.")],
    out: Annotated[
        Path | None,
        typer.Option("-o", "--out", help="Write the result into this folder instead of beside FILE."),
    ] = None,
) -> None:
    """Linearly remap a DICOM scan's intensities to [MIN, MAX]; writes FILE's stem + '-normalized.dcm'."""
    from dicompose.errors import UsageError
    from dicompose.params import NormalizeParams

    try:
        params = NormalizeParams(parse_number(minimum, "MIN"), parse_number(maximum, "MAX"))
    except UsageError as exc:
        raise typer.BadParameter(str(exc), param_hint="MIN") from None
    code = normalize_and_report([file], params, out, workers=1, as_json=False, quiet=False)
    raise typer.Exit(code)


def main() -> None:
    app(prog_name="normalize-scan")
