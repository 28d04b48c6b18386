"""Every grayscale image IOD through every tool that writes DICOM: each output adds no dciodvfy error to its
input's, or the tool refuses with one line naming the file and the IOD's reason, leaving no file.

The refusals expected are the IODs' own rules (PS3.3): Ultrasound stores 8-bit unsigned samples without a
Modality LUT; DX/MG/IO store unsigned samples with an identity rescale; multi-frame byte SC is 8-bit unsigned;
Legacy Converted Enhanced CT values are Hounsfield units. Written here from the standard, not from the code.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pydicom
import pytest

from dicompose.dicom.deidentify import DeidParams, deidentify_file
from dicompose.dicom.normalize import normalize_file
from dicompose.dicom.threshold import threshold_file
from dicompose.errors import UnsupportedInputError
from dicompose.params import NormalizeParams, ThresholdParams
from tests.support import iods
from tests.support.dicom_checks import dciodvfy_errors

Job = Callable[[Path, Path], object]
JOBS: dict[str, Job] = {
    "normalize 0..100": lambda s, d: normalize_file(s, d, NormalizeParams(0, 100)),
    "normalize 0..65535": lambda s, d: normalize_file(s, d, NormalizeParams(0, 65535)),
    "normalize -1000..3000": lambda s, d: normalize_file(s, d, NormalizeParams(-1000, 3000)),
    "normalize -0.5..0.75": lambda s, d: normalize_file(s, d, NormalizeParams(-0.5, 0.75)),
    "threshold": lambda s, d: threshold_file(s, d, ThresholdParams(0.0)),
    "deidentify": lambda s, d: deidentify_file(s, d, DeidParams(b"k" * 32)),
}
_EIGHT_BIT_NO_RESCALE = {"normalize 0..65535", "normalize -1000..3000", "normalize -0.5..0.75"}
_IDENTITY_RESCALE_UNSIGNED = {"normalize -1000..3000", "normalize -0.5..0.75"}
EXPECTED_REFUSALS: dict[str, set[str]] = {
    "US": _EIGHT_BIT_NO_RESCALE,
    "US-multiframe": _EIGHT_BIT_NO_RESCALE,
    "SC-byte-multiframe": _EIGHT_BIT_NO_RESCALE,
    "DX": _IDENTITY_RESCALE_UNSIGNED,
    "MG": _IDENTITY_RESCALE_UNSIGNED,
    "IO": _IDENTITY_RESCALE_UNSIGNED,
    "legacy-enhanced-CT": {name for name in JOBS if name != "deidentify"},
}
NAMES = [*iods.classic(), "legacy-enhanced-CT", "legacy-enhanced-MR", "legacy-enhanced-PET"]


@pytest.fixture(scope="module")
def objects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return iods.write_all(tmp_path_factory.mktemp("iods"))


def _uids_masked(line: str) -> str:
    return re.sub(r"<[0-9]+(\.[0-9]+)+>", "<uid>", line)


@pytest.mark.dciodvfy
@pytest.mark.parametrize("job", JOBS)
@pytest.mark.parametrize("name", NAMES)
def test_outputs_are_as_valid_as_inputs_or_refused_for_the_iod(
    dciodvfy: str, objects: dict[str, Path], name: str, job: str, tmp_path: Path
) -> None:
    source = objects[name]
    destination = tmp_path / "out" / "result.dcm"
    if job in EXPECTED_REFUSALS.get(name, set()):
        with pytest.raises(UnsupportedInputError) as caught:
            JOBS[job](source, destination)
        message = str(caught.value)
        assert message.startswith(str(source)) and "\n" not in message
        assert re.search(r"cannot hold the range|values must be in HU", message)
        assert not destination.parent.exists() or list(destination.parent.iterdir()) == []
        return
    JOBS[job](source, destination)
    before = {_uids_masked(e) for e in dciodvfy_errors(dciodvfy, source) or set()}
    after = dciodvfy_errors(dciodvfy, destination)
    assert after is not None, "dciodvfy aborted on the output"
    assert {e for e in after if _uids_masked(e) not in before} == set()
    result = pydicom.dcmread(destination)
    if job != "deidentify":
        value2 = list(pydicom.dcmread(source).ImageType)[1:2]
        keeps_primary = name in ("NM", "PT") or name.startswith("legacy-enhanced")
        assert list(result.ImageType)[:2] == ["DERIVED", *(value2 if keeps_primary else ["SECONDARY"])]
