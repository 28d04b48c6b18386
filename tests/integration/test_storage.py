"""Issue 9.9: bad places and full disks. A folder we cannot write is refused before any work; a disk that fills
up mid-run stops the batch or run with one line, publishes nothing partial, keeps the workspace consistent, and
the same command resumes once there is space. Real full and read-only filesystems: tiny tmpfs mounts (root)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest

from dicompose.dicom import synthetic
from tests.support.cli import BIN
from tests.support.components import need

SLICES = 12  # 256×256 slices of ~130 KB: a 1,200 KB disk holds fewer than all their outputs


def dicompose(*argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "dicompose"), *argv], capture_output=True, text=True, timeout=300, check=False, env=env
    )


def one_line_error(proc: subprocess.CompletedProcess[str], code: int, *needles: str) -> None:
    """Exit ``code``, no traceback, one error line holding one of ``needles``."""
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout and any(n in proc.stderr for n in needles), proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith(("error:", "stopped:"))]
    assert len(lines) == 1, proc.stderr


class Disk:
    """A tmpfs of a given size at ``path`` that can be grown in place (its files kept)."""

    def __init__(self, path: Path, size_kb: int, *, read_only: bool = False) -> None:
        self.path = path
        path.mkdir(parents=True)
        options = f"size={size_kb}k" + (",ro" if read_only else "")
        subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], check=True)

    def grow(self, size_kb: int) -> None:
        subprocess.run(["mount", "-o", f"remount,size={size_kb}k", str(self.path)], check=True)

    def partials(self) -> list[Path]:
        return [p for p in self.path.rglob("*") if p.name.endswith(".partial") or ".dicompose-probe" in p.name]

    def unmount(self) -> None:
        subprocess.run(["umount", "-l", str(self.path)], check=False)


@pytest.fixture
def disks(tmp_path: Path) -> Iterator[list[Disk]]:
    need("tmpfs", os.geteuid() == 0, "mounting a tiny tmpfs (a real full or read-only disk) needs root")
    made: list[Disk] = []
    yield made
    for disk in made:
        disk.unmount()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "DICOMPOSE_HOME": str(tmp_path / "home")}


@pytest.fixture
def scans(tmp_path: Path) -> Path:
    synthetic.write_ct_series(tmp_path / "scans", "storage", SLICES, 256, 256)
    return tmp_path / "scans"


def tool_and_run(scans: Path, out: Path, workspace: Path) -> list[list[str]]:
    return [
        ["normalize", str(scans), "--out", str(out)],
        ["run", "normalize", "--in", str(scans), "--out", str(out), "--engine", "local", "--workspace", str(workspace)],
    ]


@pytest.mark.parametrize("place", ["a file", "under a file"])
def test_an_output_folder_that_is_a_file_is_refused_before_any_work(tmp_path: Path, scans: Path, env, place: str):
    afile = tmp_path / "afile"
    afile.write_text("mine\n")
    out = afile if place == "a file" else afile / "sub"
    for argv in tool_and_run(scans, out, tmp_path / "ws"):
        one_line_error(dicompose(*argv, env=env), 2, "not a folder")
    assert afile.read_text() == "mine\n"


def test_a_read_only_output_folder_or_workspace_is_refused_before_any_work(tmp_path: Path, scans: Path, env, disks):
    disks.append(Disk(tmp_path / "ro", 1024, read_only=True))
    for argv in tool_and_run(scans, tmp_path / "ro" / "out", tmp_path / "ws"):
        one_line_error(dicompose(*argv, env=env), 2, "Read-only file system")
    argv = ["run", "normalize", "--in", str(scans), "--out", str(tmp_path / "o"), "--engine", "local"]
    one_line_error(dicompose(*argv, "--workspace", str(tmp_path / "ro" / "ws"), env=env), 2, "Read-only file system")
    assert not list((tmp_path / "o").rglob("*.dcm"))


def test_the_tool_stops_on_a_full_disk_and_every_output_it_wrote_is_whole(tmp_path: Path, scans: Path, env, disks):
    disk = Disk(tmp_path / "small", 1200)
    disks.append(disk)
    proc = dicompose("normalize", str(scans), "--out", str(disk.path / "out"), env=env)
    one_line_error(proc, 1, "No space left on device")
    written = sorted((disk.path / "out").glob("*.dcm"))
    assert 0 < len(written) < SLICES and not disk.partials()
    for path in written:  # complete, valid files: nothing half-written was published
        assert pydicom.dcmread(path).pixel_array.shape == (256, 256)
    disk.grow(4096)
    again = dicompose("normalize", str(scans), "--out", str(disk.path / "out"), env=env)
    assert again.returncode == 0, again.stderr
    assert len(list((disk.path / "out").glob("*.dcm"))) == SLICES


def test_a_run_whose_output_disk_fills_up_resumes_and_publishes_the_rest(tmp_path: Path, scans: Path, env, disks):
    disk = Disk(tmp_path / "small", 1200)
    disks.append(disk)
    argv = ["run", "normalize", "--in", str(scans), "--out", str(disk.path / "out"), "--engine", "local"]
    argv += ["--workspace", str(tmp_path / "ws")]
    one_line_error(dicompose(*argv, env=env), 1, "cannot publish (No space left on device)")
    assert not disk.partials()
    disk.grow(4096)
    again = dicompose(*argv, "--json", env=env)
    assert again.returncode == 0, again.stderr
    assert len(list((disk.path / "out").glob("*.dcm"))) == SLICES
    runs = dicompose("runs", "--workspace", str(tmp_path / "ws"), "--json", env=env)
    assert [r["status"] for r in json.loads(runs.stdout)] == ["failed", "ok"]


def test_a_run_whose_workspace_fills_up_stops_and_resumes(tmp_path: Path, scans: Path, env, disks):
    disk = Disk(tmp_path / "small", 1200)
    disks.append(disk)
    workspace, out = disk.path / "ws", tmp_path / "out"
    argv = [
        "run",
        "normalize",
        "--in",
        str(scans),
        "--out",
        str(out),
        "--engine",
        "local",
        "--workspace",
        str(workspace),
    ]
    # the disk fills while the tool writes, or while the index records: either way one line
    one_line_error(dicompose(*argv, env=env), 1, "No space left on device", "disk is full")
    assert not disk.partials() and not list(out.rglob("*.dcm"))  # the cut-short task published nothing
    written = list((workspace / "work").rglob("*-normalized.dcm"))
    if written:  # patient files were read: their reads are on record, in the workspace log or the machine's
        logs = [workspace / "audit" / "audit.jsonl", tmp_path / "home" / "audit" / "audit.jsonl"]
        entries = [json.loads(line) for log in logs if log.exists() for line in log.read_text().splitlines()]
        assert any(e["action"] == "read" and e["tool"] == "normalize" for e in entries), entries
    disk.grow(8192)
    again = dicompose(*argv, env=env)
    assert again.returncode == 0, again.stderr
    assert len(list(out.rglob("*.dcm"))) == SLICES
    for path in out.rglob("*.dcm"):
        assert pydicom.dcmread(path).pixel_array.shape == (256, 256)
