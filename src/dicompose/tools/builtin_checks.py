"""Relations between a built-in tool's parameters that a Boutiques descriptor cannot state (MIN ≤ MAX, a range
that can be computed with, LEVEL ≤ UPPER): checked when a run is planned, with the tool's own rules, so a
pipeline or tool run refuses them up front (exit 2) instead of failing every launch."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dicompose.descriptors.descriptor import Descriptor, load_descriptor
from dicompose.params import NormalizeParams, ThresholdParams


def check_builtin_values(descriptor: Descriptor, values: Mapping[str, Any]) -> None:
    """Raise the tool's own :class:`UsageError` for values it would refuse; other tools are not ours to judge."""
    if (
        descriptor.name not in ("normalize", "threshold")
        or descriptor.digest != load_descriptor(descriptor.name).digest
    ):
        return
    if descriptor.name == "normalize":
        NormalizeParams(float(values.get("min", 0)), float(values.get("max", 100)))  # its rules, checked when made
    else:
        upper = values.get("upper")
        ThresholdParams(float(values.get("level", 50)), None if upper is None else float(upper))
