"""Normalize one DICOM image: remap its modality values linearly onto [low, high] and write a valid derived file.

Pure with respect to the rest of the package: takes paths and parameters, returns a small outcome object.
The batch runner (``dicompose.tools.normalize``) schedules these calls across processes.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from pathlib import Path

from pydicom.dataset import FileDataset

from dicompose.dicom.header_checks import require_identity
from dicompose.dicom.identifiers import Fingerprints, dataset_identifiers
from dicompose.dicom.iod import rules_for
from dicompose.dicom.kernel import EncodingError, choose_encoding, modality_range, remap
from dicompose.dicom.pixel_module import Derivation, write_derived_image
from dicompose.dicom.pixels import GrayscalePixels, grayscale_pixels
from dicompose.dicom.reading import read_dataset, read_dataset_hashed
from dicompose.errors import InputError, UnsupportedInputError
from dicompose.fileio import Digest, Hasher, Hashing
from dicompose.params import NORMALIZE_RECIPE_VERSION, NormalizeParams, ValueRange

RECIPE_VERSION = NORMALIZE_RECIPE_VERSION  # the normalize recipe's version (kept under its old name)


@dataclass(frozen=True)
class NormalizeOutcome:
    """What happened to one file: where the output went and its modality value range."""

    source: Path
    output: Path
    source_range: ValueRange
    bits_allocated: int
    #: Identifiers and sha256 of the source and the output, when asked for (``fingerprint=True``).
    fingerprints: Fingerprints | None = None


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
    source: Path,
    destination: Path,
    params: NormalizeParams,
    source_range: ValueRange | None = None,
    *,
    fingerprint: bool = False,
    hashing: Hashing = "inline",
) -> NormalizeOutcome:
    """Normalize ``source`` into ``destination`` (atomically). ``source_range`` overrides the file's own range.

    With ``fingerprint``, the outcome also says who both files are about and the sha256 of their bytes: the
    source is read once and hashed from memory, the output hashed as it is written, as ``hashing`` says.
    """
    with warnings.catch_warnings():
        # pydicom warns (UserWarning) per dubious input value; numeric RuntimeWarnings stay visible (they are bugs)
        warnings.simplefilter("ignore", UserWarning)
        if not fingerprint:
            return _normalize(read_dataset(source), source, destination, params, source_range)[0]
        with Hasher(hashing) as hasher:
            ds, source_digest = read_dataset_hashed(source, hasher)
            read = dataset_identifiers(ds)
            outcome, output_digest = _normalize(ds, source, destination, params, source_range, hasher)
            prints = Fingerprints.of(read, source_digest, ds, output_digest)
        return replace(outcome, fingerprints=prints)


def _normalize(
    ds: FileDataset,
    source: Path,
    destination: Path,
    params: NormalizeParams,
    source_range: ValueRange | None,
    hasher: Hasher | None = None,
) -> tuple[NormalizeOutcome, Digest | None]:
    pixels = grayscale_pixels(ds, source)
    require_identity(ds, source)
    measured = source_range if source_range is not None else _range_of(pixels, source)
    is_dose = "DoseGridScaling" in ds
    if is_dose and params.low < 0:
        raise UnsupportedInputError(source, f"RT Dose cannot hold negative values (MIN {params.low:g}); use MIN >= 0")
    rules = rules_for(ds)
    if (reason := rules.refuse_new_values()) is not None:
        raise UnsupportedInputError(source, f"{reason}; normalized values are not")
    try:
        encoding = choose_encoding(params.target, int(ds.BitsAllocated), zero_intercept=is_dose, limits=rules.limits)
    except EncodingError as exc:
        target = f"{params.low:g}..{params.high:g}"
        raise UnsupportedInputError(source, f"{rules.name}: cannot hold the range {target} ({exc})") from None
    out = remap(pixels.stored, pixels.slopes, pixels.intercepts, measured, params.target, encoding)
    derivation = Derivation("normalize", params.recipe(), params.describe(), "(normalized)", params.scope == "series")
    digest = write_derived_image(ds, pixels, out, encoding, params.target, derivation, destination, hasher=hasher)
    return NormalizeOutcome(source, destination, measured, encoding.bits_allocated), digest


def _range_of(pixels: GrayscalePixels, path: Path) -> ValueRange:
    try:
        return modality_range(pixels.stored, pixels.slopes, pixels.intercepts)
    except ValueError as exc:
        raise InputError(path, str(exc)) from None
