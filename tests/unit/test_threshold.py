"""The threshold tool: masks computed on modality values, written as valid derived images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from dicompose.descriptors.descriptor import load_descriptor
from dicompose.dicom import synthetic
from dicompose.dicom.threshold import threshold_file
from dicompose.errors import UsageError
from dicompose.params import ThresholdParams
from tests.support.dicom_checks import independent_modality_values


def test_mask_of_modality_values(tmp_path: Path):
    ds = synthetic.ct_slice("mask", 0, 32, 32)  # stored = HU + 1024, intercept -1024
    source = synthetic.save(ds, tmp_path / "ct.dcm")
    hu = independent_modality_values(pydicom.dcmread(source))
    out = threshold_file(source, tmp_path / "ct-mask.dcm", ThresholdParams(0, 100))
    mask = pydicom.dcmread(out)
    values = independent_modality_values(mask)
    assert set(np.unique(values)) <= {0.0, 1.0}
    np.testing.assert_array_equal(values, ((hu >= 0) & (hu <= 100)).astype(float))
    assert mask.PhotometricInterpretation == "MONOCHROME2" and list(mask.ImageType)[:2] == ["DERIVED", "SECONDARY"]
    assert mask.SOPInstanceUID != ds.SOPInstanceUID


def test_monochrome1_input_gives_a_monochrome2_mask(tmp_path: Path):
    ds = synthetic.ct_slice("mask1", 0, 8, 8)
    ds.PhotometricInterpretation = "MONOCHROME1"
    out = threshold_file(synthetic.save(ds, tmp_path / "a.dcm"), tmp_path / "a-mask.dcm", ThresholdParams(-2000))
    result = pydicom.dcmread(out)
    assert result.PhotometricInterpretation == "MONOCHROME2" and np.all(result.pixel_array == 1)


@pytest.mark.parametrize(
    ("params", "said"), [(ThresholdParams(50), ">= 50"), (ThresholdParams(-1.5, 100), "in [-1.5, 100]")]
)
def test_a_mask_says_in_plain_ascii_which_values_it_marks(tmp_path: Path, params: ThresholdParams, said: str):
    """The header's default character set has no "∞": the open range used to reach readers as "[50, ?)"."""
    source = synthetic.save(synthetic.ct_slice("said", 0, 8, 8), tmp_path / "ct.dcm")
    raw = threshold_file(source, tmp_path / "ct-mask.dcm", params).read_bytes()
    description = str(pydicom.dcmread(tmp_path / "ct-mask.dcm").DerivationDescription)
    assert description.startswith(f"Binary mask of values {said} by dicompose") and description.isascii()
    assert description.encode("ascii") in raw and "?" not in description


def test_upper_below_level_is_refused():
    with pytest.raises(UsageError, match="must not be below"):
        ThresholdParams(10, 5).check()


def test_descriptor_is_valid():
    assert load_descriptor("threshold").name == "threshold"
