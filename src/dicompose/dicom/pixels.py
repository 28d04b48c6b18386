"""Grayscale pixels of a checked dataset: decoded (uncompressed little endian read straight from the bytes, the
rest through pydicom's decoders), and the modality transform per frame (rescale or functional groups)."""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset
from pydicom.pixels.decoders.base import get_decoder
from pydicom.pixels.processing import apply_modality_lut
from pydicom.uid import UID

from dicompose.dicom.header_checks import check_normalizable, short_error
from dicompose.errors import InputError


@dataclass(frozen=True)
class GrayscalePixels:
    """Stored values shaped (frames, rows, cols) in native byte order, with each frame's modality transform."""

    stored: npt.NDArray[Any]
    slopes: npt.NDArray[np.float64]
    intercepts: npt.NDArray[np.float64]
    #: True when the values came through a Modality LUT Sequence (already modality values, slope 1).
    from_modality_lut: bool = False


@contextlib.contextmanager
def _native_stderr_quiet(compressed: bool) -> Iterator[None]:
    """While a native decoder runs, its own writes to stderr (OpenJPEG's diagnostics, a Rust decoder's panic
    message and backtrace) go nowhere: a broken file is reported in our one line, never in a page of theirs.
    Only around compressed data (native code); fd 2 is restored however the decode ends."""
    if not compressed:
        yield
        return
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "wb") as null:  # noqa: PTH123
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def decoded_pixels(ds: Dataset, path: Path) -> npt.NDArray[Any]:
    """``ds.pixel_array``, with any decoder failure as one :class:`InputError` line naming the file."""
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    native = _native_little_endian(ds, str(syntax or ""))
    if native is not None:
        return native
    compressed = syntax is not None and UID(str(syntax)).is_compressed
    try:
        with warnings.catch_warnings(), _native_stderr_quiet(compressed):
            warnings.simplefilter("ignore")
            return ds.pixel_array
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # decoders raise ValueError/RuntimeError/... and Rust ones PanicException
        raise InputError(path, f"cannot decode pixel data ({short_error(exc)})") from None


_NATIVE_LITTLE_ENDIAN = frozenset({"1.2.840.10008.1.2", "1.2.840.10008.1.2.1"})


def _native_little_endian(ds: Dataset, syntax: str) -> npt.NDArray[Any] | None:
    """What ``ds.pixel_array`` gives for the commonest pixel data (uncompressed, little endian, one sample of
    8, 16 or 32 bits), read straight from the bytes: pydicom's decoder machinery costs eight times as much
    per slice. None where it is anything else (pydicom decodes it). Equality with pydicom is tested."""
    data = ds.get("PixelData")
    if syntax not in _NATIVE_LITTLE_ENDIAN or not isinstance(data, bytes):
        return None
    try:
        samples, allocated = int(ds.SamplesPerPixel), int(ds.BitsAllocated)
        stored, signed = int(ds.BitsStored), int(ds.PixelRepresentation)
        rows, columns, frames = int(ds.Rows), int(ds.Columns), int(ds.get("NumberOfFrames", 1) or 1)
    except (AttributeError, TypeError, ValueError):
        return None
    if samples != 1 or allocated not in (8, 16, 32) or not 0 < stored <= allocated or signed not in (0, 1):
        return None
    count = rows * columns * frames
    if count <= 0 or len(data) < count * allocated // 8:
        return None
    array = np.frombuffer(data, np.dtype(f"<{'iu'[signed == 0]}{allocated // 8}"), count).copy()
    if stored < allocated:  # unused high bits mean nothing (PS3.5 8.1.1): cleared, or the sign extended
        np.left_shift(array, allocated - stored, out=array)
        np.right_shift(array, allocated - stored, out=array)
    return array.reshape((frames, rows, columns) if frames > 1 else (rows, columns))


def check_compressed_pixels_decode(ds: Dataset, path: Path) -> None:
    """For tools that copy compressed pixel data unchanged (de-identification): refuse data no decoder can
    read, so the copy is never a damaged image. Skipped where no decoder for the syntax is installed."""
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if "PixelData" not in ds or syntax is None or not UID(str(syntax)).is_encapsulated:
        return
    try:
        available = get_decoder(UID(str(syntax))).is_available
    except NotImplementedError:
        available = False
    if available:
        decoded_pixels(ds, path)


def grayscale_pixels(ds: Dataset, path: Path) -> GrayscalePixels:
    """Decode (decompressing if needed) the stored values and each frame's modality transform."""
    check_normalizable(ds, path)
    array = decoded_pixels(ds, path)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if array.size != frames * int(ds.Rows) * int(ds.Columns):
        raise InputError(path, f"pixel data holds {array.size} values, not Number of Frames x Rows x Columns")
    stored = np.ascontiguousarray(array.reshape(frames, int(ds.Rows), int(ds.Columns)))
    if not stored.dtype.isnative:
        stored = stored.astype(stored.dtype.newbyteorder("="))
    if "ModalityLUTSequence" in ds:
        values = np.asarray(apply_modality_lut(stored, ds), dtype=np.float64)
        ones = np.ones(frames)
        return GrayscalePixels(values, ones, np.zeros(frames), from_modality_lut=True)
    slopes, intercepts = frame_rescale(ds, frames, path)
    return GrayscalePixels(stored, slopes, intercepts)


def frame_rescale(ds: Dataset, frames: int, path: Path) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Per-frame (slope, intercept): top level, enhanced functional groups, or RT Dose Grid Scaling."""
    slopes = np.ones(frames)
    intercepts = np.zeros(frames)
    try:
        if "RescaleSlope" in ds or "RescaleIntercept" in ds:
            slopes[:] = float(ds.get("RescaleSlope", 1) or 1)
            intercepts[:] = float(ds.get("RescaleIntercept", 0) or 0)
        elif "DoseGridScaling" in ds:
            slopes[:] = float(ds.DoseGridScaling)
        else:
            shared = _transformation(ds.get("SharedFunctionalGroupsSequence"), 0)
            if shared is not None:
                slopes[:], intercepts[:] = shared
            per_frame = ds.get("PerFrameFunctionalGroupsSequence")
            for index in range(min(frames, len(per_frame or []))):
                pair = _transformation(per_frame, index)
                if pair is not None:
                    slopes[index], intercepts[index] = pair
    except (TypeError, ValueError) as exc:
        raise InputError(path, f"corrupt rescale attributes ({short_error(exc)})") from None
    if not np.all(np.isfinite(slopes)) or not np.all(np.isfinite(intercepts)) or np.any(slopes == 0):
        raise InputError(path, "invalid rescale slope/intercept (zero or not finite)")
    return slopes, intercepts


def _transformation(groups: Any, index: int) -> tuple[float, float] | None:
    """The Pixel Value Transformation (slope, intercept) of functional group item ``index``, if any."""
    if not groups or index >= len(groups):
        return None
    sequence = groups[index].get("PixelValueTransformationSequence")
    if not sequence:
        return None
    item = sequence[0]
    return float(item.get("RescaleSlope", 1) or 1), float(item.get("RescaleIntercept", 0) or 0)
