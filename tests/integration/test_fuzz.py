"""Seeded fuzzing of every tool that writes DICOM: damaged files end in a valid output or a one-line refusal.

Each case takes a sample file (those shipped with dicompose and pydicom's small test images), damages it one
way (byte flips in the header, a truncation, a duplicated byte range, header bytes replaced), and runs
normalize, threshold and deidentify on it. Allowed outcomes:

- an :class:`InputError` whose message is one line starting with the file's path, and nothing left in the
  output folder (not even a hidden partial file);
- an output that pydicom reads back (pixels decoded for the image tools), that dciodvfy can read, and on
  which dciodvfy reports no error it does not also report on the damaged input as pydicom understood it
  (the input's parsed dataset written back unchanged) or on the damaged input itself.

Anything else (another exception, a traceback, an unreadable output) fails. The seed is fixed, so a failure
reproduces; ``DICOMPOSE_FUZZ_CASES`` runs more cases locally.
"""

from __future__ import annotations

import os
import random
import warnings
from collections.abc import Callable
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from dicompose.dicom.deidentify import DeidParams, deidentify_file
from dicompose.dicom.normalize import normalize_file
from dicompose.dicom.threshold import threshold_file
from dicompose.errors import InputError
from dicompose.params import NormalizeParams, ThresholdParams
from tests.support.dicom_checks import dciodvfy_errors, normalized_error

SEED = 20261130
CASES = int(os.environ.get("DICOMPOSE_FUZZ_CASES", "500"))
SAMPLES = sorted((Path(__file__).resolve().parents[2] / "src" / "dicompose" / "sample_data").glob("*.dcm"))
PYDICOM_SAMPLES = ["CT_small.dcm", "MR_small.dcm", "rtdose.dcm", "JPEG2000.dcm", "MR_small_RLE.dcm", "emri_small.dcm"]
TOOLS: dict[str, Callable[[Path, Path], object]] = {
    "normalize": lambda s, d: normalize_file(s, d, NormalizeParams(0, 100)),
    "threshold": lambda s, d: threshold_file(s, d, ThresholdParams(0.0)),
    "deidentify": lambda s, d: deidentify_file(s, d, DeidParams(b"k" * 32)),
}


def _sources() -> list[Path]:
    found = [get_testdata_file(name) for name in PYDICOM_SAMPLES]
    return SAMPLES + [Path(str(p)) for p in found if p is not None]


def damage(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """One kind of damage, at positions drawn from ``rng`` (mostly in the header, where parsing decides)."""
    out = bytearray(data)
    kind = rng.choice(["flip", "truncate", "duplicate", "mangle"])
    header_end = min(len(out), 2000)
    if kind == "flip":
        for _ in range(rng.randint(1, 8)):
            where = rng.randrange(132, header_end) if rng.random() < 0.8 else rng.randrange(len(out))
            out[where] ^= 1 << rng.randrange(8)
    elif kind == "truncate":
        out = out[: rng.randrange(0, len(out))]
    elif kind == "duplicate":
        start, at, length = rng.randrange(132, len(out)), rng.randrange(132, len(out)), rng.randint(1, 64)
        out[at:at] = out[start : start + length]
    else:
        where = rng.randrange(132, header_end)
        out[where : where + rng.randint(1, 12)] = bytes(rng.randrange(256) for _ in range(rng.randint(0, 12)))
    return bytes(out), kind


def _cases() -> list[tuple[int, Path]]:
    rng = random.Random(SEED)
    sources = _sources()
    return [(number, rng.choice(sources)) for number in range(CASES)]


def _errors(dciodvfy: str, path: Path, scratch: Path) -> set[str] | None:
    """dciodvfy's errors on ``path``; where it aborts (it does on 32-bit pixels), on the header as parsed."""
    errors = dciodvfy_errors(dciodvfy, path)
    if errors is None:
        parsed = _as_parsed(path, scratch)
        errors = dciodvfy_errors(dciodvfy, parsed) if parsed is not None else None
    return errors


def _as_parsed(path: Path, into: Path) -> Path | None:
    """The damaged input as pydicom understood it, written back unchanged but for what no file can hold (None if
    even that fails)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(path)
            for element in list(ds):  # only what no file can encode: groups 0000/0002 in the dataset, odd lengths
                if element.tag.group in (0x0000, 0x0002):
                    del ds[element.tag]
                elif isinstance(element.value, bytes) and len(element.value) % 2:
                    element.value += b"\x00"
            if int(ds.get("BitsAllocated", 0) or 0) > 16 and {"Rows", "Columns", "PixelData"} <= set(ds.dir()):
                # dciodvfy aborts on 32-bit pixels (RT Dose): judge the header with blank 16-bit pixels instead
                ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
                count = int(ds.Rows) * int(ds.Columns) * int(ds.get("NumberOfFrames", 1) or 1) * 2
                ds.PixelData = bytes(count)
            meta = getattr(ds, "file_meta", None)
            if meta is not None and str(meta.get("TransferSyntaxUID", "")) == ImplicitVRLittleEndian:
                meta.TransferSyntaxUID = ExplicitVRLittleEndian  # as the tools write: read back the same way
            ds.save_as(into, enforce_file_format=False)
    except Exception:
        return None
    return into


@pytest.mark.dciodvfy
@pytest.mark.parametrize(("number", "source"), _cases(), ids=lambda v: str(v) if isinstance(v, int) else v.name)
def test_damaged_files_give_a_valid_output_or_a_one_line_refusal(
    dciodvfy: str, number: int, source: Path, tmp_path: Path
) -> None:
    rng = random.Random(f"{SEED}-{number}")
    data, kind = damage(source.read_bytes(), rng)
    damaged = tmp_path / f"damaged-{kind}.dcm"
    damaged.write_bytes(data)
    baseline: set[str] | None = None
    judged = False
    for tool, run in TOOLS.items():
        out_dir = tmp_path / tool
        destination = out_dir / "out.dcm"
        try:
            run(damaged, destination)
        except InputError as exc:
            message = str(exc)
            assert message.startswith(str(damaged)) and "\n" not in message, message
            assert not out_dir.exists() or list(out_dir.iterdir()) == [], f"{tool} left files after: {message}"
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            written = pydicom.dcmread(destination)
            if tool != "deidentify":
                assert written.pixel_array.size > 0
        after = _errors(dciodvfy, destination, tmp_path / f"{tool}-as-parsed.dcm")
        assert after is not None and not any("read failed" in e for e in after), f"{tool}: dciodvfy cannot read it"
        if baseline is None:
            parsed = _as_parsed(damaged, tmp_path / "as-parsed.dcm")
            known = [dciodvfy_errors(dciodvfy, p) for p in (damaged, parsed) if p is not None]
            read = [errors for errors in known if errors is not None and not any("read failed" in e for e in errors)]
            # No error set to compare with when dciodvfy can read neither form of the input: the output is then
            # held to being readable and whole (above), not to a delta nobody can compute.
            baseline = {normalized_error(e) for errors in known if errors for e in errors} if read else set()
            judged = bool(read)
        if judged:
            new = {e for e in after if normalized_error(e) not in baseline}
            assert new == set(), f"{tool} on {kind} damage of {source.name}"
