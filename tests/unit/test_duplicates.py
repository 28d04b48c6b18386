"""The pair rule for inputs sharing a SOP Instance UID, on its own (no files: content comparison injected)."""

from __future__ import annotations

from dicompose.dicom.duplicates import duplicate_instances


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
