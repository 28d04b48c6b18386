"""Benchmark of ``dicompose normalize`` against its baselines, all measured in one run on one machine.

Two comparisons, each reported as a ratio to a baseline timed in the same run:

1. Kernel throughput (MB/s of stored pixels): ``modality_range`` + ``remap`` on an int16 CT slice
   (512x512) and volume (64x512x512), slope 1 / intercept -1024, target [0, 100], versus ``np.copyto`` of
   the same array into a preallocated one -- memcpy is the ceiling for any pass that reads and writes every
   pixel once. The goal stated for the kernel is >= 0.5x memcpy.
2. End to end (files/s) on N synthetic 512x512 16-bit CT slices: the 2018 paper's ``normalize_scan.py``
   algorithm in a plain Python loop (the speed baseline, although its output is wrong) versus
   ``run_normalize`` with 1 worker and with every available core. Each variant runs in a fresh interpreter
   so its peak RSS (main process, largest child, and their sum) can be compared with the batch's pixel
   bytes: a runner that held the batch in memory would need at least that much.
3. ``dicompose normalize`` with every core versus the plain loop a user would write instead, with the same
   number of processes on the same files: pydicom read → numpy remap of the stored values to [min, max] (cast
   back to the input's type) → pydicom write → fsync, the files split evenly over the processes (goal ≥ 0.85).
4. What the machine-level audit log of host commands costs: the 1-worker variant again with
   ``DICOMPOSE_AUDIT=host`` (audit off), in the same rounds; overhead = 1 - files/s on / files/s off, from
   the medians and per round. Every run audits into a temporary ``DICOMPOSE_HOME``, never the user's log.

Run: ``.venv/bin/python bench/normalize.py [--files N] [--repeat K] [--quick] [--out PATH]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pydicom

from common import machine as machine_info
from common import write_report
from dicompose.dicom.kernel import choose_encoding, modality_range, remap
from dicompose.dicom.synthetic import phantom_hu, write_ct_series
from dicompose.params import NormalizeParams, ValueRange
from dicompose.tools.batch import Status
from dicompose.tools.normalize import run_normalize

REPO = Path(__file__).resolve().parent.parent
TARGET = ValueRange(0.0, 100.0)
KERNEL_GOAL = 0.5  # kernel MB/s / memcpy MB/s
PLAIN_GOAL = 0.85  # dicompose normalize, all cores / the plain loop with as many processes
MB = 1e6
KIB = 1024 / MB  # MB per KiB (/proc reports "kB", meaning KiB)


def timed(fn: Callable[[], object], runs: int, warmup: int = 3) -> list[float]:
    """Wall-clock seconds of ``runs`` calls of ``fn`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def ct_stored(frames: int) -> np.ndarray:
    """Stored values (HU + 1024) of ``frames`` phantom slices, int16, shaped (frames, 512, 512)."""
    slices = [(phantom_hu(512, 512, i % 30).astype(np.int32) + 1024).astype(np.int16) for i in range(frames)]
    return np.stack(slices)


def bench_kernel(frames: int, runs: int) -> dict[str, Any]:
    stored = ct_stored(frames)
    slopes, intercepts = np.ones(frames), np.full(frames, -1024.0)
    encoding = choose_encoding(TARGET, 16)
    copy_dst = np.empty_like(stored)

    def kernel() -> object:
        return remap(stored, slopes, intercepts, modality_range(stored, slopes, intercepts), TARGET, encoding)

    result: dict[str, Any] = {"shape": list(stored.shape), "dtype": "int16", "mb": stored.nbytes / MB}
    for name, fn in (("kernel", kernel), ("memcpy", lambda: np.copyto(copy_dst, stored))):
        samples = timed(fn, runs)
        median = statistics.median(samples)
        result[name] = {"median_s": median, "best_s": min(samples), "mb_per_s": result["mb"] / median, "runs": runs}
    result["ratio_kernel_over_memcpy"] = result["kernel"]["mb_per_s"] / result["memcpy"]["mb_per_s"]
    result["goal_met"] = result["ratio_kernel_over_memcpy"] >= KERNEL_GOAL
    return result


def peak_rss_kb(pid: int) -> tuple[int, list[int]]:
    """(peak RSS of ``pid`` in KiB, its child pids) from /proc; (0, []) once it has gone. VmHWM, not
    ``ru_maxrss``: the latter inherits the peak of the parent that vforked the process (subprocess)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return 0, []
    hwm = [int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")]
    return (hwm[0] if hwm else 0), [int(k) for k in kids]


def watch_descendants(peaks: dict[int, int], stop: threading.Event) -> None:
    """Record every descendant's peak RSS (pool workers, forkserver) until ``stop`` is set."""
    while not stop.wait(0.05):
        todo = peak_rss_kb(os.getpid())[1]
        while todo:
            pid = todo.pop()
            hwm, kids = peak_rss_kb(pid)
            peaks[pid] = max(peaks.get(pid, 0), hwm)
            todo += kids


def plain_loop(files: list[Path], dst: Path) -> int:
    """The plain loop: read, remap, write, fsync (no validity, no UIDs: only the work a user's script does)."""
    dst.mkdir(parents=True, exist_ok=True)
    for path in files:
        ds = pydicom.dcmread(path)
        stored = ds.pixel_array
        values = stored.astype(np.float64)
        low, high = float(values.min()), float(values.max())
        scaled = (values - low) / ((high - low) or 1.0) * (TARGET.high - TARGET.low) + TARGET.low
        ds.PixelData = np.rint(scaled).astype(stored.dtype).tobytes()
        target = dst / (path.stem + "-normalized.dcm")
        with target.open("wb") as fh:
            ds.save_as(fh)
            fh.flush()
            os.fsync(fh.fileno())
    return len(files)


def plain_loop_processes(files: list[Path], dst: Path, workers: int) -> int:
    """``plain_loop`` in ``workers`` processes (fork), each on its share of the files."""
    import multiprocessing

    shares = [files[i::workers] for i in range(workers)]
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        return sum(pool.starmap(plain_loop, [(share, dst) for share in shares]))


def child(variant: str, src: Path, dst: Path, workers: int) -> None:
    """One end-to-end run in this (fresh) interpreter; prints a JSON line with time and peak memory."""
    sys.path.insert(0, str(REPO / "tests"))  # imported by every variant: each child loads the same modules
    from reference.paper_normalize_scan import normalize

    files = sorted(src.glob("*.dcm"))
    peaks: dict[int, int] = {}
    stop = threading.Event()
    watcher = threading.Thread(target=watch_descendants, args=(peaks, stop), daemon=True)
    watcher.start()
    start = time.perf_counter()
    if variant == "paper":
        done = sum(1 for f in files if normalize(str(f), TARGET.low, TARGET.high))
    elif variant == "plain":
        done = plain_loop_processes(files, dst, workers)
    else:
        params = NormalizeParams(TARGET.low, TARGET.high)
        done = run_normalize([src], params, dst, workers=workers).count(Status.PROCESSED)
    seconds = time.perf_counter() - start
    stop.set()
    watcher.join()
    main_mb, children = peak_rss_kb(os.getpid())[0] * KIB, [kb * KIB for kb in peaks.values()]
    rss = {"peak_rss_mb": main_mb, "peak_child_rss_mb": max(children, default=0.0)}
    rss["peak_total_rss_mb"] = main_mb + sum(children)  # upper bound: pages shared after fork count twice
    print(json.dumps({"files": len(files), "done": done, "seconds": seconds, **rss}))


def run_variant(variant: str, src: Path, dst: Path, workers: int, env: dict[str, str]) -> dict[str, Any]:
    shutil.rmtree(dst, ignore_errors=True)
    for old in src.glob("*-normalized.dcm"):  # the paper writes beside its (private) inputs
        old.unlink()
    os.sync()  # no dirty pages from the previous variant flushed during this one
    cmd = [sys.executable, __file__, "--child", variant, str(src), str(dst), str(workers)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env={**os.environ, **env})
    if proc.returncode != 0:
        raise RuntimeError(f"{variant} run failed:\n{proc.stderr}")
    outcome: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    if outcome["done"] != outcome["files"]:
        raise RuntimeError(f"{variant}: only {outcome['done']} of {outcome['files']} files processed")
    return outcome


def end_to_end_variants(cores: int) -> dict[str, tuple[str, int, dict[str, str]]]:
    """name -> (paper or ours, workers, environment)."""
    return {
        "paper": ("paper", 1, {}),
        "ours_1_worker": ("ours", 1, {}),
        "ours_1_worker_audit_off": ("ours", 1, {"DICOMPOSE_AUDIT": "host"}),
        "ours_all_cores": ("ours", cores, {}),
        "plain_loop_all_cores": ("plain", cores, {}),
    }


def bench_end_to_end(files: int, repeat: int, cores: int, only: list[str] | None = None) -> dict[str, Any]:
    variants = {k: v for k, v in end_to_end_variants(cores).items() if not only or k in only}
    results: dict[str, Any] = {"files": files, "pixel_mbytes": files * 512 * 512 * 2 / MB, "repeat": repeat}
    with tempfile.TemporaryDirectory(prefix="dicompose-bench-") as tmp:
        src, paper_src, out = Path(tmp, "input"), Path(tmp, "paper-input"), Path(tmp, "output")
        home = {"DICOMPOSE_HOME": str(Path(tmp, "home"))}  # the audit log and its keys, thrown away after
        started = time.perf_counter()
        write_ct_series(src, "benchmark", files)
        shutil.copytree(src, paper_src)
        results["generation_s"] = time.perf_counter() - started
        samples: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
        for _ in range(repeat):  # rounds interleave the variants, so a slow spell of the disk hits all of them
            for name, (variant, workers, env) in variants.items():
                inputs = paper_src if variant == "paper" else src
                samples[name].append(run_variant(variant, inputs, out, workers, {**home, **env}))
        for name, runs in samples.items():
            seconds = statistics.median(r["seconds"] for r in runs)
            results[name] = {
                "workers": variants[name][1],
                "seconds": seconds,
                "files_per_s": files / seconds,
                "all_seconds": [r["seconds"] for r in runs],
            }
            for key in ("peak_rss_mb", "peak_child_rss_mb", "peak_total_rss_mb"):
                results[name][key] = max(r[key] for r in runs)
    for name in ("ours_1_worker", "ours_1_worker_audit_off", "ours_all_cores"):
        if name in results and "paper" in results:
            results[name]["speedup_vs_paper"] = results[name]["files_per_s"] / results["paper"]["files_per_s"]
    if "ours_all_cores" in results and "plain_loop_all_cores" in results:
        ratio = results["ours_all_cores"]["files_per_s"] / results["plain_loop_all_cores"]["files_per_s"]
        results["ours_over_plain_loop_all_cores"] = {
            "ratio": ratio,
            "goal": PLAIN_GOAL,
            "goal_met": ratio >= PLAIN_GOAL,
        }
    if "ours_1_worker" not in results or "ours_1_worker_audit_off" not in results:
        return results
    on, off = results["ours_1_worker"], results["ours_1_worker_audit_off"]
    per_round = [1 - b / a for a, b in zip(on["all_seconds"], off["all_seconds"], strict=True)]
    results["audit_overhead_1_worker"] = {
        "of_medians": 1 - on["files_per_s"] / off["files_per_s"],  # 1 - (files/s on) / (files/s off)
        "per_round": per_round,
        "median_per_round": statistics.median(per_round),
    }
    return results


def machine() -> dict[str, Any]:
    return machine_info(numpy=np.__version__, pydicom=pydicom.__version__)


def print_table(report: dict[str, Any]) -> None:
    print(f"\nnormalize benchmark ({report['machine']['usable_cores']} cores, {report['date']})")
    print(f"{'kernel':<22}{'kernel MB/s':>13}{'memcpy MB/s':>13}{'ratio':>8}  goal >= {KERNEL_GOAL}x")
    for name, k in report["kernel"].items():
        met = "met" if k["goal_met"] else "NOT met"
        row = f"{name + ' ' + 'x'.join(map(str, k['shape'])):<22}{k['kernel']['mb_per_s']:>13,.0f}"
        print(f"{row}{k['memcpy']['mb_per_s']:>13,.0f}{k['ratio_kernel_over_memcpy']:>8.3f}  {met}")
    e2e = report["end_to_end"]
    print(f"\n{'end to end':<28}{'files/s':>9}{'vs paper':>10}{'RSS MB main':>13}{'max child':>11}{'sum':>7}")
    print(f"  ({e2e['files']} files, {e2e['pixel_mbytes']:.0f} MB of pixels, median of {e2e['repeat']})")
    names = ("paper", "ours_1_worker", "ours_1_worker_audit_off", "ours_all_cores", "plain_loop_all_cores")
    for name in [n for n in names if n in e2e]:
        r = e2e[name]
        speed = f"{r['files_per_s']:>9.1f}{r.get('speedup_vs_paper', 1.0):>9.2f}x"
        rss = f"{r['peak_rss_mb']:>13.0f}{r['peak_child_rss_mb']:>11.0f}{r['peak_total_rss_mb']:>7.0f}"
        print(f"{name + ' (' + str(r['workers']) + ')':<28}{speed}{rss}")
    if "ours_over_plain_loop_all_cores" in e2e:
        r = e2e["ours_over_plain_loop_all_cores"]
        met = "met" if r["goal_met"] else "NOT met"
        print(f"\nall cores, dicompose / plain loop: {r['ratio']:.2f}x (goal >= {r['goal']}: {met})")
    if "audit_overhead_1_worker" not in e2e:
        return
    overhead = e2e["audit_overhead_1_worker"]
    rounds = " / ".join(f"{x:.1%}" for x in overhead["per_round"])
    print(f"\naudit log overhead, 1 worker: {overhead['of_medians']:.1%} of the medians (per round: {rounds})")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=None, help="synthetic CT slices (default 1000)")
    parser.add_argument("--repeat", type=int, default=1, help="end-to-end runs per variant (median reported)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 100 files, fewer kernel runs")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "normalize.json")
    parser.add_argument(
        "--variants",
        help="comma-separated end-to-end variants to run (default all): " + ", ".join(end_to_end_variants(2)),
    )
    parser.add_argument("--no-kernel", action="store_true", help="skip the kernel part")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    only = [v.strip() for v in args.variants.split(",")] if args.variants else None
    if only and not set(only) <= set(end_to_end_variants(2)):
        parser.error(f"--variants: choose from {', '.join(end_to_end_variants(2))}")
    if args.repeat < 1 or (args.files is not None and args.files < 1):
        parser.error("--files and --repeat must be at least 1")
    if args.child:
        variant, src, dst, workers = args.child
        child(variant, Path(src), Path(dst), int(workers))
        return
    files = args.files or (100 if args.quick else 1000)
    cores = len(os.sched_getaffinity(0))
    report: dict[str, Any] = {
        "benchmark": "normalize",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": [Path(sys.executable).name, *sys.argv],
        "machine": machine(),
        "target": [TARGET.low, TARGET.high],
    }
    runs = 10 if args.quick else 50
    report["kernel"] = {}
    if not args.no_kernel:
        print("kernel ...", flush=True)
        report["kernel"] = {"slice": bench_kernel(1, runs), "volume": bench_kernel(64, max(5, runs // 5))}
    print(f"end to end: {files} files x {args.repeat} ...", flush=True)
    report["end_to_end"] = bench_end_to_end(files, args.repeat, cores, only)
    write_report(args.out, report)
    print_table(report)
    print(f"\nwritten: {args.out}")


if __name__ == "__main__":
    main()
