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


def load_frames(path: Path, frames: list[int]) -> dict[int, Frame]:
    """Decode ``frames`` (0-based) of ``path``; an unreadable file raises its one-line InputError."""
    ds = read_dataset(path)
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    bits = int(ds.get("BitsAllocated", 16) or 16)
    if samples != 1 or bits == 1:
        array = np.asarray(decoded_pixels(ds, path))
        count = int(ds.get("NumberOfFrames", 1) or 1)
        if count == 1:
            array = array[None, ...]
        kind = "colour" if samples != 1 else "binary"
        found: dict[int, Frame] = {}
        for index in frames:
            if index < array.shape[0]:
                picture = array[index] != 0 if kind == "binary" else np.asarray(array[index], dtype=np.uint8)
                found[index] = Frame(_shrink_colour(picture) if kind == "colour" else shrink(picture), _EMPTY, kind)
        return found
    pixels = grayscale_pixels(ds, path)
    inverted = str(ds.get("PhotometricInterpretation", "")).strip() == "MONOCHROME1"
    found = {}
    for index in frames:
        if index >= pixels.stored.shape[0]:
            continue
        values = pixels.stored[index].astype(np.float64) * pixels.slopes[index] + pixels.intercepts[index]
        step = max(1, values.size // HISTOGRAM_SAMPLE)
        found[index] = Frame(shrink(values), values.reshape(-1)[::step].copy(), "grey", inverted)
    return found


_EMPTY: npt.NDArray[np.float64] = np.zeros(0)


def _shrink_colour(picture: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    channels = [shrink(picture[..., c].astype(np.float64)) for c in range(picture.shape[-1])]
    return np.asarray(np.clip(np.stack(channels, axis=-1), 0, 255), dtype=np.uint8)
