"""The workspace lease (records/lease.py): what refuses a second run on another host of a shared filesystem
whose flock stays local to each node. Other hosts are written as their lease files would be (one machine here)."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from dicompose.errors import UsageError
from dicompose.records import lease
from dicompose.records.lease import LEASE, filesystem_of, holder
from dicompose.records.workspace import Workspace, is_locked, locked


def workspace(tmp_path: Path) -> Workspace:
    (tmp_path / "ws").mkdir()
    return Workspace(tmp_path / "ws")


def foreign(ws: Workspace, age: float, host: str = "node17.cluster") -> Path:
    path = ws.root / LEASE
    path.write_text(f"{host} pid 4242\n")
    stamp = time.time() - age
    os.utime(path, (stamp, stamp))
    return path


def test_a_fresh_lease_of_another_host_refuses_the_run_in_one_line(tmp_path: Path):
    ws = workspace(tmp_path)
    foreign(ws, age=20)
    assert is_locked(ws)  # show/runs must not call that run interrupted
    with pytest.raises(UsageError) as caught, locked(ws):
        pass
    message = str(caught.value)
    assert "in use by pid 4242 on node17.cluster (seen 20 s ago" in message and "\n" not in message
    assert (ws.root / LEASE).read_text() == "node17.cluster pid 4242\n"  # not ours to remove


def test_a_stale_lease_or_one_of_a_dead_process_here_is_taken_over_and_removed_after(tmp_path: Path):
    ws = workspace(tmp_path)
    foreign(ws, age=lease.STALE + 5)
    assert not is_locked(ws)
    with locked(ws):
        assert (ws.root / LEASE).read_text() == f"{socket.gethostname()} pid {os.getpid()}\n"
    assert not (ws.root / LEASE).exists() and not list(ws.root.glob("lock.lease.stale-*"))
    proc = subprocess.Popen(["true"])
    proc.wait()
    (ws.root / LEASE).write_text(f"{socket.gethostname()} pid {proc.pid}\n")
    with locked(ws):
        pass
    (ws.root / LEASE).write_text(f"{socket.gethostname()} pid 1\n")  # alive here: refused even when fresh or old
    os.utime(ws.root / LEASE, (0, 0))
    with pytest.raises(UsageError, match="in use by pid 1"), locked(ws):
        pass


def test_the_holder_keeps_its_lease_fresh(tmp_path: Path, monkeypatch):
    ws = workspace(tmp_path)
    monkeypatch.setattr(lease, "BEAT", 0.05)
    with locked(ws):
        os.utime(ws.root / LEASE, (0, 0))
        time.sleep(0.3)
        assert time.time() - (ws.root / LEASE).stat().st_mtime < 5
        found = holder(ws.root / LEASE)
        assert found is not None and found[1] == os.getpid()


def test_the_filesystem_is_named(tmp_path: Path):
    assert filesystem_of(tmp_path) in {"tmpfs", "ext4", "xfs", "overlay", "btrfs", "zfs", "nfs", "nfs4"}


def test_a_garbage_lease_is_nobody_s_and_a_clock_ahead_is_said(tmp_path: Path):
    ws = workspace(tmp_path)
    (ws.root / LEASE).write_text("half-writ")
    with locked(ws):
        pass
    foreign(ws, age=-600)  # another node's clock, ten minutes ahead
    with pytest.raises(UsageError, match="its clock is 600 s ahead of ours"), locked(ws):
        pass
    foreign(ws, age=-(lease.CLOCK_SKEW + 60))  # a clock wrong by more than a day: not a live run
    with locked(ws):
        pass
