"""A packed launch's outputs are read while it runs (pipeline/early_seal.py); what changed since is read again."""

from __future__ import annotations

import hashlib
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from dicompose.pipeline.early_seal import EarlySeal
from dicompose.tools.manifest import RESULT_NAME


def _facts(path: Path) -> tuple[str, dict[str, str | None]]:
    reads.append(path)
    return hashlib.sha256(path.read_bytes()).hexdigest(), {"instance": path.name}


reads: list[Path] = []


def _wait_for(condition, seconds: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the early seal never read the task"
        time.sleep(0.01)


def test_a_task_is_read_once_its_result_file_is_there_and_changes_after_are_caught(tmp_path: Path):
    reads.clear()
    first, second = tmp_path / "t1" / "out", tmp_path / "t2" / "out"
    for out in (first, second):
        (out / "sub").mkdir(parents=True)
    (first / "a.dcm").write_bytes(b"a" * 100)
    (first / "sub" / "b.dcm").write_bytes(b"b" * 100)
    (second / "c.dcm").write_bytes(b"c" * 100)
    os.symlink(first / "a.dcm", first / "link.dcm")  # never followed, never read
    with ThreadPoolExecutor(2) as pool, EarlySeal([first, second], pool, _facts) as early:
        time.sleep(0.15)
        assert reads == []  # no result file yet: the tool may still be writing
        (first / RESULT_NAME).write_text("{}")
        _wait_for(lambda: len(reads) == 2)
        (first / "sub" / "b.dcm").write_bytes(b"B" * 100)  # a tool writing after its result file
        time.sleep(0.15)
    assert sorted(p.name for p in reads) == ["a.dcm", "b.dcm"]  # the second task never finished
    assert early.facts(first / "a.dcm") == (hashlib.sha256(b"a" * 100).hexdigest(), {"instance": "a.dcm"})
    assert early.facts(first / "sub" / "b.dcm") is None  # changed since: the seal reads it again
    assert early.facts(second / "c.dcm") is None
    assert early.synced(first.parent) == {first / "a.dcm"}
    assert early.synced(second.parent) == set()


def test_a_folder_taken_back_before_it_is_read(tmp_path: Path):
    """A container's task folder is handed back (owner changed) before reading, so the change of owner is not
    taken for a change of content."""
    out = tmp_path / "t" / "out"
    out.mkdir(parents=True)
    (out / "a.dcm").write_bytes(b"a")
    taken: list[Path] = []
    with ThreadPoolExecutor(1) as pool, EarlySeal([out], pool, _facts, taken.append) as early:
        (out / RESULT_NAME).write_text("{}")
        _wait_for(lambda: early.synced(out.parent) == {out / "a.dcm"})
    assert taken == [out]
