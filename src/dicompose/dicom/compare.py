"""Comparing two DICOM images numerically: header differences that matter, pixel statistics, Dice.

Pure: takes two datasets, returns a :class:`ImageComparison`. Fields that must differ between two correct runs
(UIDs, software versions, derivation text, file meta) are not reported as differences.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset
from pydicom.pixels.processing import apply_rescale

#: Attributes expected to differ between two correct runs (identity, provenance, not content).
IGNORED = frozenset(
    {
        "SOPInstanceUID",
        "SeriesInstanceUID",
        "SourceImageSequence",
        "ContributingEquipmentSequence",
        "DerivationDescription",
        "InstanceCreationDate",
        "InstanceCreationTime",
        "InstanceCreatorUID",
        "PixelData",
        "FloatPixelData",
        "DoubleFloatPixelData",
    }
)


@dataclass(frozen=True)
class ImageComparison:
    header_differences: tuple[str, ...] = ()
    shape_a: tuple[int, ...] = ()
    shape_b: tuple[int, ...] = ()
    max_abs: float = 0.0
    mean_abs: float = 0.0
    differing: int = 0
    psnr: float | None = None  # None when identical (infinite)
    dice: float | None = None  # for binary masks only
    notes: tuple[str, ...] = field(default=())

    @property
    def same_shape(self) -> bool:
        return self.shape_a == self.shape_b


def header_differences(a: Dataset, b: Dataset) -> list[str]:
    """Keywords (or tags) whose values differ, ignoring identity and provenance attributes."""
    differences = []
    tags = sorted({e.tag for e in a} | {e.tag for e in b})
    for tag in tags:
        element = a.get(tag) if tag in a else b.get(tag)
        keyword = element.keyword or str(tag)
        if keyword in IGNORED or tag.group == 0x0002:
            continue
        if tag not in a or tag not in b:
            differences.append(f"{keyword} only in {'A' if tag in a else 'B'}")
        elif a[tag].value != b[tag].value:
            differences.append(keyword)
    return differences


def modality_values(ds: Dataset) -> npt.NDArray[np.float64]:
    return np.asarray(apply_rescale(ds.pixel_array, ds), dtype=np.float64)


def compare_images(a: Dataset, b: Dataset) -> ImageComparison:
    headers = tuple(header_differences(a, b))
    values_a, values_b = modality_values(a), modality_values(b)
    if values_a.shape != values_b.shape:
        shapes = " vs ".join("×".join(str(n) for n in shape) for shape in (values_a.shape, values_b.shape))
        note = f"pixel arrays differ in shape ({shapes}): no pixel figures"
        return ImageComparison(headers, values_a.shape, values_b.shape, math.inf, math.inf, -1, notes=(note,))
    diff = np.abs(values_a - values_b)
    mse = float(np.mean(diff**2))
    data_range = float(max(values_a.max(), values_b.max()) - min(values_a.min(), values_b.min()))
    psnr = None if mse == 0 else (20 * math.log10(data_range) - 10 * math.log10(mse) if data_range > 0 else 0.0)
    dice = None
    if set(np.unique(values_a)) <= {0.0, 1.0} and set(np.unique(values_b)) <= {0.0, 1.0}:
        total = float(values_a.sum() + values_b.sum())
        dice = 1.0 if total == 0 else 2.0 * float(np.logical_and(values_a, values_b).sum()) / total
    return ImageComparison(
        headers,
        values_a.shape,
        values_b.shape,
        float(diff.max()) if diff.size else 0.0,
        float(diff.mean()) if diff.size else 0.0,
        int(np.count_nonzero(diff)),
        psnr,
        dice,
    )
