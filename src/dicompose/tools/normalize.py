"""The ``normalize`` tool over many files (see :mod:`dicompose.tools.batch` for the batch mechanics)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

from dicompose.dicom.identifiers import Fingerprints
from dicompose.dicom.normalize import normalize_file, output_name
from dicompose.fileio import Hashing
from dicompose.params import NormalizeParams, ValueRange
from dicompose.tools.batch import FileResult, Operation, Summary, run_batch


def _apply(
    params: NormalizeParams,
    source: Path,
    destination: Path,
    source_range: ValueRange | None,
    hashing: Hashing | None,
) -> Fingerprints | None:
    fingerprint = hashing is not None
    outcome = normalize_file(
        source, destination, params, source_range, fingerprint=fingerprint, hashing=hashing or "inline"
    )
    return outcome.fingerprints


def normalize_operation(params: NormalizeParams) -> Operation:
    return Operation("normalize", partial(_apply, params), output_name, series_scope=params.scope == "series")


def run_normalize(
    inputs: Sequence[Path],
    params: NormalizeParams,
    out_dir: Path | None,
    *,
    workers: int,
    on_result: Callable[[FileResult], None] = lambda _r: None,
    on_total: Callable[[int], None] = lambda _n: None,
) -> Summary:
    """Normalize every DICOM image under ``inputs``; report each file through ``on_result`` as it finishes."""
    operation = normalize_operation(params)
    return run_batch(inputs, operation, out_dir, workers=workers, on_result=on_result, on_total=on_total)
