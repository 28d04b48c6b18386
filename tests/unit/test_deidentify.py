"""De-identification: identifying values planted in every Table E.1-1 attribute (top level, nested, private)
must not survive anywhere in the output file; UIDs map consistently; dates shift keeping intervals."""

from __future__ import annotations

import copy
from datetime import datetime
from pathlib import Path

import pydicom
import pytest
from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from dicompose.dicom import synthetic
from dicompose.dicom.deidentify import DeidParams, action_table, deidentify_file
from dicompose.errors import UnsupportedInputError

KEY = b"k" * 32
TEXT_VRS = {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UR", "UT", "UI"}
LIMITS = {"AE": 16, "AS": 4, "CS": 16, "DA": 8, "DS": 16, "DT": 26, "IS": 12, "SH": 16, "TM": 14, "UI": 64}


def marker(number: int, vr: str) -> str:
    """A value that is recognisably ours, valid for the VR, unique per attribute."""
    if vr == "DA":
        return f"1987{(number % 12) + 1:02d}{(number % 27) + 1:02d}"
    if vr == "TM":
        return f"1{number % 10}{number % 60:02d}00"
    if vr == "DT":
        return f"1987061{number % 10}120000"
    if vr in ("DS", "IS"):
        return str(900000 + number)
    if vr == "UI":
        return f"1.2.999.{number}.777"
    if vr == "AS":
        return "099Y"
    text = f"PHI{number:04d}X"
    return text[: LIMITS.get(vr, 64)]


def planted(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A CT slice with an identifying value in every text attribute of the table, also inside a sequence."""
    ds = synthetic.ct_slice("deid", 0, 8, 8)
    planted_values: dict[str, str] = {}
    nested = Dataset()
    for number, tag in enumerate(sorted(action_table())):
        try:
            vr = dictionary_VR(tag)
        except KeyError:
            continue
        if vr not in TEXT_VRS or tag.group in (0x0000, 0x0002) or tag == 0x00080016:  # command, meta, SOP class
            continue
        value = marker(number, vr)
        ds.add_new(tag, vr, value)
        nested.add_new(tag, vr, value)
        if vr not in ("DA", "TM", "DT", "DS", "IS", "AS"):  # numbers and dates are checked separately
            planted_values[str(tag)] = value
    ds.ReferencedPerformedProcedureStepSequence = Sequence([nested])  # nested copies of every value
    ds.add_new(0x00091010, "LO", "PRIVATE-PHI-VALUE")
    ds.add_new(0x00090010, "LO", "ACME PRIVATE")
    planted_values["private"] = "PRIVATE-PHI-VALUE"
    ds.PatientName = "DOE^JANE"
    ds.PatientID = "MRN-55555"
    ds.StudyDate = "19870615"
    ds.SeriesDate = "19870616"
    planted_values.update(name="DOE", mrn="MRN-55555")
    return synthetic.save(ds, tmp_path / "in.dcm"), planted_values


def test_no_planted_identifier_survives_anywhere_in_the_file(tmp_path: Path):
    source, values = planted(tmp_path)
    assert len(values) > 250  # really every text attribute of the table
    out = deidentify_file(source, tmp_path / "out.dcm", DeidParams(KEY))
    raw = out.read_bytes()
    survivors = [k for k, v in values.items() if v.encode() in raw]
    assert survivors == []
    assert b"19870615" not in raw and b"1.2.999." not in raw
    result = pydicom.dcmread(out)
    assert result.PatientIdentityRemoved == "YES"
    assert result.DeidentificationMethodCodeSequence[0].CodeValue == "113100"
    assert not any(element.tag.is_private for element in result.iterall())
    assert raw[:128] == b"\0" * 128


def test_uids_map_consistently_and_references_follow(tmp_path: Path):
    first = synthetic.ct_slice("deid-ref", 0, 8, 8)
    second = synthetic.ct_slice("deid-ref", 1, 8, 8)
    reference = Dataset()
    reference.ReferencedSOPClassUID = first.SOPClassUID
    reference.ReferencedSOPInstanceUID = first.SOPInstanceUID
    second.ReferencedImageSequence = Sequence([reference])
    a = deidentify_file(synthetic.save(first, tmp_path / "a.dcm"), tmp_path / "a-out.dcm", DeidParams(KEY))
    b = deidentify_file(synthetic.save(second, tmp_path / "b.dcm"), tmp_path / "b-out.dcm", DeidParams(KEY))
    out_a, out_b = pydicom.dcmread(a), pydicom.dcmread(b)
    assert out_b.ReferencedImageSequence[0].ReferencedSOPInstanceUID == out_a.SOPInstanceUID
    assert out_a.SeriesInstanceUID == out_b.SeriesInstanceUID != first.SeriesInstanceUID
    assert out_a.file_meta.MediaStorageSOPInstanceUID == out_a.SOPInstanceUID
    again = pydicom.dcmread(deidentify_file(tmp_path / "a.dcm", tmp_path / "again.dcm", DeidParams(KEY)))
    assert again.SOPInstanceUID == out_a.SOPInstanceUID  # same key, same mapping, across runs
    other = pydicom.dcmread(deidentify_file(tmp_path / "a.dcm", tmp_path / "o.dcm", DeidParams(b"z" * 32)))
    assert other.SOPInstanceUID != out_a.SOPInstanceUID and other.PatientID != out_a.PatientID


def test_retained_dates_are_shifted_keeping_intervals(tmp_path: Path):
    source, _values = planted(tmp_path)
    out = pydicom.dcmread(deidentify_file(source, tmp_path / "out.dcm", DeidParams(KEY, retain_dates=True)))
    study, series = (datetime.strptime(v, "%Y%m%d") for v in (out.StudyDate, out.SeriesDate))
    assert out.StudyDate != "19870615" and (series - study).days == 1
    assert out.LongitudinalTemporalInformationModified == "MODIFIED"
    assert [c.CodeValue for c in out.DeidentificationMethodCodeSequence] == ["113100", "113107"]


def test_retain_safe_private_keeps_only_listed_tags(tmp_path: Path):
    from pydicom.tag import Tag

    source, _values = planted(tmp_path)
    params = DeidParams(KEY, retain_private=frozenset({Tag(0x00090010), Tag(0x00091010)}))
    out = pydicom.dcmread(deidentify_file(source, tmp_path / "out.dcm", params))
    assert out[0x00091010].value == "PRIVATE-PHI-VALUE"
    assert "113111" in [c.CodeValue for c in out.DeidentificationMethodCodeSequence]


def test_burned_in_annotation_is_refused(tmp_path: Path):
    ds = copy.deepcopy(synthetic.ct_slice("burn", 0, 8, 8))
    ds.BurnedInAnnotation = "YES"
    with pytest.raises(UnsupportedInputError, match="burned-in annotation"):
        deidentify_file(synthetic.save(ds, tmp_path / "in.dcm"), tmp_path / "out.dcm", DeidParams(KEY))
    assert not (tmp_path / "out.dcm").exists()


def test_the_table_is_complete():
    table = action_table()
    assert len(table) > 600
    assert table[pydicom.tag.Tag(0x00100010)] == "Z" and table[pydicom.tag.Tag(0x00080018)] == "U"
