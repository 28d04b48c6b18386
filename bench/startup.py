"""Benchmark of ``dicompose`` start-up: wall time of the light commands against the interpreter's own floor.

Every sample is a fresh process (``subprocess.run`` of the ``dicompose`` console script beside this
interpreter, or ``python -m dicompose`` where there is none), so what is measured is what a user or a script
waits for: interpreter start, imports, argument parsing, the command itself. Reported per command: the median
of K runs (after one untimed warm-up run that fills the page cache), its target, and its ratio to the floor,
``python -c pass`` with the same interpreter timed in the same rounds. Each command is also run once with
``PYTHONPROFILEIMPORTTIME=1`` to list the heavy packages it imported (pydicom, numpy, docker, dask, ...).
The median CPU time (user + system, from the child's rusage) is reported beside the wall time: on a machine
shared with other work it moves much less than the wall time does.

``show`` needs a recorded run: one synthetic 32x32 CT slice goes through ``dicompose run normalize --engine
local`` into a temporary workspace first (untimed); if that fails, ``show`` is reported as not measured, with
the reason.

Run: ``.venv/bin/python bench/startup.py [--repeat K] [--out PATH]``. To measure another tree with the same
venv (e.g. an older commit, ``git archive COMMIT src | tar -x -C DIR``), set ``PYTHONPATH=DIR/src``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common import finish_report, machine

REPO = Path(__file__).resolve().parent.parent
HEAVY = ("pydicom", "numpy", "docker", "dask", "distributed", "pydantic", "yaml", "jsonschema")
# (name, arguments after `dicompose`, target seconds or None: issue 8 asks only that they import nothing heavy);
# {ws} and {run} are filled in once the run exists.
COMMANDS: list[tuple[str, list[str], float | None]] = [
    ("--version", ["--version"], 0.15),
    ("--help", ["--help"], None),
    ("runs", ["runs", "--workspace", "{ws}"], 0.3),
    ("show RUN", ["show", "{run}", "--workspace", "{ws}"], 0.3),
    ("tool validate normalize", ["tool", "validate", "normalize"], None),
]
WIDTH = 36


def dicompose_argv() -> list[str]:
    script = Path(sys.executable).parent / "dicompose"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "dicompose"]


def wall(argv: list[str], cwd: Path) -> tuple[float, float]:
    """(wall, CPU) seconds from spawn to exit of one fresh process (output discarded); it must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: exit {proc.returncode}: {proc.stderr.decode(errors='replace')[-500:]}")
    return seconds, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def heavy_imports(argv: list[str], cwd: Path) -> list[str]:
    """Top-level heavy packages imported by one run (from the interpreter's import-time report)."""
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    names = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in proc.stderr.splitlines() if "|" in line}
    return sorted(names & set(HEAVY))


def record_one_run(tmp: Path) -> tuple[str | None, str]:
    """A workspace holding one recorded ``run normalize`` (local engine): (run id, "") or (None, why not)."""
    from dicompose.dicom.synthetic import write_ct_series

    [scan] = write_ct_series(tmp / "scans", "1.2.826.0.1.3680043.8.498.1", 1, rows=32, cols=32)
    argv = [*dicompose_argv(), "run", "normalize", "--in", str(scan), "--out", str(tmp / "out")]
    argv += ["--engine", "local", "--workspace", str(tmp / "ws")]
    proc = subprocess.run(argv, cwd=tmp, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        return None, f"dicompose run normalize failed (exit {proc.returncode}): {lines[-1] if lines else ''}"
    listing = [*dicompose_argv(), "runs", "--workspace", str(tmp / "ws"), "--json"]
    items = json.loads(subprocess.run(listing, cwd=tmp, capture_output=True, text=True, check=True).stdout)
    return (items[-1]["id"], "") if items else (None, "dicompose runs listed no run after dicompose run")


def measure(tmp: Path, repeat: int) -> dict[str, Any]:
    run_id, why = record_one_run(tmp)
    if run_id is None:  # runs still needs a workspace: an empty index
        from dicompose.records.index import Index

        (tmp / "ws").mkdir(exist_ok=True)
        Index(tmp / "ws" / "index.sqlite").close()
    floor_argv = [sys.executable, "-c", "pass"]
    rows: list[dict[str, Any]] = []
    for name, args, target in COMMANDS:
        argv = [*dicompose_argv(), *(a.format(ws=tmp / "ws", run=run_id) for a in args)]
        row: dict[str, Any] = {"name": name, "argv": argv[len(dicompose_argv()) :], "target_s": target}
        if "{run}" in args and run_id is None:
            rows.append({**row, "median_s": None, "not_measured": why})
            continue
        wall(argv, tmp)  # warm-up: page cache, .pyc files
        row["heavy_imports"] = heavy_imports(argv, tmp)
        row["samples"], row["cpu_samples"] = [], []
        rows.append(row)
    floor: dict[str, Any] = {"argv": ["python", "-c", "pass"], "samples": [], "cpu_samples": []}
    wall(floor_argv, tmp)
    for _ in range(repeat):  # rounds: each command and the floor once per round, so load affects all alike
        for row, argv in [(floor, floor_argv)] + [(r, [*dicompose_argv(), *r["argv"]]) for r in rows if "samples" in r]:
            seconds, cpu = wall(argv, tmp)
            row["samples"].append(seconds)
            row["cpu_samples"].append(cpu)
    floor["median_s"] = statistics.median(floor["samples"])
    floor["median_cpu_s"] = statistics.median(floor["cpu_samples"])
    for row in rows:
        if "samples" in row:
            row["median_s"] = statistics.median(row["samples"])
            row["median_cpu_s"] = statistics.median(row["cpu_samples"])
            row["ratio_to_floor"] = row["median_s"] / floor["median_s"]
            row["met"] = None if row["target_s"] is None else row["median_s"] <= row["target_s"]
    return {"repeat": repeat, "floor": floor, "commands": rows}


def print_table(report: dict[str, Any]) -> None:
    result = report["startup"]
    floor = result["floor"]
    print(f"\nstart-up ({report['machine']['usable_cores']} cores, {report['date']}, median of {result['repeat']})")
    print(f"{'command':<{WIDTH}}{'median s':>10}{'CPU s':>8}{'target s':>10}{'x floor':>9}  met  heavy imports")
    print(f"{'python -c pass (floor)':<{WIDTH}}{floor['median_s']:>10.3f}{floor['median_cpu_s']:>8.3f}")
    for row in result["commands"]:
        target = "-" if row["target_s"] is None else f"{row['target_s']:.2f}"
        label = f"{'dicompose ' + row['name']:<{WIDTH}}"
        if row["median_s"] is None:
            print(f"{label}{'-':>10}{'-':>8}{target:>10}  not measured: {row['not_measured']}")
            continue
        met = {True: "yes", False: "NO ", None: "-  "}[row["met"]]
        heavy = ", ".join(row["heavy_imports"]) or "-"
        figures = f"{row['median_s']:>10.3f}{row['median_cpu_s']:>8.3f}{target:>10}{row['ratio_to_floor']:>9.1f}"
        print(f"{label}{figures}  {met}  {heavy}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per command (median reported)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "startup.json")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    report: dict[str, Any] = {
        "benchmark": "startup",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": [Path(sys.executable).name, *sys.argv],
        "machine": machine(loadavg_before=os.getloadavg(), pythonpath=os.environ.get("PYTHONPATH", "")),
    }
    tmp = Path(tempfile.mkdtemp(prefix="dicompose-bench-startup-"))
    try:
        print(f"start-up: {len(COMMANDS)} commands x {args.repeat} ...", flush=True)
        report["startup"] = measure(tmp, args.repeat)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    finish_report(args.out, report, print_table)


if __name__ == "__main__":
    main()
