"""The built-in tools' parameters, each type checking its own rules once, when it is made (MIN ≤ MAX and a
range the kernel can compute with; LEVEL ≤ UPPER). Light to import (no numpy, no pydicom): the CLI, the
container entrypoint, the tools and run planning (``tools.builtin_checks``) all build these same objects, so a
value is refused alike everywhere, before any work."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from dicompose import __version__
from dicompose.errors import UsageError

Scope = Literal["file", "series"]
#: Bumped whenever the output of the same input and parameters changes; part of every derived UID.
NORMALIZE_RECIPE_VERSION = 1
THRESHOLD_RECIPE_VERSION = 2  # 2: an ASCII derivation description (was "[50, ?)")


def format_ds(value: float) -> str:
    """Format a float as a DICOM Decimal String (<= 16 chars) that round-trips as closely as possible."""
    if value == 0:
        return "0"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    for digits in range(16, 0, -1):
        text = f"{value:.{digits}g}"
        if len(text) <= 16:
            return text.replace("e+", "e")
    raise ValueError(f"cannot format {value!r} as a DICOM decimal string")  # pragma: no cover


@dataclass(frozen=True)
class ValueRange:
    """A closed interval of modality values."""

    low: float
    high: float

    @property
    def width(self) -> float:
        return self.high - self.low


@dataclass(frozen=True)
class NormalizeParams:
    """normalize's parameters: the target range and whether the source range is found per file or per series."""

    low: float
    high: float
    scope: Scope = "file"

    def __post_init__(self) -> None:
        if self.low > self.high:
            raise UsageError(f"MIN ({self.low:g}) must not be greater than MAX ({self.high:g})")
        if not math.isfinite(self.high - self.low):
            raise UsageError(f"MAX - MIN ({self.high:g} - {self.low:g}) is too large to compute with; narrow the range")

    @property
    def target(self) -> ValueRange:
        return ValueRange(float(self.low), float(self.high))

    def recipe(self) -> str:
        """Canonical text of everything that determines the output; hashed into the derived UIDs."""
        return (
            f"dicompose.normalize/r{NORMALIZE_RECIPE_VERSION}/v{__version__}"
            f"/low={float(self.low)!r}/high={float(self.high)!r}/scope={self.scope}"
        )

    def describe(self) -> str:
        return (
            f"Intensities linearly remapped to [{format_ds(self.low)}, {format_ds(self.high)}] "
            f"({self.scope} scope) by dicompose {__version__} normalize"
        )


@dataclass(frozen=True)
class ThresholdParams:
    """threshold's parameters: values in [level, upper] (upper: none) become 1, the rest 0."""

    level: float
    upper: float | None = None

    def __post_init__(self) -> None:
        if self.upper is not None and self.upper < self.level:
            raise UsageError(f"--upper ({self.upper:g}) must not be below --level ({self.level:g})")

    def recipe(self) -> str:
        return (
            f"dicompose.threshold/r{THRESHOLD_RECIPE_VERSION}/v{__version__}/level={self.level!r}/upper={self.upper!r}"
        )

    def describe(self) -> str:
        """Plain ASCII: a header's default character set has no "∞" (it was written as "?")."""
        level = format_ds(self.level)
        values = f"in [{level}, {format_ds(self.upper)}]" if self.upper is not None else f">= {level}"
        return f"Binary mask of values {values} by dicompose {__version__} threshold"
