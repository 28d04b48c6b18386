"""The quick look at a file's first bytes (discovery's DICOM check and SOP Instance UID for the duplicate check,
the audit log's identifiers) must say what pydicom's full read says, whatever the encoding and wherever the
values fall."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from dicompose.dicom import reading, synthetic
from dicompose.dicom.identifiers import file_facts, identifiers
from dicompose.dicom.quicklook import HEAD_BYTES, first_values
from dicompose.dicom.reading import peek
from dicompose.dicom.writing import rebuild_file_meta

SOP_INSTANCE_UID = 0x00080018


def full_read_uid(path: Path) -> str | None:
    return str(pydicom.dcmread(path, force=True).get("SOPInstanceUID", "") or "") or None


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian])
@pytest.mark.parametrize("padding", [0, 7_900, 8_020, 8_040, 8_060, 20_000])
def test_the_uid_is_read_whatever_the_encoding_and_wherever_it_falls(tmp_path: Path, syntax: str, padding: int):
    """Padding before (0008,0018) moves the UID across the end of the bytes first read: cut, it is read again
    from the file, never taken truncated."""
    ds = synthetic.ct_slice("peek", 0, 8, 8)
    ds.ImageType = ["DERIVED", "SECONDARY"] + ["X" * 14] * (padding // 15)  # (0008,0008): before the UID
    rebuild_file_meta(ds, "test")
    ds.file_meta.TransferSyntaxUID = syntax
    path = tmp_path / "a.dcm"
    ds.save_as(path, enforce_file_format=True)
    header = peek(path)
    assert header.dicom and header.instance_uid == full_read_uid(path) == ds.SOPInstanceUID


def test_the_quick_look_falls_back_to_pydicom_for_deflated_files():
    path = Path(get_testdata_file("image_dfl.dcm"))  # type: ignore[arg-type]
    assert first_values(path.read_bytes()[:HEAD_BYTES], {SOP_INSTANCE_UID: "UI"}, whole=False) is None
    assert peek(path).instance_uid == full_read_uid(path)


def test_files_without_the_prefix_or_uid(tmp_path: Path):
    (tmp_path / "text.dcm").write_text("not DICOM at all" * 20)
    assert peek(tmp_path / "text.dcm") == reading.Peek(dicom=False)
    ds = synthetic.ct_slice("peek", 0, 8, 8)
    rebuild_file_meta(ds, "test")
    del ds.SOPInstanceUID
    ds.save_as(tmp_path / "no-uid.dcm", enforce_file_format=True)
    assert peek(tmp_path / "no-uid.dcm") == reading.Peek(dicom=True, instance_uid=None)
    cut = (tmp_path / "no-uid.dcm").read_bytes()[:200]
    (tmp_path / "cut.dcm").write_bytes(cut)
    assert peek(tmp_path / "cut.dcm").dicom


def test_a_uid_cut_by_the_first_read_is_read_again_from_the_file(tmp_path: Path):
    """Every offset around the end of the first read: both ways (quick look, full read) are taken, and the
    answer is always pydicom's."""
    ways = set()
    for padding in range(7_500, 8_000, 3):
        ds = synthetic.ct_slice("peek", 0, 8, 8)
        rebuild_file_meta(ds, "test")
        ds.ImageType = ["DERIVED", "SECONDARY", "Y" * (padding % 15 * 2)] + ["X" * 14] * (padding // 15)
        path = tmp_path / f"{padding}.dcm"
        ds.save_as(path, enforce_file_format=True)
        ways.add(first_values(path.read_bytes()[:HEAD_BYTES], {SOP_INSTANCE_UID: "UI"}, whole=False) is None)
        assert peek(path).instance_uid == full_read_uid(path) == ds.SOPInstanceUID
    assert ways == {True, False}


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian])
@pytest.mark.parametrize(
    ("charset", "patient"), [(None, "PAT-1"), ("ISO_IR 192", "Müller^Zoë"), ("ISO_IR 100", "Gómez"), ("", "")]
)
def test_identifiers_from_first_bytes_are_pydicom_s(tmp_path: Path, syntax: str, charset: str | None, patient: str):
    """The audit log's facts of a file (study, series, instance, patient id, decoded with its character set)
    and its sha256, read once, equal what a full pydicom read and a rehash say."""
    ds = synthetic.ct_slice("ids", 0, 8, 8)
    rebuild_file_meta(ds, "test")
    ds.file_meta.TransferSyntaxUID = syntax
    if charset is not None:
        ds.SpecificCharacterSet = charset
    ds.PatientID = patient
    path = tmp_path / "a.dcm"
    ds.save_as(path, enforce_file_format=True)
    full = pydicom.dcmread(path)
    expected = {
        "study": full.StudyInstanceUID,
        "series": full.SeriesInstanceUID,
        "instance": full.SOPInstanceUID,
        "patient": str(full.get("PatientID", "") or "") or None,
    }
    assert identifiers(path) == expected
    sha256, facts = file_facts(path, block=64)  # a first block smaller than the file: the quick look says no
    assert facts == expected and sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_identifiers_of_files_the_quick_look_cannot_read(tmp_path: Path):
    deflated = Path(get_testdata_file("image_dfl.dcm"))  # type: ignore[arg-type]
    full = pydicom.dcmread(deflated)
    assert identifiers(deflated)["instance"] == full.SOPInstanceUID
    (tmp_path / "junk.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\xff" * 40)
    assert identifiers(tmp_path / "junk.dcm") == dict.fromkeys(("study", "series", "instance", "patient"))
