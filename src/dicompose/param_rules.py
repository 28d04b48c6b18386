"""The built-in tools' rules on their parameters, in one place and light to import (no pydicom): the tools
apply them when they start, and runs apply them when they are planned (``builtin_checks``)."""

from __future__ import annotations

import math

from dicompose.errors import UsageError


def check_target_range(low: float, high: float) -> None:
    """normalize: MIN ≤ MAX, and a range the kernel can compute with."""
    if low > high:
        raise UsageError(f"MIN ({low:g}) must not be greater than MAX ({high:g})")
    if not math.isfinite(high - low):
        raise UsageError(f"MAX - MIN ({high:g} - {low:g}) is too large to compute with; narrow the range")


def check_threshold(level: float, upper: float | None) -> None:
    """threshold: LEVEL ≤ UPPER when an upper bound is given."""
    if upper is not None and upper < level:
        raise UsageError(f"--upper ({upper:g}) must not be below --level ({level:g})")
