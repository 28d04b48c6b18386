"""Rewriting a derived image's pixel-related attributes and writing it: shared by every image-writing tool.

Given new stored values and their :class:`OutputEncoding`, every attribute that describes pixel values (bits,
rescale, VOI window, extremes, padding, icons, embedded overlays) is made consistent with them, then the file
is marked derived and written atomically as explicit VR little endian.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from dicompose import __version__
from dicompose.dicom.derivation import mark_derived
from dicompose.dicom.kernel import OutputEncoding
from dicompose.dicom.pixels import GrayscalePixels
from dicompose.dicom.writing import convert_raw_values_to_little_endian, rebuild_file_meta, write_atomic
from dicompose.errors import InputError, storage_error
from dicompose.fileio import Digest, Hasher
from dicompose.params import ValueRange, format_ds

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
class Derivation:
    """Who derived the image and how: feeds the UIDs (``recipe``) and the human-readable description."""

    tool: str
    recipe: str
    description: str
    series_suffix: str
    series_range: bool = False  # the target range holds for the whole series (Smallest/LargestPixelValueInSeries)


def write_derived_image(
    ds: Dataset,
    pixels: GrayscalePixels,
    out: npt.NDArray[np.integer],
    encoding: OutputEncoding,
    target: ValueRange,
    derivation: Derivation,
    destination: Path,
    *,
    hasher: Hasher | None = None,
) -> Digest | None:
    """Make ``ds`` (the source dataset, modified in place) a valid derived image of ``out`` and write it;
    with ``hasher``, return the sha256 of the bytes written."""
    big_endian = not _is_little_endian(ds)
    _set_pixels(ds, out, encoding)
    _set_modality_transform(ds, encoding, pixels)
    _set_voi(ds, target)
    _set_value_extremes(ds, out, encoding, target, derivation.series_range)
    _drop_stale(ds)
    mark_derived(
        ds,
        recipe=derivation.recipe,
        description=derivation.description,
        tool=derivation.tool,
        software_version=__version__,
        series_suffix=derivation.series_suffix,
    )
    if big_endian:
        convert_raw_values_to_little_endian(ds)
    rebuild_file_meta(ds, __version__)
    read_from = getattr(ds, "filename", None)  # the input file (set by the readers), named in encoding errors
    try:
        return write_atomic(
            ds, destination, hasher=hasher, source=Path(read_from) if isinstance(read_from, str) else None
        )
    except OSError as exc:
        raise storage_error(destination, exc) or InputError(
            destination, f"cannot write output ({exc.strerror or exc})"
        ) from None


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
    ds: Dataset, out: npt.NDArray[np.integer], enc: OutputEncoding, target: ValueRange, series_range: bool
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
    lo_code = round((target.low - enc.intercept) / enc.slope)
    hi_code = round((target.high - enc.intercept) / enc.slope)
    for keyword, tag, value in (
        ("SmallestPixelValueInSeries", 0x00280108, lo_code),
        ("LargestPixelValueInSeries", 0x00280109, hi_code),
    ):
        if keyword in ds:
            delattr(ds, keyword)
            if fits and series_range:
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
