"""Inputs that name their patient everywhere a hospital's files do, for the QC report's tests: in the header
(name, id, birth date, institution, physician, accession number, descriptions, UIDs) and in every folder and
file name; one series' pixel data cannot be decoded (a tool fails on it). And how to look for the planted
values in pages and PNG figures (their text chunks and their inflated pixel data)."""

from __future__ import annotations

import re
import subprocess
import zlib
from importlib.resources import files
from pathlib import Path

import pydicom
from pydicom.encaps import encapsulate
from pydicom.uid import JPEGBaseline8Bit
from tests.support.cli import BIN

from dicompose.dicom import synthetic

DEMO = Path(str(files("dicompose.pipelines") / "demo.yaml"))
#: Every value planted in the inputs; none may reach a report made without --show-identifiers.
PLANTED_HEADER = {
    "PatientName": "DOE^JOHNATHAN",
    "PatientID": "MRN12345",
    "PatientBirthDate": "19610403",
    "InstitutionName": "SAINT ELSEWHERE HOSPITAL",
    "ReferringPhysicianName": "HOUSE^GREGORY",
    "AccessionNumber": "ACC987654",
    "StudyDescription": "KNEE OF JOHNATHAN DOE",
    "SeriesDescription": "SMITH JANE AXIAL",
}
PLANTED_NAMES = ("DOE_JOHNATHAN_MRN12345", "SMITH JANE", "1961-04-03")
PLANTED = (
    "DOE^JOHNATHAN",
    "JOHNATHAN",
    "MRN12345",
    "19610403",
    "ELSEWHERE",
    "GREGORY",
    "ACC987654",
    "SMITH JANE",
    "1961-04-03",
)


def dicompose(*argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "dicompose"), *argv], capture_output=True, text=True, timeout=600, check=False, env=env
    )


def _plant(path: Path, number: int) -> None:
    ds = pydicom.dcmread(path)
    for keyword, value in PLANTED_HEADER.items():
        setattr(ds, keyword, value)
    path.unlink()
    ds.save_as(path.with_name(f"DOE_JOHNATHAN_{number}.MRN12345.dcm"), enforce_file_format=True)


def planted_scans(root: Path) -> dict[str, list[str]]:
    """A CT series, an MR series and a CT series whose pixel data cannot be decoded; their UIDs by kind."""
    top = root / PLANTED_NAMES[0]
    uids: dict[str, list[str]] = {}
    ct = synthetic.write_ct_series(top / "SMITH JANE", "report-ct", 4, 64, 64)
    mr = [
        synthetic.save(synthetic.mr_slice("report-mr", i, 48, 64), top / "1961-04-03" / f"m{i}.dcm") for i in range(3)
    ]
    broken = synthetic.write_ct_series(top / "SMITH JANE broken", "report-broken", 2, 32, 32)
    for path in broken:  # a JPEG stream that is not one: the header is fine, decoding fails in the tool
        ds = pydicom.dcmread(path)
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
        ds.PixelData = encapsulate([b"\xff\xd8" + b"not a jpeg" * 8])
        ds["PixelData"].VR = "OB"
        ds["PixelData"].is_undefined_length = True
        ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
        ds.save_as(path, enforce_file_format=True)
    for kind, written in (("ct", ct), ("mr", mr), ("broken", broken)):
        first = pydicom.dcmread(written[0], stop_before_pixels=True)
        uids[kind] = [first.SeriesInstanceUID, first.StudyInstanceUID]
        for number, path in enumerate(written):
            _plant(path, number)
    return uids


def leaks(data: bytes) -> list[str]:
    lowered = data.lower()
    return [token for token in PLANTED if token.lower().encode() in lowered]


def png_chunks(data: bytes) -> list[str]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, at = [], 8
    while at < len(data):
        length = int.from_bytes(data[at : at + 4], "big")
        chunks.append(data[at + 4 : at + 8].decode("ascii"))
        at += 12 + length
    return chunks


def png_text(data: bytes) -> bytes:
    """The PNG's pixel data inflated, and its chunks: a string could hide in either."""
    idat = b"".join(
        data[m.start() + 4 : m.start() + 4 + int.from_bytes(data[m.start() - 4 : m.start()], "big")]
        for m in re.finditer(b"IDAT", data)
    )
    return zlib.decompress(idat) + data
