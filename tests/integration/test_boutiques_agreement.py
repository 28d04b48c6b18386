"""``dicompose tool validate`` judges descriptors as Boutiques' reference validator does.

The corpus is every descriptor the ``boutiques`` package ships, valid and invalid: its schema examples and its
own test suite's descriptors. The reference is its command line, ``bosh validate FILE``, run as users run it.
"""

from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor
from importlib.resources import files
from pathlib import Path

import pytest

from tests.support.cli import BIN


def corpus() -> list[Path]:
    root = Path(str(files("boutiques")))
    found = []
    for path in sorted([*root.glob("schema/examples/**/*.json"), *root.glob("tests/**/*.json")]):
        try:
            doc = json.loads(path.read_text())
        except (ValueError, UnicodeDecodeError):
            found.append(path)  # not JSON at all: both must refuse it
            continue
        if isinstance(doc, dict) and ("command-line" in doc or "schema-version" in doc):
            found.append(path)
    return found


def verdicts(path: Path) -> tuple[Path, bool, bool, str]:
    reference = subprocess.run([str(BIN / "bosh"), "validate", str(path)], capture_output=True, text=True)
    ours = subprocess.run([str(BIN / "dicompose"), "tool", "validate", str(path)], capture_output=True, text=True)
    assert "Traceback" not in ours.stderr, ours.stderr
    return path, reference.returncode == 0, ours.returncode == 0, ours.stdout + ours.stderr


def test_every_boutiques_descriptor_gets_the_reference_verdict(capsys: pytest.CaptureFixture[str]):
    paths = corpus()
    assert len(paths) >= 50  # examples and tests of boutiques 0.5.33: 56 descriptors, some invalid on purpose
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(verdicts, paths))
    valid = sum(1 for _p, reference, _ours, _out in results if reference)
    assert 0 < valid < len(results)  # both kinds are in the corpus
    disagreements = [(str(p), reference, ours, out[-300:]) for p, reference, ours, out in results if reference != ours]
    with capsys.disabled():
        print(f"\nboutiques agreement: {len(results) - len(disagreements)} of {len(results)} ({valid} valid)")
    assert disagreements == []


def test_the_canonical_example_is_valid_with_its_config_file_template():
    """example1 names a value-key only in a config-file template: valid for Boutiques, so for us."""
    example = Path(str(files("boutiques"))) / "schema" / "examples" / "example1" / "example1_docker.json"
    _path, reference, ours, out = verdicts(example)
    assert reference and ours, out
