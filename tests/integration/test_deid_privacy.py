"""Issue 9.5: folder and file names are identifiers too. A run that de-identifies names nothing after them:
not its de-identified outputs' paths, nor its task labels (``show``, ``logs``), nor its ``--json`` report,
nor its RO-Crate. Identifiers are planted in every folder and file name and searched for everywhere."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from dicompose.dicom import synthetic
from dicompose.pipeline.privacy import Redactor, folder_label
from tests.support.cli import BIN

PLANTED = ("DOE_JOHN", "MRN12345", "SMITH JANE", "1961-04-03")


def dicompose(*argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "dicompose"), *argv], capture_output=True, text=True, timeout=300, check=False, env=env
    )


def planted_scans(root: Path) -> Path:
    """Two series in folders and files named after a patient (one name with a space, one a birth date)."""
    for folder, series in (("SMITH JANE", "planted-a"), ("1961-04-03", "planted-b")):
        written = synthetic.write_ct_series(root / "DOE_JOHN_MRN12345" / folder, series, 2, 16, 16)
        for number, path in enumerate(written):
            path.rename(path.with_name(f"DOE_JOHN_{number}.MRN12345.dcm"))
    return root


def leaks(text: str) -> list[str]:
    return [token for token in PLANTED if token in text]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "DICOMPOSE_HOME": str(tmp_path / "home")}


def pipeline(tmp_path: Path) -> Path:
    """normalize (identified data) → deidentify → threshold (de-identified data): every kind of step."""
    path = tmp_path / "deid.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            version: 1
            name: share
            inputs:
              scans: dicom
            steps:
              normalize:
                tool: normalize
                with: {input: inputs.scans, max: 100}
              deid:
                tool: deidentify
                with: {input: steps.normalize.output}
              mask:
                tool: threshold
                with: {input: steps.deid.output, level: 50}
            outputs:
              shareable: steps.deid.output
              masks: steps.mask.output
            """
        )
    )
    return path


@pytest.mark.parametrize("how", ["tool", "pipeline"])
def test_a_deidentifying_run_names_no_input_anywhere(tmp_path: Path, env: dict[str, str], how: str):
    scans, out, workspace = planted_scans(tmp_path / "in"), tmp_path / "out", tmp_path / "ws"
    common = ["--out", str(out), "--workspace", str(workspace), "--engine", "local", "--json"]
    if how == "tool":
        argv = ["run", "deidentify", "--in", str(scans), *common]
    else:
        argv = ["run", str(pipeline(tmp_path)), "--in", f"scans={scans}", *common]
    proc = dicompose(*argv, env=env)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["published"] and not leaks(proc.stdout), leaks(proc.stdout)
    published = [p.relative_to(out) for p in out.rglob("*") if p.is_file()]
    assert len(published) == (4 if how == "tool" else 8) and not leaks(" ".join(map(str, published)))
    if how == "tool":
        assert all(len(p.parts) == 1 and p.name.startswith("deid-") for p in published)  # flat, like the tool
    run_id = report["run"]
    steps = ["deidentify"] if how == "tool" else ["normalize", "deid", "mask"]
    for extra in ([], ["--json"]):
        shown = dicompose("show", run_id, "--workspace", str(workspace), *extra, env=env)
        assert shown.returncode == 0 and not leaks(shown.stdout), leaks(shown.stdout)
    for step in steps:
        logged = dicompose("logs", run_id, step, "--workspace", str(workspace), env=env)
        assert logged.returncode == 0 and "[p-" in logged.stdout and not leaks(logged.stdout), logged.stdout
        logged = dicompose("logs", run_id, step, "--workspace", str(workspace), "--json", env=env)
        assert logged.returncode == 0 and not leaks(logged.stdout), logged.stdout
    crate = tmp_path / "crate"
    exported = dicompose("export-provenance", run_id, "--workspace", str(workspace), "--out", str(crate), env=env)
    assert exported.returncode == 0, exported.stderr
    metadata = (crate / "ro-crate-metadata.json").read_text()
    assert not leaks(metadata), leaks(metadata)
    files = [e for e in json.loads(metadata)["@graph"] if e.get("@type") == "File" and "sha256" in e]
    assert files and all(len(e["sha256"]) == 64 for e in files)  # still identified, by content
    shutil.rmtree(scans / "DOE_JOHN_MRN12345" / "1961-04-03")  # its outputs go stale: reported without names
    proc = dicompose(*argv, env=env)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["stale"] and not leaks(proc.stdout), leaks(proc.stdout)
    aside = Path(report["stale_to"])
    moved = {p.relative_to(aside).as_posix() for p in aside.rglob("*.dcm")}
    named = {Path(p).relative_to(out).as_posix() for p in report["stale"]}
    deidentified = {n for n in moved if Path(n).name.startswith("deid-")}
    assert deidentified and deidentified <= named  # de-identified names are reported as they are
    assert len(named) == len(moved)


def test_the_same_folder_gets_the_same_label_in_every_run(tmp_path: Path, env: dict[str, str]):
    scans = planted_scans(tmp_path / "in")
    labels = []
    for number in range(2):
        argv = ["run", "deidentify", "--in", str(scans), "--out", str(tmp_path / f"o{number}"), "--json"]
        proc = dicompose(*argv, "--workspace", str(tmp_path / f"ws{number}"), "--engine", "local", env=env)
        assert proc.returncode == 0, proc.stderr
        labels.append(sorted(t["label"] for t in json.loads(proc.stdout)["tasks"]))
    assert labels[0] == labels[1] and len(set(labels[0])) == 2


def test_a_run_without_deidentification_keeps_readable_labels(tmp_path: Path, env: dict[str, str]):
    scans = planted_scans(tmp_path / "in")
    argv = ["run", "normalize", "--in", str(scans), "--out", str(tmp_path / "o"), "--json", "-p", "max=10"]
    proc = dicompose(*argv, "--workspace", str(tmp_path / "ws"), "--engine", "local", env=env)
    assert proc.returncode == 0, proc.stderr
    assert {t["label"].split("#")[0] for t in json.loads(proc.stdout)["tasks"]} == {
        "DOE_JOHN_MRN12345/SMITH JANE",
        "DOE_JOHN_MRN12345/1961-04-03",
    }
    assert (tmp_path / "o" / "DOE_JOHN_MRN12345" / "SMITH JANE").is_dir()  # identified outputs keep the layout


def fake_pseudonym(value: str) -> str:
    return "p-" + str(abs(hash(value)))[:12]


def test_the_redactor_replaces_every_name_below_the_inputs_and_nothing_else():
    names = ["/data/in/DOE JOHN/scan 1.dcm", "/data/in/DOE JOHN/x/MRN1.dcm", "/data/in/2.dcm"]
    redact = Redactor(names, ["/data/in"], fake_pseudonym)
    text = redact.text(
        "/data/in/DOE JOHN/scan 1.dcm: cannot read; -v /data/in/DOE JOHN/x/MRN1.dcm:/in/MRN1.dcm:ro "
        "/out/normalized/DOE JOHN/scan 1-normalized.dcm /data/in/2.dcm"
    )
    assert "DOE" not in text and "MRN1" not in text and "scan 1" not in text and "/2.dcm" not in text
    assert text.count("/data/in/") == 3 and "-normalized.dcm" in text and ": cannot read" in text and ":ro" in text
    assert redact.text("/other/place/file.dcm 1 task") == "/other/place/file.dcm 1 task"  # not an input name
    assert redact.value({"a": ["/data/in/2.dcm", 3]}) == {"a": [f"/data/in/{fake_pseudonym('name:2.dcm')}", 3]}


def test_folder_labels_are_keyed_and_keep_the_series_tag():
    label = folder_label("DOE_JOHN/ct#s0123456789", fake_pseudonym)
    assert label.endswith("#s0123456789") and "DOE" not in label and label.startswith("p-")
    assert folder_label("DOE_JOHN/ct#s0123456789", fake_pseudonym) == label


def test_the_crate_of_a_deidentifying_run_passes_the_validator(tmp_path: Path, env: dict[str, str]):
    from tests.support.crate_validator import validate

    scans = planted_scans(tmp_path / "in")
    argv = ["run", str(pipeline(tmp_path)), "--in", f"scans={scans}", "--out", str(tmp_path / "o"), "--json"]
    proc = dicompose(*argv, "--workspace", str(tmp_path / "ws"), "--engine", "local", env=env)
    assert proc.returncode == 0, proc.stderr
    crate = tmp_path / "crate"
    run_id = json.loads(proc.stdout)["run"]
    exported = dicompose("export-provenance", run_id, "--workspace", str(tmp_path / "ws"), "--out", str(crate), env=env)
    assert exported.returncode == 0, exported.stderr
    report = validate(crate)
    assert report["passed"] is True, report.get("issues")
    shutil.rmtree(crate)


def test_a_new_site_key_is_said_once_where_it_was_made(tmp_path: Path, env: dict[str, str]):
    """A run under a fresh DICOMPOSE_HOME (another account, another node) makes a key of its own, and its
    pseudonyms differ from every earlier run's: the command that made the key says so, and where; later runs
    with it say nothing."""
    scans = planted_scans(tmp_path / "in")
    key = tmp_path / "home" / "deid-keys" / "deid.key"
    run = ["run", str(pipeline(tmp_path)), "--in", f"scans={scans}", "--engine", "local"]
    run += ["--workspace", str(tmp_path / "ws")]
    first = dicompose(*run, "--out", str(tmp_path / "out"), env=env)
    assert first.returncode == 0, first.stderr
    notes = [line for line in first.stderr.splitlines() if "de-identification key" in line]
    assert len(notes) == 1 and f"created the site's de-identification key {key};" in notes[0], first.stderr
    assert key.stat().st_mode & 0o777 == 0o600
    again = dicompose(*run, "--out", str(tmp_path / "out2"), env=env)
    tool = dicompose("deidentify", str(scans), "--out", str(tmp_path / "out3"), env=env)
    assert again.returncode == 0 and tool.returncode == 0
    assert "de-identification key" not in again.stderr + tool.stderr
    elsewhere = {**env, "DICOMPOSE_HOME": str(tmp_path / "home2")}
    fresh = dicompose("deidentify", str(scans), "--out", str(tmp_path / "out4"), env=elsewhere)
    assert fresh.returncode == 0 and f"key {tmp_path / 'home2' / 'deid-keys' / 'deid.key'};" in fresh.stderr
