"""The HPC tests' shared fixture: the images exported for the charliecloud engine (scripts/user-tests.sh)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from dicompose.engines.charliecloud import image_dir
from dicompose.engines.chrun import exported
from tests.support.components import need

IMAGES = ("dicompose/normalize:0.1.0", "dicompose/threshold:0.1.0", "dicompose/deidentify:0.1.0")


@pytest.fixture(scope="session")
def images() -> Path:
    need("charliecloud", shutil.which("ch-run") is not None, "ch-run not on PATH (Debian: charliecloud-runtime)")
    need(
        "unprivileged",
        os.getuid() != 0,
        "the charliecloud engine runs as an ordinary user (scripts/user-tests.sh runs these tests as one)",
    )
    folder = image_dir()
    missing = [name for name in IMAGES if not exported(folder, name)]
    need("charliecloud", not missing, f"{folder} has no export of {', '.join(missing)} (see scripts/user-tests.sh)")
    return folder
