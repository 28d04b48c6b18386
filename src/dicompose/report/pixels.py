"""The slices a report shows, decoded once: shrunk to thumbnails (values kept, so any window can be applied
later) with a sample of their full-resolution values for the histograms. Grey images are modality values
(rescale or Modality LUT applied); colour images stay RGB; 1-bit images are masks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from dicompose.dicom.pixels import decoded_pixels, grayscale_pixels
from dicompose.dicom.reading import read_dataset
from dicompose.report.imaging import shrink

#: Values of one slice kept for its histogram: a regular subsample, so the distribution keeps its shape.
HISTOGRAM_SAMPLE = 16384


@dataclass(frozen=True)
class Frame:
    """One slice as the report keeps it."""

    thumbnail: npt.NDArray[Any]  # float64 modality values, bool (mask) or uint8 RGB (colour), shrunk
    sample: npt.NDArray[np.float64]  # full-resolution values for the histogram (empty for colour)
    kind: str  # "grey" | "colour" | "binary"
    inverted: bool = False  # MONOCHROME1: high values are dark
    nonzero: float = 0.0  # the share of non-zero pixels at full resolution (a mask's true coverage)


def load_frames(path: Path, frames: list[int]) -> dict[int, Frame]:
    """Decode ``frames`` (0-based) of ``path``; an unreadable file raises its one-line InputError."""
    ds = read_dataset(path)
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    bits = int(ds.get("BitsAllocated", 16) or 16)
    photometric = str(ds.get("PhotometricInterpretation", "")).strip()
    if samples != 1 or bits == 1 or photometric == "PALETTE COLOR":
        return _colour_or_binary(ds, path, frames, samples, bits, photometric)
    pixels = grayscale_pixels(ds, path)
    inverted = photometric == "MONOCHROME1"
    found = {}
    for index in frames:
        if index >= pixels.stored.shape[0]:
            continue
        values = pixels.stored[index].astype(np.float64) * pixels.slopes[index] + pixels.intercepts[index]
        step = max(1, values.size // HISTOGRAM_SAMPLE)
        share = float(np.count_nonzero(values)) / max(1, values.size)
        found[index] = Frame(shrink(values), values.reshape(-1)[::step].copy(), "grey", inverted, share)
    return found


def _colour_or_binary(
    ds: Any, path: Path, frames: list[int], samples: int, bits: int, photometric: str
) -> dict[int, Frame]:
    array = np.asarray(decoded_pixels(ds, path))
    if int(ds.get("NumberOfFrames", 1) or 1) == 1:
        array = array[None, ...]
    if photometric == "PALETTE COLOR":
        from pydicom.pixels.processing import apply_color_lut

        array = np.asarray(apply_color_lut(array, ds))
    kind = "binary" if bits == 1 and samples == 1 and photometric != "PALETTE COLOR" else "colour"
    found: dict[int, Frame] = {}
    for index in frames:
        if index >= array.shape[0]:
            continue
        if kind == "binary":
            mask = array[index] != 0
            found[index] = Frame(shrink(mask), _EMPTY, kind, nonzero=float(mask.mean()) if mask.size else 0.0)
        else:
            found[index] = Frame(_shrink_colour(_eight_bits(array[index], ds)), _EMPTY, kind)
    return found


def _eight_bits(picture: npt.NDArray[Any], ds: Any) -> npt.NDArray[np.float64]:
    """Colour values scaled to 0-255 from their own depth (16-bit RGB and 16-bit palettes are not cut to 8)."""
    if picture.dtype.itemsize == 1:
        return picture.astype(np.float64)
    top = float(picture.max()) if picture.size else 0.0
    stored = int(ds.get("BitsStored", 16) or 16)
    depth = 16 if top > (1 << stored) - 1 else stored  # a palette's LUT may be 16-bit over 8-bit indices
    return picture.astype(np.float64) * (255.0 / ((1 << depth) - 1))


_EMPTY: npt.NDArray[np.float64] = np.zeros(0)


def _shrink_colour(picture: npt.NDArray[np.float64]) -> npt.NDArray[np.uint8]:
    channels = [shrink(picture[..., c]) for c in range(picture.shape[-1])]
    return np.asarray(np.clip(np.stack(channels, axis=-1), 0, 255).round(), dtype=np.uint8)
