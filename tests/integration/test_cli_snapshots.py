"""Snapshots of what the main commands print, at 80 and 120 columns (issue 11: the CLI reads well).

Real runs of the demo pipeline on the local engine, then ``--help``, ``run --help``, ``check``, ``runs`` and
``show`` as a user sees them. What differs from one run to the next is masked before comparing (run ids,
times and durations, temporary paths, digests), and the padding of aligned columns is reduced to two spaces,
so a snapshot checks which lines, columns and words appear and where lines break, not a duration's width.

A snapshot that is missing or differs fails. To accept new output after a deliberate change:
``DICOMPOSE_UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest tests/integration/test_cli_snapshots.py``, then
read the diff of ``tests/snapshots/`` before committing it.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from dicompose.tools.samples import demo_pipeline, sample_data_folder
from tests.support.cli import BIN

SNAPSHOTS = Path(__file__).parents[1] / "snapshots"
RUN_ID = re.compile(r"\b\d{8}-\d{6}-[0-9a-f]{6}\b")
MASKS = [
    (RUN_ID, "RUN-ID"),
    (re.compile(r"\b[0-9a-f]{64}\b"), "SHA256"),
    (re.compile(r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2})?(\.\d+)?(Z|[+-]\d{2}:?\d{2})?"), "DATETIME"),
    (re.compile(r"\b\d{2}-\d{2} \d{2}:\d{2}\b"), "MM-DD HH:MM"),  # runs' "started" column
    (re.compile(r"\b\d{2}:\d{2}:\d{2}\b"), "TIME"),
    (re.compile(r"\b\d+(\.\d+)? ?(s|ms|min)\b"), "N s"),
]


def dicompose(*argv: str, home: Path, columns: int, cwd: Path | None = None) -> str:
    env = {**os.environ, "DICOMPOSE_HOME": str(home), "COLUMNS": str(columns), "TERM": "dumb"}
    proc = subprocess.run([str(BIN / "dicompose"), *argv], capture_output=True, text=True, env=env, cwd=cwd)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.stdout + (f"[stderr]\n{proc.stderr}" if proc.stderr.strip() else "") + f"[exit {proc.returncode}]\n"


def masked(text: str, tmp_path: Path) -> str:
    for path, name in (
        (str(sample_data_folder()), "SAMPLES"),
        (str(demo_pipeline()), "DEMO.yaml"),
        (str(tmp_path), "TMP"),
    ):
        text = text.replace(path, name)
    for pattern, replacement in MASKS:
        text = pattern.sub(replacement, text)
    lines = []
    for line in text.splitlines():
        line = re.sub(r"([─━═]){2,}", r"\1\1", line)  # rules drawn to the width of their columns
        lines.append(re.sub(r" {2,}", "  ", line).rstrip())
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    tmp_path = tmp_path_factory.mktemp("snapshots")
    argv = ["run", str(demo_pipeline()), "--in", str(sample_data_folder()), "--out", str(tmp_path / "out")]
    argv += ["--engine", "local", "--workspace", str(tmp_path / "ws")]
    for _ in range(2):  # a run, then a rerun from the cache
        out = dicompose(*argv, home=tmp_path / "home", columns=120)
        assert out.endswith("[exit 0]\n"), out
    return tmp_path, RUN_ID.findall(out)[-1]


COMMANDS = {
    "help": lambda ws, run: ["--help"],
    "run-help": lambda ws, run: ["run", "--help"],
    "check": lambda ws, run: ["check", str(demo_pipeline()), "--engine", "local"],
    "runs": lambda ws, run: ["runs", "--workspace", ws],
    "show": lambda ws, run: ["show", run, "--workspace", ws],
}


@pytest.mark.parametrize("columns", [80, 120])
@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_output_matches_its_snapshot(runs: tuple[Path, str], name: str, columns: int):
    tmp_path, run_id = runs
    text = masked(
        dicompose(*COMMANDS[name](str(tmp_path / "ws"), run_id), home=tmp_path / "home", columns=columns), tmp_path
    )
    assert all(len(line) <= columns for line in text.splitlines()), text
    snapshot = SNAPSHOTS / f"{name}-{columns}.txt"
    if os.environ.get("DICOMPOSE_UPDATE_SNAPSHOTS") == "1":
        snapshot.write_text(text)
    assert snapshot.is_file(), f"no snapshot {snapshot.name}: see this module's docstring to create it"
    assert text == snapshot.read_text()
