"""compare: identical files, numeric differences against a tolerance, Dice for masks, pairing by source."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom

from dicompose.dicom import synthetic
from dicompose.dicom.normalize import normalize_file
from dicompose.dicom.threshold import threshold_file
from dicompose.params import NormalizeParams, ThresholdParams
from dicompose.records.compare import compare_folders


def outputs(tmp_path: Path, name: str, low: float = 0, high: float = 100) -> Path:
    folder = tmp_path / name
    source = synthetic.save(synthetic.ct_slice("cmp", 0, 32, 32), tmp_path / "in" / "ct.dcm")
    normalize_file(source, folder / "normalized" / "ct-normalized.dcm", NormalizeParams(low, high))
    threshold_file(source, folder / "masks" / "ct-mask.dcm", ThresholdParams(0))
    return folder


def test_identical_runs_pass(tmp_path: Path):
    result = compare_folders(outputs(tmp_path, "a"), outputs(tmp_path, "b"))
    assert result.passed and [f.status for f in result.files] == ["identical", "identical"]


def test_pixel_differences_are_measured_and_judged_by_tolerance(tmp_path: Path):
    a, b = outputs(tmp_path, "a"), outputs(tmp_path, "b")
    path = b / "normalized" / "ct-normalized.dcm"
    ds = pydicom.dcmread(path)
    pixels = ds.pixel_array.copy()
    pixels[0, :4] += 2
    ds.PixelData = pixels.tobytes()
    ds.save_as(path)
    strict = compare_folders(a, b)
    normalized = next(f for f in strict.files if f.name.startswith("normalized"))
    assert not strict.passed and normalized.status == "different" and normalized.image is not None
    assert normalized.image.max_abs == 2 and normalized.image.differing == 4
    assert normalized.image.psnr is not None and normalized.image.psnr > 20
    assert compare_folders(a, b, tolerance=2).passed


def test_masks_get_a_dice_score(tmp_path: Path):
    a, b = outputs(tmp_path, "a"), outputs(tmp_path, "b")
    path = b / "masks" / "ct-mask.dcm"
    ds = pydicom.dcmread(path)
    pixels = ds.pixel_array.copy()
    pixels[:2, :] = 1 - pixels[:2, :]
    ds.PixelData = pixels.tobytes()
    ds.save_as(path)
    mask = next(f for f in compare_folders(a, b).files if f.name.startswith("masks"))
    assert mask.image is not None and mask.image.dice is not None and 0 < mask.image.dice < 1


def test_header_differences_fail_and_missing_files_are_reported(tmp_path: Path):
    a, b = outputs(tmp_path, "a"), outputs(tmp_path, "b")
    path = b / "normalized" / "ct-normalized.dcm"
    ds = pydicom.dcmread(path)
    ds.PatientSex = "F"
    ds.save_as(path)
    (a / "masks" / "ct-mask.dcm").unlink()
    result = compare_folders(a, b)
    statuses = {f.name: f for f in result.files}
    assert statuses["normalized/ct-normalized.dcm"].image.header_differences == ("PatientSex",)
    assert statuses["masks/ct-mask.dcm"].status == "only-in-b" and not result.passed


def test_dicom_pairs_by_source_instance_not_name(tmp_path: Path):
    a, b = outputs(tmp_path, "a"), outputs(tmp_path, "b")
    (b / "normalized" / "ct-normalized.dcm").rename(b / "normalized" / "renamed.dcm")
    result = compare_folders(a, b)
    assert result.passed and len(result.files) == 2
    assert np.all([f.status == "identical" for f in result.files])
