"""Normalize one DICOM image: remap its modality values linearly onto [low, high] and write a valid derived file.

Pure with respect to the rest of the package: takes paths and parameters, returns a small outcome object.
The batch runner (``dicompose.tools.normalize``) schedules these calls across processes.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from dicompose import __version__
from dicompose.dicom.derivation import mark_derived
from dicompose.dicom.kernel import (
    OutputEncoding,
    ValueRange,
    choose_encoding,
    format_ds,
    modality_range,
    remap,
)
from dicompose.dicom.reading import GrayscalePixels, grayscale_pixels, read_dataset
from dicompose.dicom.writing import convert_raw_values_to_little_endian, rebuild_file_meta, write_atomic
from dicompose.errors import InputError, UnsupportedInputError

Scope = Literal["file", "series"]
#: Bumped whenever the output of the same input and parameters changes; part of every derived UID.
RECIPE_VERSION = 1
_VOI_KEYWORDS = ("WindowCenter", "WindowWidth", "VOILUTSequence", "WindowCenterWidthExplanation")
_STALE_KEYWORDS = (
    "PixelPaddingValue",  # padding stored values mean nothing after remapping
    "PixelPaddingRangeLimit",
    "IconImageSequence",  # a thumbnail of the old pixels
    "ModalityLUTSequence",  # applied: the new values are modality values
    "ExtendedOffsetTable",
    "ExtendedOffsetTableLengths",
)


@dataclass(frozen=True)
class NormalizeParams:
    """The tool's parameters: target range and whether the range is found per file or per series."""

    low: float
    high: float
    scope: Scope = "file"

    @property
    def target(self) -> ValueRange:
        return ValueRange(float(self.low), float(self.high))

    def recipe(self) -> str:
        """Canonical text of everything that determines the output; hashed into the derived UIDs."""
        return (
            f"dicompose.normalize/r{RECIPE_VERSION}/v{__version__}"
            f"/low={float(self.low)!r}/high={float(self.high)!r}/scope={self.scope}"
        )

    def describe(self) -> str:
        return (
            f"Intensities linearly remapped to [{format_ds(self.low)}, {format_ds(self.high)}] "
            f"({self.scope} scope) by dicompose {__version__} normalize"
        )


@dataclass(frozen=True)
class NormalizeOutcome:
    """What happened to one file: where the output went and its modality value range."""

    source: Path
    output: Path
    source_range: ValueRange
    bits_allocated: int


def output_name(source: Path) -> str:
    """The paper's naming: ``scan.dcm`` → ``scan-normalized.dcm`` (any other name keeps its stem)."""
    stem = source.name[:-4] if source.name.lower().endswith(".dcm") else source.name
    return f"{stem}-normalized.dcm"


def measure_file(path: Path) -> tuple[str, ValueRange]:
    """(Series Instance UID, modality value range) of one file: the first pass of ``--scope series``."""
    ds = read_dataset(path)
    pixels = grayscale_pixels(ds, path)
    return str(ds.get("SeriesInstanceUID", "")), _range_of(pixels, path)


def normalize_file(
    source: Path, destination: Path, params: NormalizeParams, source_range: ValueRange | None = None
) -> NormalizeOutcome:
    """Normalize ``source`` into ``destination`` (atomically). ``source_range`` overrides the file's own range."""
    with warnings.catch_warnings():
        # pydicom warns (UserWarning) per dubious input value; numeric RuntimeWarnings stay visible (they are bugs)
        warnings.simplefilter("ignore", UserWarning)
        return _normalize_file(source, destination, params, source_range)


def _normalize_file(
    source: Path, destination: Path, params: NormalizeParams, source_range: ValueRange | None
) -> NormalizeOutcome:
    ds = read_dataset(source)
    pixels = grayscale_pixels(ds, source)
    measured = source_range if source_range is not None else _range_of(pixels, source)
    is_dose = "DoseGridScaling" in ds
    if is_dose and params.low < 0:
        raise UnsupportedInputError(source, f"RT Dose cannot hold negative values (MIN {params.low:g}); use MIN >= 0")
    encoding = choose_encoding(params.target, int(ds.BitsAllocated), zero_intercept=is_dose)
    out = remap(pixels.stored, pixels.slopes, pixels.intercepts, measured, params.target, encoding)
    big_endian = not _is_little_endian(ds)
    _set_pixels(ds, out, encoding)
    _set_modality_transform(ds, encoding, pixels)
    _set_voi(ds, params.target)
    _set_value_extremes(ds, out, encoding, params)
    _drop_stale(ds)
    mark_derived(
        ds,
        recipe=params.recipe(),
        description=params.describe(),
        tool="normalize",
        software_version=__version__,
        series_suffix="(normalized)",
    )
    if big_endian:
        convert_raw_values_to_little_endian(ds)
    rebuild_file_meta(ds, __version__)
    try:
        write_atomic(ds, destination)
    except OSError as exc:
        raise InputError(destination, f"cannot write output ({exc.strerror or exc})") from None
    return NormalizeOutcome(source, destination, measured, encoding.bits_allocated)


def _range_of(pixels: GrayscalePixels, path: Path) -> ValueRange:
    try:
        return modality_range(pixels.stored, pixels.slopes, pixels.intercepts)
    except ValueError as exc:
        raise InputError(path, str(exc)) from None


def _is_little_endian(ds: Dataset) -> bool:
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    return syntax != "1.2.840.10008.1.2.2"


def _set_pixels(ds: Dataset, out: npt.NDArray[np.integer], enc: OutputEncoding) -> None:
    """Image Pixel module for the new samples; uncompressed, explicit little endian, even length."""
    data = out.astype(enc.dtype, copy=False).tobytes()
    if len(data) % 2:
        data += b"\x00"
    ds.BitsAllocated = enc.bits_allocated
    ds.BitsStored = enc.bits_allocated
    ds.HighBit = enc.bits_allocated - 1
    ds.PixelRepresentation = 1 if enc.signed else 0
    if "PlanarConfiguration" in ds:
        del ds.PlanarConfiguration
    ds.add_new(0x7FE00010, "OB" if enc.bits_allocated == 8 else "OW", data)


def _set_modality_transform(ds: Dataset, enc: OutputEncoding, pixels: GrayscalePixels) -> None:
    """Write the rescale pair readers must apply (slope 1 / intercept 0 for integer ranges)."""
    enhanced = "SharedFunctionalGroupsSequence" in ds
    if "DoseGridScaling" in ds:  # RT Dose: the scaling is its modality transform
        ds.DoseGridScaling = enc.slope_text
        return
    if enhanced:
        _set_functional_group_rescale(ds, enc)
        return
    had_rescale = "RescaleSlope" in ds or "RescaleIntercept" in ds or pixels.from_modality_lut
    if had_rescale or not enc.is_identity_rescale:
        ds.RescaleSlope = enc.slope_text
        ds.RescaleIntercept = enc.intercept_text
        ds.RescaleType = "US"  # unspecified units: the values are no longer HU (or whatever they were)


def _set_functional_group_rescale(ds: Dataset, enc: OutputEncoding) -> None:
    per_frame = ds.get("PerFrameFunctionalGroupsSequence") or []
    shared = ds.SharedFunctionalGroupsSequence[0]
    present = "PixelValueTransformationSequence" in shared or any(
        "PixelValueTransformationSequence" in item for item in per_frame
    )
    for item in per_frame:
        for keyword in ("PixelValueTransformationSequence", "FrameVOILUTSequence"):
            if keyword in item:
                delattr(item, keyword)
    if present or not enc.is_identity_rescale:
        transform = Dataset()
        transform.RescaleSlope = enc.slope_text
        transform.RescaleIntercept = enc.intercept_text
        transform.RescaleType = "US"
        shared.PixelValueTransformationSequence = Sequence([transform])


def _window(target: ValueRange) -> tuple[str, str, bool]:
    """(center, width, exact) mapping exactly [low, high] to the display range (PS3.3 C.11.2.1.2).

    LINEAR: c - 0.5 - (w - 1) / 2 = low and c - 0.5 + (w - 1) / 2 = high. It needs w >= 1, so ranges
    narrower than 1 use LINEAR_EXACT (c = midpoint, w = high - low).
    """
    width = target.width
    if width >= 1:
        return format_ds((target.low + target.high) / 2 + 0.5), format_ds(width + 1), False
    return format_ds((target.low + target.high) / 2), format_ds(width if width > 0 else 1), True


def _set_voi(ds: Dataset, target: ValueRange) -> None:
    """Replace VOI attributes (top level and enhanced groups) by one window spanning the new values."""
    center, width, exact = _window(target)
    holders: list[Dataset] = [ds]
    shared = ds.get("SharedFunctionalGroupsSequence")
    if shared and "FrameVOILUTSequence" in shared[0]:
        holders.extend(shared[0].FrameVOILUTSequence)
    for holder in holders:
        if not any(k in holder for k in _VOI_KEYWORDS):
            continue
        for keyword in ("VOILUTSequence", "WindowCenterWidthExplanation"):
            if keyword in holder:
                delattr(holder, keyword)
        holder.WindowCenter = center
        holder.WindowWidth = width
        holder.WindowCenterWidthExplanation = "NORMALIZED"
        if exact:
            holder.VOILUTFunction = "LINEAR_EXACT"
        elif str(holder.get("VOILUTFunction", "")) == "SIGMOID":
            holder.VOILUTFunction = "LINEAR"


def _set_value_extremes(
    ds: Dataset, out: npt.NDArray[np.integer], enc: OutputEncoding, params: NormalizeParams
) -> None:
    """Smallest/Largest Image Pixel Value are stored values (US or SS): rewrite, or drop if they cannot hold them."""
    vr = "SS" if enc.signed else "US"
    fits = enc.bits_allocated <= 16
    for keyword, tag, value in (
        ("SmallestImagePixelValue", 0x00280106, int(out.min())),
        ("LargestImagePixelValue", 0x00280107, int(out.max())),
    ):
        if keyword in ds:
            delattr(ds, keyword)
            if fits:
                ds.add_new(tag, vr, value)
    lo_code = round((params.target.low - enc.intercept) / enc.slope)
    hi_code = round((params.target.high - enc.intercept) / enc.slope)
    for keyword, tag, value in (
        ("SmallestPixelValueInSeries", 0x00280108, lo_code),
        ("LargestPixelValueInSeries", 0x00280109, hi_code),
    ):
        if keyword in ds:
            delattr(ds, keyword)
            if fits and params.scope == "series":
                ds.add_new(tag, vr, value)


def _drop_stale(ds: Dataset) -> None:
    for keyword in _STALE_KEYWORDS:
        if keyword in ds:
            delattr(ds, keyword)
    # Overlays embedded in the unused high bits of the old pixel data are gone with those bits.
    for group in range(0x6000, 0x6020, 2):
        if (group, 0x0010) in ds and (group, 0x3000) not in ds:
            for tag in [element.tag for element in ds if element.tag.group == group]:
                del ds[tag]
