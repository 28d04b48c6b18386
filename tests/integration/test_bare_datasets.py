"""Files without the Part 10 header (a bare data set: no preamble, no 'DICM', no file meta) are DICOM too.

Older systems and some exports write them, in implicit or explicit VR little endian. Every tool takes them
as it takes the same object with its header (same values out, a valid Part 10 output), the pipeline's input
scan finds them, and files that merely start with the same two bytes stay "not DICOM".
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.filebase import DicomFileLike
from pydicom.filewriter import write_dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from dicompose.dicom.quicklook import bare_dataset_syntax, is_dicom
from dicompose.dicom.reading import peek
from dicompose.dicom.synthetic import write_ct_series
from tests.support.cli import BIN
from tests.support.dicom_checks import dciodvfy_errors

SOURCES = ["CT_small.dcm", "MR_small.dcm", "synthetic"]


def _source(name: str, folder: Path) -> Path:
    if name == "synthetic":
        return write_ct_series(folder / "synthetic", "1.2.826.0.1.3680043.10.1.99", 1, 32, 32)[0]
    return Path(get_testdata_file(name))


def write_bare(source: Path, destination: Path, implicit: bool) -> Path:
    """``source``'s data set alone, as a file without preamble, prefix or file meta."""
    ds = pydicom.dcmread(source)
    destination.parent.mkdir(parents=True, exist_ok=True)
    with destination.open("wb") as fh:
        fp = DicomFileLike(fh)
        fp.is_little_endian, fp.is_implicit_VR = True, implicit
        write_dataset(fp, ds)
    return destination


@pytest.mark.parametrize("implicit", [True, False], ids=["implicit", "explicit"])
@pytest.mark.parametrize("name", SOURCES)
def test_recognised_with_its_syntax_and_uid(name: str, implicit: bool, tmp_path: Path) -> None:
    source = _source(name, tmp_path)
    bare = write_bare(source, tmp_path / "bare.dcm", implicit)
    head = bare.read_bytes()[:8192]
    assert bare_dataset_syntax(head) == (ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian)
    assert peek(bare).dicom and peek(bare).instance_uid == str(pydicom.dcmread(source).SOPInstanceUID)


@pytest.mark.parametrize(
    "content",
    [
        b"\x08\x00 is how this text starts, and nothing DICOM follows" * 3,
        b"\x08\x00\x16\x00" + b"\xff" * 60,  # a plausible tag, then a length far past the end
        b"\x08\x00\x18\x00UI\x04\x001.2\x00\x08\x00\x16\x00UI\x04\x001.2\x00",  # tags out of order
        b"\x89PNG\r\n\x1a\n" + bytes(100),
        b"",
    ],
    ids=["text", "long-length", "out-of-order", "png", "empty"],
)
def test_look_alikes_are_not_dicom(content: bytes, tmp_path: Path) -> None:
    path = tmp_path / "not.dcm"
    path.write_bytes(content)
    assert not is_dicom(content) and not peek(path).dicom


@pytest.mark.parametrize("implicit", [True, False], ids=["implicit", "explicit"])
@pytest.mark.parametrize("name", SOURCES)
def test_normalized_as_the_part10_file_is(name: str, implicit: bool, tmp_path: Path, dciodvfy: str) -> None:
    source = _source(name, tmp_path)
    with_header = tmp_path / "with-header"
    with_header.mkdir()
    (with_header / "scan.dcm").write_bytes(source.read_bytes())
    bare = write_bare(source, tmp_path / "bare" / "scan.dcm", implicit)
    (tmp_path / "bare" / "notes.dcm").write_bytes(b"\x08\x00 not DICOM at all" * 4)
    outputs = {}
    for folder in (with_header, bare.parent):
        out = tmp_path / f"{folder.name}-out"
        argv = [str(BIN / "dicompose"), "normalize", str(folder), "--out", str(out), "--min", "0", "--max", "100"]
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
        assert "1 processed" in proc.stdout + proc.stderr
        outputs[folder.name] = out / "scan-normalized.dcm"
    ours, reference = pydicom.dcmread(outputs["bare"]), pydicom.dcmread(outputs["with-header"])
    assert ours.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian and ours.preamble is not None
    assert np.array_equal(ours.pixel_array, reference.pixel_array)
    assert ours.SOPInstanceUID == reference.SOPInstanceUID  # the same object, so the same derived UIDs
    new_errors = (dciodvfy_errors(dciodvfy, outputs["bare"]) or set()) - (
        dciodvfy_errors(dciodvfy, outputs["with-header"]) or set()
    )
    assert new_errors == set()


def test_pipeline_run_takes_bare_files(tmp_path: Path) -> None:
    scans = tmp_path / "scans"
    for index, source in enumerate(write_ct_series(tmp_path / "src", "1.2.826.0.1.3680043.10.1.98", 3, 16, 16)):
        write_bare(source, scans / f"slice{index}", implicit=index % 2 == 0)
    argv = [str(BIN / "dicompose"), "run", "normalize", "--in", str(scans), "--out", str(tmp_path / "out")]
    argv += ["--engine", "local", "--workspace", str(tmp_path / "ws")]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    written = sorted(p for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert len(written) == 3
    assert all(pydicom.dcmread(p).file_meta.TransferSyntaxUID == ExplicitVRLittleEndian for p in written)
