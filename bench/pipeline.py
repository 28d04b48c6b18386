"""Benchmark of ``run_pipeline`` (cache and scheduler) against baselines timed in the same run.

Two comparisons, each reported as a ratio to a baseline measured in the same run on the same machine:

1. No-op rerun over N small DICOM files (default 10,000 32x32 CT slices in 20 series folders), two-step
   pipeline (built-in ``normalize`` then ``threshold``) on the local engine: after one full run, a rerun with
   nothing changed must launch 0 tasks. Baseline: ``sha256_file`` on every input, one thread, files in the
   page cache -- what a cache keyed on content alone, without the (device, inode, size, mtime_ns) memo,
   would pay before it could decide anything. Goal: the rerun takes < 1 s.
2. Cohort throughput (input files/s), the same two-step pipeline over S series x K slices of 256x256 CT,
   each variant in a fresh workspace and output folder: ``workers=1`` versus ``workers=2`` of the thread
   scheduler. The local engine runs each task as a ``dicompose normalize|threshold`` subprocess, which by
   default uses every core itself; ``DICOMPOSE_WORKERS=1`` is set for those processes so that the
   scheduler's parallelism is what is measured. If a Docker engine answers and both images are pinned, the
   same pair runs with ``engine="docker"`` too (containers get no environment: the tool inside uses every
   core it sees).

Run: ``.venv/bin/python bench/pipeline.py [--files N] [--repeat K] [--series S] [--slices K] [--size PX] [--quick]
[--no-docker] [--profile PATH] [--out PATH]``.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import shutil
import signal
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest.mock import patch

import numpy as np
import pydicom

from common import machine as machine_info
from common import write_report
from dicompose.dicom.synthetic import ct_slice, phantom_hu, save, synthetic_uid
from dicompose.errors import DicomposeError
from dicompose.images.docker_client import connect
from dicompose.images.pins import pinned
from dicompose.pipeline.runner import PipelineReport, PipelineRequest, run_pipeline
from dicompose.records.hashing import sha256_file
from dicompose.tools.descriptor import load_descriptor

REPO = Path(__file__).resolve().parent.parent
NOOP_GOAL_S = 1.0
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
    reruns: list[float] = []
    rehashes: list[float] = []
    for _ in range(repeat):  # rounds alternate the two, so a slow spell hits both
        seconds, again = run(root, "noop", "local", workers)
        if again.launches != 0 or not all(t.cached for t in again.tasks):
            raise RuntimeError(f"no-op rerun launched {again.launches} tasks")
        reruns.append(seconds)
        start = time.perf_counter()
        for path in paths:
            sha256_file(path)
        rehashes.append(time.perf_counter() - start)
    result["noop_rerun"] = {"median_s": statistics.median(reruns), "all_s": reruns, "cached_tasks": len(again.tasks)}
    if profile is not None:  # one more rerun, untimed, under cProfile
        profiler = cProfile.Profile()
        profiler.runcall(run, root, "noop", "local", workers)
        profiler.dump_stats(profile)
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
    result["full_rehash"] = {"median_s": statistics.median(rehashes), "all_s": rehashes}
    result["ratio_rerun_over_rehash"] = result["noop_rerun"]["median_s"] / result["full_rehash"]["median_s"]
    result["goal_met"] = result["noop_rerun"]["median_s"] < NOOP_GOAL_S
    return result


def docker_ready() -> str:
    """Empty if the docker variant can run, else why not."""
    try:
        connect()
    except DicomposeError as exc:
        return str(exc)
    unpinned = [t for t in ("normalize", "threshold") if not pinned(t, load_descriptor(t).digest)]
    return f"not pinned: {', '.join(unpinned)} (run: dicompose build NAME)" if unpinned else ""


def bench_cohort(root: Path, series: int, slices: int, size: int, repeat: int, docker: bool) -> dict[str, Any]:
    started = time.perf_counter()
    files = len(generate(root / "scans", series, slices, size))
    result: dict[str, Any] = {"files": files, "series": series, "slices": slices, "size": f"{size}x{size}"}
    result["generation_s"] = time.perf_counter() - started
    result["task_env"] = {"DICOMPOSE_WORKERS": "1"}
    result["docker_skipped"] = docker_ready() if docker else "--no-docker given"
    engines = ["local"] if result["docker_skipped"] else ["local", "docker"]
    if "docker" in engines:  # the image IDs the docker variant runs (pins are per tool and descriptor)
        result["docker_images"] = {
            t: pinned(t, load_descriptor(t).digest)["digest"] for t in ("normalize", "threshold")
        }
    if result["docker_skipped"]:
        print(f"  docker variant skipped: {result['docker_skipped']}", flush=True)
    variants = [(engine, workers) for engine in engines for workers in (1, 2)]
    samples: dict[str, list[float]] = {f"{e}_{w}_worker": [] for e, w in variants}
    with patch.dict(os.environ, {"DICOMPOSE_WORKERS": "1"}):  # read by every local task process
        for _ in range(repeat):  # rounds interleave the variants, so a slow spell of the disk hits all of them
            for engine, workers in variants:
                tag = f"{engine}_{workers}_worker"
                for folder in (root / f"{tag}-ws", root / f"{tag}-out"):
                    shutil.rmtree(folder, ignore_errors=True)
                os.sync()  # no dirty pages of the previous variant flushed during this one
                seconds, report = run(root, tag, engine, workers)
                if report.launches != 2 * series:
                    raise RuntimeError(f"{tag}: {report.launches} launches for {series} series")
                samples[tag].append(seconds)
                result.setdefault(tag, {"engine": engine, "workers": workers, "launches": report.launches})
    for tag, runs in samples.items():
        seconds = statistics.median(runs)
        result[tag].update({"seconds": seconds, "files_per_s": files / seconds, "all_seconds": runs})
    for engine in engines:
        one, two = result[f"{engine}_1_worker"], result[f"{engine}_2_worker"]
        result[f"{engine}_speedup_2_over_1"] = two["files_per_s"] / one["files_per_s"]
    return result


def machine() -> dict[str, Any]:
    return machine_info(numpy=np.__version__, pydicom=pydicom.__version__, loadavg_before=os.getloadavg())


def print_table(report: dict[str, Any]) -> None:
    noop, cohort = report["noop"], report["cohort"]
    print(f"\npipeline benchmark ({report['machine']['usable_cores']} cores, {report['date']})")
    print(f"no-op rerun, {noop['files']} files ({noop['series']} series, {noop['slice']}), 2 steps, local engine")
    print(f"  full run: {noop['full_run']['seconds']:.1f} s, {noop['full_run']['launches']} launches")
    print(f"{'  variant':<40}{'median s':>10}{'min s':>8}{'max s':>8}  (of {len(noop['noop_rerun']['all_s'])})")
    for name, key in (("no-op rerun (0 launches)", "noop_rerun"), ("full sha256 rehash, 1 thread", "full_rehash")):
        r = noop[key]
        print(f"  {name:<38}{r['median_s']:>10.3f}{min(r['all_s']):>8.3f}{max(r['all_s']):>8.3f}")
    met = "met" if noop["goal_met"] else "NOT met"
    print(f"  rerun / rehash: {noop['ratio_rerun_over_rehash']:.2f}x; goal rerun < {NOOP_GOAL_S:g} s: {met}")
    print(f"\ncohort {cohort['files']} files ({cohort['series']} x {cohort['slices']}, {cohort['size']}), 2 steps")
    print("  DICOMPOSE_WORKERS=1 in the environment of every task process (local engine)")
    print(f"{'  variant':<40}{'launches':>10}{'seconds':>9}{'files/s':>9}")
    for tag in (k for k in cohort if k.endswith("_worker")):
        r = cohort[tag]
        print(f"  {tag:<38}{r['launches']:>10}{r['seconds']:>9.1f}{r['files_per_s']:>9.1f}")
    for key in (k for k in cohort if k.endswith("_speedup_2_over_1")):
        print(f"  {key.split('_')[0]} speed-up, 2 workers / 1 worker: {cohort[key]:.2f}x")
    if cohort["docker_skipped"]:
        print(f"  docker variant skipped: {cohort['docker_skipped']}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=None, help="small files for the no-op rerun (10000)")
    parser.add_argument("--repeat", type=int, default=3, help="timed reruns/rehashes and cohort rounds (median)")
    parser.add_argument("--series", type=int, default=None, help="cohort series (default 40)")
    parser.add_argument("--slices", type=int, default=None, help="cohort slices per series (default 25)")
    parser.add_argument("--size", type=int, default=256, help="cohort slice rows = columns (default 256)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1,000 files, cohort 8 x 10")
    parser.add_argument("--no-docker", action="store_true", help="skip the docker variant of the cohort")
    parser.add_argument("--profile", type=Path, default=None, help="cProfile one more no-op rerun into PATH")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "pipeline.json")
    args = parser.parse_args(argv)
    if any(n is not None and n < 1 for n in (args.files, args.repeat, args.series, args.slices, args.size)):
        parser.error("--files, --repeat, --series, --slices and --size must be at least 1")
    files = args.files or (1000 if args.quick else 10000)
    series, slices = args.series or (8 if args.quick else 40), args.slices or (10 if args.quick else 25)
    cores = len(os.sched_getaffinity(0))
    report: dict[str, Any] = {
        "benchmark": "pipeline",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": [Path(sys.executable).name, *sys.argv],
        "machine": machine(),
    }
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # killed: still remove the temp folder
    with tempfile.TemporaryDirectory(prefix="dicompose-bench-") as tmp:
        for part in ("noop", "cohort"):
            Path(tmp, part).mkdir()
            Path(tmp, part, "pipeline.yaml").write_text(PIPELINE)
        print(f"no-op rerun: {files} files, {args.repeat} reruns ...", flush=True)
        report["noop"] = bench_noop(Path(tmp, "noop"), files, args.repeat, cores, args.profile)
        write_report(args.out, {**report, "cohort": "not measured yet (run still going or interrupted)"})
        shutil.rmtree(Path(tmp, "noop", "scans"))  # disk and page cache for the cohort
        print(f"cohort: {series} x {slices} slices, {args.repeat} rounds ...", flush=True)
        report["cohort"] = bench_cohort(Path(tmp, "cohort"), series, slices, args.size, args.repeat, not args.no_docker)
    report["machine"]["loadavg_after"] = os.getloadavg()
    write_report(args.out, report)
    print_table(report)
    print(f"\nwritten: {args.out}")


if __name__ == "__main__":
    main()
