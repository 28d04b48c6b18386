"""Reading DICOM files and their grayscale pixels, translating every pydicom failure into one clear line."""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pydicom
from pydicom.dataset import Dataset, FileDataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels.processing import apply_modality_lut

from dicompose.errors import InputError, UnsupportedInputError
from dicompose.fileio import Digest, Hasher

_PREAMBLE_LENGTH = 128
_GRAYSCALE = ("MONOCHROME1", "MONOCHROME2")


def looks_like_dicom(path: Path) -> bool:
    """True when the file carries the DICOM Part 10 'DICM' prefix (cheap: reads 132 bytes)."""
    try:
        with path.open("rb") as fh:
            head = fh.read(_PREAMBLE_LENGTH + 4)
    except OSError:
        return False
    return len(head) == _PREAMBLE_LENGTH + 4 and head[_PREAMBLE_LENGTH:] == b"DICM"


def read_dataset(path: Path, *, stop_before_pixels: bool = False) -> FileDataset:
    """Read a DICOM Part 10 file; any failure becomes an :class:`InputError` naming the file."""
    with _read_errors(path), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom's warnings on dubious values must not flood batch output
        return pydicom.dcmread(path, stop_before_pixels=stop_before_pixels)


def read_dataset_hashed(path: Path, hasher: Hasher) -> tuple[FileDataset, Digest]:
    """:func:`read_dataset`, and the sha256 of the file's bytes: the file is read once, into memory, and
    hashed (on ``hasher``'s thread) while pydicom parses the same bytes."""
    with _read_errors(path):
        data = path.read_bytes()
        digest = hasher.sha256()
        digest.update(data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(io.BytesIO(data))
    ds.filename = str(path)  # as if read from the path
    return ds, digest


@contextlib.contextmanager
def _read_errors(path: Path) -> Iterator[None]:
    """Translate every failure to read ``path`` as DICOM into one :class:`InputError` line naming it."""
    try:
        yield
    except InvalidDicomError:
        raise UnsupportedInputError(path, "not a DICOM file (no DICOM file meta information)") from None
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except IsADirectoryError:
        raise InputError(path, "is a directory, not a file") from None
    except PermissionError:
        raise InputError(path, "permission denied") from None
    except OSError as exc:
        raise InputError(path, f"cannot read file ({exc.strerror or exc})") from None
    except Exception as exc:  # pydicom raises many types on corrupt data; all mean "damaged file"
        raise InputError(path, f"corrupt DICOM file ({_short(exc)})") from None


@dataclass(frozen=True)
class GrayscalePixels:
    """Stored values shaped (frames, rows, cols) in native byte order, with each frame's modality transform."""

    stored: npt.NDArray[Any]
    slopes: npt.NDArray[np.float64]
    intercepts: npt.NDArray[np.float64]
    #: True when the values came through a Modality LUT Sequence (already modality values, slope 1).
    from_modality_lut: bool = False


def check_normalizable(ds: Dataset, path: Path) -> None:
    """Refuse objects the normalize tool cannot remap faithfully, each with one clear reason."""
    if "PixelData" not in ds:
        if "FloatPixelData" in ds or "DoubleFloatPixelData" in ds:
            raise UnsupportedInputError(path, "floating-point pixel data is not supported")
        kind = str(ds.get("Modality", "") or getattr(ds.get("SOPClassUID"), "name", "") or "unknown")
        raise UnsupportedInputError(path, f"not an image: no pixel data (object type {kind})")
    required = ("Rows", "Columns", "BitsAllocated", "SamplesPerPixel", "PhotometricInterpretation")
    missing = [k for k in required if k not in ds or ds[k].value in (None, "")]
    if missing:
        raise InputError(path, f"corrupt image: missing {', '.join(missing)}")
    interpretation = str(ds.PhotometricInterpretation).strip()
    if int(ds.SamplesPerPixel) != 1 or interpretation not in _GRAYSCALE:
        raise UnsupportedInputError(
            path, f"colour images are not supported (PhotometricInterpretation {interpretation})"
        )
    if int(ds.BitsAllocated) == 1:
        raise UnsupportedInputError(path, "1-bit (binary/segmentation) images are not supported")


def grayscale_pixels(ds: Dataset, path: Path) -> GrayscalePixels:
    """Decode (decompressing if needed) the stored values and each frame's modality transform."""
    check_normalizable(ds, path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            array = ds.pixel_array
    except Exception as exc:  # decoders raise ValueError/RuntimeError/AttributeError/... for bad data
        raise InputError(path, f"cannot decode pixel data ({_short(exc)})") from None
    frames = int(ds.get("NumberOfFrames", 1) or 1)
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
        raise InputError(path, f"corrupt rescale attributes ({_short(exc)})") from None
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


def _short(exc: BaseException) -> str:
    """A one-line, bounded description of a third-party exception (no multi-line decoder dumps)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."
