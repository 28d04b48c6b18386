"""Atomic writes and the digests computed from the bytes as they are written or read."""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import threading
from pathlib import Path
from typing import BinaryIO

import pytest
from pydicom.dataset import Dataset
from pydicom.filewriter import dcmwrite
from pydicom.sequence import Sequence

from dicompose import fileio
from dicompose.dicom import synthetic, writing
from dicompose.dicom.identifiers import Fingerprint, Fingerprints
from dicompose.dicom.writing import rebuild_file_meta, write_atomic
from dicompose.fileio import (
    Hasher,
    Hashing,
    _DigestingWriter,
    atomic_write,
    atomic_write_bytes,
    folder_sync_wanted,
    folder_syncs_deferred,
)
from dicompose.records.hashing import sha256_file

MODES: list[Hashing] = ["inline", "overlapped", "deferred"]


@pytest.mark.parametrize("mode", MODES)
def test_digests_fed_in_order_equal_hashlib(mode: Hashing):
    chunks = [os.urandom(n) for n in (0, 1, 3000, 1 << 20, 17)]
    with Hasher(mode) as hasher:
        first, second = hasher.sha256(), hasher.sha256()
        for chunk in chunks:
            first.update(chunk)
            second.update(chunk[::-1])
        assert first.hexdigest() == hashlib.sha256(b"".join(chunks)).hexdigest()
    assert second.hexdigest() == hashlib.sha256(b"".join(c[::-1] for c in chunks)).hexdigest()


def test_deferred_digests_are_read_on_another_thread_once_the_work_ends(monkeypatch: pytest.MonkeyPatch):
    """The audit log's writer thread reads the digests of work done (and hashed) on the main thread; more
    held bytes than the hold limit are handed over as they come (a streamed big file is not kept whole)."""
    monkeypatch.setattr(fileio, "_HOLD", 1 << 16)
    chunks = [os.urandom(n) for n in (5, 1 << 17, 70_000, 3)]
    with Hasher("deferred") as hasher:
        digest = hasher.sha256()
        for chunk in chunks:
            digest.update(chunk)
    read: list[str] = []
    reader = threading.Thread(target=lambda: read.append(digest.hexdigest()))
    reader.start()
    reader.join()
    assert read == [hashlib.sha256(b"".join(chunks)).hexdigest()]


def test_fingerprints_settle_into_picklable_strings():
    with Hasher("deferred") as hasher:
        digest = hasher.sha256()
        digest.update(b"x" * 100_000)
    prints = Fingerprints(Fingerprint({"patient": "p"}, digest), Fingerprint({}, "0" * 64)).settled()
    assert pickle.loads(pickle.dumps(prints)).source.sha256 == hashlib.sha256(b"x" * 100_000).hexdigest()


def test_atomic_write_returns_the_digest_of_the_file_written(tmp_path: Path):
    def write(fh: BinaryIO) -> None:
        fh.write(b"abc")
        fh.write(bytearray(b"def"))
        fh.write(memoryview(b"ghi"))

    with Hasher("overlapped") as hasher:
        digest = atomic_write(tmp_path / "a.bin", write, hasher=hasher)
    assert digest is not None and digest.hexdigest() == sha256_file(tmp_path / "a.bin")
    assert atomic_write(tmp_path / "b.bin", write) is None


def test_a_writer_that_patches_earlier_bytes_still_gets_the_right_digest(tmp_path: Path):
    def write(fh: BinaryIO) -> None:
        fh.write(b"\0\0\0\0" + b"x" * 5000)
        end = fh.tell()
        fh.seek(0)
        fh.write(b"LEN!")  # a length field filled in afterwards
        fh.seek(end)
        fh.write(b"tail")

    with Hasher("overlapped") as hasher:
        digest = atomic_write(tmp_path / "p.bin", write, hasher=hasher)
        assert digest is not None
        assert (tmp_path / "p.bin").read_bytes() == b"LEN!" + b"x" * 5000 + b"tail"
        assert digest.hexdigest() == sha256_file(tmp_path / "p.bin")


def test_a_dicom_file_is_hashed_as_it_is_written(tmp_path: Path):
    """pydicom only appends (it encodes each element, sequences included, before writing it), so the digest
    comes from the bytes in passing, never from reading the file back."""
    ds = synthetic.ct_slice("hash", 0, 32, 32)
    item = Dataset()
    item.ReferencedSOPInstanceUID = "1.2.3"
    ds.SourceImageSequence = Sequence([item])
    rebuild_file_meta(ds, "test")
    with Hasher("overlapped") as hasher:
        writer = _DigestingWriter(io.BytesIO(), hasher.sha256())
        dcmwrite(writer, ds, enforce_file_format=True)
        assert writer.end > 2000 and not writer.rewritten
        digest = write_atomic(ds, tmp_path / "ct.dcm", hasher=hasher)
        assert digest is not None and digest.hexdigest() == sha256_file(tmp_path / "ct.dcm")


@pytest.mark.parametrize("mode", MODES)
def test_atomic_write_bytes_publishes_whole_files_with_their_digest(tmp_path: Path, mode: Hashing):
    data = os.urandom(3 << 20)
    with Hasher(mode) as hasher:
        digest = atomic_write_bytes(tmp_path / "sub" / "a.bin", data, hasher=hasher)
        assert digest is not None and digest.hexdigest() == hashlib.sha256(data).hexdigest()
    assert (tmp_path / "sub" / "a.bin").read_bytes() == data
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["a.bin"]  # no temp file left


def test_atomic_write_bytes_leaves_nothing_when_the_rename_fails(tmp_path: Path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("a folder that is not empty cannot be replaced by a file")
    with pytest.raises(OSError):
        atomic_write_bytes(tmp_path / "taken", b"data")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def test_deferred_folder_syncs_are_left_to_the_caller(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The only way to see an fsync that is skipped is to count the calls (a crash test cannot tell here)."""
    synced: list[Path] = []
    monkeypatch.setattr(fileio, "fsync_directory", synced.append)
    atomic_write_bytes(tmp_path / "a.bin", b"1", sync_folder=folder_sync_wanted())
    with folder_syncs_deferred():
        atomic_write_bytes(tmp_path / "b.bin", b"2", sync_folder=folder_sync_wanted())
        assert not folder_sync_wanted()
    assert folder_sync_wanted()
    assert synced == [tmp_path]


@pytest.mark.parametrize("mode", MODES)
def test_large_objects_stream_to_the_same_bytes_and_digest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: Hashing
):
    """Objects with more pixel data than the in-memory limit are streamed; the file and digest must not differ."""
    ds = synthetic.ct_slice("stream", 0, 16, 16)
    rebuild_file_meta(ds, "0")
    with Hasher(mode) as hasher:
        in_memory = write_atomic(ds, tmp_path / "memory.dcm", hasher=hasher)
        monkeypatch.setattr(writing, "_IN_MEMORY_LIMIT", 16)
        streamed = write_atomic(ds, tmp_path / "streamed.dcm", hasher=hasher)
        assert in_memory is not None and streamed is not None
        assert in_memory.hexdigest() == streamed.hexdigest() == sha256_file(tmp_path / "streamed.dcm")
    assert (tmp_path / "memory.dcm").read_bytes() == (tmp_path / "streamed.dcm").read_bytes()
