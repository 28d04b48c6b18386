"""Every file shipped in pydicom's wheel, through ``normalize``, checked independently and with dciodvfy.

For each file we decide *independently of dicompose* (with pydicom alone) whether it is a readable grayscale
image, a valid object normalize must refuse, or a broken file; then we hold dicompose to that: images are
normalized with the right values and valid headers, refusals name the reason, broken files fail cleanly
without leaving any output behind.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataelem import RawDataElement
from pydicom.errors import InvalidDicomError
from pydicom.filewriter import dcmwrite
from pydicom.uid import UID, ExplicitVRLittleEndian

from dicompose import __version__
from dicompose.dicom.iod import ORIGINAL_ONLY, rules_for
from dicompose.dicom.kernel import EncodingError, choose_encoding
from dicompose.dicom.normalize import normalize_file, output_name
from dicompose.errors import InputError, UnsupportedInputError
from dicompose.params import NormalizeParams, ValueRange
from tests.support.dicom_checks import (
    dciodvfy_errors,
    exact_expected,
    independent_modality_values,
    normalized_error,
    pydicom_corpus,
)

CORPUS = pydicom_corpus()
TARGETS = [(0.0, 100.0), (-1000.0, 3000.0), (0.0, 65535.0), (-0.5, 0.75)]


def classify(path: Path) -> str:
    """'image' | 'refused' | 'broken' | 'not-dicom', using pydicom only."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ds = pydicom.dcmread(path)
    except InvalidDicomError:
        return "not-dicom"
    except Exception:
        return "broken"
    if any("End of file reached" in str(w.message) for w in caught):  # pydicom keeps what it read: truncated
        return "broken"
    for raw in ds.elements():  # an element holding fewer bytes than its length says: the file was cut
        defined = isinstance(raw, RawDataElement) and raw.value is not None and raw.length != 0xFFFFFFFF
        if defined and len(raw.value) < raw.length:
            return "broken"
    if "PixelData" not in ds:  # an image class needs its pixels (Type 1): without them it was cut or damaged
        return "broken" if "Image Storage" in str(getattr(ds.get("SOPClassUID"), "name", "")) else "refused"
    try:
        if ds.SamplesPerPixel != 1 or ds.PhotometricInterpretation not in ("MONOCHROME1", "MONOCHROME2"):
            return "refused"
        if ds.BitsAllocated == 1:
            return "refused"
        independent_modality_values(ds)
    except Exception:
        return "broken"
    return "image"


CLASSES = {path: classify(path) for path in CORPUS}
IMAGES = [p for p, c in CLASSES.items() if c == "image"]
IDS = [str(p.relative_to(CORPUS[0].parents[len(CORPUS[0].parents) - 1])) for p in CORPUS]


def test_corpus_has_the_variety_we_rely_on():
    kinds = {c for c in CLASSES.values()}
    assert kinds == {"image", "refused", "broken", "not-dicom"}
    assert len(IMAGES) >= 50
    syntaxes = {str(pydicom.dcmread(p, stop_before_pixels=True).file_meta.TransferSyntaxUID) for p in IMAGES}
    assert {"1.2.840.10008.1.2.2", "1.2.840.10008.1.2.5", "1.2.840.10008.1.2.4.90"} <= syntaxes


@pytest.mark.parametrize("path", IMAGES, ids=lambda p: p.name)
@pytest.mark.parametrize(("low", "high"), TARGETS, ids=lambda v: f"{v:g}")
def test_image_values_are_the_exact_linear_remap(path: Path, low: float, high: float, tmp_path: Path):
    if low < 0 and "DoseGridScaling" in pydicom.dcmread(path, stop_before_pixels=True):
        with pytest.raises(UnsupportedInputError, match="RT Dose cannot hold negative values"):
            normalize_file(path, tmp_path / output_name(path), NormalizeParams(low, high))
        return
    if not iod_can_hold(path, low, high):
        assert_refused_for_its_iod(path, low, high, tmp_path)
        return
    out = normalize_file(path, tmp_path / output_name(path), NormalizeParams(low, high)).output
    source = pydicom.dcmread(path)
    result = pydicom.dcmread(out)
    before = independent_modality_values(source)
    after = independent_modality_values(result)
    assert after.shape == before.shape
    vmin, vmax = float(before.min()), float(before.max())
    expected = exact_expected(before, low, high, vmin, vmax)
    if float(low).is_integer() and float(high).is_integer():
        assert np.all(np.abs(after - expected) <= 0.5 + 1e-9)
        assert after.min() == low
        assert after.max() == (high if vmax > vmin else low)
        assert result.BitsStored == result.BitsAllocated  # nothing masked
    else:
        quantum = float(
            result.RescaleSlope
            if "RescaleSlope" in result
            else result.SharedFunctionalGroupsSequence[0].PixelValueTransformationSequence[0].RescaleSlope
        )
        assert np.all(np.abs(after - expected) <= quantum / 2 + 1e-9)
        assert after.min() == pytest.approx(low, abs=1e-9)


def iod_can_hold(path: Path, low: float, high: float) -> bool:
    """Whether the file's IOD lets its pixels hold [low, high] (US: 8-bit unsigned, no rescale; DX: no rescale...)."""
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    try:
        choose_encoding(ValueRange(low, high), int(ds.BitsAllocated), limits=rules_for(ds).limits)
    except EncodingError:
        return False
    return True


def assert_refused_for_its_iod(path: Path, low: float, high: float, tmp_path: Path) -> None:
    with pytest.raises(UnsupportedInputError) as caught:
        normalize_file(path, tmp_path / "out" / output_name(path), NormalizeParams(low, high))
    message = str(caught.value)
    assert message.startswith(str(path)) and "\n" not in message and "cannot hold the range" in message
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize("path", IMAGES, ids=lambda p: p.name)
def test_headers_describe_a_new_derived_instance(path: Path, tmp_path: Path):
    out = normalize_file(path, tmp_path / output_name(path), NormalizeParams(0, 100)).output
    source = pydicom.dcmread(path, stop_before_pixels=True)
    result = pydicom.dcmread(out)
    assert result.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert result.file_meta.MediaStorageSOPInstanceUID == result.SOPInstanceUID
    assert result.SOPInstanceUID != source.SOPInstanceUID
    assert result.SeriesInstanceUID != source.get("SeriesInstanceUID")
    assert result.get("StudyInstanceUID") == source.get("StudyInstanceUID")
    rules = rules_for(source)
    if rules.value2_primary:  # functional-group IODs (PS3.3 C.8.16.1), NM and PET allow only PRIMARY
        assert list(result.ImageType)[:2] == ["DERIVED", *list(source.ImageType)[1:2]]
        assert not rules.functional_groups or not (ORIGINAL_ONLY & set(result.dir()))
    else:
        assert list(result.ImageType)[:2] == ["DERIVED", "SECONDARY"]
    assert "dicompose" in result.DerivationDescription
    if UID(source.SOPInstanceUID).is_valid:
        assert result.SourceImageSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
    else:  # an invalid source UID is never copied into a reference
        assert "SourceImageSequence" not in result
    equipment = result.ContributingEquipmentSequence[-1]
    assert (equipment.Manufacturer, equipment.SoftwareVersions) == ("dicompose", __version__)
    assert result.PhotometricInterpretation == source.PhotometricInterpretation
    assert len(result.PixelData) == result.Rows * result.Columns * int(result.get("NumberOfFrames", 1) or 1) * (
        result.BitsAllocated // 8
    ) + (1 if result.BitsAllocated == 8 and result.Rows * result.Columns % 2 else 0)


@pytest.mark.parametrize("path", IMAGES, ids=lambda p: p.name)
def test_same_input_and_parameters_give_identical_bytes(path: Path, tmp_path: Path):
    first = normalize_file(path, tmp_path / "a" / output_name(path), NormalizeParams(0, 100)).output
    second = normalize_file(path, tmp_path / "b" / output_name(path), NormalizeParams(0, 100)).output
    other = normalize_file(path, tmp_path / "c" / output_name(path), NormalizeParams(0, 101)).output
    assert first.read_bytes() == second.read_bytes()
    assert pydicom.dcmread(other).SOPInstanceUID != pydicom.dcmread(first).SOPInstanceUID


@pytest.mark.parametrize("path", [p for p, c in CLASSES.items() if c in ("refused", "not-dicom")], ids=lambda p: p.name)
def test_valid_non_applicable_objects_are_refused_with_a_reason(path: Path, tmp_path: Path):
    with pytest.raises(UnsupportedInputError) as caught:
        normalize_file(path, tmp_path / "out.dcm", NormalizeParams(0, 100))
    message = str(caught.value)
    assert message.startswith(str(path)) and "\n" not in message
    assert re.search(r"not an image|colour|1-bit|not a DICOM file", message)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("path", [p for p, c in CLASSES.items() if c == "broken"], ids=lambda p: p.name)
def test_broken_files_fail_cleanly_leaving_nothing(path: Path, tmp_path: Path):
    with pytest.raises(InputError) as caught:
        normalize_file(path, tmp_path / "out.dcm", NormalizeParams(0, 100))
    assert not isinstance(caught.value, UnsupportedInputError)
    assert str(caught.value).startswith(str(path)) and "\n" not in str(caught.value)
    assert list(tmp_path.iterdir()) == []  # not even a hidden partial file


def _baseline(dciodvfy: str, path: Path, tmp_path: Path, name: str = "baseline.dcm") -> set[str]:
    """The input's own errors. Where dciodvfy cannot read the input (deflate) or aborts on it (32-bit RT Dose),
    those of the input's header re-encoded as explicit VR little endian with blank pixels (16-bit if 32)."""
    errors = dciodvfy_errors(dciodvfy, path)
    if errors is not None and not any("read failed" in e for e in errors):
        return errors
    ds = pydicom.dcmread(path)
    if ds.BitsAllocated > 16:
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    count = ds.Rows * ds.Columns * int(ds.get("NumberOfFrames", 1) or 1) * ds.BitsAllocated // 8
    ds.PixelData = bytes(count + count % 2)
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    header_only = tmp_path / name
    dcmwrite(header_only, ds, enforce_file_format=True)
    errors = dciodvfy_errors(dciodvfy, header_only)
    assert errors is not None
    return errors


DOSE = {p for p in IMAGES if "DoseGridScaling" in pydicom.dcmread(p, stop_before_pixels=True)}
VALIDATED = [
    pytest.param(p, low, high, id=f"{low:g}-{high:g}-{p.name}")
    for low, high in [(0.0, 100.0), (0.0, 65535.0), (-0.5, 0.75)]
    for p in IMAGES
    if not (low < 0 and p in DOSE)  # refused, see test_image_values_are_the_exact_linear_remap
]


@pytest.mark.dciodvfy
@pytest.mark.parametrize(("path", "low", "high"), VALIDATED)
def test_outputs_add_no_dciodvfy_error(dciodvfy: str, path: Path, low: float, high: float, tmp_path: Path):
    if not iod_can_hold(path, low, high):
        assert_refused_for_its_iod(path, low, high, tmp_path)
        return
    out = normalize_file(path, tmp_path / "out" / output_name(path), NormalizeParams(low, high)).output
    before = {normalized_error(e) for e in _baseline(dciodvfy, path, tmp_path)}
    after = dciodvfy_errors(dciodvfy, out)
    assert after is not None, "dciodvfy aborted on our output"
    new = {e for e in after if normalized_error(e) not in before}
    assert new == set()


@pytest.mark.dciodvfy
@pytest.mark.parametrize("path", IMAGES, ids=lambda p: p.name)
def test_threshold_masks_add_no_dciodvfy_error(dciodvfy: str, path: Path, tmp_path: Path):
    from dicompose.dicom.threshold import threshold_file
    from dicompose.params import ThresholdParams

    before_values = independent_modality_values(pydicom.dcmread(path))
    level = float(np.median(before_values))
    out = threshold_file(path, tmp_path / "out" / "mask.dcm", ThresholdParams(level))
    after = independent_modality_values(pydicom.dcmread(out))
    np.testing.assert_array_equal(after, (before_values >= level).astype(float))
    before = {normalized_error(e) for e in _baseline(dciodvfy, path, tmp_path)}
    errors = _baseline(dciodvfy, out, tmp_path, "output-header.dcm")  # the same treatment as the input
    assert {e for e in errors if normalized_error(e) not in before} == set()


@pytest.mark.dciodvfy
@pytest.mark.parametrize("path", IMAGES, ids=lambda p: p.name)
def test_deidentified_outputs_add_no_dciodvfy_error(dciodvfy: str, path: Path, tmp_path: Path):
    from dicompose.dicom.deidentify import DeidParams, deidentify_file

    out = deidentify_file(path, tmp_path / "out" / "deid.dcm", DeidParams(b"k" * 32))
    result = pydicom.dcmread(out)
    assert result.PatientIdentityRemoved == "YES"
    assert result.SOPInstanceUID != pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID
    before = {normalized_error(e) for e in _baseline(dciodvfy, path, tmp_path)}
    errors = _baseline(dciodvfy, out, tmp_path, "output-header.dcm")  # the same treatment as the input
    assert {e for e in errors if normalized_error(e) not in before} == set()
