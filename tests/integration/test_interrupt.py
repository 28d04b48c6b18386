"""Ctrl-C on a batch with a process pool (found by a new user): the terminal sends SIGINT to the whole process
group, once or twice. The batch ends promptly with one line, every output on disk is complete and in the audit
log, no temp file is left, and no worker survives."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from dicompose.dicom import synthetic
from tests.support.cli import BIN


@pytest.mark.parametrize("presses", [1, 2])
def test_ctrl_c_ends_a_pooled_batch_cleanly_and_audited(tmp_path: Path, presses: int):
    synthetic.write_ct_series(tmp_path / "scans", "interrupt", 600, 128, 128)
    env = {**os.environ, "DICOMPOSE_HOME": str(tmp_path / "home")}
    env.pop("DICOMPOSE_AUDIT", None)
    argv = [str(BIN / "dicompose"), "normalize", str(tmp_path / "scans"), "--out", str(tmp_path / "out"), "-j", "2"]
    proc = subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline and len(list((tmp_path / "out").glob("*.dcm"))) < 40:
        time.sleep(0.05)
    for _ in range(presses):
        os.killpg(proc.pid, signal.SIGINT)
        time.sleep(0.05)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("interrupted (")
    time.sleep(0.3)
    left = subprocess.run(["pgrep", "-s", str(proc.pid)], capture_output=True, text=True).stdout.split()
    assert left == []
    written = sorted(p for p in (tmp_path / "out").iterdir())
    assert written and not [p for p in written if p.name.endswith(".partial")]
    shown = subprocess.run(
        [str(BIN / "dicompose"), "audit", "show", "--workspace", str(tmp_path / "home"), "--json"],
        capture_output=True,
        text=True,
        env=env,
    )
    audited = {e["object"]["path"] for e in json.loads(shown.stdout) if e["action"] == "write"}
    assert audited == {str(p) for p in written}
    assert len(written) < 600  # it was interrupted, not finished
