"""The record commands read well at 80 and 120 columns, and ``dicompose gc`` frees what no kept run needs.

Real runs of the demo pipeline on the local engine (a few seconds each), then the commands a user types
after them: ``runs``, ``show``, ``logs`` (every step), ``audit show`` with a bad date, ``gc``, help pages.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from dicompose.tools.samples import demo_pipeline, sample_data_folder
from tests.support.cli import BIN

RUN_ID = re.compile(r"\b\d{8}-\d{6}-[0-9a-f]{6}\b")


def dicompose(*argv: str, home: Path, columns: int = 120, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DICOMPOSE_HOME": str(home), "COLUMNS": str(columns), "TERM": "dumb"}
    proc = subprocess.run([str(BIN / "dicompose"), *argv], capture_output=True, text=True, env=env, cwd=cwd)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def run_demo(tmp_path: Path, pipeline: Path, out: str) -> str:
    argv = ["run", str(pipeline), "--in", str(sample_data_folder()), "--out", str(tmp_path / out)]
    proc = dicompose(*argv, "--engine", "local", "--workspace", str(tmp_path / "ws"), home=tmp_path / "home")
    assert proc.returncode == 0, proc.stderr
    found = RUN_ID.findall(proc.stdout)
    assert found, proc.stdout
    return found[-1]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """Two runs of one pipeline file (the second with other parameters), one of the demo itself."""
    tmp_path = tmp_path_factory.mktemp("reading")
    own = tmp_path / "pipeline.yaml"
    own.write_text(demo_pipeline().read_text().replace("max: 100", "max: 50"))
    first = run_demo(tmp_path, own, "a")
    own.write_text(demo_pipeline().read_text().replace("max: 100", "max: 70"))
    second = run_demo(tmp_path, own, "b")
    demo = run_demo(tmp_path, demo_pipeline(), "c")
    return tmp_path, [first, second, demo]


@pytest.mark.parametrize("columns", [80, 120])
def test_runs_fits_the_terminal_and_never_cuts_a_run_id(workspace: tuple[Path, list[str]], columns: int):
    tmp_path, run_ids = workspace
    proc = dicompose("runs", "--workspace", str(tmp_path / "ws"), home=tmp_path / "home", columns=columns)
    assert proc.returncode == 0
    lines = proc.stdout.splitlines()
    assert all(len(line) <= columns for line in lines), proc.stdout
    assert all(any(run_id in line for line in lines) for run_id in run_ids), proc.stdout
    assert ("engine" in proc.stdout) == (columns >= 100)


@pytest.mark.parametrize("columns", [80, 120])
def test_show_says_launches_per_step_and_fits(workspace: tuple[Path, list[str]], columns: int):
    tmp_path, run_ids = workspace
    proc = dicompose("show", run_ids[-1], "--workspace", str(tmp_path / "ws"), home=tmp_path / "home", columns=columns)
    assert proc.returncode == 0
    assert re.search(r"\d+ launch(es)?: normalize \d+ \(\d+ tasks?\), mask \d+ \(\d+ tasks?\)", proc.stdout), (
        proc.stdout
    )
    table = [line for line in proc.stdout.splitlines() if line.startswith(("┃", "│", "┏", "└"))]
    assert table and all(len(line) <= columns for line in table), proc.stdout


def test_logs_without_a_step_shows_every_step(workspace: tuple[Path, list[str]]):
    tmp_path, run_ids = workspace
    proc = dicompose("logs", run_ids[-1], "--workspace", str(tmp_path / "ws"), "--json", home=tmp_path / "home")
    assert proc.returncode == 0, proc.stderr
    assert {entry["step"] for entry in json.loads(proc.stdout)} == {"normalize", "mask"}


def test_audit_show_refuses_a_date_it_cannot_compare(workspace: tuple[Path, list[str]]):
    tmp_path, _ = workspace
    ws = str(tmp_path / "ws")
    proc = dicompose("audit", "show", "--workspace", ws, "--since", "yesterday", home=tmp_path / "home")
    assert proc.returncode == 2 and "--since 'yesterday'" in proc.stderr and "ISO" in proc.stderr
    proc = dicompose("audit", "show", "--workspace", ws, "--since", "2000-01-01", "--json", home=tmp_path / "home")
    assert proc.returncode == 0 and json.loads(proc.stdout)


def test_help_shows_flags_without_a_type_and_arguments_in_capitals(tmp_path: Path):
    proc = dicompose("run", "--help", home=tmp_path, columns=100)
    assert proc.returncode == 0
    assert "<bool>" not in proc.stdout and "Usage: dicompose run [OPTIONS] TARGET" in proc.stdout
    assert "--dry-run" in proc.stdout and "<path>" in proc.stdout  # options with values keep their type


def test_gc_frees_older_runs_and_keeps_the_latest_cache(workspace: tuple[Path, list[str]], tmp_path: Path):
    source, run_ids = workspace
    ws = tmp_path / "ws"
    subprocess.run(["cp", "-a", str(source / "ws"), str(ws)], check=True)
    home = source / "home"
    before = sorted(p.name for p in (ws / "work").glob("*/*"))
    dry = dicompose("gc", "--workspace", str(ws), "--dry-run", "--json", home=home)
    plan = json.loads(dry.stdout)
    assert plan["dry_run"] and plan["collected_runs"] == [run_ids[0]] and plan["task_folders"] > 0
    assert sorted(p.name for p in (ws / "work").glob("*/*")) == before  # a dry run removes nothing
    done = dicompose("gc", "--workspace", str(ws), home=home)
    assert done.returncode == 0 and re.search(r"freed [\d.]+ MB", done.stdout), done.stdout
    after = sorted(p.name for p in (ws / "work").glob("*/*"))
    assert len(after) == len(before) - plan["task_folders"]
    shown = dicompose("runs", "--workspace", str(ws), "--json", home=home)
    collected = {run["id"]: "collected" in run["details"] for run in json.loads(shown.stdout)}
    assert collected == {run_ids[0]: True, run_ids[1]: False, run_ids[2]: False}
    # the kept runs' cache still serves: rerunning the latest of each pipeline launches nothing
    own = source / "pipeline.yaml"
    for pipeline, out in ((own, "b"), (demo_pipeline(), "c")):
        argv = ["run", str(pipeline), "--in", str(sample_data_folder()), "--out", str(source / out)]
        proc = dicompose(*argv, "--engine", "local", "--workspace", str(ws), home=home)
        assert proc.returncode == 0 and "in 0 launches" in proc.stdout, proc.stdout
    # the outputs published by the collected run are still in its --out
    assert list((source / "a").rglob("*.dcm"))


def test_hints_work_as_given_and_prefixes_must_be_unique(workspace: tuple[Path, list[str]]):
    tmp_path, run_ids = workspace
    ws = str(tmp_path / "ws")
    proc = dicompose("show", run_ids[0][:9], "--workspace", ws, home=tmp_path / "home")  # the date: all three
    assert proc.returncode == 2 and "matches 3 runs" in proc.stderr and run_ids[0] in proc.stderr, proc.stderr
    proc = dicompose("show", "nonesuch", "--workspace", ws, home=tmp_path / "home")
    assert proc.returncode == 2 and f"see dicompose runs --workspace {ws}" in proc.stderr, proc.stderr


def test_gc_keeps_the_logs_of_a_failed_attempt_of_a_kept_run(tmp_path: Path):
    from tests.support.descriptors import snippet_tool

    tool = snippet_tool(tmp_path / "fails.json", "fails", "raise SystemExit('boom: bad day')", "out.txt", "fails")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("a")
    home, ws = tmp_path / "home", tmp_path / "ws"
    argv = ["run", str(tool), "-p", f"input={tmp_path / 'in' / 'a.txt'}", "--out", str(tmp_path / "out")]
    proc = dicompose(*argv, "--engine", "local", "--workspace", str(ws), home=home)
    assert proc.returncode == 1
    run_id = RUN_ID.findall(proc.stdout)[-1]
    assert dicompose("gc", "--workspace", str(ws), home=home).returncode == 0
    logs = dicompose("logs", run_id, "--workspace", str(ws), "--json", home=home)
    assert any("boom: bad day" in entry["stderr"] for entry in json.loads(logs.stdout)), logs.stdout


@pytest.mark.parametrize("how", ["tool", "run", "missing"])
def test_a_refused_run_leaves_no_output_folder_and_no_record(tmp_path: Path, how: str):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("not DICOM")
    source = str(tmp_path / ("nonexistent" if how == "missing" else "notes"))
    home, ws = tmp_path / "home", tmp_path / "ws"
    if how == "tool":
        proc = dicompose("normalize", source, "--out", str(tmp_path / "out"), home=home)
    else:
        argv = ["run", "normalize", "--in", source, "--out", str(tmp_path / "out"), "--engine", "local"]
        proc = dicompose(*argv, "--workspace", str(ws), home=home)
    assert proc.returncode == 2 and ("no DICOM files found" in proc.stderr or "no such file" in proc.stderr)
    assert not (tmp_path / "out").exists()
    if how != "tool" and (ws / "index.sqlite").exists():
        assert json.loads(dicompose("runs", "--workspace", str(ws), "--json", home=home).stdout) == []


@pytest.mark.parametrize("columns", [80, 130])
def test_audit_show_never_cuts_the_pseudonym_it_shows(workspace: tuple[Path, list[str]], columns: int):
    """What audit show prints as a patient is what --patient takes: pasted back, it finds the entries."""
    tmp_path, _ = workspace
    ws, home = str(tmp_path / "ws"), tmp_path / "home"
    shown = dicompose("audit", "show", "--workspace", ws, "--action", "read", home=home, columns=columns).stdout
    patients = set(re.findall(r"\bp-[0-9a-f]{6,}\b", shown))
    assert patients, shown
    full = {
        e["object"]["patient"]
        for e in json.loads(dicompose("audit", "show", "--workspace", ws, "--json", home=home).stdout)
        if e["object"].get("patient")
    }
    assert patients <= full  # none cut
    pasted = dicompose("audit", "show", "--workspace", ws, "--patient", sorted(patients)[0], "--json", home=home)
    assert json.loads(pasted.stdout)
    none = dicompose("audit", "show", "--workspace", ws, "--since", "2999-01-01", home=home, columns=columns)
    assert none.returncode == 0 and "no entries match" in none.stdout


def test_why_a_task_was_partial_is_said_by_show_logs_and_a_cached_rerun(tmp_path: Path):
    """A partial task's failed files are recorded: `show` and `logs` say them after the run, and a rerun that
    takes the task from the cache says them again, not only a bare 'partial'."""
    from dicompose.dicom import synthetic

    files = synthetic.write_ct_series(tmp_path / "scans", "partial", 3, 16, 16)
    files[1].write_bytes(files[1].read_bytes()[:-100])  # pixel data cut short
    argv = ["run", "normalize", "--in", str(tmp_path / "scans"), "--out", str(tmp_path / "out"), "--engine", "local"]
    argv += ["--workspace", str(tmp_path / "ws"), "-p", "min=0", "-p", "max=1"]
    home = tmp_path / "home"
    first = dicompose(*argv, home=home)
    assert first.returncode == 1 and "partial" in first.stdout + first.stderr
    run_id = RUN_ID.findall(first.stdout)[-1]
    shown = dicompose("show", run_id, "--workspace", str(tmp_path / "ws"), home=home)
    assert f"{files[1]}: file truncated" in " ".join(shown.stdout.split()), shown.stdout
    logged = json.loads(dicompose("logs", run_id, "--workspace", str(tmp_path / "ws"), "--json", home=home).stdout)
    assert any("file truncated" in (entry["message"] or "") for entry in logged)
    again = dicompose(*argv, home=home)
    said = " ".join((again.stdout + again.stderr).split())
    assert again.returncode == 1 and "(cached)" in said and f"{files[1]}: file truncated" in said, said
