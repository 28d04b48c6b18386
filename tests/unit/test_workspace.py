"""The workspace's rules on their own: a task is complete only with ``done``, an output edited after the fact
makes its task incomplete (never fed on), the lock is exclusive and dies with its holder, the folder is private."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dicompose.errors import UsageError
from dicompose.records.index import existing_index
from dicompose.records.workspace import DONE, finish_task, is_locked, locked, open_workspace


def _finished_task(tmp_path: Path, key: str = "ab" * 32) -> tuple[Path, str]:
    workspace = open_workspace(tmp_path / "ws")
    folder = workspace.fresh_task_dir(key)
    (folder / "out" / "result.dcm").write_bytes(b"pixels")
    finish_task(folder, {"key": key, "outputs": [{"name": "result.dcm", "sha256": "x"}]})
    return folder, key


def test_a_task_folder_is_complete_only_once_done_is_written(tmp_path: Path):
    folder, key = _finished_task(tmp_path)
    workspace = open_workspace(tmp_path / "ws")
    assert folder == workspace.task_dir(key) and folder.parent.name == key[:2]
    record = workspace.read_task(key)
    assert record is not None and record["outputs"][0]["size"] == len(b"pixels")
    assert not os.access(folder / "out" / "result.dcm", os.W_OK) or os.geteuid() == 0  # sealed read-only
    (folder / DONE).unlink()
    assert workspace.read_task(key) is None  # killed before done: incomplete, it reruns


def test_an_output_edited_after_the_task_makes_it_incomplete(tmp_path: Path):
    folder, key = _finished_task(tmp_path)
    workspace = open_workspace(tmp_path / "ws")
    output = folder / "out" / "result.dcm"
    output.chmod(0o644)
    time.sleep(0.01)
    output.write_bytes(b"edited")  # same size, new mtime: someone wrote into a published hard link
    assert workspace.read_task(key) is None


def test_a_fresh_task_folder_discards_what_an_interrupted_attempt_left(tmp_path: Path):
    workspace = open_workspace(tmp_path / "ws")
    folder = workspace.fresh_task_dir("cd" * 32)
    (folder / "out" / "half.dcm").write_bytes(b"half")
    again = workspace.fresh_task_dir("cd" * 32)
    assert again == folder and list((again / "out").iterdir()) == []


def test_the_workspace_is_private_and_its_lock_exclusive(tmp_path: Path):
    workspace = open_workspace(tmp_path / "ws")
    assert (workspace.root.stat().st_mode & 0o777) == 0o700
    assert not is_locked(workspace)
    with locked(workspace):
        assert is_locked(workspace)
        holder = subprocess.run(
            [sys.executable, "-c", "from pathlib import Path; import sys\n"
             "from dicompose.records.workspace import Workspace, locked\n"
             "with locked(Workspace(Path(sys.argv[1]))): pass", str(workspace.root)],
            capture_output=True, text=True,
        )  # fmt: skip
        assert holder.returncode != 0 and "is in use by pid" in holder.stderr
    assert not is_locked(workspace)


def test_an_existing_index_or_one_line(tmp_path: Path):
    with pytest.raises(UsageError, match="no dicompose workspace here"):
        existing_index(tmp_path / "nowhere")
    assert not (tmp_path / "nowhere").exists()  # asking creates nothing
