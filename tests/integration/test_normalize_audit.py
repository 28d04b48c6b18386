"""The machine audit log of host commands, written from what the tools learn while they work (no second read):
each entry's object must be exactly what reading the file again from disk gives — ``identifiers(path)`` and
``sha256_file(path)`` computed here independently — for normalize, threshold and deidentify, over synthetic
files and a pydicom file of every transfer syntax normalize accepts (big endian, deflated, compressed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pydicom
import pytest

from dicompose.dicom import synthetic
from dicompose.dicom.deidentify import DeidParams
from dicompose.dicom.identifiers import identifiers
from dicompose.params import NormalizeParams, ThresholdParams
from dicompose.records.audit import Keys, load_keys, read_entries, verify
from dicompose.records.hashing import sha256_file
from dicompose.tools.batch import FileResult, Operation, Status, run_batch
from dicompose.tools.deidentify import deidentify_operation
from dicompose.tools.normalize import normalize_operation
from dicompose.tools.threshold import threshold_operation
from tests.support.dicom_checks import pydicom_corpus

OPERATIONS = {
    "normalize": lambda: normalize_operation(NormalizeParams(0, 100)),
    "threshold": lambda: threshold_operation(ThresholdParams(0)),
    "deidentify": lambda: deidentify_operation(DeidParams(b"k" * 32)),
}


def one_image_per_transfer_syntax() -> list[Path]:
    chosen: dict[str, Path] = {}
    for path in pydicom_corpus():
        try:
            ds = pydicom.dcmread(path)
            grey = ds.SamplesPerPixel == 1 and ds.PhotometricInterpretation in ("MONOCHROME1", "MONOCHROME2")
            if not grey or ds.BitsAllocated == 1 or "PatientID" not in ds:
                continue
            ds.pixel_array  # noqa: B018 (decodable here, so the tools must process it)
        except Exception:
            continue
        chosen.setdefault(str(ds.file_meta.TransferSyntaxUID), path)
    return sorted(chosen.values())


CORPUS = one_image_per_transfer_syntax()


def expected_object(keys: Keys, path: Path) -> dict[str, Any]:
    """What the old code logged: the file read again from disk, its identifiers pseudonymised."""
    ids = {key: keys.pseudonym(value) for key, value in identifiers(path).items()}
    return {**ids, "path": str(path.absolute()), "sha256": sha256_file(path)}


def run_audited(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, workers: int) -> list[FileResult]:
    monkeypatch.setenv("DICOMPOSE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DICOMPOSE_AUDIT", raising=False)
    inputs = [*synthetic.write_ct_series(tmp_path / "in", "audit", 3, 16, 16), *CORPUS]
    operation: Operation = OPERATIONS[name]()
    summary = run_batch(inputs, operation, tmp_path / "out", workers=workers)
    return summary.results


def test_the_corpus_covers_several_transfer_syntaxes():
    syntaxes = {str(pydicom.dcmread(p, stop_before_pixels=True).file_meta.TransferSyntaxUID) for p in CORPUS}
    assert {"1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.5"} <= syntaxes


@pytest.mark.parametrize(("name", "workers"), [("normalize", 1), ("normalize", 2), ("threshold", 1), ("deidentify", 1)])
def test_entries_equal_what_reading_the_files_again_gives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, workers: int
):
    results = run_audited(tmp_path, monkeypatch, name, workers)
    processed = [r for r in results if r.status is Status.PROCESSED]
    # deidentify names outputs by instance UID, which pydicom's four MR_small encodings share: written once, the
    # other copies skipped as copies (a copy that does not decode here fails on its own damage, logged)
    failed = [r for r in results if r.status is Status.FAILED]
    copies = [r for r in results if r.status is Status.SKIPPED and "a copy of" in r.message]
    assert len(processed) + len(failed) + len(copies) == len(results)
    assert len(failed) + len(copies) <= (3 if name == "deidentify" else 0)
    keys = load_keys(tmp_path / "home")
    entries = read_entries(tmp_path / "home" / "audit")
    by_path = {(e["action"], e["object"]["path"]): e for e in entries}
    assert len(by_path) == len(entries) == 2 * len(processed) + len(failed)
    for result in failed:
        assert by_path[("read", str(result.source.absolute()))]["outcome"] == "failed"
    for result in processed:
        assert result.output is not None
        for action, path in (("read", result.source), ("write", result.output)):
            entry = by_path[(action, str(path.absolute()))]
            assert entry["object"] == expected_object(keys, path), (action, path)
            assert entry["tool"] == name and entry["outcome"] == "ok"
    assert verify(tmp_path / "home" / "audit").ok


def test_deidentified_outputs_are_logged_with_their_new_identifiers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    results = run_audited(tmp_path, monkeypatch, "deidentify", 1)
    keys = load_keys(tmp_path / "home")
    entries = {(e["action"], e["object"]["path"]): e["object"] for e in read_entries(tmp_path / "home" / "audit")}
    result = next(r for r in results if r.source.name == "slice_0000.dcm")
    assert result.output is not None
    read, written = entries[("read", str(result.source.absolute()))], entries[("write", str(result.output.absolute()))]
    assert read["patient"] == keys.pseudonym("SYNTH-0001") != written["patient"]
    assert written["patient"] == keys.pseudonym(str(pydicom.dcmread(result.output).PatientID))
    assert read["instance"] != written["instance"]


def test_no_fingerprints_without_the_audit_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DICOMPOSE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DICOMPOSE_AUDIT", "host")
    inputs = synthetic.write_ct_series(tmp_path / "in", "quiet", 2, 16, 16)
    summary = run_batch(inputs, OPERATIONS["normalize"](), tmp_path / "out", workers=1)
    assert [(r.status, r.audit) for r in summary.results] == [(Status.PROCESSED, ())] * 2
    assert not (tmp_path / "home" / "audit").exists()


def test_a_refused_file_is_logged_with_who_it_is_about(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A file the tool refuses (its pixel data cut short) was still opened: its read entry names the patient
    (pseudonym) and holds its sha256, so a query by patient finds that access too."""
    monkeypatch.setenv("DICOMPOSE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DICOMPOSE_AUDIT", raising=False)
    (whole,) = synthetic.write_ct_series(tmp_path / "in", "refused", 1, 32, 32)
    cut = tmp_path / "in" / "cut.dcm"
    cut.write_bytes(whole.read_bytes()[:-100])
    summary = run_batch([cut], OPERATIONS["normalize"](), tmp_path / "out", workers=1)
    assert [r.status for r in summary.results] == [Status.FAILED]
    keys = load_keys(tmp_path / "home")
    (entry,) = [e for e in read_entries(tmp_path / "home" / "audit") if e["action"] == "read"]
    assert entry["outcome"] == "failed" and entry["object"]["sha256"] == sha256_file(cut)
    assert entry["object"]["patient"] == keys.pseudonym("SYNTH-0001")
