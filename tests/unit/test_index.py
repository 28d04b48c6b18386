"""The SQLite index on its own: runs and their attempts, a killed run marked interrupted, run-id prefixes,
collected runs, and the file memo that lets a no-op rerun skip hashing (valid only for the same file version)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from dicompose.errors import DicomposeError
from dicompose.records.index import Attempt, FileStat, Index, Memo


@pytest.fixture
def index(tmp_path: Path) -> Index:
    return Index(tmp_path / "index.sqlite")


def _start(index: Index, run_id: str) -> None:
    index.start_run(run_id, "pipeline", "/p.yaml", "local", "asked", "local", "/out", {"pipeline": "p"})


def test_runs_attempts_and_their_steps(index: Index):
    _start(index, "20261201-000000-aaaaaa")
    attempts = [
        Attempt("20261201-000000-aaaaaa", "normalize", "k1", "s1", 1, "failed", message="exit 2"),
        Attempt("20261201-000000-aaaaaa", "normalize", "k1", "s1", 2, "ok", outputs=[{"name": "a", "sha256": "x"}]),
        Attempt("20261201-000000-aaaaaa", "mask", "k2", "s1", 0, "ok", cached=True),
    ]
    index.record_attempts(attempts)
    index.end_run("20261201-000000-aaaaaa", "ok")
    run = index.run("20261201-000000-aaaaaa")
    assert run is not None and run["status"] == "ok" and run["ended"] >= run["started"]
    assert run["details"] == {"pipeline": "p"}
    assert [(a["attempt"], a["status"]) for a in index.attempts(run["id"], "normalize")] == [(1, "failed"), (2, "ok")]
    every = index.attempts(run["id"])
    assert len(every) == 3 and every[2]["cached"] is True and every[1]["outputs"] == [{"name": "a", "sha256": "x"}]


def test_run_counts_and_task_keys_come_from_sqlite_alone(index: Index):
    """What ``runs`` and ``gc`` read of every run: launches, attempts that ran, cached tasks, task keys; a run
    recorded before packed launches (no launch rows) counts one launch per attempt that ran."""
    from dicompose.records.index import Launch

    packed, old, empty = "20261201-000000-aaaaaa", "20261201-000001-bbbbbb", "20261201-000002-cccccc"
    for run_id in (packed, old, empty):
        _start(index, run_id)
    index.record_attempts(
        [
            Attempt(packed, "normalize", "k1", "s1", 1, "failed"),
            Attempt(packed, "normalize", "k1", "s1", 2, "ok"),
            Attempt(packed, "normalize", "k2", "s2", 1, "ok"),
            Attempt(packed, "mask", "k3", "s1", 0, "ok", cached=True),
            Attempt(old, "normalize", "k1", "s1", 0, "ok", cached=True),
            Attempt(old, "mask", "k4", "s1", 1, "ok"),
        ]
    )
    for number in (1, 2):
        index.record_launch(Launch(f"{packed}-000{number}", packed, "normalize", ["k1", "k2"], 1, 0, 0.0, 1.0, []))
    assert index.run_counts() == {packed: (2, 3, 1), old: (0, 1, 1)}
    assert index.task_keys(packed) == {"k1", "k2", "k3"} and index.task_keys(empty) == set()


def test_long_file_lists_are_stored_once_and_read_back_whole(index: Index):
    """A no-op rerun repeats each task's file lists: stored once by content, so the index grows by a row per
    task, not by the lists; short lists stay inline; rows written before (inline JSON) read as they did."""
    from dicompose.records.index import SHARED_LIST_MIN

    files = [{"name": f"slice_{n:04d}.dcm", "sha256": f"{n:064x}"} for n in range(SHARED_LIST_MIN + 500)]
    short = files[: SHARED_LIST_MIN - 1]
    runs = ["20261201-000000-aaaaaa", "20261201-000001-bbbbbb"]
    for run_id in runs:
        _start(index, run_id)
        index.record_attempts([Attempt(run_id, "normalize", "k1", "s1", 0, "ok", True, inputs=files, outputs=short)])
    index.db.execute(
        "INSERT INTO attempts (run_id, step, task_key, task_label, attempt, status, cached, inputs, outputs)"
        " VALUES (?, 'mask', 'k2', 's1', 1, 'ok', 0, ?, '[]')",
        (runs[1], json.dumps(files)),
    )
    assert index.db.execute("SELECT COUNT(*) FROM file_lists").fetchone() == (1,)  # both runs, one list
    stored = [row[0] for row in index.db.execute("SELECT inputs FROM attempts WHERE step = 'normalize'")]
    assert all(text.startswith("sha256:") and len(text) < 80 for text in stored)
    for run_id in runs:
        (attempt,) = index.attempts(run_id, "normalize")
        assert attempt["inputs"] == files and attempt["outputs"] == short
    assert index.attempts(runs[1], "mask")[0]["inputs"] == files
    index.db.execute("DELETE FROM file_lists")  # a damaged index says so, never returns an empty list
    with pytest.raises(DicomposeError, match=r"index\.sqlite: damaged, it lacks the file list"):
        index.attempts(runs[0])


def test_a_prefix_finds_one_run_and_never_guesses_between_several(index: Index):
    for run_id in ("20261201-000000-aaaaaa", "20261201-000001-bbbbbb"):
        _start(index, run_id)
    assert index.run("20261201-000001")["id"] == "20261201-000001-bbbbbb"  # type: ignore[index]
    assert index.run("20261201-00000") is None  # two match: no guess
    assert index.run_ids_starting("20261201-00000") == ["20261201-000000-aaaaaa", "20261201-000001-bbbbbb"]
    assert index.run("20261202") is None


def test_a_run_left_running_is_marked_interrupted_and_a_collected_one_says_so(index: Index):
    _start(index, "20261201-000000-aaaaaa")
    assert index.mark_interrupted() == ["20261201-000000-aaaaaa"]
    run = index.run("20261201-000000-aaaaaa")
    assert run is not None and run["status"] == "interrupted" and run["ended"] is not None
    index.mark_collected(["20261201-000000-aaaaaa"])
    collected = index.run("20261201-000000-aaaaaa")
    assert collected is not None and collected["details"]["collected"] >= run["ended"]
    assert collected["details"]["pipeline"] == "p"  # the rest of the details kept


def test_the_memo_answers_only_for_the_same_version_of_a_file(index: Index, tmp_path: Path):
    scan = tmp_path / "scan.dcm"
    scan.write_bytes(b"one")
    stat = FileStat.of(scan)
    index.memo_store([(stat, Memo("sha-one", "series", "instance"))])
    assert index.memo_lookup([FileStat.of(scan)]) == {str(scan): Memo("sha-one", "series", "instance")}
    scan.write_bytes(b"two!")  # another size
    os.utime(scan, ns=(stat.mtime_ns + 1, stat.mtime_ns + 1))
    assert index.memo_lookup([FileStat.of(scan)]) == {}
