"""Pipelines end to end on the local engine: cache, resume, failures, retries, locks — on every scheduler.

The step tool (tests/data/tools/steptool.py) logs every launch, so tests count launches exactly.
"""

from __future__ import annotations

import fcntl
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from dicompose.dicom import synthetic
from dicompose.errors import UsageError
from dicompose.records.index import Index
from dicompose.records.workspace import Workspace
from tests.support.cli import BIN
from tests.support.components import need, slurm_up
from tests.support.pipelines import cli_run_argv, launches, outputs, pipeline_file, run, write_scans


@pytest.fixture(
    params=["local", pytest.param("dask", marks=pytest.mark.dask), pytest.param("slurm", marks=pytest.mark.slurm)]
)
def scheduler(request: pytest.FixtureRequest) -> str:
    """Every pipeline test runs on every scheduler: the in-process thread pool, a Dask LocalCluster, and SLURM
    worker jobs (dask-jobqueue, a real single-node SLURM; skipped without one unless DICOMPOSE_REQUIRE=slurm)."""
    if request.param == "slurm":
        need("slurm", *slurm_up())
    return str(request.param)


def test_rerun_with_nothing_changed_launches_nothing(tmp_path: Path, scheduler: str):
    write_scans(tmp_path / "scans")
    pipeline = pipeline_file(tmp_path)
    first = run(tmp_path, pipeline, scheduler)
    assert first.ok and first.launches == 4 and len(launches(tmp_path)) == 4
    assert first.scheduler.startswith(scheduler)
    published = outputs(tmp_path)
    assert sorted(published) == [
        "firsts/g0/s0.a",
        "firsts/g0/s1.a",
        "firsts/g1/s0.a",
        "firsts/g1/s1.a",
        "seconds/g0/s0.b",
        "seconds/g0/s1.b",
        "seconds/g1/s0.b",
        "seconds/g1/s1.b",
    ]
    again = run(tmp_path, pipeline, scheduler)
    assert again.ok and again.launches == 0 and len(launches(tmp_path)) == 4
    assert all(t.cached for t in again.tasks)
    assert outputs(tmp_path) == published


def test_changing_one_input_reruns_exactly_its_tasks(tmp_path: Path, scheduler: str):
    write_scans(tmp_path / "scans")
    pipeline = pipeline_file(tmp_path)
    run(tmp_path, pipeline, scheduler)
    ds = synthetic.ct_slice("series-1", 0, 16, 16)
    ds.PixelData = np.zeros(256, "<u2").tobytes()
    synthetic.save(ds, tmp_path / "scans" / "g1" / "s0.dcm")
    report = run(tmp_path, pipeline, scheduler)
    assert report.ok and report.launches == 2
    assert [line.split()[0] for line in launches(tmp_path)[4:]] == ["a", "b"]
    assert all("s0.dcm s1.dcm" in line or "s0.a s1.a" in line for line in launches(tmp_path)[4:])


def test_changing_a_parameter_reruns_that_step_and_its_dependants(tmp_path: Path, scheduler: str):
    write_scans(tmp_path / "scans")
    run(tmp_path, pipeline_file(tmp_path), scheduler)
    downstream_only = run(tmp_path, pipeline_file(tmp_path, b=", tag: v2"), scheduler)
    assert downstream_only.launches == 2 and {line[0] for line in launches(tmp_path)[4:]} == {"b"}
    both = run(tmp_path, pipeline_file(tmp_path, a=", tag: v2", b=", tag: v2"), scheduler)
    assert both.launches == 4


def test_a_failure_blocks_only_its_dependants_and_the_next_run_resumes(tmp_path: Path, scheduler: str):
    write_scans(tmp_path / "scans")
    marker = tmp_path / "broken"
    marker.touch()
    pipeline = pipeline_file(tmp_path, a=f', fail_if: "{marker}"')
    failed = run(tmp_path, pipeline, scheduler)
    assert not failed.ok
    statuses = sorted((t.step, t.status) for t in failed.tasks)
    assert statuses == [("first", "failed"), ("first", "failed"), ("second", "blocked"), ("second", "blocked")]
    bad = next(t for t in failed.tasks if t.status == "failed")
    assert bad.result is not None and "failing because" in bad.result.stderr_tail
    assert (Path(bad.result.log_dir) / "stderr").read_text().startswith("failing because")
    marker.unlink()
    resumed = run(tmp_path, pipeline, scheduler)
    assert resumed.ok and resumed.launches == 4  # nothing had finished; now everything runs once


def test_independent_groups_finish_when_one_fails(tmp_path: Path, scheduler: str):
    write_scans(tmp_path / "scans")
    marker = tmp_path / "broken"
    pipeline = pipeline_file(tmp_path, b=f', fail_if: "{marker}"')
    run(tmp_path, pipeline, scheduler)
    ds = synthetic.ct_slice("series-0", 0, 16, 16)
    ds.PixelData = np.ones(256, "<u2").tobytes()
    synthetic.save(ds, tmp_path / "scans" / "g0" / "s0.dcm")
    marker.touch()
    report = run(tmp_path, pipeline, scheduler)
    assert not report.ok
    assert sorted((t.step, t.status, t.cached) for t in report.tasks) == [
        ("first", "ok", False),
        ("first", "ok", True),
        ("second", "failed", False),
        ("second", "ok", True),
    ]


def test_retries_with_backoff_then_success(tmp_path: Path, scheduler: str):
    write_scans(tmp_path / "scans", groups=1)
    once = tmp_path / "failed-once"
    report = run(tmp_path, pipeline_file(tmp_path, a=f', fail_once: "{once}"', a_extra="retries: 1"), scheduler)
    assert report.ok and report.launches == 3
    first = next(t for t in report.tasks if t.step == "first")
    assert first.attempt == 2


def test_timeout_fails_the_step(tmp_path: Path, scheduler: str):
    write_scans(tmp_path / "scans", groups=1)
    started = time.perf_counter()
    report = run(tmp_path, pipeline_file(tmp_path, a=", sleep: 30", a_extra="timeout: 1s"), scheduler)
    assert time.perf_counter() - started < 20
    first = next(t for t in report.tasks if t.step == "first")
    assert first.status == "failed" and first.result is not None
    assert any("timed out" in p for p in first.result.problems)


def test_incomplete_task_folders_are_discarded_and_rerun(tmp_path: Path, scheduler: str):
    write_scans(tmp_path / "scans", groups=1)
    pipeline = pipeline_file(tmp_path)
    report = run(tmp_path, pipeline, scheduler)
    first = next(t for t in report.tasks if t.step == "first")
    workspace = Workspace(tmp_path / ".dicompose")
    (workspace.task_dir(first.key) / "done").unlink()
    (workspace.task_dir(first.key) / "out" / "junk.a").write_text("half-written")
    again = run(tmp_path, pipeline, scheduler)
    assert again.launches == 1  # the first step again; its identical outputs keep the second cached
    assert not (workspace.task_dir(first.key) / "out" / "junk.a").exists()


def test_a_second_concurrent_run_fails_fast(tmp_path: Path):
    write_scans(tmp_path / "scans", groups=1)
    pipeline = pipeline_file(tmp_path)
    (tmp_path / ".dicompose").mkdir()
    with open(tmp_path / ".dicompose" / "lock", "w") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)
        holder.write("pid 123 on elsewhere\n")
        holder.flush()
        with pytest.raises(UsageError, match="in use by pid 123 on elsewhere"):
            run(tmp_path, pipeline)


def test_a_lock_left_by_a_killed_run_is_taken_over(tmp_path: Path, scheduler: str):
    write_scans(tmp_path / "scans", groups=1)
    (tmp_path / ".dicompose").mkdir()
    lock = str(tmp_path / ".dicompose" / "lock")
    code = (
        f"import fcntl,time; f=open({lock!r},'w'); fcntl.flock(f, fcntl.LOCK_EX); "
        "print('locked', flush=True); time.sleep(60)"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert run(tmp_path, pipeline_file(tmp_path), scheduler).ok


def test_check_and_runs_from_the_cli(tmp_path: Path):
    write_scans(tmp_path / "scans", groups=1)
    pipeline = pipeline_file(tmp_path)
    argv = [str(BIN / "dicompose"), "check", str(pipeline), "--engine", "local"]  # its tools name no image
    proc = subprocess.run(argv, capture_output=True, text=True)
    assert proc.returncode == 0 and "first → second" in proc.stdout
    for _ in range(2):
        proc = subprocess.run(
            cli_run_argv(tmp_path, pipeline, "--json"),
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, proc.stderr
    runs = json.loads(
        subprocess.run(
            [str(BIN / "dicompose"), "runs", "--workspace", str(tmp_path / ".dicompose"), "--json"],
            capture_output=True,
            text=True,
        ).stdout
    )
    assert len(runs) == 2 and runs[0]["started"] <= runs[1]["started"]
    assert [r["launches"] for r in runs] == [2, 0] and all(r["id"] for r in runs)
    shown = json.loads(
        subprocess.run(
            [str(BIN / "dicompose"), "show", runs[0]["id"], "--workspace", str(tmp_path / ".dicompose"), "--json"],
            capture_output=True,
            text=True,
        ).stdout
    )
    assert {a["step"] for a in shown["attempts"]} == {"first", "second"}
    assert all(a["exit_code"] == 0 and a["engine"] == "local" for a in shown["attempts"])
    logs = json.loads(
        subprocess.run(
            [
                str(BIN / "dicompose"),
                "logs",
                runs[0]["id"],
                "first",
                "--workspace",
                str(tmp_path / ".dicompose"),
                "--json",
            ],
            capture_output=True,
            text=True,
        ).stdout
    )
    assert len(logs) == 1 and logs[0]["status"] == "ok"


@pytest.mark.dask
def test_an_existing_dask_cluster_by_address(tmp_path: Path):
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tcp://")
        write_scans(tmp_path / "scans")
        report = run(tmp_path, pipeline_file(tmp_path), address)
        assert report.ok and report.launches == 4 and report.scheduler == f"dask ({address})"
        pids = {line.split()[1] for line in launches(tmp_path)}
        assert len(pids) == 4  # each task its own process (the local engine's subprocess)
        assert run(tmp_path, pipeline_file(tmp_path), address).launches == 0


def test_runs_are_audited_and_comparable_from_the_cli(tmp_path: Path):
    write_scans(tmp_path / "scans", groups=1)
    report = run(tmp_path, pipeline_file(tmp_path))
    ws = str(tmp_path / ".dicompose")
    verified = subprocess.run(
        [str(BIN / "dicompose"), "audit", "verify", "--workspace", ws], capture_output=True, text=True
    )
    assert verified.returncode == 0 and "intact" in verified.stdout
    shown = json.loads(
        subprocess.run(
            [str(BIN / "dicompose"), "audit", "show", "--workspace", ws, "--run", report.run_id, "--json"],
            capture_output=True,
            text=True,
        ).stdout
    )
    actions = [e["action"] for e in shown]
    assert actions.count("read") == 4 and actions.count("execute") == 2 and actions.count("export") == 4
    assert "PHANTOM" not in json.dumps(shown) and "SYNTH-0001" not in json.dumps(shown)
    by_patient = json.loads(
        subprocess.run(
            [str(BIN / "dicompose"), "audit", "show", "--workspace", ws, "--patient-id", "SYNTH-0001", "--json"],
            capture_output=True,
            text=True,
        ).stdout
    )
    assert {e["action"] for e in by_patient} >= {"read"}
    log = tmp_path / ".dicompose" / "audit" / "audit.jsonl"
    data = log.read_bytes().splitlines()
    log.write_bytes(b"\n".join(data[:2] + data[3:]) + b"\n")
    tampered = subprocess.run(
        [str(BIN / "dicompose"), "audit", "verify", "--workspace", ws], capture_output=True, text=True
    )
    assert tampered.returncode == 1 and "line 3" in tampered.stdout
    twin = tmp_path / "twin"
    write_scans(twin / "scans", groups=1)
    run(twin, pipeline_file(twin))
    same = subprocess.run(
        [str(BIN / "dicompose"), "compare", str(tmp_path / "out"), str(twin / "out"), "--json"],
        capture_output=True,
        text=True,
    )
    assert same.returncode == 0 and json.loads(same.stdout)["passed"] is True
    (twin / "out" / "firsts" / "g0" / "s0.a").write_text("changed")
    differ = subprocess.run(
        [str(BIN / "dicompose"), "compare", str(tmp_path / "out"), str(twin / "out")], capture_output=True, text=True
    )
    assert differ.returncode == 1 and "FAIL" in differ.stdout


def test_rerun_uses_the_recorded_recipe_and_reports_identical_outputs(tmp_path: Path):
    from dicompose.pipeline.rerun import rerun

    write_scans(tmp_path / "scans", groups=1)
    report = run(tmp_path, pipeline_file(tmp_path, a=", tag: original"))
    pipeline_file(tmp_path, a=", tag: edited-afterwards")  # the file changes; the recorded recipe does not
    result = rerun(report.run_id, tmp_path / ".dicompose", tmp_path / "again")
    assert result.identical and result.report.launches == 2  # a fresh workspace: really recomputed
    assert "original" in (tmp_path / "again" / "firsts" / "g0" / "s0.a").read_text()
    (tmp_path / "out" / "firsts" / "g0" / "s0.a").write_text("tampered")
    assert not rerun(report.run_id, tmp_path / ".dicompose", tmp_path / "third").identical
    with pytest.raises(UsageError, match="must differ"):
        rerun(report.run_id, tmp_path / ".dicompose", tmp_path / "out")
    with pytest.raises(UsageError, match="is not empty: a rerun recomputes everything"):
        rerun(report.run_id, tmp_path / ".dicompose", tmp_path / "again")  # its cache would prove nothing


def test_verify_from_the_cli(tmp_path: Path):
    write_scans(tmp_path / "scans", groups=1)
    report = run(tmp_path, pipeline_file(tmp_path))
    proc = subprocess.run(
        [
            str(BIN / "dicompose"),
            "verify",
            report.run_id,
            "--engine",
            "local",
            "--workspace",
            str(tmp_path / ".dicompose"),
            "--out",
            str(tmp_path / "v"),
            "--json",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["identical"] is True and result["engine"] == "local" and result["original"] == report.run_id


def test_verify_twice_recomputes_twice(tmp_path: Path):
    """A second verification never answers from the first one's cache: by default it takes a new folder."""
    write_scans(tmp_path / "scans", groups=1)
    report = run(tmp_path, pipeline_file(tmp_path))
    argv = [str(BIN / "dicompose"), "verify", report.run_id, "--engine", "local"]
    argv += ["--workspace", str(tmp_path / ".dicompose"), "--json"]
    for _ in range(2):
        proc = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path)
        assert proc.returncode == 0 and json.loads(proc.stdout)["identical"] is True, proc.stderr
    second = tmp_path / f"{report.run_id}-verify-local-2"
    index = Index(second / ".dicompose" / "index.sqlite")
    try:
        (run_record,) = index.runs()
        assert not any(a["cached"] for a in index.attempts(run_record["id"]))  # computed, not read back
    finally:
        index.close()
