"""The independent RO-Crate validator (roc-validator, in .venv-validator: scripts/validator-venv.sh), offline
against a seeded context cache."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.support.components import need

ROOT = Path(__file__).parents[2]
VALIDATOR = ROOT / ".venv-validator" / "bin" / "rocrate-validator"
CACHE = ROOT / ".venv-validator" / "rocrate-cache.sqlite"


def validate(crate: Path) -> dict:
    need("rocrate-validator", VALIDATOR.exists() and CACHE.exists(), "run scripts/validator-venv.sh")
    proc = subprocess.run(
        [
            str(VALIDATOR),
            "-y",
            "validate",
            "-p",
            "provenance-run-crate",
            "--offline",
            "--cache-path",
            str(CACHE),
            "--skip-availability-check",
            "-f",
            "json",
            str(crate),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    text = proc.stdout
    report, _end = json.JSONDecoder().raw_decode(text[text.index("{") :])
    return report
