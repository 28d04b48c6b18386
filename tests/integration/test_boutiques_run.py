"""Running Boutiques descriptors as their authors wrote them (issue 10, point 2): a File input that takes one
file (the usual form) gets one task per file; an output's value-key on the command line stands for its path
template, a File input's value-key in a template for the file's name, its stripped extensions removed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from dicompose.dicom import synthetic

BIN = Path(sys.executable).parent
COPY = {
    "name": "copy-one",
    "tool-version": "1",
    "description": "copies one file under a name made from it",
    "schema-version": "0.5",
    "command-line": "cp [IN] [OUTFILE]",
    "inputs": [{"id": "input", "name": "in", "type": "File", "value-key": "[IN]"}],
    "output-files": [
        {
            "id": "out",
            "name": "out",
            "path-template": "[IN]-copy.dcm",
            "value-key": "[OUTFILE]",
            "path-template-stripped-extensions": [".dcm"],
        }
    ],
}


def test_a_single_file_input_runs_one_task_per_file(tmp_path: Path):
    scans = synthetic.write_ct_series(tmp_path / "scans", "one", 3, 8, 8)
    (tmp_path / "copy.json").write_text(json.dumps(COPY))
    argv = [str(BIN / "dicompose"), "run", str(tmp_path / "copy.json"), "--in", str(tmp_path / "scans")]
    argv += ["--out", str(tmp_path / "out"), "--workspace", str(tmp_path / "ws"), "--engine", "local", "--json"]
    first = subprocess.run(argv, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert len(report["tasks"]) == 3 and not any(t["cached"] for t in report["tasks"])
    copies = {p.name: p.read_bytes() for p in (tmp_path / "out").rglob("*.dcm")}
    assert copies == {f"{p.name[:-4]}-copy.dcm": p.read_bytes() for p in scans}
    again = json.loads(subprocess.run(argv, capture_output=True, text=True, check=True).stdout)
    assert all(t["cached"] for t in again["tasks"]) and again["launches"] == 0
