"""``encode_file`` writes exactly the bytes pydicom's ``dcmwrite`` writes, on every file pydicom ships.

The fast path copies raw elements' bytes instead of going through pydicom's per-element writer; any byte it
got wrong (a length field, a VR's length width, an element order, the preamble) would show here.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from pydicom.dataset import FileDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import dcmwrite

from dicompose.dicom.reading import read_dataset
from dicompose.dicom.writing import encode_file, rebuild_file_meta
from dicompose.errors import InputError
from tests.support.dicom_checks import pydicom_corpus


def _prepared(path: Path, *, keep_compressed: bool = False) -> FileDataset | None:
    """The source as a tool leaves it before writing: file meta rebuilt, a few attributes changed; with
    ``keep_compressed``, a compressed source keeps its transfer syntax (de-identification copies its pixels)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = read_dataset(path)
            syntax = ds.file_meta.get("TransferSyntaxUID")
            rebuild_file_meta(ds, "0.0.0")
    except (InputError, AttributeError):
        return None  # refused or unreadable before any writing: nothing to compare
    if keep_compressed and syntax is not None and syntax.is_compressed:
        ds.file_meta.TransferSyntaxUID = syntax
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.DerivationDescription = "re-encoded"
    pixels = ds.get("PixelData")
    native = isinstance(pixels, bytes) and not ds["PixelData"].is_undefined_length and not keep_compressed
    if native:  # new pixel data, as tools set it
        ds.add_new(0x7FE00010, "OW" if int(ds.get("BitsAllocated", 16) or 16) > 8 else "OB", bytes(pixels))
    return ds


def _dcmwrite_bytes(ds: FileDataset) -> bytes:
    buffer = DicomBytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


WRITABLE = [path for path in pydicom_corpus() if _prepared(path) is not None]


@pytest.mark.parametrize("keep_compressed", [False, True], ids=["explicit-little", "compressed-kept"])
@pytest.mark.parametrize("path", WRITABLE, ids=lambda p: p.name)
def test_same_bytes_as_dcmwrite(path: Path, keep_compressed: bool) -> None:
    ds = _prepared(path, keep_compressed=keep_compressed)
    assert ds is not None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            expected = _dcmwrite_bytes(ds)
        except Exception as exc:  # pydicom cannot encode it: neither may we (the same exception class)
            with pytest.raises(type(exc)):
                encode_file(ds)
            return
        assert encode_file(ds) == expected


def test_fast_path_taken_for_explicit_little_endian() -> None:
    """Most of the corpus is explicit VR little endian: those files must not fall back to ``dcmwrite``
    (else the equality above would say nothing about the fast path)."""
    fast = [p for p in WRITABLE if (ds := _prepared(p)) is not None and ds.original_encoding == (False, True)]
    assert len(fast) >= 0.4 * len(WRITABLE)
