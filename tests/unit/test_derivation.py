"""Derived headers (dicom/derivation.py): the lossy-compression history a derived image inherits."""

from __future__ import annotations

import pytest
from pydicom.dataset import FileMetaDataset

from dicompose.dicom import synthetic
from dicompose.dicom.derivation import mark_derived


def _derived(syntax: str, methods: str | list[str] | None) -> object:
    ds = synthetic.ct_slice("lossy", 0, 8, 8)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = syntax
    if methods is not None:
        ds.LossyImageCompression = "01"
        ds.LossyImageCompressionMethod = methods
    mark_derived(ds, recipe="r", description="d", tool="t", software_version="1", series_suffix="s")
    return ds


@pytest.mark.parametrize(
    ("syntax", "before", "after"),
    [
        ("1.2.840.10008.1.2.4.50", None, ["ISO_10918_1"]),  # decoded from JPEG baseline: now said
        ("1.2.840.10008.1.2.4.50", "ISO_10918_1", ["ISO_10918_1"]),  # one value (a str): kept whole, not repeated
        ("1.2.840.10008.1.2.4.50", "ISO_14495_1", ["ISO_14495_1", "ISO_10918_1"]),  # an earlier one, then ours
        ("1.2.840.10008.1.2.4.91", ["ISO_10918_1", "ISO_14495_1"], ["ISO_10918_1", "ISO_14495_1", "ISO_15444_1"]),
    ],
)
def test_a_lossy_source_leaves_its_method_in_the_history(syntax: str, before, after):  # type: ignore[no-untyped-def]
    ds = _derived(syntax, before)
    value = ds.LossyImageCompressionMethod  # type: ignore[attr-defined]
    assert ([value] if isinstance(value, str) else list(value)) == after
    assert ds.LossyImageCompression == "01"  # type: ignore[attr-defined]


def test_a_lossless_source_adds_nothing():
    ds = _derived("1.2.840.10008.1.2.1", None)
    assert "LossyImageCompressionMethod" not in ds  # type: ignore[operator]
