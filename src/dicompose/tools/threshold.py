"""The ``threshold`` tool over many files: binary masks (see :mod:`dicompose.tools.batch`)."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from dicompose.dicom.identifiers import Fingerprints
from dicompose.dicom.threshold import mask_name, threshold_file, threshold_file_fingerprinted
from dicompose.fileio import Hashing
from dicompose.params import ThresholdParams, ValueRange
from dicompose.tools.batch import Operation


def _apply(
    params: ThresholdParams, source: Path, destination: Path, _range: ValueRange | None, hashing: Hashing | None
) -> Fingerprints | None:
    if hashing is not None:
        return threshold_file_fingerprinted(source, destination, params, hashing=hashing)
    threshold_file(source, destination, params)
    return None


def threshold_operation(params: ThresholdParams) -> Operation:
    return Operation("threshold", partial(_apply, params), mask_name)
