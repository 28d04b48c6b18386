"""The ``deidentify`` tool over many files, and the site's de-identification key."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from dicompose.dicom.deidentify import DeidParams, deidentify_file, deidentify_file_fingerprinted, output_name_for
from dicompose.dicom.identifiers import Fingerprints
from dicompose.fileio import Hashing
from dicompose.params import ValueRange
from dicompose.tools.batch import Operation
from dicompose.tools.site_keys import load_key, site_key_path

__all__ = ["deidentify_operation", "load_key", "site_key_path"]


def _apply(
    params: DeidParams, source: Path, destination: Path, _range: ValueRange | None, hashing: Hashing | None
) -> Fingerprints | None:
    if hashing is not None:
        return deidentify_file_fingerprinted(source, destination, params, hashing=hashing)
    deidentify_file(source, destination, params)
    return None


def deidentify_operation(params: DeidParams) -> Operation:
    return Operation("deidentify", partial(_apply, params), partial(output_name_for, params), flatten=True)
