"""The same descriptor and invocation give the same outputs through ``bosh exec launch --no-container`` (the
reference executor, run as users run it) and ``dicompose run DESCRIPTOR --invocation FILE --engine local``:
shell templates, environment variables, config files, conditional outputs, stripped extensions, flags and lists.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

import pytest

from tests.support.cli import BIN
from tests.support.descriptors import header

DESCRIPTORS = {
    "shell-env-config": {
        "command-line": 'echo "$GREETING" > said.txt; cat [CFG] >> said.txt; echo [WORDS] [LOUD] >> said.txt',
        "environment-variables": [{"name": "GREETING", "value": "hello"}],  # bosh 0.5.33 exports values as written
        "inputs": [
            {"id": "who", "name": "who", "type": "String", "value-key": "[WHO]"},
            {"id": "level", "name": "level", "type": "Number", "value-key": "[LEVEL]", "default-value": 3},
            {"id": "words", "name": "words", "type": "String", "list": True, "value-key": "[WORDS]"},
            {
                "id": "loud",
                "name": "loud",
                "type": "Flag",
                "optional": True,
                "value-key": "[LOUD]",
                "command-line-flag": "--loud",
            },
        ],
        "output-files": [
            {
                "id": "cfg",
                "name": "cfg",
                "path-template": "conf.ini",
                "value-key": "[CFG]",
                "file-template": ["level=[LEVEL]", "who=[WHO]"],
            },
            {"id": "said", "name": "said", "path-template": "said.txt"},
        ],
        "invocation": {"who": "world", "words": ["a", "b c"], "loud": True},
    },
    "conditional-and-stripped": {
        "command-line": "cp [IN] [OUT]; echo [N] > [N_OUT]",
        "inputs": [
            {"id": "input", "name": "in", "type": "File", "value-key": "[IN]"},
            {"id": "n", "name": "n", "type": "Number", "value-key": "[N]"},
        ],
        "output-files": [
            {
                "id": "out",
                "name": "out",
                "path-template": "[IN]-copy.txt",
                "value-key": "[OUT]",
                "path-template-stripped-extensions": [".txt"],
            },
            {
                "id": "n_out",
                "name": "n_out",
                "value-key": "[N_OUT]",
                "optional": False,
                "conditional-path-template": [{"n > 2": "big.txt"}, {"default": "small.txt"}],
            },
        ],
        "invocation": {"input": "INPUT_FILE", "n": 5},
    },
}


def descriptor(name: str) -> dict[str, object]:
    spec = dict(DESCRIPTORS[name])
    spec.pop("invocation")
    return {**header(name), **spec}


def outputs(folder: Path, ignore: set[str]) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.rglob("*") if p.is_file() and p.name not in ignore}


@pytest.mark.parametrize("name", sorted(DESCRIPTORS))
def test_dicompose_produces_what_bosh_produces(tmp_path: Path, name: str):
    (tmp_path / "input.txt").write_text("some text\n")
    invocation = {
        k: (str(tmp_path / "input.txt") if v == "INPUT_FILE" else v) for k, v in DESCRIPTORS[name]["invocation"].items()
    }
    (tmp_path / "tool.json").write_text(json.dumps(descriptor(name)))
    (tmp_path / "invocation.json").write_text(json.dumps(invocation))
    reference = tmp_path / "bosh"
    reference.mkdir()
    bosh = [str(BIN / "bosh"), "exec", "launch", "--no-container", str(tmp_path / "tool.json")]
    done = subprocess.run([*bosh, str(tmp_path / "invocation.json")], cwd=reference, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    ours = [
        str(BIN / "dicompose"),
        "run",
        str(tmp_path / "tool.json"),
        "--invocation",
        str(tmp_path / "invocation.json"),
    ]
    ours += ["--out", str(tmp_path / "ours"), "--workspace", str(tmp_path / "ws"), "--engine", "local"]
    proc = subprocess.run(ours, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    produced, expected = outputs(tmp_path / "ours", set()), outputs(reference, set())
    shared = set(produced) & set(expected)
    assert shared and {k: produced[k] for k in shared} == {k: expected[k] for k in shared}
    # bosh puts a File input's whole path into an output template ("[IN]-copy" lands beside the input, outside
    # its working folder); dicompose puts the file's name, so every output stays in the output folder
    assert set(produced) - shared <= {"input-copy.txt"}


def test_boutiques_own_example1_runs_as_bosh_runs_it(tmp_path: Path):
    """Boutiques' canonical example, unchanged (its descriptor, its tool script, its invocation with the file
    paths made real): config file with shell-quoted values and an output flag (``-c CONFIG``), a hostile string
    list, environment variable, groups, stripped extensions. Its image (centos 7) cannot be fetched here, so
    both run without a container: the tool script on PATH, ``python`` pointing at this interpreter."""
    example = Path(str(files("boutiques"))) / "schema" / "examples" / "example1"
    tools = tmp_path / "bin"
    tools.mkdir()
    shutil.copy(example / "exampleTool1.py", tools / "exampleTool1.py")
    (tools / "exampleTool1.py").chmod(0o755)
    (tools / "python").symlink_to(sys.executable)
    env = {**os.environ, "PATH": f"{tools}{os.pathsep}{os.environ['PATH']}", "DICOMPOSE_HOME": str(tmp_path / "h")}
    invocation = json.loads((example / "invocation.json").read_text())
    for name in ("input.txt", "list1.txt", "list2.txt"):
        (tmp_path / name).write_text(f"{name}\n")
    invocation["file_input"] = str(tmp_path / "input.txt")
    invocation["file_list_input"] = [str(tmp_path / "list1.txt"), str(tmp_path / "list2.txt")]
    invocation["no_opts"] = True  # its HOME=$PWD check is about docker's container-opts, not the tool
    (tmp_path / "invocation.json").write_text(json.dumps(invocation))
    reference = tmp_path / "bosh"
    reference.mkdir()
    bosh = [str(BIN / "bosh"), "exec", "launch", "--no-container", str(example / "example1_docker.json")]
    done = subprocess.run(
        [*bosh, str(tmp_path / "invocation.json")], cwd=reference, capture_output=True, text=True, env=env
    )
    assert done.returncode == 0 and "Exit code\n0" in done.stdout, done.stdout + done.stderr
    ours = [str(BIN / "dicompose"), "run", str(example / "example1_docker.json")]
    ours += ["--invocation", str(tmp_path / "invocation.json"), "--out", str(tmp_path / "ours")]
    ours += ["--workspace", str(tmp_path / "ws"), "--engine", "local"]
    proc = subprocess.run(ours, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    produced, expected = outputs(tmp_path / "ours", set()), outputs(reference, set())
    assert produced == expected and set(produced) == {"config.txt", "log-4-coin;plop.txt"}
    assert produced["config.txt"].endswith(b"strInput='coin;plop'")  # quoted as bosh quotes it
