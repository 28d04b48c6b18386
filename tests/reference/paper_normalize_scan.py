"""The 2018 paper's ``normalize_scan.py``, reconstructed for comparison (tests and benchmarks only).

"Container-Based Clinical Solutions for Portable and Reproducible Image Analysis" (J Digit Imaging, 2018)
ships a script ``normalize_scan.py [DICOM file] [min value] [max value]`` that reads the scan with pydicom,
linearly rescales ``pixel_array`` to [min, max] in floating point, stores the array's bytes back into
PixelData and saves ``<name>-normalized<ext>``. This is that algorithm, unchanged in substance, run under
Python 3 and the pydicom we lock. It is kept *because it is wrong*: the regression tests show each defect and
that dicompose does not have it; the benchmark uses it as the speed baseline.
"""

from __future__ import annotations

import os
import sys

import pydicom


def normalize(filename: str, min_value: float, max_value: float) -> str:
    ds = pydicom.dcmread(filename)
    pixels = ds.pixel_array.astype(float)  # float64; rescale slope/intercept ignored
    pixels = (pixels - pixels.min()) / (pixels.max() - pixels.min()) * (max_value - min_value) + min_value
    name, ext = os.path.splitext(filename)
    out = name + "-normalized" + ext
    ds.PixelData = pixels.tobytes()  # float64 bytes into a 16-bit PixelData; headers untouched
    ds.save_as(out)
    return out


def normalize_minimal_fix(filename: str, min_value: float, max_value: float) -> str:
    """The obvious 'fix' (cast back to the input dtype): valid-looking DICOM, still wrong values."""
    ds = pydicom.dcmread(filename)
    original = ds.pixel_array
    pixels = original.astype(float)
    pixels = (pixels - pixels.min()) / (pixels.max() - pixels.min()) * (max_value - min_value) + min_value
    name, ext = os.path.splitext(filename)
    out = name + "-normalized" + ext
    ds.PixelData = pixels.astype(original.dtype).tobytes()
    ds.save_as(out)
    return out


if __name__ == "__main__":
    normalize(sys.argv[1], float(sys.argv[2]), float(sys.argv[3]))
