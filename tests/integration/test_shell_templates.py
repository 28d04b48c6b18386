"""Boutiques command lines with shell syntax run under ``sh -c`` with every value a positional parameter
(issue 10, point 2): redirections and ``&&`` work as in ``bosh exec launch``, and no value ever becomes shell
syntax, whatever it holds, on the local engine and in a hardened Docker container alike."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from dicompose.descriptors.shell import shell_argv
from dicompose.dicom import synthetic
from tests.support.cli import BIN
from tests.support.components import need

HOSTILE = [
    "$(touch PWNED)",
    "`touch PWNED`",
    "it's; touch PWNED",
    'say "hi" && touch PWNED',
    "two\nlines > PWNED",
    "*",
    "$HOME ${PATH}",
]


def descriptor(image: dict[str, str] | None = None) -> dict[str, object]:
    doc: dict[str, object] = {
        "name": "shelly",
        "tool-version": "1.0",
        "description": "joins its inputs and says something, with shell redirections",
        "schema-version": "0.5",
        "command-line": 'cat [FILES] > joined.bin && echo [TEXT] > said.txt && echo "quoted: [TEXT]" >> said.txt',
        "inputs": [
            {"id": "files", "name": "files", "type": "File", "list": True, "value-key": "[FILES]"},
            {"id": "text", "name": "text", "type": "String", "value-key": "[TEXT]"},
        ],
        "output-files": [
            {"id": "joined", "name": "joined", "path-template": "joined.bin"},
            {"id": "said", "name": "said", "path-template": "said.txt"},
        ],
    }
    if image is not None:
        doc["container-image"] = image
    return doc


def run_tool(tmp_path: Path, doc: dict[str, object], text: str, engine: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "tool.json").write_text(json.dumps(doc))
    scans = tmp_path / "scans"
    if not scans.exists():
        synthetic.write_ct_series(scans, "shell", 2, 8, 8)
    argv = [str(BIN / "dicompose"), "run", str(tmp_path / "tool.json"), "--in", str(scans)]
    argv += ["--out", str(tmp_path / "out"), "--workspace", str(tmp_path / "ws"), "-p", f"text={text}"]
    return subprocess.run([*argv, "--engine", engine, "--json"], capture_output=True, text=True, cwd=tmp_path)


def said(tmp_path: Path) -> str:
    (found,) = list((tmp_path / "out").rglob("said.txt"))
    return found.read_text()


@pytest.mark.parametrize("text", HOSTILE)
def test_values_stay_values_on_the_local_engine(tmp_path: Path, text: str):
    proc = run_tool(tmp_path, descriptor(), text, "local")
    assert proc.returncode == 0, proc.stderr
    assert said(tmp_path) == f"{text}\nquoted: {text}\n"
    assert not list(tmp_path.rglob("PWNED"))
    joined = next((tmp_path / "out").rglob("joined.bin")).read_bytes()
    inputs = sorted((tmp_path / "scans").rglob("*.dcm"))
    assert joined == b"".join(p.read_bytes() for p in inputs)


def test_values_stay_values_in_a_hardened_container(tmp_path: Path):
    from dicompose.engines.registry import engine_named

    info = engine_named("docker").info()
    need("docker", info.available, info.why)
    inspect = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Id}}", "dicompose/normalize:0.1.0"],
        capture_output=True,
        text=True,
    )
    need("docker", inspect.returncode == 0, "image dicompose/normalize:0.1.0 not built (dicompose build normalize)")
    image = {"type": "docker", "image": "dicompose/normalize:0.1.0", "container-hash": inspect.stdout.strip()}
    text = "\n".join(HOSTILE)
    proc = run_tool(tmp_path, descriptor(image), text, "docker")
    assert proc.returncode == 0, proc.stderr
    assert said(tmp_path) == f"{text}\nquoted: {text}\n"
    assert not list(tmp_path.rglob("PWNED"))
    dry = subprocess.run(
        [
            str(BIN / "dicompose"),
            "run",
            str(tmp_path / "tool.json"),
            "--in",
            str(tmp_path / "scans"),
            "--out",
            str(tmp_path / "out2"),
            "-p",
            "text=x",
            "--engine",
            "docker",
            "--dry-run",
        ],
        capture_output=True,
        text=True,
    )
    assert dry.returncode == 0 and "--entrypoint /bin/sh" in dry.stdout and "--network none" in dry.stdout


def test_the_script_refers_to_values_whatever_the_quoting_around_them():
    argv = shell_argv("a [X] '[X]' \"[X]\" b'[X]'c [L] [NONE]", {"[X]": ["v w"], "[L]": ["1", "2"], "[NONE]": []})
    assert argv[:2] == ["/bin/sh", "-c"] and argv[3] == "sh"
    assert argv[2] == 'a "${1}" \'\'"${2}"\'\' "${3}" b\'\'"${4}"\'\'c "${5}" "${6}" '
    assert argv[4:] == ["v w", "v w", "v w", "v w", "1", "2"]
    echoed = subprocess.run([*argv[:2], argv[2].replace("a ", "printf '%s|' ", 1), *argv[3:]], capture_output=True)
    assert echoed.stdout.decode() == "v w|v w|v w|bv wc|1|2|"


@pytest.mark.parametrize(
    ("template", "value", "printed"),
    [
        ("printf '%s|' \"$(printf '%s' [A])\"", "x   y * z", "x   y * z|"),  # a substitution inside "..."
        ("printf '%s|' \"pre $(echo [A]) post\"", "a  b", "pre a  b post|"),
        ("printf '%s|' `printf '%s' [A]`", "q", "q|"),
        ('printf \'%s|\' "$(echo "in [A]")"', "m  n", "in m  n|"),
    ],
)
def test_a_command_substitution_is_unquoted_again(tmp_path: Path, template: str, value: str, printed: str):
    """Inside "$(...)" the quoting starts afresh: a value there is quoted again, not word-split or globbed."""
    (tmp_path / "zz-globbed").touch()
    proc = subprocess.run(shell_argv(template, {"[A]": [value]}), capture_output=True, text=True, cwd=tmp_path)
    assert proc.stdout == printed
