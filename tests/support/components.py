"""External components the tests need (Docker engine, dciodvfy, ...): skip with a reason where one is missing,
fail instead when ``DICOMPOSE_REQUIRE`` names it (CI), so nothing passes by being skipped."""

from __future__ import annotations

import os

import pytest


def required_components() -> set[str]:
    return {c.strip() for c in os.environ.get("DICOMPOSE_REQUIRE", "").split(",") if c.strip()}


def need(component: str, available: bool, reason: str) -> None:
    """Skip (or fail, when DICOMPOSE_REQUIRE names ``component``) unless the component is available."""
    if available:
        return
    message = f"{component} unavailable: {reason}"
    if component in required_components() or "all" in required_components():
        pytest.fail(f"{message} (required by DICOMPOSE_REQUIRE)")
    pytest.skip(message)
