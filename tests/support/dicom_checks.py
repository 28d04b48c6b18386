"""Checks of DICOM outputs made independently of dicompose: dciodvfy's errors, pydicom's own modality values,
the exact expected remap, and the corpus of files pydicom ships."""

from __future__ import annotations

import functools
import re
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pydicom
from pydicom.data.data_manager import DATA_ROOT, DataTypes, external_data_sources


def dciodvfy_errors(tool: str, path: Path) -> set[str] | None:
    """The set of 'Error -' lines dciodvfy reports, or None when dciodvfy itself aborts on the file."""
    proc = subprocess.run(
        [tool, str(path)], capture_output=True, text=True, errors="replace", timeout=120, check=False
    )  # damaged values are echoed in the report as they are: not always UTF-8
    if proc.returncode not in (0, 1):
        return None
    return {line.strip() for line in (proc.stdout + proc.stderr).splitlines() if line.startswith("Error")}


def normalized_error(line: str) -> str:
    """Drop the tag and attribute name so an inherited bad value matches wherever it now stands."""
    line = re.sub(r"\(0x[0-9a-f]{4},0x[0-9a-f]{4}\) [A-Z]{2} [^<\[]*", "", line)
    return re.sub(r"<[0-9]+(\.[0-9]+)+>", "<uid>", line)  # UIDs are replaced consistently: relations persist


@functools.cache
def pydicom_corpus() -> list[Path]:
    """Every file of pydicom's test data on this machine (files only; a few are deliberately broken): its own
    and those of installed data packages (pydicom-data). ``get_testdata_files`` would also try to download
    the rest, 15 s of timeouts where the network is closed."""
    files = list((Path(DATA_ROOT) / "test_files").rglob("*"))
    for source in external_data_sources().values():
        files += [Path(p) for p in source.get_paths("**/*", DataTypes.DATASET)]
    return sorted({p for p in files if p.is_file() and p.suffix != ".py"})


def independent_modality_values(ds: pydicom.Dataset) -> np.ndarray:
    """Modality values straight from pydicom's own LUT code (not ours), float64, shaped (frames, rows, cols)."""
    from pydicom.pixels import apply_modality_lut

    array = ds.pixel_array
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    values = np.asarray(apply_modality_lut(array, ds), dtype=np.float64)
    if "DoseGridScaling" in ds:
        values = values * float(ds.DoseGridScaling)
    values = values.reshape(frames, int(ds.Rows), int(ds.Columns))
    if "RescaleSlope" not in ds and "ModalityLUTSequence" not in ds:  # enhanced: per frame, in functional groups
        shared = (ds.get("SharedFunctionalGroupsSequence") or [None])[0]
        per_frame = ds.get("PerFrameFunctionalGroupsSequence") or []
        for index in range(frames):
            groups = [g for g in (per_frame[index] if index < len(per_frame) else None, shared) if g is not None]
            holder = next((g for g in groups if "PixelValueTransformationSequence" in g), None)
            if holder is not None:
                item = holder.PixelValueTransformationSequence[0]
                values[index] = values[index] * float(item.RescaleSlope) + float(item.RescaleIntercept)
    return values


def exact_expected(values: np.ndarray, low: float, high: float, vmin: float, vmax: float) -> np.ndarray:
    """The mathematically exact targets (as floats of exact fractions), computed per distinct value."""
    span = Fraction(vmax) - Fraction(vmin)
    distinct, where = np.unique(values, return_inverse=True)  # each distinct value once, then spread back
    targets = [
        float(
            Fraction(low)
            if span == 0
            else Fraction(low) + (Fraction(float(v)) - Fraction(vmin)) / span * (Fraction(high) - Fraction(low))
        )
        for v in distinct
    ]
    return np.asarray(targets, dtype=np.float64)[where].reshape(values.shape)


def output_modality_values(ds: pydicom.Dataset) -> np.ndarray:
    return independent_modality_values(ds)
