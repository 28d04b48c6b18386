"""``dicompose-entrypoint``: the ENTRYPOINT of tool images.

With arguments it runs them (``dicompose run`` passes the tool's argv). Without arguments it is the 2018
paper's container: ``docker run -v $(pwd)/myfile.dcm:/infile.dcm -v $(pwd)/out:/mnt/vout IMAGE`` normalizes
/infile.dcm into /mnt/vout, the range from the MIN and MAX environment variables (default 0 and 100).
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

from dicompose.cli.console import normalize_and_report, stderr
from dicompose.errors import UsageError
from dicompose.params import NormalizeParams

PAPER_INPUT = Path("/infile.dcm")
PAPER_OUTPUT = Path("/mnt/vout")


def number_from_env(name: str, default: str) -> float:
    text = os.environ.get(name, default)
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"{name}={text!r} is not a number") from None
    if not math.isfinite(value):
        raise UsageError(f"{name}={text!r} is not a finite number")
    return value


def main() -> None:
    args = sys.argv[1:]
    if args:
        try:
            os.execvp(args[0], args)  # noqa: S606 - argv from the descriptor executor, no shell
        except FileNotFoundError:
            sys.stderr.write(f"dicompose-entrypoint: {args[0]}: command not found in this image\n")
            sys.exit(127)
    try:
        params = NormalizeParams(number_from_env("MIN", "0"), number_from_env("MAX", "100"))
    except UsageError as exc:
        stderr.print(f"[bold red]error:[/] {exc}")
        sys.exit(exc.exit_code)
    source = Path(os.environ.get("INFILE", str(PAPER_INPUT)))
    out = Path(os.environ.get("OUTDIR", str(PAPER_OUTPUT)))
    if out.is_dir() and not os.access(out, os.W_OK):
        stderr.print(
            f"[bold red]error:[/] {out} is not writable by this container's user (uid {os.getuid()}); "
            "create the host folder first (mkdir -m 1777 out) or run with --user $(id -u):$(id -g)"
        )
        sys.exit(2)
    sys.exit(normalize_and_report([source], params, out, workers=1, as_json=False, quiet=False))
