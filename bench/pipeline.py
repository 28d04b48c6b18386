"""Benchmark of no-op reruns (the cache) against baselines timed in the same run.

What a user waits for when nothing changed, through the CLI (``dicompose run PIPELINE``, a fresh interpreter
each time, engine probe included), median of K:

1. Over N small DICOM files (default 10,000 32x32 CT slices in 20 series folders), two-step pipeline (built-in
   ``normalize`` then ``threshold``), local engine. Baseline: ``sha256_file`` on every input, one thread, files
   in the page cache -- what a cache keyed on content alone, without the (device, inode, size, mtime_ns) memo,
   would pay before it could decide anything. Goal: ≤ 0.5 s. The same rerun in-process (``run_pipeline``)
   shows what start-up adds.
2. Over 11 files (3 series), the demo pipeline: local engine (goal ≤ 0.5 s) and docker (goal ≤ 0.8 s, when
   a Docker engine answers and the images are built), next to ``dicompose --version`` (the floor).

Cohort throughput against the tools run by hand and Snakemake is ``bench/cohort.py``.

Run: ``.venv/bin/python bench/pipeline.py [--files N] [--repeat K] [--quick] [--no-docker] [--profile PATH]
[--out PATH]``.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pydicom

from common import finish_report
from common import machine as machine_info
from dicompose.descriptors.descriptor import load_descriptor
from dicompose.dicom.synthetic import ct_slice, phantom_hu, save, synthetic_uid, write_ct_series
from dicompose.errors import DicomposeError
from dicompose.images.docker_client import connect
from dicompose.images.pins import pinned
from dicompose.pipeline.runner import PipelineReport, PipelineRequest, run_pipeline
from dicompose.records.hashing import sha256_file

REPO = Path(__file__).resolve().parent.parent
NOOP_GOAL_S = 0.5
GOALS_SMALL = {"local": 0.5, "docker": 0.8}
DICOMPOSE = Path(sys.executable).parent / "dicompose"
DEMO = REPO / "src" / "dicompose" / "pipelines" / "demo.yaml"
PIPELINE = """version: 1
name: bench
inputs:
  scans: dicom
steps:
  normalize:
    tool: normalize
    with: {input: inputs.scans, min: 0, max: 100, scope: series}
  mask:
    tool: threshold
    with: {input: steps.normalize.output, level: 50}
outputs:
  normalized: steps.normalize.output
  masks: steps.mask.output
"""


def generate(folder: Path, series: int, per_series: int, size: int) -> list[Path]:
    """``series`` folders of ``per_series`` CT slices: one dataset per series, UIDs and pixels changed per file
    (the phantom repeats every 32 slices), written without fsync -- unlike ``save``, which is for real data."""
    pixels = [(phantom_hu(size, size, i).astype(np.int32) + 1024).astype("<u2").tobytes() for i in range(32)]
    paths = []
    for s in range(series):
        name = f"series-{s:03d}"
        ds = ct_slice(name, 0, size, size)
        save(ds, folder / name / "slice_0000.dcm")  # sets file_meta; the file itself is rewritten below
        for i in range(per_series):
            ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = synthetic_uid(name, "instance", i)
            ds.InstanceNumber, ds.ImagePositionPatient, ds.PixelData = i + 1, [0.0, 0.0, i * 2.5], pixels[i % 32]
            paths.append(folder / name / f"slice_{i:04d}.dcm")
            pydicom.dcmwrite(paths[-1], ds, enforce_file_format=True)
    return paths


def run(root: Path, tag: str, engine: str, workers: int) -> tuple[float, PipelineReport]:
    """One timed ``run_pipeline`` on ``root/scans`` with workspace and output ``root/TAG-ws``, ``root/TAG-out``."""
    out, workspace, pipeline = root / f"{tag}-out", root / f"{tag}-ws", root / "pipeline.yaml"
    request = PipelineRequest(pipeline, {"scans": root / "scans"}, out, workspace, engine, "local", workers)
    start = time.perf_counter()
    report = run_pipeline(request)
    seconds = time.perf_counter() - start
    if not report.ok:
        bad = [(t.step, t.label, t.result.problems if t.result else t.status) for t in report.tasks if not t.cached]
        raise RuntimeError(f"{tag}: pipeline failed: {bad[:3]}")
    return seconds, report


def bench_noop(root: Path, files: int, repeat: int, workers: int, profile: Path | None) -> dict[str, Any]:
    series = 20 if files >= 20 else 1
    started = time.perf_counter()
    paths = generate(root / "scans", series, files // series, 32)
    result: dict[str, Any] = {"files": len(paths), "series": series, "slice": "32x32", "workers": workers}
    result["generation_s"] = time.perf_counter() - started
    full_s, full = run(root, "noop", "local", workers)
    result["full_run"] = {"seconds": full_s, "launches": full.launches, "tasks": len(full.tasks)}
    for path in paths:  # every input in the page cache before either side is timed
        sha256_file(path)
    cli: list[float] = []
    reruns: list[float] = []
    rehashes: list[float] = []
    argv = run_argv(root, "noop", "local")
    for _ in range(repeat):  # rounds alternate the variants, so a slow spell hits all of them
        cli += cli_seconds(argv, 1)
        seconds, again = run(root, "noop", "local", workers)
        if again.launches != 0 or not all(t.cached for t in again.tasks):
            raise RuntimeError(f"no-op rerun launched {again.launches} launches")
        reruns.append(seconds)
        start = time.perf_counter()
        for path in paths:
            sha256_file(path)
        rehashes.append(time.perf_counter() - start)
    result["noop_cli"] = {"median_s": statistics.median(cli), "all_s": cli}
    result["noop_rerun"] = {"median_s": statistics.median(reruns), "all_s": reruns, "cached_tasks": len(again.tasks)}
    if profile is not None:  # one more rerun, untimed, under cProfile
        profiler = cProfile.Profile()
        profiler.runcall(run, root, "noop", "local", workers)
        profiler.dump_stats(profile)
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
    result["full_rehash"] = {"median_s": statistics.median(rehashes), "all_s": rehashes}
    result["ratio_rerun_over_rehash"] = result["noop_cli"]["median_s"] / result["full_rehash"]["median_s"]
    result["goal_met"] = result["noop_cli"]["median_s"] <= NOOP_GOAL_S
    return result


def docker_ready() -> str:
    """Empty if the docker variant can run, else why not."""
    try:
        connect()
    except DicomposeError as exc:
        return str(exc)
    unpinned = [t for t in ("normalize", "threshold") if not pinned(t, load_descriptor(t).digest)]
    return f"not pinned: {', '.join(unpinned)} (run: dicompose build NAME)" if unpinned else ""


def cli_seconds(argv: list[str], repeat: int) -> list[float]:
    """Wall times of ``argv`` run ``repeat`` times (fresh interpreters), after one untimed warm-up."""
    times = []
    for round_index in range(repeat + 1):
        start = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr[-500:]}")
        if round_index:
            times.append(seconds)
    return times


def run_argv(root: Path, tag: str, engine: str) -> list[str]:
    pipeline = root / "pipeline.yaml"
    return [
        str(DICOMPOSE),
        "run",
        str(pipeline),
        "--in",
        str(root / "scans"),
        "--out",
        str(root / f"{tag}-out"),
        "--workspace",
        str(root / f"{tag}-ws"),
        "--engine",
        engine,
    ]  # no --json: what a user waits for (the JSON of 10,000 files' outputs takes time to print)


def bench_small(root: Path, repeat: int, docker: bool) -> dict[str, Any]:
    """No-op reruns of the demo pipeline over 11 files through the CLI, per engine, next to --version."""
    for number, count in enumerate((4, 4, 3)):
        write_ct_series(root / "scans" / f"series{number}", f"noop-{number}", count, 32, 32)
    (root / "pipeline.yaml").write_text(DEMO.read_text())
    result: dict[str, Any] = {"files": 11, "series": 3}
    result["version"] = {"median_s": statistics.median(cli_seconds([str(DICOMPOSE), "--version"], repeat))}
    skipped = docker_ready() if docker else "--no-docker given"
    engines = ["local"] + ([] if skipped else ["docker"])
    result["docker_skipped"] = skipped
    for engine in engines:
        argv = run_argv(root, engine, engine)
        first = subprocess.run(argv, capture_output=True, text=True, check=False)
        if first.returncode != 0:
            raise RuntimeError(f"{engine}: first run failed: {first.stderr[-500:]}")
        times = cli_seconds(argv, repeat)
        goal = GOALS_SMALL[engine]
        median = statistics.median(times)
        result[engine] = {"median_s": median, "all_s": times, "goal_s": goal, "goal_met": median <= goal}
    return result


def machine() -> dict[str, Any]:
    return machine_info(numpy=np.__version__, pydicom=pydicom.__version__, loadavg_before=os.getloadavg())


def print_table(report: dict[str, Any]) -> None:
    noop, small = report["noop"], report["small"]
    print(f"\nno-op rerun benchmark ({report['machine']['usable_cores']} cores, {report['date']})")
    print(f"{noop['files']} files ({noop['series']} series, {noop['slice']}), 2 steps, local engine")
    print(f"  full run: {noop['full_run']['seconds']:.1f} s, {noop['full_run']['launches']} launches")
    print(f"{'  variant':<44}{'median s':>10}{'min s':>8}{'max s':>8}")
    for name, key in (
        ("dicompose run (CLI, 0 launches)", "noop_cli"),
        ("run_pipeline in-process (0 launches)", "noop_rerun"),
        ("full sha256 rehash, 1 thread", "full_rehash"),
    ):
        r = noop[key]
        print(f"  {name:<42}{r['median_s']:>10.3f}{min(r['all_s']):>8.3f}{max(r['all_s']):>8.3f}")
    met = "met" if noop["goal_met"] else "NOT met"
    print(f"  CLI rerun / rehash: {noop['ratio_rerun_over_rehash']:.2f}x; goal ≤ {NOOP_GOAL_S:g} s: {met}")
    print(f"\n{small['files']} files ({small['series']} series), demo pipeline, CLI no-op rerun, median")
    print(f"  dicompose --version (floor): {small['version']['median_s']:.3f} s")
    for engine in ("local", "docker"):
        if engine in small:
            r = small[engine]
            verdict = "met" if r["goal_met"] else "NOT met"
            print(f"  {engine:<8} {r['median_s']:.3f} s (goal ≤ {r['goal_s']:g} s: {verdict})")
    if small["docker_skipped"]:
        print(f"  docker skipped: {small['docker_skipped']}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=None, help="small files for the no-op rerun (10000)")
    parser.add_argument("--repeat", type=int, default=5, help="timed reruns and rehashes (median)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1,000 files")
    parser.add_argument("--no-docker", action="store_true", help="skip the docker variant")
    parser.add_argument("--profile", type=Path, default=None, help="cProfile one more no-op rerun into PATH")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "pipeline.json")
    args = parser.parse_args(argv)
    if any(n is not None and n < 1 for n in (args.files, args.repeat)):
        parser.error("--files and --repeat must be at least 1")
    files = args.files or (1000 if args.quick else 10000)
    cores = len(os.sched_getaffinity(0))
    report: dict[str, Any] = {
        "benchmark": "pipeline",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": [Path(sys.executable).name, *sys.argv],
        "machine": machine(),
    }
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # killed: still remove the temp folder
    with tempfile.TemporaryDirectory(prefix="dicompose-bench-") as tmp:
        for part in ("noop", "small"):
            Path(tmp, part).mkdir()
        Path(tmp, "noop", "pipeline.yaml").write_text(PIPELINE)
        print(f"no-op rerun: {files} files, {args.repeat} reruns ...", flush=True)
        report["noop"] = bench_noop(Path(tmp, "noop"), files, args.repeat, cores, args.profile)
        shutil.rmtree(Path(tmp, "noop", "scans"))
        print(f"no-op rerun: 11 files, {args.repeat} reruns per engine ...", flush=True)
        report["small"] = bench_small(Path(tmp, "small"), args.repeat, not args.no_docker)
    finish_report(args.out, report, print_table)


if __name__ == "__main__":
    main()
