"""SLURM worker-job options (schedulers/slurm.py): --slurm KEY=VALUE over the [slurm] table, checked, and
the SLURMCluster arguments they become (pure: no SLURM needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dicompose.errors import UsageError
from dicompose.pipeline.packing import Candidate, plan_launches
from dicompose.schedulers.slurm import SlurmOptions, cluster_kwargs, options_from


def test_the_command_line_over_the_configuration():
    configured = {"partition": "long", "cores": 4, "walltime": "02:00:00", "prologue": ["module load a"]}
    options = options_from(["partition=short", "jobs=3", "prologue=module load b", "prologue=export X=1"], configured)
    assert options == SlurmOptions(
        partition="short", walltime="02:00:00", cores=4, jobs=3, prologue=("module load b", "export X=1")
    )
    assert options.cores_at_most == 12 and not options.adaptive


def test_adaptive_jobs_and_their_budget():
    options = options_from(["min_jobs=1", "max_jobs=5", "cores=2"], {})
    assert options.adaptive and options.most_jobs == 5 and options.cores_at_most == 10


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        (["partiton=x"], "expected KEY=VALUE with KEY one of"),
        (["cores=0"], "--slurm cores=0: must be a whole number"),
        (["walltime=2h"], "slurm walltime: expected HH:MM:SS or D-HH:MM:SS, not '2h'"),
        (["memory=lots"], "slurm memory: expected a size such as 8GB, not 'lots'"),
        (["jobs=2", "max_jobs=4"], "not both"),
        (["min_jobs=5", "max_jobs=2"], "min_jobs (5) is more than max_jobs (2)"),
    ],
)
def test_every_mistake_is_said(given: list[str], problem: str):
    with pytest.raises(UsageError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        options_from(given, {})


def test_options_become_sbatch_directives_and_worker_resources(tmp_path: Path):
    options = options_from(
        ["partition=gpu", "account=radiology", "gres=gpu:1", "extra=--qos=high", "extra=exclusive", "cores=2"], {}
    )
    kwargs = cluster_kwargs(options, tmp_path, python="/venv/bin/python")
    assert kwargs["queue"] == "gpu" and kwargs["account"] == "radiology"
    logs = [f'-e "{tmp_path}/dicompose-%J.err"', f'-o "{tmp_path}/dicompose-%J.out"']  # quoted: spaces in paths
    assert kwargs["job_extra_directives"] == ["--gres=gpu:1", "--qos=high", "--exclusive", *logs]
    assert kwargs["cores"] == 2 and kwargs["processes"] == 1 and kwargs["memory"] == "4GB"
    # a launch asks for its processes, its step's memory and GPUs: each job advertises what it has
    assert kwargs["worker_extra_args"] == ["--resources", "cores=2,memory=4000000000,gpus=1", "--no-dashboard"]
    assert kwargs["python"] == "/venv/bin/python" and "log_directory" not in kwargs
    assert "queue" not in cluster_kwargs(SlurmOptions(), tmp_path)  # the cluster's default partition
    # Dask's own settings for the jobs come first, the site's prologue after them (it may override them)
    prologue = cluster_kwargs(options_from(["prologue=module load python"], {}), tmp_path)["job_script_prologue"]
    assert prologue[-2] == "module load python"
    dask_settings = prologue.index("export DASK_DISTRIBUTED__WORKER__MULTIPROCESSING_METHOD=fork")
    assert dask_settings < prologue.index("module load python")


@pytest.mark.parametrize(
    ("lines", "failed"),
    [
        (["export A=1", "no-such-command-here --x", "echo late"], "(exit 127): no-such-command-here --x"),
        (["if true; then", "  false", "fi"], "(exit 1): false"),
        (["export A=1", "if false; then", "  exit 9", "fi"], None),  # a condition that fails is not a failure
    ],
)
def test_a_prologue_line_that_fails_ends_the_job_naming_it(tmp_path: Path, lines: list[str], failed: str | None):
    """The job script's prologue, run by bash as SLURM would: a failing line ends the job (exit 3) with a line
    the run quotes, before the worker starts without what the prologue was for; whole if … fi blocks work."""
    import subprocess

    options = options_from([f"prologue={line}" for line in lines], {})
    script = "\n".join([*cluster_kwargs(options, tmp_path)["job_script_prologue"], 'echo "worker starts $A"'])
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30)
    if failed is None:
        assert proc.returncode == 0 and proc.stdout == "worker starts 1\n", proc.stderr
    else:
        assert proc.returncode == 3 and "worker starts" not in proc.stdout
        assert proc.stderr.strip().splitlines()[-1] == f"dicompose: the worker job prologue failed {failed}"


def test_no_launch_asks_more_cores_than_a_worker_job_has():
    """Two jobs of 2 cores: a budget of 4, but one launch never gets more than 2 processes (it would wait
    forever for a worker that big)."""
    plans = plan_launches([Candidate(10)], 4, budget=4, packable=True, per_launch=2)
    assert [p.processes for p in plans] == [2]
    plans = plan_launches([Candidate(10)], 4, budget=4, packable=True, cpus=3, per_launch=2)
    assert [p.processes for p in plans] == [2]


@pytest.mark.parametrize(
    ("gres", "gpus"),
    [(None, 0), ("gpu", 1), ("gpu:2", 2), ("gpu:a100:4", 4), ("mps:100,gpu:v100:2", 2), ("license:matlab:1", 0)],
)
def test_gpus_are_counted_from_gres(gres: str | None, gpus: int):
    assert SlurmOptions(gres=gres).gpus == gpus


def test_the_job_script_asks_slurm_for_what_the_worker_advertises(tmp_path: Path):
    """The sbatch script dask-jobqueue writes (rendered without SLURM): the gres and memory directives, and a
    worker advertising the same cores, memory and GPUs as Dask resources."""
    from dask_jobqueue.slurm import SLURMJob

    options = options_from(["gres=gpu:a100:2", "cores=2", "memory=8GB"], {})
    kwargs = cluster_kwargs(options, tmp_path, python="/venv/bin/python", job_name="dicompose-RUN")
    kwargs.pop("scheduler_options")
    script = SLURMJob(scheduler="tcp://127.0.0.1:1", name="w", **kwargs).job_script()
    assert "#SBATCH --gres=gpu:a100:2" in script and "#SBATCH --mem=8G" in script
    assert "#SBATCH --cpus-per-task=2" in script and "#SBATCH -J dicompose-RUN" in script
    assert "--resources cores=2,memory=8000000000,gpus=2" in script
