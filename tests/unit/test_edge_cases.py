"""Synthetic edge cases the corpus lacks: each built in a temp folder, normalized, read back independently."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from dicompose.dicom import synthetic
from dicompose.dicom.normalize import normalize_file
from dicompose.errors import InputError, UnsupportedInputError
from dicompose.params import NormalizeParams
from tests.support.dicom_checks import independent_modality_values


def image(stored: np.ndarray, **attributes: object) -> Dataset:
    """A CT-like dataset holding ``stored`` (2-D or 3-D) exactly; attributes override the defaults."""
    ds = synthetic.ct_slice("edge", 0, 4, 4)
    for keyword in ("RescaleSlope", "RescaleIntercept", "RescaleType", "WindowCenter", "WindowWidth"):
        delattr(ds, keyword)
    frames = stored.shape[0] if stored.ndim == 3 else 1
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.Rows, ds.Columns = stored.shape[-2:]
    ds.BitsAllocated = stored.dtype.itemsize * 8
    ds.BitsStored = attributes.pop("BitsStored", ds.BitsAllocated)
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if stored.dtype.kind == "i" else 0
    ds.PixelData = stored.astype(stored.dtype.newbyteorder("<")).tobytes()
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return ds


def roundtrip(tmp_path: Path, ds: Dataset, low: float, high: float, scope: str = "file") -> Dataset:
    source = synthetic.save(ds, tmp_path / "in.dcm")
    out = normalize_file(source, tmp_path / "out" / "in-normalized.dcm", NormalizeParams(low, high, scope)).output
    return pydicom.dcmread(out)


def test_constant_image_becomes_all_min(tmp_path: Path):
    result = roundtrip(tmp_path, image(np.full((4, 4), 321, np.int16), RescaleIntercept=-1024, RescaleSlope=1), 5, 9)
    values = independent_modality_values(result)
    assert np.all(values == 5) and not np.isnan(values).any()


def test_signed_input_spanning_more_than_32767(tmp_path: Path):
    stored = np.array([[-32768, -1, 0, 32767]], np.int16)
    result = roundtrip(tmp_path, image(stored), 0, 65535)
    assert result.PixelRepresentation == 0 and result.BitsStored == 16
    assert independent_modality_values(result).ravel().tolist() == [0, 32767, 32768, 65535]


def test_twelve_bit_input_to_full_16_bit_range_is_not_masked(tmp_path: Path):
    stored = np.array([[0, 1000, 4095]], np.uint16)
    result = roundtrip(tmp_path, image(stored, BitsStored=12), 0, 65535)
    assert (result.BitsStored, result.HighBit) == (16, 15)
    assert independent_modality_values(result).ravel().tolist() == [
        0,
        16004,
        65535,
    ]  # 1000 / 4095 * 65535 = 16003.66


def test_monochrome1_keeps_its_interpretation_and_maps_values(tmp_path: Path):
    stored = np.array([[10, 20, 30, 40]], np.uint16)
    result = roundtrip(tmp_path, image(stored, PhotometricInterpretation="MONOCHROME1"), 0, 3)
    assert result.PhotometricInterpretation == "MONOCHROME1"
    assert independent_modality_values(result).ravel().tolist() == [0, 1, 2, 3]


def test_eight_bit_input_stays_eight_bit_when_the_range_fits(tmp_path: Path):
    stored = np.array([[0, 127, 255]], np.uint8)
    small = roundtrip(tmp_path, image(stored), 0, 100)
    assert small.BitsAllocated == 8 and independent_modality_values(small).ravel().tolist() == [0, 50, 100]
    wide = roundtrip(tmp_path, image(stored), 0, 1000)
    assert wide.BitsAllocated == 16 and independent_modality_values(wide).ravel().tolist() == [0, 498, 1000]


def test_thirty_two_bit_input(tmp_path: Path):
    stored = np.array([[0, 1_000_000_000, 4_000_000_000]], np.uint32)
    result = roundtrip(tmp_path, image(stored), 0, 100)
    assert independent_modality_values(result).ravel().tolist() == [0, 25, 100]
    wide = roundtrip(tmp_path, image(stored), -100000, 100000)
    assert (wide.BitsAllocated, wide.PixelRepresentation) == (32, 1)
    assert independent_modality_values(wide).ravel().tolist() == [-100000, -50000, 100000]


def test_rescale_is_applied_before_normalizing(tmp_path: Path):
    stored = np.array([[0, 100, 200]], np.int16)
    result = roundtrip(tmp_path, image(stored, RescaleSlope=2, RescaleIntercept=-1024), 0, 400)
    assert (float(result.RescaleSlope), float(result.RescaleIntercept)) == (1.0, 0.0)
    assert independent_modality_values(result).ravel().tolist() == [0, 200, 400]


def test_fractional_range_uses_a_rescale_pair(tmp_path: Path):
    stored = np.array([[0, 1, 2, 3]], np.uint16)
    result = roundtrip(tmp_path, image(stored), 0.25, 1.75)
    values = independent_modality_values(result).ravel()
    assert values == pytest.approx([0.25, 0.75, 1.25, 1.75], abs=float(result.RescaleSlope))
    assert values[0] == 0.25


def test_window_maps_exactly_the_new_range(tmp_path: Path):
    result = roundtrip(tmp_path, image(np.array([[5, 9]], np.int16), WindowCenter=40, WindowWidth=400), 0, 100)
    c, w = float(result.WindowCenter), float(result.WindowWidth)
    assert (c - 0.5 - (w - 1) / 2, c - 0.5 + (w - 1) / 2) == (0, 100)
    assert result.WindowCenterWidthExplanation == "NORMALIZED"


def test_stale_attributes_are_rewritten_or_dropped(tmp_path: Path):
    ds = image(np.array([[5, 9]], np.int16), PixelPaddingValue=-2000)
    ds.add_new(0x00280106, "SS", 5)
    ds.add_new(0x00280107, "SS", 9)
    result = roundtrip(tmp_path, ds, 0, 1000)
    assert "PixelPaddingValue" not in result
    assert (result.SmallestImagePixelValue, result.LargestImagePixelValue) == (0, 1000)


def test_enhanced_multiframe_per_frame_rescale(tmp_path: Path):
    stored = np.array([[[0, 10]], [[0, 10]]], np.int16)
    ds = image(stored)
    shared = Dataset()
    voi = Dataset()
    voi.WindowCenter, voi.WindowWidth = 5, 10
    shared.FrameVOILUTSequence = Sequence([voi])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    frames = []
    for slope, intercept in ((1, 0), (2, 100)):
        item, transform = Dataset(), Dataset()
        transform.RescaleSlope, transform.RescaleIntercept, transform.RescaleType = slope, intercept, "US"
        item.PixelValueTransformationSequence = Sequence([transform])
        frames.append(item)
    ds.PerFrameFunctionalGroupsSequence = Sequence(frames)
    result = roundtrip(tmp_path, ds, 0, 120)
    assert np.asarray(result.pixel_array).tolist() == [[[0, 10]], [[100, 120]]]
    assert all("PixelValueTransformationSequence" not in f for f in result.PerFrameFunctionalGroupsSequence)
    transform = result.SharedFunctionalGroupsSequence[0].PixelValueTransformationSequence[0]
    assert (float(transform.RescaleSlope), float(transform.RescaleIntercept)) == (1.0, 0.0)


def test_series_scope_uses_one_range_for_the_whole_series(tmp_path: Path):
    from dicompose.tools.normalize import run_normalize

    folder = tmp_path / "series"
    for index, top in enumerate((100, 200, 400)):
        ds = image(np.array([[0, top]], np.int16))
        ds.SOPInstanceUID = synthetic.synthetic_uid("scope", index)
        synthetic.save(ds, folder / f"{index}.dcm")
    summary = run_normalize([folder], NormalizeParams(0, 100, "series"), tmp_path / "out", workers=1)
    assert summary.ok
    maxima = [
        independent_modality_values(pydicom.dcmread(tmp_path / "out" / f"{i}-normalized.dcm")).max() for i in range(3)
    ]
    assert maxima == [25, 50, 100]
    series = {pydicom.dcmread(tmp_path / "out" / f"{i}-normalized.dcm").SeriesInstanceUID for i in range(3)}
    assert len(series) == 1


def test_colour_and_non_image_objects_are_refused(tmp_path: Path):
    colour = image(np.zeros((2, 2), np.uint8), PhotometricInterpretation="RGB", SamplesPerPixel=3)
    colour.PixelData = bytes(12)
    with pytest.raises(UnsupportedInputError, match="colour images are not supported"):
        roundtrip(tmp_path, colour, 0, 100)
    no_pixels = copy.deepcopy(image(np.zeros((2, 2), np.uint8)))
    del no_pixels.PixelData
    with pytest.raises(InputError, match="without its pixel data") as caught:  # an image class: cut or damaged
        roundtrip(tmp_path, no_pixels, 0, 100)
    assert not isinstance(caught.value, UnsupportedInputError)
    no_pixels.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"  # Basic Text SR: truly not an image
    with pytest.raises(UnsupportedInputError, match="not an image"):
        roundtrip(tmp_path, no_pixels, 0, 100)


def test_truncated_file_fails_and_leaves_nothing(tmp_path: Path):
    source = synthetic.save(image(np.arange(64, dtype=np.int16).reshape(8, 8)), tmp_path / "whole.dcm")
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(source.read_bytes()[:-40])
    out_dir = tmp_path / "out"
    with pytest.raises(
        InputError, match=r"cut\.dcm: file truncated: element \(7FE0,0010\) declares 128 bytes, 88 remain"
    ):
        normalize_file(cut, out_dir / "cut-normalized.dcm", NormalizeParams(0, 100))
    assert not out_dir.exists() or list(out_dir.iterdir()) == []
