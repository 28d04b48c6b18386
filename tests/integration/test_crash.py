"""Crash tests: SIGKILL ``dicompose run`` during a step, between steps and while publishing, then rerun.

After each crash the rerun must not relaunch finished tasks (launches counted by the step tool's log) and the
final outputs must be byte-identical to those of an uninterrupted run. Local engine: the same runner code
drives every engine, and the Docker engine's cleanup of killed runs is tested in test_docker.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import BIN
from tests.support.pipelines import cli_run_argv, launches, outputs, pipeline_file, write_scans


def start(tmp_path: Path, pipeline: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        cli_run_argv(tmp_path, pipeline, "--workers", "1"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )


def wait_for(condition: Callable[[], bool], seconds: float = 60) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError("condition never became true")


def cli_json(tmp_path: Path, *argv: str) -> Any:
    proc = subprocess.run(
        [str(BIN / "dicompose"), *argv, "--workspace", str(tmp_path / ".dicompose"), "--json"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def finish(tmp_path: Path, pipeline: Path) -> None:
    proc = subprocess.run(cli_run_argv(tmp_path, pipeline), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.fixture
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Outputs of an uninterrupted run."""
    base = tmp_path_factory.mktemp("reference")
    write_scans(base / "scans", groups=3)
    finish(base, pipeline_file(base, a=f', sleep_file: "{base / "sleep"}"', b=f', sleep_file: "{base / "sleep"}"'))
    return outputs(base)


def crash_setup(tmp_path: Path) -> tuple[Path, Path]:
    write_scans(tmp_path / "scans", groups=3)
    sleep = tmp_path / "sleep"
    return pipeline_file(tmp_path, a=f', sleep_file: "{sleep}"', b=f', sleep_file: "{sleep}"'), sleep


def done_markers(tmp_path: Path) -> int:
    return len(list((tmp_path / ".dicompose" / "work").glob("*/*/done")))


def test_kill_during_a_step(tmp_path: Path, reference: dict[str, bytes]):
    pipeline, sleep = crash_setup(tmp_path)
    sleep.write_text("30")
    proc = start(tmp_path, pipeline)
    wait_for(lambda: len(launches(tmp_path)) == 1)  # the first task is running (sleeping)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert done_markers(tmp_path) == 0
    runs = subprocess.run(
        [str(BIN / "dicompose"), "runs", "--workspace", str(tmp_path / ".dicompose"), "--json"],
        capture_output=True,
        text=True,
    )
    assert [r["status"] for r in json.loads(runs.stdout)] == ["interrupted"]  # not "running" forever
    sleep.write_text("0")
    finish(tmp_path, pipeline)
    assert len(launches(tmp_path)) == 1 + 6  # the killed launch, then each task exactly once
    assert outputs(tmp_path) == reference


def test_kill_between_steps(tmp_path: Path, reference: dict[str, bytes]):
    pipeline, sleep = crash_setup(tmp_path)
    sleep.write_text("0.3")
    proc = start(tmp_path, pipeline)
    wait_for(lambda: done_markers(tmp_path) >= 2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    time.sleep(1)  # a step launched just before the kill may still be logging its start (it is orphaned)
    finished = done_markers(tmp_path)
    before = len(launches(tmp_path))
    sleep.write_text("0")
    finish(tmp_path, pipeline)
    relaunched = len(launches(tmp_path)) - before
    assert relaunched == 6 - finished  # finished tasks were not relaunched
    assert outputs(tmp_path) == reference
    # the reused tasks name launches on record: the killed run's, recorded when dispatched, marked stopped
    recorded, named = {}, set()
    for run in cli_json(tmp_path, "runs"):
        shown = cli_json(tmp_path, "show", run["id"])
        recorded.update({launch["id"]: launch for launch in shown["launches"]})
        named |= {a["launch_id"] for a in shown["attempts"] if a["launch_id"]}
    assert named and named <= set(recorded), named - set(recorded)
    killed = [launch for launch in recorded.values() if launch["ended"] is None]
    assert all("stopped with its run" in launch["message"] for launch in killed)


def test_kill_while_publishing(tmp_path: Path, reference: dict[str, bytes]):
    """Outputs are published as each task finishes: a kill mid-publication loses no finished task."""
    pipeline, _sleep = crash_setup(tmp_path)
    proc = start(tmp_path, pipeline, env={"DICOMPOSE_TEST_PUBLISH_DELAY": "5"})
    wait_for(lambda: any((tmp_path / "out").rglob(".*.partial")) if (tmp_path / "out").exists() else False)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    time.sleep(1)  # a step launched just before the kill may still be logging its start (it is orphaned)
    finished = done_markers(tmp_path)
    assert finished >= 1
    partial = list((tmp_path / "out").rglob(".*.partial"))
    assert partial, "the kill did not happen mid-publication"
    before = len(launches(tmp_path))
    finish(tmp_path, pipeline)
    assert len(launches(tmp_path)) - before == 6 - finished  # finished tasks were not relaunched
    assert outputs(tmp_path) == reference
    assert not [p for p in partial if p.exists()]  # the interrupted publication's temp links are gone


def normalize_argv(tmp_path: Path, *, workers: int, out: str = "out", workspace: str = "ws") -> list[str]:
    """``dicompose run normalize`` on ``tmp_path/scans``, local engine, its own workspace."""
    return [
        *[str(BIN / "dicompose"), "run", "normalize", "--in", str(tmp_path / "scans")],
        *["--out", str(tmp_path / out), "--engine", "local", "--workers", str(workers)],
        *["--workspace", str(tmp_path / workspace)],
    ]


def marked_processes(mark: str) -> list[int]:
    import psutil

    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get("DICOMPOSE_TEST_MARK") == mark:
                found.append(proc.pid)
        except psutil.Error:
            continue
    return found


def test_sigkill_leaves_no_orphan_processes(tmp_path: Path):
    """SIGKILL of dicompose while a step's process pool runs: the step and its pool workers all die with it
    (PR_SET_PDEATHSIG down the tree), nothing is re-parented to PID 1."""
    from dicompose.dicom import synthetic

    synthetic.write_ct_series(tmp_path / "scans" / "one", "orphans", 400, 256, 256)
    mark = f"orphans-{os.getpid()}-{time.monotonic_ns()}"
    argv = normalize_argv(tmp_path, workers=2)
    env = {**os.environ, "DICOMPOSE_TEST_MARK": mark}
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    # dicompose, the step, two pool workers (forked from the step)
    wait_for(lambda: len(marked_processes(mark)) >= 4, seconds=120)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 10
    while marked_processes(mark) and time.time() < deadline:
        time.sleep(0.1)
    assert marked_processes(mark) == []


def test_sigterm_keeps_publishes_and_resumes_finished_tasks(tmp_path: Path):
    """SIGTERM mid-pack: the step is stopped, the tasks it finished are sealed and published, one line says
    how many; the next run computes only the rest."""
    import re

    from dicompose.dicom import synthetic

    for number in range(24):
        synthetic.write_ct_series(tmp_path / "scans" / f"s{number:02d}", f"term-{number}", 3, 256, 256)
    argv = normalize_argv(tmp_path, workers=1)  # one launch carries all 24 tasks
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    results = lambda: list((tmp_path / "ws" / "work").glob("*/*/out/.dicompose-result.json"))  # noqa: E731
    wait_for(lambda: len(results()) >= 4, seconds=120)
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and "Traceback" not in err
    match = re.search(r"interrupted after (\d+) of 24 tasks", err)
    assert match, err
    finished = int(match.group(1))
    assert finished >= 4
    assert len(list((tmp_path / "out").rglob("*-normalized.dcm"))) == 3 * finished
    again = subprocess.run([*argv, "--json"], capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert sum(1 for t in report["tasks"] if not t["cached"]) == 24 - finished
    assert len(list((tmp_path / "out").rglob("*-normalized.dcm"))) == 72


def test_sigkill_mid_pack_keeps_the_tasks_the_tool_finished(tmp_path: Path):
    """SIGKILL while one launch carries many tasks: the tasks whose result file the tool wrote are sealed by
    the next run, not computed again; the outputs equal an uninterrupted run's."""
    from dicompose.dicom import synthetic

    for number in range(24):
        synthetic.write_ct_series(tmp_path / "scans" / f"s{number:02d}", f"kill-{number}", 3, 256, 256)

    def argv(out: str, workspace: str) -> list[str]:
        return [*normalize_argv(tmp_path, workers=1, out=out, workspace=workspace), "--json"]

    proc = subprocess.Popen(argv("out", "ws"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = lambda: list((tmp_path / "ws" / "work").glob("*/*/out/.dicompose-result.json"))  # noqa: E731
    wait_for(lambda: len(results()) >= 4, seconds=120)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = len(results())
    again = subprocess.run(argv("out", "ws"), capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    launched = sum(len(launch["tasks"]) for launch in json.loads(again.stdout)["launch_log"])
    assert launched <= 24 - finished  # the finished ones were sealed, not recomputed
    reference = subprocess.run(argv("reference", "ws-reference"), capture_output=True, text=True)
    assert reference.returncode == 0, reference.stderr
    mine = {p.relative_to(tmp_path / "out"): p.read_bytes() for p in (tmp_path / "out").rglob("*.dcm")}
    theirs = {p.relative_to(tmp_path / "reference"): p.read_bytes() for p in (tmp_path / "reference").rglob("*.dcm")}
    assert len(mine) == 72 and mine == theirs


def test_a_timeout_kills_the_whole_step(tmp_path: Path):
    """A step that starts processes of its own (a shell running ``sleep``): a timeout kills them all."""
    from dicompose.dicom import synthetic

    synthetic.write_ct_series(tmp_path / "scans", "timeout", 2, 8, 8)
    tool = tmp_path / "sleepy.json"
    tool.write_text(
        json.dumps(
            {
                "name": "sleepy",
                "tool-version": "1",
                "schema-version": "0.5",
                "description": "sleeps in a child process, then copies",
                "command-line": "sh -c 'sleep 30 & wait; cp \"$@\" .' sh [INPUT]",
                "inputs": [{"id": "input", "name": "input", "type": "File", "list": True, "value-key": "[INPUT]"}],
                "output-files": [{"id": "copies", "name": "copies", "path-template": "*.dcm", "list": True}],
            }
        )
    )
    mark = f"timeout-{os.getpid()}-{time.monotonic_ns()}"
    argv = [
        *[str(BIN / "dicompose"), "run", str(tool), "--in", str(tmp_path / "scans"), "--out", str(tmp_path / "out")],
        *["--engine", "local", "--timeout", "1", "--workspace", str(tmp_path / "ws")],
    ]
    proc = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, "DICOMPOSE_TEST_MARK": mark})
    assert proc.returncode == 1 and "timed out" in proc.stderr
    assert marked_processes(mark) == []  # no sleep left behind
