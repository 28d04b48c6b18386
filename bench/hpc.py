"""The demo pipeline on SLURM (``--scheduler slurm``) against the local scheduler, on this one node (issue 12).

Cohort a of bench/cohort.py (20 series x 25 CT slices of 256x256, generated beforehand, not timed), through
the command line, each variant in a fresh output folder and workspace, the local engine:

- ``local``: ``dicompose run demo.yaml --in scans --out OUT --engine local`` (the thread-pool scheduler);
- ``slurm``: the same with ``--scheduler slurm --slurm jobs=2`` (two worker jobs of one core each: the same
  two cores as ``local``).

Reported: the median wall time of each, slurm ÷ local throughput (goal >= 0.8 on this node), the number of
``sbatch`` submissions (worker jobs, counted from their log files: never one per task), and the time from the
command's start to the first launch's start (read from the run's records: submit-to-first-task latency).
Charliecloud against Docker per launch is not measured yet (the charliecloud engine does not exist yet).

Run: ``.venv/bin/python bench/hpc.py [--repeat K] [--out PATH]``; needs SLURM (``scripts/slurm-up.sh``).
"""

from __future__ import annotations

import argparse
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


def run_variant(work: Path, scans: Path, variant: str) -> dict[str, Any]:
    out, workspace = work / f"{variant}-out", work / f"{variant}-ws"
    argv = [str(DICOMPOSE), "run", str(DEMO), "--in", str(scans), "--out", str(out), "--engine", "local"]
    argv += ["--workspace", str(workspace)]
    if variant == "slurm":
        argv += ["--scheduler", "slurm", "--slurm", "jobs=2"]
    started = time.time()
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    seconds = time.time() - started
    if proc.returncode != 0:
        raise SystemExit(f"{variant}: exit {proc.returncode}\n{proc.stderr[-2000:]}")
    db = sqlite3.connect(workspace / "index.sqlite")
    try:
        first = db.execute("SELECT min(started) FROM launches").fetchone()[0]
    finally:
        db.close()
    logs = list((workspace / "slurm-logs").rglob("*.err")) if variant == "slurm" else []
    return {"seconds": seconds, "to_first_launch_s": (first - started) if first else None, "sbatch": len(logs)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "hpc.json")
    args = parser.parse_args(argv)
    if shutil.which("sbatch") is None:
        raise SystemExit("no sbatch on PATH: start SLURM first (scripts/slurm-up.sh)")
    report: dict[str, Any] = {
        "benchmark": "hpc",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": [Path(sys.executable).name, *sys.argv],
        "machine": machine_info(),
        "variants": {},
    }
    with tempfile.TemporaryDirectory(prefix="dicompose-hpc-") as tmp:
        scans = Path(tmp) / "scans"
        report["files"] = generate(scans, 20, 25, 256)
        rounds: dict[str, list[dict[str, Any]]] = {"local": [], "slurm": []}
        for number in range(args.repeat):
            for variant in ["local", "slurm"] if number % 2 == 0 else ["slurm", "local"]:
                work = Path(tmp) / f"round{number}"
                work.mkdir(exist_ok=True)
                result = run_variant(work, scans, variant)
                print(f"  round {number + 1}: {variant:<6} {result['seconds']:.1f} s", flush=True)
                rounds[variant].append(result)
    for variant, results in rounds.items():
        report["variants"][variant] = {
            "median_s": statistics.median(r["seconds"] for r in results),
            "all_s": [round(r["seconds"], 2) for r in results],
            "to_first_launch_s": statistics.median(r["to_first_launch_s"] or 0 for r in results),
            "sbatch": max(r["sbatch"] for r in results),
        }
    ratio = report["variants"]["local"]["median_s"] / report["variants"]["slurm"]["median_s"]
    report["slurm_throughput_over_local"] = ratio
    report["goal"] = {"slurm/local throughput": f">= {GOAL}", "met": ratio >= GOAL}
    finish_report(args.out, report, print_table)


def print_table(report: dict[str, Any]) -> None:
    print(f"\nhpc benchmark ({report['machine']['usable_cores']} cores, {report['date']}): {report['files']} files")
    print("  variant   median s   to first launch s   sbatch   all s")
    for name, v in report["variants"].items():
        shown = " / ".join(f"{s:.1f}" for s in v["all_s"])
        print(f"  {name:<8} {v['median_s']:8.1f} {v['to_first_launch_s']:19.2f} {v['sbatch']:8d}   {shown}")
    ratio, met = report["slurm_throughput_over_local"], report["goal"]["met"]
    print(f"  slurm ÷ local throughput {ratio:.2f}x (goal >= {GOAL}: {'met' if met else 'NOT met'})")


if __name__ == "__main__":
    main()
