"""Implicit VR inputs written as explicit VR: private values keep their dictionary VR where it holds them,
and get a text VR that can where it does not (a 21-character Siemens value is no SH)."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from pydicom.uid import ImplicitVRLittleEndian

from dicompose.dicom import synthetic
from dicompose.dicom.deidentify import DeidParams, deidentify_file
from dicompose.dicom.normalize import normalize_file
from dicompose.dicom.threshold import threshold_file
from dicompose.params import NormalizeParams, ThresholdParams
from tests.support.dicom_checks import dciodvfy_errors

LONG_SH, LONG_CS, SHORT_SH = 0x0019100F, 0x0019100D, 0x00191011  # SIEMENS MR HEADER: SH, CS, SH
TOOLS = {
    "normalize": lambda s, d: normalize_file(s, d, NormalizeParams(0, 100)),
    "threshold": lambda s, d: threshold_file(s, d, ThresholdParams(0.0)),
    "deidentify": lambda s, d: deidentify_file(
        s,
        d,
        DeidParams(b"k" * 32, retain_private=frozenset({pydicom.tag.Tag(t) for t in (LONG_SH, LONG_CS, SHORT_SH)})),
    ),
}


@pytest.fixture
def implicit_with_long_private_values(tmp_path: Path) -> Path:
    ds = synthetic.ct_slice("private", 0, 16, 16)
    ds.add_new(0x00190010, "LO", "SIEMENS MR HEADER")
    ds.add_new(LONG_SH, "LO", "A" * 21)
    ds.add_new(LONG_CS, "LO", "NONE_BUT_LONGER_THAN_16")
    ds.add_new(SHORT_SH, "LO", "YES")
    path = synthetic.save(ds, tmp_path / "explicit.dcm")
    implicit = pydicom.dcmread(path)
    implicit.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    implicit.save_as(tmp_path / "implicit.dcm", enforce_file_format=True)
    return tmp_path / "implicit.dcm"


@pytest.mark.dciodvfy
@pytest.mark.parametrize("tool", TOOLS)
def test_private_values_get_a_vr_that_holds_them(
    dciodvfy: str, implicit_with_long_private_values: Path, tool: str, tmp_path: Path
) -> None:
    out = tmp_path / "out" / f"{tool}.dcm"
    TOOLS[tool](implicit_with_long_private_values, out)
    written = pydicom.dcmread(out)
    assert written.file_meta.TransferSyntaxUID != ImplicitVRLittleEndian
    assert (written[LONG_SH].VR, written[LONG_SH].value) == ("LO", "A" * 21)
    assert (written[LONG_CS].VR, written[LONG_CS].value) == ("LO", "NONE_BUT_LONGER_THAN_16")
    assert (written[SHORT_SH].VR, written[SHORT_SH].value) == ("SH", "YES")  # fits: the dictionary's VR
    errors = dciodvfy_errors(dciodvfy, out)
    assert errors is not None and not [e for e in errors if "0x0019" in e]
