"""``dicompose``: the command-line entry point.

``dicompose --version`` answers before typer, rich or any command module is imported (it is what scripts and
container health checks call most); everything else goes to the Typer application in ``app.py``.
"""

from __future__ import annotations

import gc
import signal
import sys
import warnings


def _terminate(signum: int, _frame: object) -> None:
    """SIGTERM unwinds like Ctrl-C, so every ``finally`` runs (containers removed, temp files deleted)."""
    raise SystemExit(128 + signum)


def main() -> None:
    if sys.argv[1:] == ["--version"]:
        from dicompose import __version__

        sys.stdout.write(f"dicompose {__version__}\n")
        return
    signal.signal(signal.SIGTERM, _terminate)
    # pydicom warns about every dubious value it reads (an odd-length UID, a non-conforming date): the tools
    # already judge each file and say what matters in one line; its warnings would bury those lines.
    warnings.filterwarnings("ignore", category=UserWarning, module=r"pydicom(\.|$)")
    from dicompose.cli.app import app
    from dicompose.errors import DicomposeError

    gc.freeze()  # what the imports made lives as long as the process: never walked by a collection again

    try:
        app(prog_name="dicompose")
    except DicomposeError as exc:  # the one handler: any command's refusal is one line and its exit code
        from dicompose.cli.console import print_error

        print_error(exc)
        sys.exit(exc.exit_code)
