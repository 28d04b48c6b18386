"""Running the CLI as the HPC tests do (their own DICOMPOSE_HOME, in the test's folder) and reading outputs."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.support.cli import BIN


def dicompose(tmp_path: Path, *argv: str, timeout: float = 300, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "DICOMPOSE_HOME": str(tmp_path / "home"), **env}
    return subprocess.run(
        [str(BIN / "dicompose"), *argv],
        capture_output=True,
        text=True,
        env=environment,
        cwd=tmp_path,
        timeout=timeout,
        check=False,
    )


def outputs(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*.dcm"))}
