"""The direct read of uncompressed little endian pixels gives exactly what ``ds.pixel_array`` gives.

Checked on every file pydicom ships that the direct read takes, and on slices whose unused high bits hold
garbage (signed and unsigned, 8/16/32 bits, one frame and many): a wrong dtype, shape, sign extension or mask
shows as a difference.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from dicompose.dicom.pixels import _native_little_endian
from tests.support.dicom_checks import pydicom_corpus


def _read(path: Path) -> Dataset | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pydicom.dcmread(path)
    except Exception:
        return None


def _syntax(ds: Dataset) -> str:
    return str(getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "") or "")


TAKEN = [
    path
    for path in pydicom_corpus()
    if (ds := _read(path)) is not None and _native_little_endian(ds, _syntax(ds)) is not None
]


def _same_as_pydicom(ds: Dataset) -> None:
    direct = _native_little_endian(ds, _syntax(ds))
    assert direct is not None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = ds.pixel_array
    assert direct.dtype == expected.dtype and direct.shape == expected.shape
    assert np.array_equal(direct, expected)
    assert direct.flags.writeable


def test_corpus_files_taken() -> None:
    assert len(TAKEN) >= 20


@pytest.mark.parametrize("path", TAKEN, ids=lambda p: p.name)
def test_corpus_file_reads_as_pydicom_reads_it(path: Path) -> None:
    ds = _read(path)
    assert ds is not None
    _same_as_pydicom(ds)


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
@pytest.mark.parametrize("frames", [1, 3])
@pytest.mark.parametrize(
    ("allocated", "stored", "signed"), [(8, 8, 0), (8, 6, 1), (16, 12, 0), (16, 12, 1), (16, 16, 1), (32, 20, 1)]
)
def test_garbage_in_unused_bits(syntax: str, frames: int, allocated: int, stored: int, signed: int) -> None:
    rows, columns = 5, 7  # odd: 8-bit data carries a pad byte
    raw = np.random.default_rng(stored * 10 + frames).integers(0, 256, rows * columns * frames * allocated // 8)
    data = raw.astype(np.uint8).tobytes()
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = syntax
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows, ds.Columns, ds.NumberOfFrames = rows, columns, frames
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = allocated, stored, stored - 1, signed
    ds.PixelData = data + (b"\x00" if len(data) % 2 else b"")
    _same_as_pydicom(ds)


def test_other_pixel_data_left_to_pydicom() -> None:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.2"  # big endian
    ds.SamplesPerPixel, ds.Rows, ds.Columns = 1, 2, 2
    ds.BitsAllocated, ds.BitsStored, ds.PixelRepresentation = 16, 16, 0
    ds.PixelData = bytes(8)
    assert _native_little_endian(ds, _syntax(ds)) is None
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.PixelData = bytes(6)  # shorter than the header says: pydicom's own error
    assert _native_little_endian(ds, _syntax(ds)) is None
    ds.PixelData, ds.SamplesPerPixel = bytes(24), 3
    assert _native_little_endian(ds, _syntax(ds)) is None
