"""``--scheduler slurm`` on a real single-node SLURM (scripts/slurm-up.sh; CI: DICOMPOSE_REQUIRE=slurm).

Pilot jobs, not one sbatch per task; the same outputs as the local scheduler; nothing of ours left in the queue
after a run, after Ctrl-C, or after a worker job is cancelled under it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from dicompose.tools.samples import demo_pipeline, sample_data_folder
from tests.support.cli import BIN
from tests.support.components import need, slurm_up
from tests.support.descriptors import snippet_tool


@pytest.fixture(autouse=True)
def slurm() -> None:
    need("slurm", *slurm_up())


def ours(run_id: str) -> list[str]:
    """Jobs of this run still in the queue (worker jobs are named after the run)."""
    proc = subprocess.run(["squeue", "-h", "-n", f"dicompose-{run_id}", "-o", "%i"], capture_output=True, text=True)
    return proc.stdout.split()


def dicompose(tmp_path: Path, *argv: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DICOMPOSE_HOME": str(tmp_path / "home")}
    return subprocess.run(
        [str(BIN / "dicompose"), *argv], capture_output=True, text=True, env=env, cwd=tmp_path, **kwargs
    )  # type: ignore[call-overload]


def errors(stderr: str) -> list[str]:
    """stderr without the run's opening lines (its engine, scheduler and images, said when it starts)."""
    opening = ("engine: ", "image: ", "note: ")
    return [line for line in stderr.strip().splitlines() if not line.startswith(opening)]


def run_id_of(text: str) -> str:
    import re

    found = re.findall(r"\b\d{8}-\d{6}-[0-9a-f]{6}\b", text)
    assert found, text
    return found[-1]


def test_the_demo_on_slurm_gives_the_local_outputs_with_two_worker_jobs(tmp_path: Path):
    common = ["run", str(demo_pipeline()), "--in", str(sample_data_folder()), "--engine", "local"]
    local = dicompose(tmp_path, *common, "--out", "local", "--workspace", "ws-local")
    assert local.returncode == 0, local.stderr
    proc = dicompose(
        tmp_path, *common, "--out", "slurm", "--workspace", "ws", "--scheduler", "slurm", "--slurm", "jobs=2"
    )
    assert proc.returncode == 0, proc.stderr
    run_id = run_id_of(proc.stdout)
    assert "scheduler: slurm (2 worker jobs × 1 core)" in " ".join((proc.stdout + proc.stderr).split())
    mine = sorted(p.relative_to(tmp_path / "slurm") for p in (tmp_path / "slurm").rglob("*.dcm"))
    theirs = sorted(p.relative_to(tmp_path / "local") for p in (tmp_path / "local").rglob("*.dcm"))
    assert mine == theirs and len(mine) == 10
    for relative in mine:  # byte-identical: the scheduler changes where, never what
        assert (tmp_path / "slurm" / relative).read_bytes() == (tmp_path / "local" / relative).read_bytes()
    jobs = list((tmp_path / "ws" / "slurm-logs" / run_id).glob("*.err"))
    assert 1 <= len(jobs) <= 2  # pilot jobs: never one sbatch per task (4 tasks here)
    assert ours(run_id) == []  # the worker jobs ended with the run
    for log in jobs:  # each ended by itself when asked, not by a signal: no tracebacks, no CANCELLED line
        said = log.read_text()
        assert said.rstrip().endswith("End worker") and "CANCELLED" not in said and "Traceback" not in said, said
    shown = dicompose(tmp_path, "show", run_id, "--workspace", "ws")
    ids = sorted(log.stem.rsplit("-", 1)[-1] for log in jobs)
    said = " ".join(shown.stdout.split())
    assert f"slurm worker jobs: {', '.join(ids)}; their logs: {tmp_path / 'ws' / 'slurm-logs' / run_id}" in said
    assert json.loads(dicompose(tmp_path, "show", run_id, "--workspace", "ws", "--json").stdout)["slurm"]["jobs"] == ids


def test_a_plan_and_a_rerun_with_nothing_to_do_submit_no_worker_job(tmp_path: Path):
    """--dry-run names the scheduler and has sbatch --test-only judge the worker jobs (a partition that does not
    exist is refused in one line), submitting none; a rerun whose tasks are all cached submits none either."""
    common = ["run", str(demo_pipeline()), "--in", str(sample_data_folder()), "--engine", "local", "--out", "out"]
    common += ["--workspace", "ws", "--scheduler", "slurm"]
    plan = dicompose(tmp_path, *common, "--dry-run")
    assert plan.returncode == 0, plan.stderr
    assert "scheduler: slurm (1 worker job × 1 core); 1 core" in " ".join(plan.stdout.split())
    assert not (tmp_path / "ws" / "slurm-logs").exists()
    refused = dicompose(tmp_path, *common, "--dry-run", "--slurm", "partition=nosuch")
    assert refused.returncode == 2 and "sbatch refuses the worker jobs" in refused.stderr, refused.stderr
    assert "invalid partition" in refused.stderr and refused.stderr.count("\n") == 1
    first = dicompose(tmp_path, *common)
    assert first.returncode == 0, first.stderr
    again = dicompose(tmp_path, *common)
    assert again.returncode == 0, again.stderr
    rerun = run_id_of(again.stdout)
    assert again.stdout.count(" cached; 0 launches") == 2, again.stdout  # both steps
    assert not (tmp_path / "ws" / "slurm-logs" / rerun).exists()  # no worker job was submitted for it
    argv = [str(BIN / "dicompose"), "check", str(demo_pipeline()), "--engine", "local", "--scheduler", "slurm"]
    check = subprocess.run(
        [*argv, "--slurm", "partition=nosuch"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "DICOMPOSE_HOME": str(tmp_path / "home")},
    )
    assert check.returncode != 0 and "sbatch refuses the worker jobs (invalid partition" in check.stdout + check.stderr


def test_ctrl_c_cancels_the_worker_jobs(tmp_path: Path):
    (tmp_path / "in").mkdir()
    for i in range(4):
        (tmp_path / "in" / f"{i}.txt").write_text(str(i))
    tool = snippet_tool(
        tmp_path / "slow.json",
        "slow",
        "import time, sys; time.sleep(60); open('out.txt', 'w').write('x')",
        "out.txt",
        "slow",
    )
    argv = [str(BIN / "dicompose"), "run", str(tool), "-p", f"input={tmp_path / 'in' / '0.txt'}", "--out", "out"]
    argv += ["--engine", "local", "--scheduler", "slurm", "--slurm", "jobs=1", "--workspace", "ws"]
    env = {**os.environ, "DICOMPOSE_HOME": str(tmp_path / "home")}
    proc = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    run_dirs: list[Path] = []
    while time.monotonic() < deadline:  # until the worker job runs the launch
        run_dirs = list((tmp_path / "ws" / "slurm-logs").glob("*"))
        if (
            run_dirs
            and ours(run_dirs[0].name)
            and list((tmp_path / "ws").glob("launches/*")) + list((tmp_path / "ws").glob("work/*/*"))
        ):
            break
        time.sleep(0.2)
    assert run_dirs, "the run never started its worker jobs"
    run_id = run_dirs[0].name
    time.sleep(1.0)
    interrupted = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted after" in err and "Traceback" not in err
    assert time.monotonic() - interrupted < 10
    for _ in range(15):  # cancelled at once (Dask's own close left them running for up to 14 s)
        if not ours(run_id):
            break
        time.sleep(0.2)
    assert ours(run_id) == []
    left = subprocess.run(["pgrep", "-f", "time.sleep(60)"], capture_output=True, text=True).stdout.split()
    assert left == [], f"the step's process survived its job: {left}"


def test_a_worker_job_killed_under_a_run_loses_no_finished_work(tmp_path: Path):
    """scancel of one of two worker jobs mid-run: its launches are retried elsewhere (or by the next run);
    whatever is published is whole, the rerun completes the rest, and the queue is empty afterwards."""
    from dicompose.dicom import synthetic

    for series in range(4):
        synthetic.write_ct_series(tmp_path / "scans" / f"s{series}", f"kill-{series}", 1, 8, 8)
    code = (
        "import pathlib, sys, time; time.sleep(4); "
        "[pathlib.Path(pathlib.Path(f).stem + '.out').write_text(pathlib.Path(f).name) for f in sys.argv[1:]]"
    )
    tool = snippet_tool(tmp_path / "slow.json", "slowcopy", code, "*.out", "slow copy")
    doc = json.loads(tool.read_text())
    doc["output-files"][0]["list"] = True
    tool.write_text(json.dumps(doc))
    argv = [str(BIN / "dicompose"), "run", str(tool), "--in", str(tmp_path / "scans"), "--out", "out"]
    argv += ["--engine", "local", "--scheduler", "slurm", "--slurm", "jobs=2", "--workspace", "ws"]
    env = {**os.environ, "DICOMPOSE_HOME": str(tmp_path / "home")}
    proc = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline, killed = time.monotonic() + 60, ""
    while time.monotonic() < deadline and not killed:
        for folder in (tmp_path / "ws" / "slurm-logs").glob("*"):
            jobs = ours(folder.name)
            if len(jobs) == 2 and list((tmp_path / "ws").glob("work/*/*/out")):  # launches are running
                time.sleep(1.0)
                subprocess.run(["scancel", jobs[0]], check=True)
                killed = jobs[0]
        time.sleep(0.2)
    assert killed, "the run never had two worker jobs running"
    _out, err = proc.communicate(timeout=180)
    assert "Traceback" not in err
    again = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    assert again.returncode == 0, again.stderr
    published = sorted(p.relative_to(tmp_path / "out") for p in (tmp_path / "out").rglob("*.out"))
    assert published == [Path(f"s{series}") / "slice_0000.out" for series in range(4)]  # all four, in the end
    assert all(p.read_text() == "slice_0000.dcm" for p in (tmp_path / "out").rglob("*.out"))  # whole files only
    run_ids = [p.name for p in (tmp_path / "ws" / "slurm-logs").glob("*")]
    assert all(ours(run_id) == [] for run_id in run_ids)


def test_a_step_s_cores_and_memory_reach_the_job_that_runs_it(tmp_path: Path):
    """A step asking 2 CPUs and 1 GB on worker jobs of 2 cores and 2 GB: its launch runs in a job that SLURM gave
    2 CPUs and 2 GB (the job's own variables, seen by the step), with 2 processes granted."""
    from dicompose.dicom import synthetic

    synthetic.write_ct_series(tmp_path / "in", "res", 1, 8, 8)
    code = (
        "import json, os; json.dump({k: os.environ.get(k) for k in ('SLURM_JOB_ID', 'SLURM_CPUS_PER_TASK', "
        "'SLURM_MEM_PER_NODE', 'DICOMPOSE_WORKERS')}, open('env.json', 'w'))"
    )
    snippet_tool(tmp_path / "env.json", "env", code, "env.json", "the job's view")
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text(
        "version: 1\nname: res\ninputs:\n  scans: dicom\nsteps:\n  env:\n"
        f"    tool: {tmp_path / 'env.json'}\n    with: {{input: inputs.scans}}\n"
        "    resources: {cpus: 2, memory: 1g}\noutputs:\n  env: steps.env.output\n"
    )
    proc = dicompose(
        tmp_path,
        *("run", str(pipeline), "--in", str(tmp_path / "in"), "--out", "out", "--engine", "local"),
        *("--scheduler", "slurm", "--slurm", "cores=2", "--slurm", "memory=2GB", "--workspace", "ws"),
    )
    assert proc.returncode == 0, proc.stderr
    (seen,) = (tmp_path / "out").rglob("env.json")
    env = json.loads(seen.read_text())
    assert env["SLURM_JOB_ID"] and env["SLURM_CPUS_PER_TASK"] == "2" and env["DICOMPOSE_WORKERS"] == "2"
    assert int(env["SLURM_MEM_PER_NODE"]) >= 1024  # MB: the job's memory holds the step's request


def test_the_only_worker_job_killed_is_replaced_and_the_run_finishes_leaving_no_worker(tmp_path: Path):
    """scancel of the run's only worker job mid-launch (as a walltime would end it): a new job is submitted,
    the lost launch runs there, the run ends ok; afterwards no Dask worker process of the run is left."""
    from dicompose.dicom import synthetic

    for series in range(2):
        synthetic.write_ct_series(tmp_path / "scans" / f"s{series}", f"only-{series}", 1, 8, 8)
    code = (
        "import pathlib, sys, time; time.sleep(6); "
        "[pathlib.Path(pathlib.Path(f).stem + '.out').write_text('x') for f in sys.argv[1:]]"
    )
    tool = snippet_tool(tmp_path / "slow.json", "slowonly", code, "*.out", "slow")
    doc = json.loads(tool.read_text())
    doc["output-files"][0]["list"] = True
    tool.write_text(json.dumps(doc))
    argv = [str(BIN / "dicompose"), "run", str(tool), "--in", str(tmp_path / "scans"), "--out", "out"]
    argv += ["--engine", "local", "--scheduler", "slurm", "--slurm", "jobs=1", "--workspace", "ws"]
    env = {**os.environ, "DICOMPOSE_HOME": str(tmp_path / "home")}
    proc = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline, killed, run_id = time.monotonic() + 60, "", ""
    while time.monotonic() < deadline and not killed:
        for folder in (tmp_path / "ws" / "slurm-logs").glob("*"):
            run_id, jobs = folder.name, ours(folder.name)
            if len(jobs) == 1 and list((tmp_path / "ws").glob("work/*/*/out")):  # a launch is running
                time.sleep(1.0)
                subprocess.run(["scancel", jobs[0]], check=True)
                killed = jobs[0]
        time.sleep(0.2)
    assert killed, "the run never had its worker job running a launch"
    _out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    assert sorted(p.name for p in (tmp_path / "out").rglob("*.out")) == ["slice_0000.out", "slice_0000.out"]
    assert len(list((tmp_path / "ws" / "slurm-logs" / run_id).glob("*.err"))) == 2  # the replacement job
    scheduler = {
        line.split("Registered to:")[1].strip()
        for log in (tmp_path / "ws" / "slurm-logs" / run_id).glob("*.err")
        for line in log.read_text().splitlines()
        if "Registered to:" in line
    }
    assert scheduler
    for _ in range(100):
        left = [a for a in scheduler if subprocess.run(["pgrep", "-f", a], capture_output=True).returncode == 0]
        if not left:
            break
        time.sleep(0.3)
    assert not left, "a Dask worker process outlived its job"
    assert ours(run_id) == []


@pytest.mark.parametrize(
    ("option", "said"),
    [
        ("partition=nosuch", "invalid partition"),
        ("extra=--bogus", "--bogus"),
        ("cores=64", "not available; asked per job: cores=64, memory=128GB; the largest node of the default partition"),
    ],
)
def test_worker_jobs_sbatch_refuses_are_one_line_before_anything_runs(tmp_path: Path, option: str, said: str):
    common = ["run", str(demo_pipeline()), "--in", str(sample_data_folder()), "--engine", "local"]
    proc = dicompose(tmp_path, *common, "--out", "out", "--workspace", "ws", "--scheduler", "slurm", "--slurm", option)
    assert proc.returncode == 2 and "sbatch refuses the worker jobs" in proc.stderr and said in proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert not (tmp_path / "out").exists()


def test_a_workspace_with_a_space_holds_the_jobs_logs_and_jobs_that_die_at_start_are_one_line(tmp_path: Path):
    """The job script's log paths are quoted ("proj A/ws" was refused by sbatch); worker jobs that all end before
    one joins (a failing prologue, no venv on the node) end the run in one line naming their logs, where Dask
    would wait for them for ever."""
    common = ["run", str(demo_pipeline()), "--in", str(sample_data_folder()), "--engine", "local"]
    common += ["--scheduler", "slurm", "--slurm", "jobs=2"]
    proc = dicompose(tmp_path, *common, "--out", "proj A/out", "--workspace", "proj A/ws", timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert len(list((tmp_path / "proj A" / "ws" / "slurm-logs").rglob("*.err"))) == 2
    started = time.monotonic()
    prologue = ["--slurm", "prologue=module load nosuch-module", "--slurm", "prologue=echo never"]
    dead = dicompose(tmp_path, *common, "--out", "o2", "--workspace", "ws2", *prologue, timeout=120)
    lines = errors(dead.stderr)
    assert dead.returncode == 1 and len(lines) == 1 and "Traceback" not in dead.stderr, dead.stderr
    assert (
        "every worker job ended before joining the run" in lines[0] and str(tmp_path / "ws2" / "slurm-logs") in lines[0]
    )
    # the command's own complaint, then which prologue line failed
    said = "module: command not found; dicompose: the worker job prologue failed (exit 127): module load nosuch"
    assert said in lines[0]
    assert time.monotonic() - started < 60 and ours(run_id_of(lines[0])) == []


def test_worker_jobs_that_reach_their_walltime_before_a_launch_ends_stop_the_run_in_one_line(tmp_path: Path):
    """A launch that needs longer than a worker job lives would be handed from job to job for ever (Dask
    reschedules it, the runner retries it): after two walltime deaths per job slot with no task finished, the
    run stops in one line saying what to change, publishes nothing partial and leaves nothing in the queue."""
    from dicompose.dicom import synthetic

    synthetic.write_ct_series(tmp_path / "scans" / "s0", "walltime-0", 1, 8, 8)
    code = (
        "import pathlib, sys, time; time.sleep(300); "
        "[pathlib.Path(pathlib.Path(f).stem + '.out').write_text('x') for f in sys.argv[1:]]"
    )
    tool = snippet_tool(tmp_path / "long.json", "longer", code, "*.out", "long")
    argv = ["run", str(tool), "--in", str(tmp_path / "scans"), "--out", "out", "--engine", "local"]
    argv += ["--scheduler", "slurm", "--slurm", "jobs=1", "--slurm", "walltime=00:01:00", "--workspace", "ws"]
    started = time.monotonic()
    proc = dicompose(tmp_path, *argv, timeout=420)
    lines = errors(proc.stderr)
    assert proc.returncode == 1 and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "2 worker jobs reached their walltime (00:01:00) and no task finished" in lines[0]
    assert "raise --slurm walltime=" in lines[0] and str(tmp_path / "ws" / "slurm-logs") in lines[0]
    assert time.monotonic() - started < 400
    assert not list((tmp_path / "out").rglob("*.out"))
    assert ours(run_id_of(lines[0])) == []


def test_a_run_whose_worker_jobs_wait_in_the_queue_says_why(tmp_path: Path):
    """A busy queue can hold worker jobs for hours: the run says which jobs it waits for and SLURM's reason,
    then goes on once they start."""
    sbatch = ["sbatch", "--parsable", "-c", "2", "-J", "dicompose-test-blocker", "-o", str(tmp_path / "blocker.out")]
    blocker = subprocess.run(
        [*sbatch, "--wrap", "sleep 60"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    try:
        argv = [str(BIN / "dicompose"), "run", str(demo_pipeline()), "--in", str(sample_data_folder())]
        argv += ["--out", "out", "--engine", "local", "--workspace", "ws", "--scheduler", "slurm"]
        env = {**os.environ, "DICOMPOSE_HOME": str(tmp_path / "home")}
        proc = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not list((tmp_path / "ws").glob("slurm-logs/*")):
            time.sleep(0.2)  # the run's worker job is submitted: pending behind the blocker
        time.sleep(5.0)  # longer than the run waits before it asks squeue why
        subprocess.run(["scancel", blocker], check=True)
        _out, err = proc.communicate(timeout=180)
    finally:
        subprocess.run(["scancel", blocker], check=False)
    assert proc.returncode == 0, err
    waiting = [line for line in err.splitlines() if line.startswith("note: waiting for worker job")]
    assert len(waiting) == 1 and waiting[0].endswith("(pending: Resources)"), err
