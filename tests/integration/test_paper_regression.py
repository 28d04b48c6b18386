"""Why each fix matters: the 2018 paper's algorithm (tests/reference) side by side with dicompose.

Each test shows one defect of the paper's script on real data, and that dicompose's output is right.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from dicompose.dicom import synthetic
from dicompose.dicom.normalize import normalize_file
from dicompose.params import NormalizeParams
from tests.reference import paper_normalize_scan as paper
from tests.support.dicom_checks import dciodvfy_errors, independent_modality_values


def copy_of(name: str, folder: Path) -> Path:
    source = get_testdata_file(name)
    assert source is not None
    return Path(shutil.copy(source, folder / name))


def ours(path: Path, low: float, high: float) -> pydicom.Dataset:
    out = path.with_name(path.stem + "-ours.dcm")
    return pydicom.dcmread(normalize_file(path, out, NormalizeParams(low, high)).output)


def test_paper_writes_float64_into_16_bit_pixel_data(tmp_path: Path):
    scan = copy_of("CT_small.dcm", tmp_path)
    theirs = pydicom.dcmread(paper.normalize(str(scan), 0, 100))
    expected_bytes = theirs.Rows * theirs.Columns * 2
    assert len(theirs.PixelData) == 4 * expected_bytes  # 8-byte floats in a 2-byte field
    mine = ours(scan, 0, 100)
    assert len(mine.PixelData) == expected_bytes


def test_paper_keeps_rescale_so_ct_reads_back_in_wrong_units(tmp_path: Path):
    scan = copy_of("CT_small.dcm", tmp_path)
    theirs = pydicom.dcmread(paper.normalize_minimal_fix(str(scan), 0, 100))
    values = independent_modality_values(theirs)
    assert values.min() == -1024  # the kept RescaleIntercept shifts "0..100" to -1024..-924
    mine = independent_modality_values(ours(scan, 0, 100))
    assert (mine.min(), mine.max()) == (0, 100)


def test_paper_keeps_the_sop_instance_uid(tmp_path: Path):
    scan = copy_of("MR_small.dcm", tmp_path)
    original = pydicom.dcmread(scan).SOPInstanceUID
    assert pydicom.dcmread(paper.normalize_minimal_fix(str(scan), 0, 100)).SOPInstanceUID == original
    assert ours(scan, 0, 100).SOPInstanceUID != original  # a PACS would silently drop the paper's output


def test_paper_divides_by_zero_on_a_constant_image(tmp_path: Path):
    ds = synthetic.ct_slice("constant", 0, 8, 8)
    ds.PixelData = np.full(64, 500, "<i2").tobytes()
    scan = synthetic.save(ds, tmp_path / "flat.dcm")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        theirs = pydicom.dcmread(paper.normalize(str(scan), 0, 100))
    assert np.isnan(np.frombuffer(theirs.PixelData, np.float64)).all()
    mine = independent_modality_values(ours(scan, 0, 100))
    assert np.all(mine == 0)


def test_paper_leaves_a_partial_file_on_compressed_input(tmp_path: Path):
    scan = copy_of("MR_small_RLE.dcm", tmp_path)
    with pytest.raises(ValueError, match="encapsulated"):
        paper.normalize(str(scan), 0, 100)
    partial = tmp_path / "MR_small_RLE-normalized.dcm"
    assert partial.exists() and partial.stat().st_size < scan.stat().st_size  # a truncated, unreadable file
    mine = independent_modality_values(ours(scan, 0, 100))
    assert (mine.min(), mine.max()) == (0, 100)


def test_minimal_fix_masks_values_above_bits_stored(tmp_path: Path):
    ds = synthetic.mr_slice("mask", 0, 16, 16)  # 12-bit stored
    scan = synthetic.save(ds, tmp_path / "mr.dcm")
    theirs = independent_modality_values(pydicom.dcmread(paper.normalize_minimal_fix(str(scan), 0, 65535)))
    assert theirs.max() < 4096  # 65535 masked to 12 bits: the range the user asked for is gone
    mine = independent_modality_values(ours(scan, 0, 65535))
    assert (mine.min(), mine.max()) == (0, 65535)


@pytest.mark.dciodvfy
def test_minimal_fix_passes_the_validator_while_wrong(dciodvfy: str, tmp_path: Path):
    """Validity alone proves nothing: the wrong output validates as well as the input; only values tell."""
    scan = copy_of("CT_small.dcm", tmp_path)
    baseline = dciodvfy_errors(dciodvfy, scan)
    theirs_path = Path(paper.normalize_minimal_fix(str(scan), 0, 100))
    assert dciodvfy_errors(dciodvfy, theirs_path) == baseline
    assert independent_modality_values(pydicom.dcmread(theirs_path)).max() != 100
