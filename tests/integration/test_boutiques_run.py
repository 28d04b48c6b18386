"""Running Boutiques descriptors as their authors wrote them (issue 10, point 2): a File input that takes one
file (the usual form) gets one task per file; an output's value-key on the command line stands for its path
template, a File input's value-key in a template for the file's name, its stripped extensions removed."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from dicompose.dicom import synthetic
from tests.support.cli import BIN
from tests.support.descriptors import header

COPY = {
    **header("copy-one", "copies one file under a name made from it"),
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


def run(tmp_path: Path, doc: dict[str, object], source: Path, *params: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "tool.json").write_text(json.dumps(doc))
    argv = [str(BIN / "dicompose"), "run", str(tmp_path / "tool.json"), "--in", str(source), "--out"]
    argv += [str(tmp_path / "out"), "--workspace", str(tmp_path / "ws"), "--engine", "local"]
    return subprocess.run([*argv, *(x for p in params for x in ("-p", p))], capture_output=True, text=True)


@pytest.mark.parametrize(("low", "produced"), [("5", "big.txt"), ("1", "small.txt")])
def test_a_conditional_output_takes_the_path_its_condition_gives(tmp_path: Path, low: str, produced: str):
    (scan,) = synthetic.write_ct_series(tmp_path / "scans", "cond", 1, 8, 8)
    doc = {
        **header("cond", "writes where a condition says"),
        "command-line": "echo [INPUT] > big.txt; echo [MIN] > small.txt",
        "inputs": [
            {"id": "input", "name": "in", "type": "File", "value-key": "[INPUT]"},
            {"id": "min", "name": "min", "type": "Number", "value-key": "[MIN]"},
        ],
        "output-files": [
            {
                "id": "c",
                "name": "c",
                "optional": False,
                "conditional-path-template": [{"min > 2": "big.txt"}, {"default": "small.txt"}],
            }
        ],
    }
    proc = run(tmp_path, doc, scan, f"min={low}")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert [p.name for p in (tmp_path / "out").rglob("*.txt")] == [produced]


def test_output_templates_are_paths_not_patterns(tmp_path: Path):
    """A file name with brackets, a value with a wildcard: the output is the file the template names."""
    scans = tmp_path / "scans"
    (scan,) = synthetic.write_ct_series(scans, "glob", 1, 8, 8)
    scan.rename(scans / "x[1].dcm")
    proc = run(tmp_path, COPY, scans)
    assert proc.returncode == 0, proc.stderr
    assert [p.name for p in (tmp_path / "out").rglob("*.dcm")] == ["x[1]-copy.dcm"]


def test_environment_variables_and_config_files_resolve_as_in_boutiques(tmp_path: Path):
    """An environment variable's value and a config file's lines get their value-keys resolved, and the
    config file is written in the tool's working folder before it runs (as ``bosh exec launch`` does)."""
    (scan,) = synthetic.write_ct_series(tmp_path / "scans", "env", 1, 8, 8)
    doc = {
        **header("envcfg", "reads a variable and a config file"),
        "command-line": 'echo "$GREETING" > said.txt; cat [CFG] >> said.txt',
        "environment-variables": [{"name": "GREETING", "value": "hello [WHO]"}],
        "inputs": [
            {"id": "input", "name": "in", "type": "File", "value-key": "[INPUT]"},
            {"id": "who", "name": "who", "type": "String", "value-key": "[WHO]"},
            {"id": "level", "name": "level", "type": "Number", "value-key": "[LEVEL]", "default-value": 3},
        ],
        "output-files": [
            {
                "id": "cfg",
                "name": "cfg",
                "path-template": "conf.ini",
                "value-key": "[CFG]",
                "file-template": ["level=[LEVEL]", "input=[INPUT]"],
            },
            {"id": "said", "name": "said", "path-template": "said.txt"},
        ],
    }
    proc = run(tmp_path, doc, scan, "who=$(world)")
    assert proc.returncode == 0, proc.stderr
    (said,) = list((tmp_path / "out").rglob("said.txt"))
    assert said.read_text() == f"hello $(world)\nlevel=3\ninput={scan}"


def test_a_tool_without_in_takes_its_files_as_parameters(tmp_path: Path):
    """No --in: the tool runs once, its File inputs given with -p (mounted read-only), cached by their
    content (an edited file reruns it), as ``bosh exec launch`` runs a tool from an invocation."""
    a, b = synthetic.write_ct_series(tmp_path / "files", "noin", 2, 8, 8)
    doc = {
        **header("two-files", "joins two files given as parameters"),
        "command-line": "cat [A] [B] > both.bin",
        "inputs": [
            {"id": "a", "name": "a", "type": "File", "value-key": "[A]"},
            {"id": "b", "name": "b", "type": "File", "value-key": "[B]"},
        ],
        "output-files": [{"id": "both", "name": "both", "path-template": "both.bin"}],
    }
    (tmp_path / "tool.json").write_text(json.dumps(doc))
    argv = [str(BIN / "dicompose"), "run", str(tmp_path / "tool.json"), "-p", f"a={a}", "-p", f"b={b}", "--out"]
    argv += [str(tmp_path / "out"), "--workspace", str(tmp_path / "ws"), "--engine", "local", "--json"]
    first = json.loads(subprocess.run(argv, capture_output=True, text=True, check=True).stdout)
    assert [t["cached"] for t in first["tasks"]] == [False]
    assert (tmp_path / "out" / "both.bin").read_bytes() == a.read_bytes() + b.read_bytes()
    assert [t["cached"] for t in json.loads(subprocess.run(argv, capture_output=True, text=True).stdout)["tasks"]] == [
        True
    ]
    b.write_bytes(b.read_bytes() + b"!")
    again = json.loads(subprocess.run(argv, capture_output=True, text=True, check=True).stdout)
    assert [t["cached"] for t in again["tasks"]] == [False]
    assert (tmp_path / "out" / "both.bin").read_bytes() == a.read_bytes() + b.read_bytes()
    missing = subprocess.run(argv[:3] + argv[7:], capture_output=True, text=True)
    assert missing.returncode == 2 and "required input 'a' is missing" in missing.stderr
