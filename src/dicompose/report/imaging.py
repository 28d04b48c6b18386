"""Pixels into pictures a person can judge at a glance: slices chosen across a volume, a window that suits the
modality, thumbnails tiled into a mosaic, a mask laid over the image it was made from.

Pure numpy, no files and no figures: every choice here (which slices, which window, which colour) is tested
on arrays. Nothing here ever sees a header's text, only numbers, so no identifier can reach a picture.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

#: Longest side of one thumbnail in a mosaic, in pixels (a 512 slice shrinks 4×: anatomy still readable).
THUMBNAIL = 160
#: Slices shown per mosaic: enough to see a whole volume, few enough to read each one.
MOSAIC_SLICES = 9
#: The soft-tissue window of CT in Hounsfield units, where the header offers none.
CT_SOFT_TISSUE = (40.0, 400.0)
MASK_COLOUR = np.array([230, 40, 40], dtype=np.float32)  # red, visible on any grey
MASK_OPACITY = 0.45


@dataclass(frozen=True)
class Window:
    """Values ``low`` and below are black, ``high`` and above white; ``why`` is said beside the figure."""

    low: float
    high: float
    why: str


def spread(count: int, wanted: int = MOSAIC_SLICES) -> list[int]:
    """``wanted`` indices spread evenly over ``range(count)``, first and last included, none twice."""
    if count <= 0:
        return []
    if count <= wanted:
        return list(range(count))
    return sorted({round(i * (count - 1) / (wanted - 1)) for i in range(wanted)})


def choose_window(values: npt.NDArray[Any], modality: str, header_window: tuple[float, float] | None) -> Window:
    """The display window of one series' preview (the same for all its slices, so they compare).

    CT in Hounsfield units: the window the scanner stored (Window Center/Width) when it lies within the data,
    else soft tissue. Anything else (MR, PET, derived images whose values are no longer HU): the 0.5 to 99.5
    percentiles of the values shown, robust to a few hot pixels and to the air around the patient."""
    finite = values[np.isfinite(values)] if values.size else values
    if finite.size == 0:
        return Window(0.0, 1.0, "no values")
    low_value, high_value = float(finite.min()), float(finite.max())
    if modality == "CT" and low_value < -200:  # Hounsfield units (air is -1000)
        if header_window is not None:
            center, width = header_window
            if width > 1 and low_value <= center <= high_value:
                return Window(center - width / 2, center + width / 2, f"stored window {center:g}/{width:g}")
        center, width = CT_SOFT_TISSUE
        return Window(center - width / 2, center + width / 2, f"CT soft tissue {center:g}/{width:g}")
    low, high = (float(v) for v in np.percentile(finite, [0.5, 99.5]))
    if high <= low:  # a flat image, or nearly: its full range (or a unit around its one value)
        low, high = (low_value, high_value) if high_value > low_value else (low_value - 0.5, low_value + 0.5)
    return Window(low, high, "0.5-99.5 percentile")


def shrink(image: npt.NDArray[Any], longest: int = THUMBNAIL) -> npt.NDArray[Any]:
    """``image`` reduced so its longest side is at most ``longest``, by averaging blocks (no aliasing of thin
    structures as plain striding would); a mask shrinks by its maximum, so a small lesion never disappears."""
    rows, columns = image.shape[:2]
    factor = max(1, math.ceil(max(rows, columns) / longest))
    if factor == 1:
        return image
    rows_cut, columns_cut = rows - rows % factor, columns - columns % factor
    if rows_cut == 0 or columns_cut == 0:
        return image[::factor, ::factor]
    trailing = image.shape[2:]  # colour channels, if any, are averaged per channel
    blocks = image[:rows_cut, :columns_cut].reshape(
        rows_cut // factor, factor, columns_cut // factor, factor, *trailing
    )
    if image.dtype == np.bool_:
        return np.asarray(blocks.any(axis=(1, 3)))
    return np.asarray(blocks.mean(axis=(1, 3), dtype=np.float64))


def to_grey(image: npt.NDArray[Any], window: Window, *, inverted: bool = False) -> npt.NDArray[np.uint8]:
    """Values through the window into 0-255 (MONOCHROME1 shows high values dark, as a reading station does)."""
    span = window.high - window.low
    scaled = np.clip((np.asarray(image, dtype=np.float64) - window.low) / (span if span > 0 else 1.0), 0.0, 1.0)
    if inverted:
        scaled = 1.0 - scaled
    return np.nan_to_num(scaled * 255.0).astype(np.uint8)


def overlay(grey: npt.NDArray[np.uint8], mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.uint8]:
    """An RGB picture: the grey image, and the mask in translucent red over it (the image stays visible)."""
    rgb = np.repeat(grey[..., None], 3, axis=2).astype(np.float32)
    if mask.shape == grey.shape:
        rgb[mask] = (1 - MASK_OPACITY) * rgb[mask] + MASK_OPACITY * MASK_COLOUR
    return rgb.round().astype(np.uint8)


def as_rgb(picture: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    return picture if picture.ndim == 3 else np.repeat(picture[..., None], 3, axis=2)


def mosaic(pictures: list[npt.NDArray[np.uint8]], gap: int = 2, columns: int | None = None) -> npt.NDArray[np.uint8]:
    """Thumbnails (grey or RGB) tiled on black, each centred in its cell: a near-square grid, or ``columns``
    wide (one row for a before-and-after strip)."""
    if not pictures:
        return np.zeros((THUMBNAIL // 4, THUMBNAIL // 4, 3), dtype=np.uint8)
    tiles = [padded(as_rgb(p)) for p in pictures]
    columns = max(1, columns or math.ceil(math.sqrt(len(tiles))))
    rows = math.ceil(len(tiles) / columns)
    cell_h = max(t.shape[0] for t in tiles)
    cell_w = max(t.shape[1] for t in tiles)
    canvas = np.zeros((rows * cell_h + (rows - 1) * gap, columns * cell_w + (columns - 1) * gap, 3), np.uint8)
    for index, tile in enumerate(tiles):
        row, column = divmod(index, columns)
        top = row * (cell_h + gap) + (cell_h - tile.shape[0]) // 2
        left = column * (cell_w + gap) + (cell_w - tile.shape[1]) // 2
        canvas[top : top + tile.shape[0], left : left + tile.shape[1]] = tile
    return canvas


#: No side of a saved picture is shorter than this: a 7x300 image shrunk to 4x160 is centred on a black band
#: this high, so it neither vanishes nor stretches a page (a browser scales pictures to a fixed height).
SHORTEST_SIDE = 32


def padded(picture: npt.NDArray[np.uint8], shortest: int = SHORTEST_SIDE) -> npt.NDArray[np.uint8]:
    """``picture`` centred on black so that neither side is shorter than ``shortest`` (unchanged if none is)."""
    rows, columns = picture.shape[:2]
    if rows >= shortest and columns >= shortest:
        return picture
    canvas = np.zeros((max(rows, shortest), max(columns, shortest), *picture.shape[2:]), dtype=picture.dtype)
    top, left = (canvas.shape[0] - rows) // 2, (canvas.shape[1] - columns) // 2
    canvas[top : top + rows, left : left + columns] = picture
    return canvas


def is_mask(values: npt.NDArray[Any]) -> bool:
    """A label image: at most two distinct values, one of them 0 (what a threshold or segmentation writes)."""
    if values.size == 0:
        return False
    distinct = np.unique(values[: min(values.size, 1 << 22)])
    return distinct.size <= 2 and bool(np.any(distinct == 0))


def blank(picture: npt.NDArray[np.uint8]) -> bool:
    """True when a picture holds one colour only (a wrong window, an empty image): the report says so."""
    return picture.size == 0 or bool(np.all(picture == picture.flat[0]))
