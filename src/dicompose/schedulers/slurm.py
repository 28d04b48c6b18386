"""``--scheduler slurm``: a few pilot jobs (worker jobs) that each run many launches, through dask-jobqueue.

Never one ``sbatch`` per task: ``SLURMCluster`` submits worker jobs (a fixed number, or between a minimum and a
maximum as the work needs), each a Dask worker with ``cores`` threads that advertises ``cores`` as a Dask
resource (and its memory, and the GPUs of its ``gres``); a launch asks for as many cores as it runs processes,
and for its step's memory and GPUs, so no job runs more than it was given (one pool of identical worker jobs:
a step that needs more than a job has is refused before anything is submitted). At the end of a run each
worker is asked to close and its job ends by itself (pending jobs, and any left after a few seconds, are
cancelled); on Ctrl-C, SIGTERM or a failure the worker jobs are cancelled at once (``scancel``): SLURM stops
what runs in them. A worker job that SLURM kills (walltime, ``scancel``) loses no finished work: its launches come
back as failed attempts and are retried (on another worker, or by the next ``dicompose run``), and a task is
published only once sealed in the workspace (which must be on a filesystem the nodes share).

The options come from ``--slurm KEY=VALUE`` over the ``[slurm]`` table of the configuration files
(docs/configuration.md); :func:`cluster_kwargs` turns them into ``SLURMCluster`` arguments (pure, tested
without SLURM).
"""

from __future__ import annotations

import contextlib
import shlex
import shutil
import subprocess
import sys
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, cast

from dicompose.config import KEYS, value_problem
from dicompose.errors import ClusterError, UsageError
from dicompose.notes import note

#: After the first worker job is up, how long the first launch waits for the others (jobs SLURM starts together
#: arrive within a fraction of a second; one left pending in a busy queue delays the run by this at most).
WORKER_GRACE_S = 2.0
#: How often a run looks for worker jobs that SLURM ended at their walltime, and how it knows them (slurmstepd's
#: line in the job's log).
HEALTH_INTERVAL_S = 5.0
#: how long a run that ends waits for its worker jobs to end by themselves before cancelling them
JOB_END_WAIT_S = 5.0
TIME_LIMIT = "DUE TO TIME LIMIT"
#: Dask settings of the worker jobs. The nanny forks its worker instead of spawning a Python that imports Dask
#: again (0.7 s of every job's start here); the worker's system and memory monitors look every 2 s, not 10
#: times a second: a worker job's cores are the launches' (Dask's own sampling took 15 % of a core per idle
#: job here).
WORKER_ENVIRONMENT = (
    "export DASK_DISTRIBUTED__WORKER__MULTIPROCESSING_METHOD=fork",
    "export DASK_DISTRIBUTED__ADMIN__SYSTEM_MONITOR__INTERVAL=2s",
    "export DASK_DISTRIBUTED__WORKER__MEMORY__MONITOR_INTERVAL=2s",
)


@dataclass(frozen=True)
class SlurmOptions:
    """What each worker job asks SLURM for, and how many there are."""

    partition: str | None = None
    account: str | None = None
    walltime: str = "01:00:00"
    memory: str | None = None  # per worker job; default: 2 GB per core
    cores: int = 1
    gres: str | None = None  # e.g. gpu:1
    jobs: int | None = None  # fixed; else adaptive between min_jobs and max_jobs (default: 1 fixed job)
    min_jobs: int | None = None
    max_jobs: int | None = None
    extra: tuple[str, ...] = ()  # more #SBATCH lines, e.g. --qos=normal
    prologue: tuple[str, ...] = ()  # shell lines each worker job runs first, e.g. module load charliecloud

    @property
    def adaptive(self) -> bool:
        return self.jobs is None and (self.min_jobs is not None or self.max_jobs is not None)

    @property
    def most_jobs(self) -> int:
        return self.jobs or self.max_jobs or max(1, self.min_jobs or 1)

    @property
    def cores_at_most(self) -> int:
        """The run's core budget: every worker job's cores, at most jobs at once."""
        return self.cores * self.most_jobs

    @property
    def job_memory(self) -> str:
        """Each worker job's memory as asked of SLURM: ``memory``, else 2 GB per core."""
        return self.memory or f"{2 * self.cores}GB"

    @property
    def memory_bytes(self) -> int:
        """:attr:`job_memory` in bytes."""
        from dask.utils import parse_bytes

        return int(parse_bytes(self.job_memory))

    @property
    def gpus(self) -> int:
        """GPUs each worker job asks for in ``gres`` (``gpu``, ``gpu:2``, ``gpu:a100:2``, among other resources)."""
        count = 0
        for item in (self.gres or "").split(","):
            parts = item.strip().split(":")
            if parts[0] == "gpu":
                count += int(parts[-1]) if len(parts) > 1 and parts[-1].isdigit() else 1
        return count

    def resources(self) -> dict[str, int]:
        """What each worker job advertises as Dask resources: a launch takes what it asks while it runs."""
        advertised = {"cores": self.cores, "memory": self.memory_bytes}
        return {**advertised, "gpus": self.gpus} if self.gpus else advertised


def options_from(given: list[str], configured: Mapping[str, Any]) -> SlurmOptions:
    """``--slurm KEY=VALUE`` (repeatable; ``extra`` and ``prologue`` add a line each) over the ``[slurm]``
    table; every value checked, every problem said at once."""
    values: dict[str, Any] = dict(configured)
    lists: dict[str, list[str]] = {}
    problems: list[str] = []
    known = {f.name: f for f in fields(SlurmOptions)}
    for item in given:
        key, sep, value = item.partition("=")
        if not sep or key not in known:
            problems.append(f"--slurm {item!r}: expected KEY=VALUE with KEY one of {', '.join(known)}")
        elif KEYS["slurm"][key][0] is list:
            lists.setdefault(key, []).append(value)
        elif KEYS["slurm"][key][0] is int:
            if not value.isdigit() or int(value) < 1:
                problems.append(f"--slurm {key}={value}: must be a whole number, 1 or more")
            else:
                values[key] = int(value)
        else:
            values[key] = value
    for key, items in lists.items():  # the command line's lines replace the configuration's
        values[key] = items
    for key in ("extra", "prologue"):
        values[key] = tuple(str(line) for line in values.get(key, ()))
    for key in ("walltime", "memory"):  # the same checks as the configuration files'
        if key in values and (problem := value_problem("slurm", key, values[key])) is not None:
            problems.append(f"slurm {key}: {problem}")
    if values.get("jobs") is not None and (values.get("min_jobs") or values.get("max_jobs")):
        problems.append(
            "slurm: give jobs (a fixed number) or min_jobs/max_jobs (adaptive), not both (--slurm or [slurm])"
        )
    low, high = values.get("min_jobs"), values.get("max_jobs")
    if low is not None and high is not None and low > high:
        problems.append(f"slurm min_jobs ({low}) is more than max_jobs ({high})")
    if problems:
        raise UsageError("; ".join(problems))
    return SlurmOptions(**values)


#: Bash's ERR trap around the job prologue: a line that fails (``module load`` of a module the node lacks) ends
#: the job saying which, in its log (the run then says every job ended, with that line), instead of a worker
#: that starts without what the prologue was for. Multi-line constructs (if … fi) stay whole.
PROLOGUE_FAILED_SAYS = "dicompose: the worker job prologue failed"
PROLOGUE_FAILED = (
    f'trap \'rc=$?; printf "{PROLOGUE_FAILED_SAYS} (exit %s): %s\\n" "$rc" "$BASH_COMMAND" >&2; exit 3\' ERR'
)


def guarded(prologue: tuple[str, ...]) -> list[str]:
    """The prologue's lines between :data:`PROLOGUE_FAILED` and the trap's removal (none: nothing)."""
    return [PROLOGUE_FAILED, *prologue, "trap - ERR"] if prologue else []


def cluster_kwargs(
    options: SlurmOptions, log_directory: Path, python: str = sys.executable, job_name: str = "dicompose"
) -> dict[str, Any]:
    """``SLURMCluster`` arguments for ``options``: one Dask worker process per job with ``cores`` threads,
    advertising its cores, memory and GPUs as Dask resources, its logs in ``log_directory`` (one file per job:
    the sbatch count)."""
    directives = [f"--gres={options.gres}"] if options.gres else []
    directives += [line if line.startswith("-") else f"--{line}" for line in options.extra]
    # the logs' paths quoted (dask-jobqueue writes its log_directory bare: a workspace in "proj A/" was refused)
    directives += [f'-e "{log_directory}/{job_name}-%J.err"', f'-o "{log_directory}/{job_name}-%J.out"']
    kwargs: dict[str, Any] = {
        "cores": options.cores,
        "processes": 1,
        "memory": options.job_memory,
        "walltime": options.walltime,
        "job_extra_directives": directives,
        "job_script_prologue": [*WORKER_ENVIRONMENT, *guarded(options.prologue)],
        # no worker dashboard (its start-up is for nobody). The nanny stays: without it a worker closed by the
        # scheduler hung in asyncio's shutdown and outlived its job (seen here, with proctrack/linuxproc)
        "worker_extra_args": [
            "--resources",
            ",".join(f"{k}={v}" for k, v in options.resources().items()),
            "--no-dashboard",
        ],
        "python": shlex.quote(python),  # a venv under a folder with a space in its name
        "job_name": job_name,  # squeue -n NAME: this run's worker jobs
        "scheduler_options": {"dashboard_address": None},
    }
    if options.partition:
        kwargs["queue"] = options.partition
    if options.account:
        kwargs["account"] = options.account
    return kwargs


def _tail(log: Path, size: int = 16384) -> str:
    """The end of a worker job's log (slurmstepd writes its verdict after the worker's lines)."""
    try:
        with log.open("rb") as handle:
            handle.seek(max(0, log.stat().st_size - size))
            return handle.read().decode(errors="replace")
    except OSError:
        return ""


def log_folder(workspace: Path, run_id: str) -> Path:
    """Where a run's worker jobs log (one ``.err`` and ``.out`` per job, named after its SLURM job id)."""
    return workspace / "slurm-logs" / run_id


def job_script(options: SlurmOptions, log_directory: Path, job_name: str = "dicompose") -> str:
    """The worker job script ``SLURMCluster`` submits for ``options`` (made without starting a cluster: what
    ``--dry-run`` and ``check`` hand to ``sbatch --test-only``)."""
    from dask_jobqueue.slurm import SLURMJob

    kwargs = cluster_kwargs(options, log_directory, job_name=job_name)
    kwargs.pop("scheduler_options")
    job: Any = cast(Any, SLURMJob)(scheduler="tcp://127.0.0.1:8786", **kwargs)
    return str(job.job_script())


def _node_limits(options: SlurmOptions) -> str:
    """What the partition's largest node has (``sinfo``), for a refusal that does not say which ask is too big."""
    argv = [shutil.which("sinfo") or "sinfo", "-h", "-o", "%c %m"]
    if options.partition:
        argv[2:2] = ["-p", options.partition]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
        nodes = [line.split() for line in proc.stdout.splitlines() if line.strip()]
        cores = max(int(n[0].rstrip("+")) for n in nodes)
        memory_mb = max(int(n[1].rstrip("+")) for n in nodes)
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError):
        return ""
    where = f"partition {options.partition}" if options.partition else "the default partition"
    asked = f"cores={options.cores}, memory={options.job_memory}"
    asked += f", gres={options.gres}" if options.gres else ""
    return f"; asked per job: {asked}; the largest node of {where} has {cores} cores and {memory_mb / 1024:.1f} GB"


def sbatch_refusal(script: str, options: SlurmOptions | None = None) -> str | None:
    """Why ``sbatch --test-only`` refuses the worker job script, or None: a partition that does not exist, an
    option sbatch does not know or resources no node has are said here, in one line, instead of by a submission
    Dask makes in the background (which logs a traceback and leaves the run waiting for workers that never
    come). Nothing is submitted."""

    sbatch = shutil.which("sbatch") or "sbatch"
    try:
        proc = subprocess.run([sbatch, "--test-only"], input=script, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"--scheduler slurm: sbatch --test-only did not answer ({exc})"
    if proc.returncode == 0:
        return None
    said = [line.strip() for line in proc.stderr.splitlines() if line.strip()] or [f"exit {proc.returncode}"]
    reason = next((line for line in said if "error" in line.lower()), said[0])
    reason = reason.removeprefix("sbatch: ").removeprefix("error: ")
    if options is not None and "configuration is not available" in reason:
        reason += _node_limits(options)
    return f"--scheduler slurm: sbatch refuses the worker jobs ({reason})"


def submission_problem(options: SlurmOptions, log_directory: Path, job_name: str) -> str | None:
    """Why worker jobs of ``options`` logging into ``log_directory`` cannot be submitted here (no ``sbatch``, a
    path the job script cannot quote, ``sbatch --test-only``'s refusal), or None. Nothing is submitted."""
    if shutil.which("sbatch") is None:
        return "--scheduler slurm: sbatch is not on PATH (run on a SLURM login or compute node)"
    if '"' in str(log_directory) or "\n" in str(log_directory):
        return (
            f"--scheduler slurm: a workspace path with a double quote or a newline cannot hold the "
            f"worker jobs' logs ({log_directory}); choose another --workspace"
        )
    return sbatch_refusal(job_script(options, log_directory, job_name), options)


def describe(options: SlurmOptions) -> str:
    """The scheduler as runs, plans and records name it: ``slurm (2 worker jobs × 4 cores)``."""
    jobs = f"{options.min_jobs or 0}-{options.most_jobs}" if options.adaptive else str(options.jobs or 1)
    plural = "" if jobs == "1" else "s"
    return f"slurm ({jobs} worker job{plural} × {options.cores} core{'' if options.cores == 1 else 's'})"


class SlurmScheduler:
    """Launches on SLURM worker jobs (a Dask cluster of them); see the module docstring."""

    reports_cancelled = False  # as Dask's: and cancel_all ends the jobs that ran them

    def __init__(
        self, options: SlurmOptions, log_directory: Path, job_name: str = "dicompose", *, eager: bool = False
    ) -> None:
        """Checks the worker jobs with ``sbatch --test-only``. ``eager``: submits them now, so that they start
        while the run plans (a first run: it will launch); else nothing until the first launch (a rerun, which
        may have nothing to do, or a plan, asks SLURM for no job)."""
        if (problem := submission_problem(options, log_directory, job_name)) is not None:
            raise UsageError(problem)
        self.options = options
        self.cores_per_worker: int | None = options.cores
        self.cores: int | None = options.cores_at_most
        self.name = describe(options)
        self.log_directory, self.job_name = log_directory, job_name
        self._expected = options.jobs or options.min_jobs or 1
        self._dask: Any = None  # the cluster, started by the first launch
        self._submitting = False  # set once the first launch starts the cluster: jobs may exist from then on
        self._workers_up = False
        self._out_of_time: dict[Path, float] = {}  # a worker job's log → when SLURM ended it at its walltime
        self._next_look = 0.0
        self._said = ""  # the last "waiting for worker jobs" note
        self._cancelled = False  # cancel_all was called: no clean end to wait for
        if eager:
            self._dask = self._start()

    def _start(self) -> Any:
        """The Dask cluster of worker jobs, submitted now."""
        from dask_jobqueue.slurm import SLURMCluster

        from dicompose.schedulers.dask import DaskScheduler

        options = self.options
        cluster: Any = None
        self._submitting = True
        self.log_directory.mkdir(parents=True, exist_ok=True)
        try:
            with warnings.catch_warnings():  # "port 8787 is in use": Dask takes another; not the user's news
                warnings.filterwarnings("ignore", message=".*already in use", category=UserWarning)
                cluster = SLURMCluster(**cluster_kwargs(options, self.log_directory, job_name=self.job_name))
            # a fixed number of jobs is kept by adapting between it and itself: a job SLURM ends (walltime,
            # scancel, a lost node) is replaced, and what ran in it runs again there (scale() would not replace it)
            low = options.min_jobs or 0 if options.adaptive else options.jobs or 1
            if low:  # submitted now: adapt's first look comes a second later (its interval), all of it waited
                cluster.scale(jobs=low)
            cluster.adapt(minimum_jobs=low, maximum_jobs=options.most_jobs)
        except Exception as exc:  # dask-jobqueue's own checks, sbatch refusals: one line
            if cluster is not None:
                with contextlib.suppress(Exception):
                    cluster.close()
            raise UsageError(f"--scheduler slurm: cannot start the worker jobs ({exc})") from None
        return DaskScheduler(None, 0, cluster=cluster)

    def submit(
        self, fn: Any, arg: Any, done: Any, cores: int = 1, memory_bytes: int | None = None, gpus: int = 0
    ) -> None:
        if self._dask is None:
            self._dask = self._start()
        if not self._workers_up:  # the first launch waits for the jobs SLURM starts together, not just the first
            self._dask.wait_for_workers(
                self._expected, grace_s=WORKER_GRACE_S, gone=self._all_jobs_ended, waiting=self._say_why_waiting
            )
            self._workers_up = True

        self._dask.submit(fn, arg, done, cores, memory_bytes, gpus)

    def check_health(self, progressed_at: float) -> None:
        """Worker jobs that reach their walltime while no task succeeds: a launch takes longer than a job
        lives, and it would be handed to the next job, and the next, for ever (Dask reschedules what a job
        closing on SIGTERM ran; the runner retries what the signal made fail). After two such deaths per job
        slot the run stops, saying what to change (finished work is kept, as always)."""
        now = time.monotonic()
        if self._dask is None or now < self._next_look:
            return
        self._next_look = now + HEALTH_INTERVAL_S
        for log in self.log_directory.glob("*.err"):
            if log not in self._out_of_time and TIME_LIMIT in _tail(log):
                self._out_of_time[log] = log.stat().st_mtime
        since = sum(1 for ended in self._out_of_time.values() if ended > progressed_at)
        if since >= 2 * self.options.most_jobs:
            raise ClusterError(
                f"--scheduler slurm: {since} worker jobs reached their walltime ({self.options.walltime}) and no "
                f"task finished meanwhile: a launch needs longer than a job lives; raise --slurm walltime= or "
                f"give the step fewer tasks per launch (pack: in the pipeline); finished work is kept (logs: "
                f"{self.log_directory})"
            )

    def _say_why_waiting(self) -> None:
        """No worker has joined yet: say which jobs the run waits for and what SLURM says of them (pending:
        Resources, Priority...), once each time that changes (a busy queue can hold them for hours)."""
        jobs = self._queue("%i %T %r", fields=3)
        if not jobs:
            return
        pending = [fields_ for fields_ in jobs if len(fields_) > 1 and fields_[1] == "PENDING"]
        if not pending:  # started: their workers join within seconds
            return
        reasons = sorted({fields_[2] if len(fields_) > 2 else "no reason given" for fields_ in pending})
        ids = ", ".join(fields_[0] for fields_ in pending)
        said = f"waiting for worker job{'s' if len(pending) > 1 else ''} {ids} (pending: {'; '.join(reasons)})"
        if said != self._said:
            self._said = said
            note(said)

    def _all_jobs_ended(self) -> str | None:
        """Why no worker job will ever join, or None: jobs started (each leaves its log) and none is in the
        queue any more (a prologue that fails, no venv or ch-run on the node, a node that dies). Dask itself
        would wait for them for ever."""

        started = sorted(self.log_directory.glob("*.err"), key=lambda p: p.stat().st_mtime)
        if not started:
            return None  # none has started yet (pending, or an adaptive cluster with nothing asked of it)
        if self._queue("%i") != []:  # some still queued, or squeue did not answer
            return None
        lines = [line.strip() for line in started[-1].read_text(errors="replace").splitlines() if line.strip()]
        last = lines[-1][:200] if lines else ""
        if last.startswith(PROLOGUE_FAILED_SAYS) and len(lines) > 1:  # what the failing command said, first
            last = f"{lines[-2][:200]}; {last}"
        said = f": {last}" if last else " without a word"
        return (
            f"--scheduler slurm: every worker job ended before joining the run (the last{said}); "
            f"their logs are in {self.log_directory}"
        )

    def cancel_all(self) -> None:
        """Ctrl-C, SIGTERM or a failed run: the worker jobs are cancelled now, not when Dask closes the cluster
        (its launches went on for 14 s after a Ctrl-C): SLURM signals every process of the jobs, their steps
        included (a local step dies with its worker: PR_SET_PDEATHSIG). A task that finished inside a
        cancelled launch is recovered by the next run (``seal.recover_task``)."""

        self._cancelled = True
        if not self._submitting:
            return  # nothing was submitted
        if self._dask is not None:
            self._dask.cancel_all()
        self._scancel()

    def _queue(self, format_: str, fields: int = 2, timeout: float | None = None) -> list[list[str]] | None:
        """This run's worker jobs in the queue, each line of ``squeue -o format_`` split into at most ``fields``
        fields; None when squeue fails."""
        queue = subprocess.run(
            [shutil.which("squeue") or "squeue", "-h", "-n", self.job_name, "-o", format_],
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )
        if queue.returncode != 0:
            return None
        return [line.split(None, fields - 1) for line in queue.stdout.splitlines() if line.strip()]

    def _scancel(self) -> None:
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):  # no scancel, a slurmctld that hangs
            subprocess.run(
                [shutil.which("scancel") or "scancel", "--name", self.job_name],
                capture_output=True,
                check=False,
                timeout=30,
            )

    def close(self) -> None:
        """The run is over: its worker jobs are asked to end (each worker closes, the job exits 0, its log ends
        cleanly); jobs whose worker had not joined, and any still there after :data:`JOB_END_WAIT_S` in all, are
        cancelled. Cancelled at once, SIGTERM left workers that outlived their job by 8 s (the nanny's patience),
        holding a core the next job on the node was given, and tracebacks in every job's log. Anything that goes
        wrong meanwhile (Ctrl-C, no squeue) cancels the jobs instead; the cluster is closed in every case."""
        if self._dask is None:
            if self._submitting:  # interrupted while the cluster started: its jobs, if any, go by name
                self._scancel()
            return
        try:
            if not self._cancelled:
                deadline = time.monotonic() + JOB_END_WAIT_S
                told = self._dask.close_workers(JOB_END_WAIT_S)
                joined = {job for name, job in self._dask.job_ids().items() if name in told}  # one worker a job
                self._wait_jobs_ended(joined, deadline)
        except (Exception, KeyboardInterrupt):  # the run's work is done: its jobs are cancelled instead
            self._scancel()
        except BaseException:  # SIGTERM
            self._scancel()
            raise
        finally:
            self._dask.close()

    def _wait_jobs_ended(self, joined: set[str], deadline: float) -> None:
        """Until none of this run's worker jobs is in the queue (or only completing), or ``deadline`` (a
        monotonic time). Jobs not in ``joined`` (pending, or started without their worker joining: nothing told
        them to end) are cancelled at once."""
        cancelled = set[str]()
        while (left := deadline - time.monotonic()) > 0:
            queued = self._queue("%i %T", timeout=left)
            jobs = {fields_[0]: fields_[1:] for fields_ in queued or []}
            if queued is None or all(state == ["COMPLETING"] for state in jobs.values()):
                return
            if stray := sorted(set(jobs) - joined - cancelled):
                subprocess.run(
                    [shutil.which("scancel") or "scancel", *stray], capture_output=True, check=False, timeout=left
                )
                cancelled.update(stray)
            time.sleep(0.1)
