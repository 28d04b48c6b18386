"""The pair rule for inputs sharing a SOP Instance UID (content comparison injected), and what counts as one object."""

from __future__ import annotations

from pathlib import Path

import pydicom
from pydicom.data import get_testdata_file
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from dicompose.dicom.duplicates import duplicate_instances
from dicompose.dicom.reading import same_object


def test_different_objects_with_one_uid_are_refused_as_a_pair_naming_each_other():
    refused = duplicate_instances([("a", "1.2"), ("b", "1.2"), ("c", "1.3"), ("d", None)], lambda x, y: False)
    assert sorted(refused) == ["a", "b"]
    assert refused["a"].startswith("a: same SOP Instance UID 1.2 as b") and "\n" not in refused["a"]
    assert " as a " in refused["b"] and "refusing both" in refused["b"]


def test_identical_copies_and_unknown_uids_are_not_refused():
    assert duplicate_instances([("a", "1.2"), ("b", "1.2")], lambda x, y: True) == {}
    assert duplicate_instances([("a", ""), ("b", "")], lambda x, y: False) == {}


def test_three_files_one_uid_name_only_their_rivals():
    """a and b are copies of one object, c another: each file names the files whose content differs."""
    refused = duplicate_instances([("a", "9"), ("b", "9"), ("c", "9")], lambda x, y: x == "a" and y == "b")
    assert sorted(refused) == ["a", "b", "c"]
    assert "as c but" in refused["a"] and "as c but" in refused["b"] and "as a, b but" in refused["c"]
    assert all("refusing all 3" in reason for reason in refused.values())


def test_a_damaged_copy_is_no_rival_of_the_copies_of_one_object():
    refused = duplicate_instances(
        [("a", "9"), ("a-other-syntax", "9"), ("damaged", "9")],
        lambda x, y: {x, y} == {"a", "a-other-syntax"},
        lambda name: name != "damaged",
    )
    assert refused == {}


def test_one_object_in_implicit_and_explicit_vr_is_one_object(tmp_path: Path):
    """LUT Data's VR is "US or OW": read implicitly it is OW bytes, explicitly US numbers; same values."""
    for name in ("mlut_18.dcm", "CT_small.dcm"):
        paths = []
        for syntax in (ImplicitVRLittleEndian, ExplicitVRLittleEndian):
            ds = pydicom.dcmread(get_testdata_file(name))
            ds.file_meta.TransferSyntaxUID = syntax
            paths.append(tmp_path / f"{syntax.name}-{name}")
            ds.save_as(paths[-1], enforce_file_format=True)
        assert paths[0].read_bytes() != paths[1].read_bytes()
        assert same_object(*paths)
        changed = pydicom.dcmread(paths[1])
        changed.PatientID = "someone else"
        changed.save_as(tmp_path / "changed.dcm", enforce_file_format=True)
        assert not same_object(paths[0], tmp_path / "changed.dcm")
