"""Shared fixtures. Helpers live in ``tests/support/`` (imported by the test modules, never from here)."""

from __future__ import annotations

import shutil

import pytest

from tests.support.components import need


@pytest.fixture(scope="session")
def dciodvfy() -> str:
    path = shutil.which("dciodvfy")
    need("dciodvfy", path is not None, "install Debian's dicom3tools (apt-get install dicom3tools)")
    assert path is not None
    return path
