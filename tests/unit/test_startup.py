"""Start-up: the commands people type most never import the heavy stack (pydicom, numpy, docker, dask).

Each command runs in a fresh interpreter through ``dicompose.cli.main.main`` (the console-script entry point),
which then prints the heavy top-level packages found in ``sys.modules``. No timing here: the figures are
``bench/startup.py``'s job (docs/benchmarks.md, Start-up).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import get_args

import pytest

from dicompose.records.index import Index

HEAVY = ("pydicom", "numpy", "docker", "dask", "distributed")

# Runs main() with the given argv (after importing PRELOAD), then prints the exit code and the heavy packages.
PROBE = """
import importlib, json, sys
argv, preload, heavy = json.loads(sys.argv[1])
for name in preload:
    importlib.import_module(name)
sys.argv = ["dicompose", *argv]
from dicompose.cli.main import main
try:
    main()
    code = 0
except SystemExit as exc:
    code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
loaded = sorted({name.split(".")[0] for name in sys.modules} & set(heavy))
sys.stdout.write("\\nPROBE " + json.dumps({"code": code, "heavy": loaded}) + "\\n")
"""


def probe(argv: list[str], cwd: Path, preload: tuple[str, ...] = ()) -> tuple[int, list[str]]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps([argv, list(preload), list(HEAVY)])],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("PROBE ")]
    assert lines, f"probe printed nothing (exit {proc.returncode}):\n{proc.stderr}"
    result = json.loads(lines[-1].removeprefix("PROBE "))
    return result["code"], result["heavy"]


@pytest.fixture()
def workspace(tmp_path: Path) -> Path:
    """An empty workspace: an index with no runs."""
    folder = tmp_path / "ws"
    folder.mkdir()
    Index(folder / "index.sqlite").close()
    return folder


@pytest.mark.parametrize(
    ("argv", "expected_code"),
    [
        (["--version"], 0),
        (["--help"], 0),
        (["runs", "--workspace", "{ws}"], 0),
        (["runs", "--workspace", "{ws}", "--json"], 0),
        (["show", "nosuchrun", "--workspace", "{ws}"], 2),
        (["logs", "nosuchrun", "normalize", "--workspace", "{ws}"], 2),
        (["tool", "validate", "normalize"], 0),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else str(value),
)
def test_light_commands_import_no_heavy_package(
    argv: list[str], expected_code: int, workspace: Path, tmp_path: Path
) -> None:
    code, heavy = probe([arg.format(ws=workspace) for arg in argv], cwd=tmp_path)
    assert code == expected_code
    assert heavy == []


def test_probe_sees_heavy_packages(tmp_path: Path) -> None:
    """The check above can fail: a command that did import numpy is reported."""
    code, heavy = probe(["--version"], cwd=tmp_path, preload=("numpy",))
    assert code == 0
    assert heavy == ["numpy"]


def test_cli_scope_choices_match_the_normalize_scope() -> None:
    """``cli/app.py`` spells the --scope choices out (no numpy at --help): they must stay the kernel's."""
    from dicompose.cli.app import Scope as CliScope
    from dicompose.params import Scope

    assert get_args(CliScope) == get_args(Scope)


def test_a_no_op_rerun_and_check_import_no_heavy_package(tmp_path: Path) -> None:
    """The no-op rerun (everything cached) and `check` must not load pydicom or numpy either: a rule on
    parameters or a key's location once pulled the DICOM stack into every run (0.3 s)."""
    from dicompose.dicom import synthetic

    synthetic.write_ct_series(tmp_path / "scans" / "a", "startup", 2, 16, 16)
    demo = Path(__file__).parents[2] / "src" / "dicompose" / "pipelines" / "demo.yaml"
    argv = [
        "run",
        str(demo),
        "--in",
        f"scans={tmp_path / 'scans'}",
        "--out",
        str(tmp_path / "out"),
        "--engine",
        "local",
    ]
    argv += ["--workspace", str(tmp_path / "ws")]
    first = subprocess.run(
        [str(Path(sys.executable).parent / "dicompose"), *argv], capture_output=True, text=True, check=False
    )
    assert first.returncode == 0, first.stderr
    assert probe(argv, cwd=tmp_path) == (0, [])
    assert probe(["check", str(demo)], cwd=tmp_path) == (0, [])
