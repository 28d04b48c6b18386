"""Issue 9.8: the audit log is anchored outside itself (the workspace index and $DICOMPOSE_HOME), so deleting,
rolling back or replacing it is detected; and every read of patient data by any step is logged, derived data
(a threshold step reading normalized images) included."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from dicompose.dicom import synthetic
from tests.support.cli import BIN

DEMO = Path(__file__).parents[2] / "src" / "dicompose" / "pipelines" / "demo.yaml"


def dicompose(*argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "dicompose"), *argv], capture_output=True, text=True, timeout=300, check=False, env=env
    )


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "DICOMPOSE_HOME": str(tmp_path / "home")}


def run_demo(tmp_path: Path, env: dict[str, str], level: str = "0") -> None:
    if not (tmp_path / "scans").exists():
        for series in ("a", "b"):
            synthetic.write_ct_series(tmp_path / "scans" / series, series, 2, 16, 16)
    argv = ["run", str(DEMO), "--in", f"scans={tmp_path / 'scans'}", "--out", str(tmp_path / "out")]
    proc = dicompose(*argv, "--workspace", str(tmp_path / "ws"), "--engine", "local", env=env)
    assert proc.returncode == 0, proc.stderr
    if level != "0":  # a second, different run: more entries, another checkpoint
        synthetic.write_ct_series(tmp_path / "scans" / f"c{level}", f"c{level}", 2, 16, 16)
        proc = dicompose(*argv, "--workspace", str(tmp_path / "ws"), "--engine", "local", env=env)
        assert proc.returncode == 0, proc.stderr


def verify(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return dicompose("audit", "verify", "--workspace", str(tmp_path / "ws"), env=env)


def test_an_untouched_log_is_intact(tmp_path: Path, env):
    run_demo(tmp_path, env, level="2")
    proc = verify(tmp_path, env)
    assert proc.returncode == 0 and "intact" in proc.stdout, proc.stdout


def test_deleting_the_audit_folder_is_detected(tmp_path: Path, env):
    run_demo(tmp_path, env)
    shutil.rmtree(tmp_path / "ws" / "audit")
    proc = verify(tmp_path, env)
    assert proc.returncode == 1 and "TAMPERED" in proc.stdout and "missing" in proc.stdout, proc.stdout
    run_demo(tmp_path, env, level="3")  # a new log starts where the old one was
    proc = verify(tmp_path, env)
    assert proc.returncode == 1 and "deleted and started again" in proc.stdout, proc.stdout


def test_rolling_back_the_log_is_detected_by_the_index_and_by_home(tmp_path: Path, env):
    run_demo(tmp_path, env)
    saved = tmp_path / "saved"
    shutil.copytree(tmp_path / "ws", saved)  # the whole workspace, index included
    run_demo(tmp_path, env, level="4")
    shutil.rmtree(tmp_path / "ws" / "audit")
    shutil.copytree(saved / "audit", tmp_path / "ws" / "audit")
    proc = verify(tmp_path, env)
    assert proc.returncode == 1 and "rolled back" in proc.stdout and "index" in proc.stdout, proc.stdout
    shutil.rmtree(tmp_path / "ws")
    shutil.copytree(saved, tmp_path / "ws")  # index rolled back with the log: only $DICOMPOSE_HOME knows
    proc = verify(tmp_path, env)
    assert proc.returncode == 1 and "rolled back" in proc.stdout and "DICOMPOSE_HOME" in proc.stdout, proc.stdout


def test_every_step_logs_its_reads_of_patient_data(tmp_path: Path, env):
    run_demo(tmp_path, env)
    proc = dicompose("audit", "show", "--workspace", str(tmp_path / "ws"), "--json", env=env)
    entries = json.loads(proc.stdout)
    reads = [e for e in entries if e["action"] == "read"]
    by_tool = {tool: [e for e in reads if e["tool"] == tool] for tool in ("normalize", "threshold")}
    assert len(by_tool["normalize"]) == 4 and len(by_tool["threshold"]) == 4
    for entry in by_tool["threshold"]:  # the derived images, read from the workspace, with their identifiers
        assert "/work/" in entry["object"]["path"] and entry["object"]["patient"].startswith("p-")
        assert len(entry["object"]["sha256"]) == 64
