"""The demo pipeline on SLURM and Charliecloud against the local scheduler and Docker, on this one node (issue 12).

Cohort a of bench/cohort.py (20 series x 25 CT slices of 256x256, generated beforehand, not timed), through
the command line, each variant in a fresh output folder and workspace:

- ``local``: ``dicompose run demo.yaml --in scans --out OUT --engine local`` (the thread-pool scheduler);
- ``slurm``: the same with ``--scheduler slurm --slurm jobs=2`` (two worker jobs of one core each: the same
  two cores as ``local``);
- ``docker``: ``--engine docker`` (as root: the Docker daemon's user);
- ``charliecloud`` and ``slurm+charliecloud``: ``--engine charliecloud`` (and ``--scheduler slurm``), run as the
  ordinary user of ``scripts/user-venv.sh`` with that user's venv and the images of ``scripts/user-tests.sh``
  (``DICOMPOSE_IMAGE_DIR``, default /var/tmp/dicompose-images): the engine refuses root.

Per launch: one file normalized in a fresh workspace, ``--launches`` times per engine; the launch's own duration
read from the run's records (engine start-up, the tool, teardown; not the CLI's start).

Reported: the median wall time of each variant, slurm ÷ local throughput (goal >= 0.8 on this node), SLURM's
own start-up of a one-line job on this node (sbatch to its first line: the part of a worker job's start that is
the cluster's),
charliecloud ÷ docker wall time, the number of ``sbatch`` submissions (worker jobs, counted from their log
files: never one per task), the time from the command's start to the first launch's start, and the median
launch time of local, docker and charliecloud.

Run as root: ``.venv/bin/python bench/hpc.py [--repeat K] [--out PATH]``; needs SLURM (``scripts/slurm-up.sh``),
Docker with the images built, and ``scripts/user-tests.sh`` run once (the user, its venv, the exported images).
Variants whose component is missing are skipped and said so.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cohort import generate
from common import finish_report
from common import machine as machine_info

REPO = Path(__file__).resolve().parent.parent
DICOMPOSE = REPO / ".venv" / "bin" / "dicompose"
DEMO = REPO / "src" / "dicompose" / "pipelines" / "demo.yaml"
GOAL = 0.8
USER = os.environ.get("DICOMPOSE_TEST_USER", "dicompose-ci")
USER_DICOMPOSE = Path(f"/home/{USER}/dicompose/.venv/bin/dicompose")
IMAGES = os.environ.get("DICOMPOSE_IMAGE_DIR", "/var/tmp/dicompose-images")
#: variant → (engine, scheduler options, run as the ordinary user?)
VARIANTS: dict[str, tuple[str, list[str], bool]] = {
    "local": ("local", [], False),
    "slurm": ("local", ["--scheduler", "slurm", "--slurm", "jobs=2"], False),
    "docker": ("docker", [], False),
    "charliecloud": ("charliecloud", [], True),
    "slurm+charliecloud": ("charliecloud", ["--scheduler", "slurm", "--slurm", "jobs=2"], True),
}


def command(as_user: bool) -> list[str]:
    if not as_user:
        return [str(DICOMPOSE)]
    env = [f"HOME=/home/{USER}", f"USER={USER}", f"PATH={USER_DICOMPOSE.parent}:/usr/bin:/bin"]
    return ["runuser", "-u", USER, "--", "env", "-i", *env, f"DICOMPOSE_IMAGE_DIR={IMAGES}", str(USER_DICOMPOSE)]


def available(variant: str) -> str:
    """'' if the variant can run here, else why not."""
    engine, options, as_user = VARIANTS[variant]
    if "slurm" in options and shutil.which("sbatch") is None:
        return "no sbatch (scripts/slurm-up.sh)"
    if as_user and not (USER_DICOMPOSE.exists() and Path(IMAGES).is_dir()):
        return f"no {USER_DICOMPOSE} or {IMAGES} (run scripts/user-tests.sh once)"
    if engine == "docker":
        probe = subprocess.run([str(DICOMPOSE), "check", str(DEMO), "--engine", "docker"], capture_output=True)
        if probe.returncode != 0:
            return "docker or its pinned images unavailable"
    return ""


def run_variant(work: Path, scans: Path, variant: str) -> dict[str, Any]:
    engine, options, as_user = VARIANTS[variant]
    out, workspace = work / f"{variant}-out", work / f"{variant}-ws"
    argv = [*command(as_user), "run", str(DEMO), "--in", str(scans), "--out", str(out), "--engine", engine]
    argv += ["--workspace", str(workspace), *options]
    started = time.time()
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=work)
    seconds = time.time() - started
    if proc.returncode != 0:
        raise SystemExit(f"{variant}: exit {proc.returncode}\n{proc.stderr[-2000:]}")
    first = _launches(workspace)[0][0]
    logs = list((workspace / "slurm-logs").rglob("*.err")) if "slurm" in options else []
    return {"seconds": seconds, "to_first_launch_s": (first - started) if first else None, "sbatch": len(logs)}


def _launches(workspace: Path) -> list[tuple[float, float]]:
    db = sqlite3.connect(workspace / "index.sqlite")
    try:
        return [tuple(row) for row in db.execute("SELECT started, ended FROM launches ORDER BY started")] or [
            (0.0, 0.0)
        ]
    finally:
        db.close()


def launch_seconds(work: Path, scan: Path, variant: str, count: int) -> list[float]:
    """The duration of a one-file launch, ``count`` times, each in a fresh workspace (nothing cached)."""
    engine, _options, as_user = VARIANTS[variant]
    found = []
    for number in range(count):
        workspace, out = work / f"launch-{variant}-{number}-ws", work / f"launch-{variant}-{number}-out"
        argv = [*command(as_user), "run", "normalize", "--in", str(scan), "--out", str(out), "--engine", engine]
        proc = subprocess.run([*argv, "--workspace", str(workspace)], capture_output=True, text=True, cwd=work)
        if proc.returncode != 0:
            raise SystemExit(f"launch {variant}: exit {proc.returncode}\n{proc.stderr[-2000:]}")
        ((started, ended),) = _launches(workspace)
        found.append(ended - started)
    return found


def slurm_start_latency(work: Path, count: int = 5) -> list[float]:
    """Seconds from ``sbatch`` of a job that only prints the time to that time, ``count`` times: what SLURM
    itself takes to start a job on this node (its scheduling tick, slurmd, the batch step), before any of
    dicompose's or Dask's start-up. A worker job pays it once per run. (The job's clock is this host's: a
    one-node measure.)"""
    found = []
    for number in range(count):
        out = work / f"latency-{number}.out"
        submitted = time.time()
        subprocess.run(
            ["sbatch", "-Q", "-J", "dicompose-bench-latency", "-o", str(out), "--wrap", "date +%s.%N"], check=True
        )
        deadline = submitted + 30
        while time.time() < deadline and not (out.exists() and out.read_text().strip()):
            time.sleep(0.02)
        if not (out.exists() and out.read_text().strip()):
            subprocess.run(["scancel", "--name", "dicompose-bench-latency"], check=False)
            raise SystemExit(f"a one-line SLURM job did not run within 30 s ({out})")
        found.append(float(out.read_text().split()[0]) - submitted)
        time.sleep(0.3 + 0.17 * number)  # the next submission at another point of the scheduler's cycle
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--launches", type=int, default=7, help="one-file launches per engine")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "hpc.json")
    parser.add_argument("--variants", help=f"comma-separated subset of {', '.join(VARIANTS)} (default: all)")
    args = parser.parse_args(argv)
    chosen = args.variants.split(",") if args.variants else list(VARIANTS)
    if unknown := set(chosen) - set(VARIANTS):
        raise SystemExit(f"unknown variants: {', '.join(sorted(unknown))}")
    if os.getuid() != 0:
        raise SystemExit("run as root: docker and slurm as root, charliecloud as the ordinary user (runuser)")
    report: dict[str, Any] = {
        "benchmark": "hpc",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": [Path(sys.executable).name, *sys.argv],
        "machine": machine_info(),
        "variants": {},
        "skipped": {},
        "launch_s": {},
    }
    names = []
    for name in chosen:
        why = available(name)
        if why:
            report["skipped"][name] = why
            print(f"  {name}: skipped ({why})", flush=True)
        else:
            names.append(name)
    with tempfile.TemporaryDirectory(prefix="dicompose-hpc-") as tmp:
        root = Path(tmp)
        root.chmod(0o755)  # the ordinary user's variants read the scans and write beside them
        scans = root / "scans"
        report["files"] = generate(scans, 20, 25, 256)
        rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
        for number in range(args.repeat):
            for variant in names if number % 2 == 0 else names[::-1]:
                work = root / f"round{number}-{variant.replace('+', '-')}"
                work.mkdir()
                if VARIANTS[variant][2]:
                    shutil.chown(work, USER)
                result = run_variant(work, scans, variant)
                print(f"  round {number + 1}: {variant:<18} {result['seconds']:.1f} s", flush=True)
                rounds[variant].append(result)
        if any("slurm" in VARIANTS[name][1] for name in names):
            report["slurm_start_s"] = slurm_start_latency(root)
            print(f"  SLURM job start (sbatch to first line): {statistics.median(report['slurm_start_s']):.2f} s")
        scan = next(p for p in sorted(scans.rglob("*.dcm")))
        for variant in [n for n in ("local", "docker", "charliecloud") if n in names and args.launches]:
            work = root / f"launches-{variant}"
            work.mkdir()
            if VARIANTS[variant][2]:
                shutil.chown(work, USER)
            report["launch_s"][variant] = launch_seconds(work, scan, variant, args.launches)
            print(f"  one-file launch {variant}: {statistics.median(report['launch_s'][variant]):.2f} s", flush=True)
    for variant, results in rounds.items():
        report["variants"][variant] = {
            "median_s": statistics.median(r["seconds"] for r in results),
            "all_s": [round(r["seconds"], 2) for r in results],
            "to_first_launch_s": statistics.median(r["to_first_launch_s"] or 0 for r in results),
            "sbatch": max(r["sbatch"] for r in results),
        }
    medians = {name: v["median_s"] for name, v in report["variants"].items()}
    if "slurm" in medians:
        ratio = medians["local"] / medians["slurm"]
        report["slurm_throughput_over_local"] = ratio
        report["goal"] = {"slurm/local throughput": f">= {GOAL}", "met": ratio >= GOAL}
    if "slurm+charliecloud" in medians:
        report["slurm_charliecloud_throughput_over_local"] = medians["local"] / medians["slurm+charliecloud"]
    if {"docker", "charliecloud"} <= set(medians):
        report["charliecloud_over_docker_wall"] = medians["charliecloud"] / medians["docker"]
    finish_report(args.out, report, print_table)


def print_table(report: dict[str, Any]) -> None:
    print(f"\nhpc benchmark ({report['machine']['usable_cores']} cores, {report['date']}): {report['files']} files")
    print("  variant              median s   to first launch s   sbatch   all s")
    for name, v in report["variants"].items():
        shown = " / ".join(f"{s:.1f}" for s in v["all_s"])
        print(f"  {name:<20} {v['median_s']:8.1f} {v['to_first_launch_s']:19.2f} {v['sbatch']:8d}   {shown}")
    for name, why in report.get("skipped", {}).items():
        print(f"  {name:<20} skipped: {why}")
    if "slurm_throughput_over_local" in report:
        ratio, met = report["slurm_throughput_over_local"], report["goal"]["met"]
        print(f"  slurm ÷ local throughput {ratio:.2f}x (goal >= {GOAL}: {'met' if met else 'NOT met'})")
    if "slurm_start_s" in report:
        starts = report["slurm_start_s"]
        print(
            f"  SLURM's own job start on this node (sbatch of a one-line job to its first line): median "
            f"{statistics.median(starts):.2f} s, {min(starts):.2f}-{max(starts):.2f} s"
        )
    if "slurm_charliecloud_throughput_over_local" in report:
        print(f"  slurm+charliecloud ÷ local throughput {report['slurm_charliecloud_throughput_over_local']:.2f}x")
    if "charliecloud_over_docker_wall" in report:
        print(f"  charliecloud ÷ docker wall time {report['charliecloud_over_docker_wall']:.2f}x")
    for name, seconds in report.get("launch_s", {}).items():
        print(f"  one-file launch, {name:<13} median {statistics.median(seconds):.2f} s (of {len(seconds)})")


if __name__ == "__main__":
    main()
