"""A copy already in --out counts only when whole: cut anywhere (in the pixel data, before it, in the header),
renamed to another instance, or not DICOM at all, it is fetched again."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest

from dicompose.dicom import synthetic
from dicompose.pacs.local_copies import present_instances, whole_instance


def as_is(uid: str) -> str:
    return uid


@pytest.fixture
def copy(tmp_path: Path) -> tuple[Path, str]:
    ds = synthetic.ct_slice("copies", 0, 64, 64)
    path = tmp_path / f"{ds.SOPInstanceUID}.dcm"
    synthetic.save(ds, path)
    return path, str(ds.SOPInstanceUID)


def test_a_whole_copy_counts(copy: tuple[Path, str]) -> None:
    path, sop = copy
    assert whole_instance(path, sop, as_is)
    assert not whole_instance(path, sop + ".9", as_is)  # another instance's name


@pytest.mark.parametrize("keep", [1, 132, 400, 0.5, -1])
def test_a_copy_cut_anywhere_does_not(copy: tuple[Path, str], keep: float) -> None:
    path, sop = copy
    data = path.read_bytes()
    pixels = data.index(b"\xe0\x7f\x10\x00")  # (7FE0,0010): cut just before the pixel data element
    cut = {1: 1, 132: 132, 400: 400, 0.5: len(data) // 2, -1: len(data) - 1}[keep] if keep != 400 else pixels
    path.write_bytes(data[:cut])
    assert not whole_instance(path, sop, as_is)


def test_present_instances_removes_what_is_not_whole(copy: tuple[Path, str]) -> None:
    path, sop = copy
    other = pydicom.dcmread(path)
    other.SOPInstanceUID = other.file_meta.MediaStorageSOPInstanceUID = sop + ".2"
    second = path.with_name(f"{sop}.2.dcm")
    synthetic.save(other, second)
    second.write_bytes(second.read_bytes()[:-10])
    found = present_instances(path.parent, {sop: sop, sop + ".2": sop + ".2", sop + ".3": sop + ".3"}, as_is)
    assert found == {sop} and path.exists() and not second.exists()


@pytest.mark.parametrize(
    "name", ["JPEG2000.dcm", "MR_small_RLE.dcm", "MR_small_bigendian.dcm", "MR_small_implicit.dcm"]
)
def test_compressed_and_other_encodings_whole_and_cut(tmp_path: Path, name: str) -> None:
    from pydicom.data import get_testdata_file

    source = Path(get_testdata_file(name))
    sop = str(pydicom.dcmread(source, stop_before_pixels=True).SOPInstanceUID)
    path = tmp_path / f"{sop}.dcm"
    data = source.read_bytes()
    path.write_bytes(data)
    assert whole_instance(path, sop, as_is), name
    path.write_bytes(data[: len(data) - 100])
    assert not whole_instance(path, sop, as_is), name
