"""Threshold one DICOM image into a binary mask (1 inside [level, upper], else 0), as a valid derived image.

The second built-in step of the demo pipeline (normalize → threshold): a real computation whose output a
radiologist can open beside the input. Values are compared on modality values (after rescale).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset

from dicompose.dicom.header_checks import require_identity
from dicompose.dicom.identifiers import Fingerprints, fingerprinted
from dicompose.dicom.iod import rules_for
from dicompose.dicom.kernel import choose_encoding
from dicompose.dicom.pixel_module import Derivation, write_derived_image
from dicompose.dicom.pixels import grayscale_pixels
from dicompose.dicom.reading import read_dataset
from dicompose.errors import UnsupportedInputError
from dicompose.fileio import Digest, Hasher, Hashing
from dicompose.params import THRESHOLD_RECIPE_VERSION, ThresholdParams, ValueRange

RECIPE_VERSION = THRESHOLD_RECIPE_VERSION
MASK = ValueRange(0.0, 1.0)


def mask_name(source: Path) -> str:
    stem = source.name[:-4] if source.name.lower().endswith(".dcm") else source.name
    return f"{stem}-mask.dcm"


def threshold_file(source: Path, destination: Path, params: ThresholdParams) -> Path:
    """Write the mask of ``source`` to ``destination`` (atomically)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        _threshold(read_dataset(source), source, destination, params)
    return destination


def threshold_file_fingerprinted(
    source: Path, destination: Path, params: ThresholdParams, *, hashing: Hashing = "inline"
) -> Fingerprints:
    """:func:`threshold_file`, returning who both files are about and the sha256 of their bytes (the source
    read once and hashed from memory, the mask hashed as it is written; see :class:`Hasher` for the thread)."""
    return fingerprinted(
        source, lambda ds, hasher: _threshold(ds, source, destination, params, hasher), hashing=hashing
    )


def _threshold(
    ds: Dataset, source: Path, destination: Path, params: ThresholdParams, hasher: Hasher | None = None
) -> Digest | None:
    pixels = grayscale_pixels(ds, source)
    require_identity(ds, source)
    values = pixels.stored.astype(np.float64) * pixels.slopes[:, None, None] + pixels.intercepts[:, None, None]
    inside = values >= params.level
    if params.upper is not None:
        inside &= values <= params.upper
    rules = rules_for(ds)
    if (reason := rules.refuse_new_values()) is not None:
        raise UnsupportedInputError(source, f"{reason}; a mask's 0/1 values are not")
    encoding = choose_encoding(MASK, int(ds.BitsAllocated), limits=rules.limits)  # 0/1 fits every IOD
    ds.PhotometricInterpretation = "MONOCHROME2"  # 1 = inside, shown bright, whatever the input's polarity
    derivation = Derivation("threshold", params.recipe(), params.describe(), "(mask)")
    mask = inside.astype(encoding.dtype)
    return write_derived_image(ds, pixels, mask, encoding, MASK, derivation, destination, hasher=hasher)
