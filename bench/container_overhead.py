"""Benchmark of what dicompose's container layer costs and saves, against baselines timed in the same run.

Two comparisons, each reported as a ratio to a baseline measured in the same run on the same machine:

1. Launch overhead (median seconds per launch): ``run_tool`` (what ``dicompose run`` does, in-process, with
   ``--engine docker``) of a trivial step, ``python3 -c 'import sys' FILE`` on one small DICOM file, versus
   the same hardened container typed by hand: ``docker run`` with exactly the flags, mounts and image ID
   dicompose uses (``cli_argv``). What is left is dicompose's own cost (descriptor validation, engine probe,
   image pin check, task folder, output checks). A plain unhardened ``docker run --rm IMAGE python3 -c ...``
   is timed too, for context only. Goal: dicompose / hand-typed <= 1.10.
2. Throughput (files/s) of normalize over N synthetic 512x512 CT slices: ``run_tool`` with the built-in
   ``normalize`` tool (one launch per 500 files) versus the 2018 paper's way, one ``docker run`` per file with
   the image's default entrypoint. The per-file variant is timed on a sample (default 100 files) and its
   rate extrapolated to N files. Goal: batched >= 20x per-file.

Every variant runs the same image, by the ID resolved at the start; the run stops if the tag moves meanwhile.

Run: ``.venv/bin/python bench/container_overhead.py [--reps N] [--files N] [--per-file-sample N] [--quick]
[--out PATH]``. Needs a running Docker engine and the image built by ``dicompose build normalize``.
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
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common import finish_report
from common import machine as machine_info
from dicompose.dicom.synthetic import write_ct_series
from dicompose.engines.base import ImageRef, Mount, TaskSpec
from dicompose.engines.docker import cli_argv
from dicompose.engines.hardening import INPUT_ROOT
from dicompose.errors import DicomposeError
from dicompose.images.docker_client import connect
from dicompose.pipeline.runner import PipelineReport, PipelineRequest, run_pipeline
from dicompose.pipeline.tool_graph import tool_graph

REPO = Path(__file__).resolve().parent.parent
IMAGE = "dicompose/normalize:0.1.0"
CODE = "import sys"
LAUNCH_GOAL = 1.10  # dicompose seconds / hand-typed hardened docker run seconds
BATCH_GOAL = 20.0  # batched files/s / per-file files/s
WARMUP_ROUNDS = 2


def check_docker() -> tuple[str, dict[str, str]]:
    """(pinned image ID, engine versions), or exit with a clear message if docker or the image is missing."""
    if shutil.which("docker") is None:
        sys.exit("error: the docker CLI is not on PATH (the hand-typed baselines need it)")
    try:
        client = connect()
    except DicomposeError as exc:
        sys.exit(f"error: {exc}")
    import docker.errors

    try:
        image_id = str(client.images.get(IMAGE).id)
    except docker.errors.ImageNotFound:
        sys.exit(f"error: image {IMAGE} is not available locally; run: dicompose build normalize")
    versions = client.version()
    return image_id, {"engine": str(versions.get("Version")), "api": str(versions.get("ApiVersion"))}


def noop_descriptor(image_id: str) -> dict[str, Any]:
    """A trivial Boutiques tool (structure of the built-in normalize.json) running in the normalize image."""
    return {
        **{"name": "noop", "tool-version": "0.1.0", "schema-version": "0.5"},
        "description": "Start Python in the container and exit: measures the cost of one launch.",
        "command-line": "python3 -c [CODE] [INPUT]",
        "container-image": {"type": "docker", "image": IMAGE, "container-hash": image_id, "entrypoint": True},
        "inputs": [
            {"id": "code", "name": "Code", "type": "String", "value-key": "[CODE]"},
            {"id": "input", "name": "DICOM input", "type": "File", "list": True, "value-key": "[INPUT]"},
        ],
        "output-files": [
            {"id": "nothing", "name": "Nothing", "path-template": "*.out", "list": True, "optional": True}
        ],
        "custom": {"dicompose": {"batch-input": "input", "network": False}},
    }


def run_checked(argv: list[str]) -> None:
    """Run a docker CLI command (output captured, as dicompose captures it); raise if it fails."""
    proc = subprocess.run(argv, capture_output=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr.decode(errors='replace')}")


def run_tool(tool: str, source: Path, out: Path, params: dict[str, Any], workspace: Path) -> PipelineReport:
    """What ``dicompose run TOOL --engine docker`` does (a one-step pipeline), in-process, in a fresh workspace
    (the cache would otherwise make every repetition a no-op)."""
    shutil.rmtree(workspace, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    request = PipelineRequest(
        Path(tool), {"in": source}, out, workspace, "docker", graph=tool_graph(tool, params), kind="tool"
    )
    return run_pipeline(request)


def failures(report: PipelineReport) -> list[str]:
    return [p for t in report.tasks if t.result is not None for p in (*t.result.problems, t.result.stderr_tail)]


def bench_launch(reps: int, image_id: str, tmp: Path) -> dict[str, Any]:
    folder = tmp / "launch"
    dicom = write_ct_series(folder / "in", "overhead", 1, 64, 64)[0]
    descriptor = folder / "noop.json"
    descriptor.write_text(json.dumps(noop_descriptor(image_id), indent=2))
    raw_out = folder / "raw-out"
    raw_out.mkdir(mode=0o777)
    raw_out.chmod(0o777)  # the container user (caller's uid, or nobody for root) writes here
    target = f"{INPUT_ROOT}/0/{dicom.name}"
    spec = TaskSpec(["python3", "-c", CODE, target], raw_out, (Mount(dicom, target),), ImageRef(IMAGE, image_id))
    hardened = cli_argv(spec)

    def dicompose_run() -> None:
        report = run_tool(str(descriptor), dicom, folder / "out", {"code": CODE}, folder / "ws")
        if not report.ok:
            raise RuntimeError(f"dicompose run failed: {failures(report)}")

    variants: dict[str, Callable[[], None]] = {
        "dicompose_run": dicompose_run,
        "raw_hardened": lambda: run_checked(hardened),
        "raw_plain": lambda: run_checked(["docker", "run", "--rm", image_id, "python3", "-c", CODE]),
    }
    names = list(variants)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(WARMUP_ROUNDS + reps):  # rounds rotate the order, so drift hits every variant
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            variants[name]()
            if round_index >= WARMUP_ROUNDS:
                samples[name].append(time.perf_counter() - start)
    result: dict[str, Any] = {"reps": reps, "warmup_rounds": WARMUP_ROUNDS, "hardened_argv": hardened}
    for name, runs in samples.items():
        result[name] = {"median_s": statistics.median(runs), "best_s": min(runs), "all_s": runs}
    ours, hand, plain = (result[name]["median_s"] for name in names)
    result["ratio_dicompose_over_raw_hardened"] = ours / hand
    result["ratio_raw_hardened_over_raw_plain"] = hand / plain
    result["goal_met"] = result["ratio_dicompose_over_raw_hardened"] <= LAUNCH_GOAL
    return result


def bench_throughput(files: int, sample: int, image_id: str, tmp: Path) -> dict[str, Any]:
    src, batched_out, paper_out = tmp / "series", tmp / "batched-out", tmp / "paper-out"
    started = time.perf_counter()
    inputs = write_ct_series(src, "container-benchmark", files)
    result: dict[str, Any] = {"files": files, "generation_s": time.perf_counter() - started}

    start = time.perf_counter()
    report = run_tool("normalize", src, batched_out, {}, tmp / "batched-ws")
    seconds = time.perf_counter() - start
    written = len(list(batched_out.glob("*-normalized.dcm")))
    if not report.ok or written != files:
        raise RuntimeError(f"batched normalize: {written} of {files} outputs, tasks {[t.status for t in report.tasks]}")
    image = report.images["normalize"][0]
    if image is None or image.digest != image_id:
        raise RuntimeError(f"batched normalize ran {image}, not {image_id}: the pin moved during the run")
    result["batched"] = {
        "how": "dicompose run normalize --engine docker (run_pipeline of its one-step graph, in-process)",
        **{"launches": report.launches, "files": files, "seconds": seconds, "files_per_s": files / seconds},
    }

    chosen = inputs[:sample]
    start = time.perf_counter()
    for path in chosen:  # every output is /mnt/vout/infile-normalized.dcm: one output folder per file
        outdir = paper_out / path.stem
        outdir.mkdir(parents=True)
        outdir.chmod(0o777)  # the image runs as uid 10001
        run_checked(["docker", "run", "--rm", "-v", f"{path}:/infile.dcm", "-v", f"{outdir}:/mnt/vout", image_id])
    seconds = time.perf_counter() - start
    written = len(list(paper_out.glob("*/infile-normalized.dcm")))
    if written != len(chosen):
        raise RuntimeError(f"per-file normalize: {written} of {len(chosen)} outputs")
    rate = len(chosen) / seconds
    result["per_file"] = {
        "how": "docker run --rm -v FILE:/infile.dcm -v OUTDIR/STEM:/mnt/vout IMAGE_ID per file (the paper's way)",
        **{"files": len(chosen), "seconds": seconds, "files_per_s": rate, "extrapolated": len(chosen) < files},
        "extrapolated_seconds_for_all_files": files / rate,
    }
    result["ratio_batched_over_per_file"] = result["batched"]["files_per_s"] / rate
    result["goal_met"] = result["ratio_batched_over_per_file"] >= BATCH_GOAL
    return result


def machine(engine: dict[str, str]) -> dict[str, Any]:
    cli = subprocess.run(["docker", "version", "--format", "{{.Client.Version}}"], capture_output=True, text=True)
    return machine_info(docker_engine=engine["engine"], docker_api=engine["api"], docker_cli=cli.stdout.strip())


def print_table(report: dict[str, Any]) -> None:
    launch, tput = report["launch"], report["throughput"]
    print(f"\ncontainer overhead benchmark ({report['machine']['usable_cores']} cores, {report['date']})")
    print(f"{'launch (trivial step)':<34}{'median s':>10}{'best s':>9}{'vs hardened':>13}")
    print(f"  (median of {launch['reps']} rounds after {launch['warmup_rounds']} warm-up rounds)")
    for name in ("dicompose_run", "raw_hardened", "raw_plain"):
        r = launch[name]
        ratio = r["median_s"] / launch["raw_hardened"]["median_s"]
        print(f"{name:<34}{r['median_s']:>10.3f}{r['best_s']:>9.3f}{ratio:>12.3f}x")
    met = "met" if launch["goal_met"] else "NOT met"
    print(f"goal dicompose/hardened <= {LAUNCH_GOAL}: {launch['ratio_dicompose_over_raw_hardened']:.3f} -- {met}")
    print(f"\n{'normalize ' + str(tput['files']) + ' files':<34}{'files':>10}{'seconds':>9}{'files/s':>13}")
    for name in ("batched", "per_file"):
        r = tput[name]
        print(f"{name:<34}{r['files']:>10}{r['seconds']:>9.1f}{r['files_per_s']:>13.2f}")
    per_file = tput["per_file"]
    if per_file["extrapolated"]:
        print(
            f"  per-file timed on {per_file['files']} files and EXTRAPOLATED: "
            f"{per_file['extrapolated_seconds_for_all_files']:.0f} s for {tput['files']} files"
        )
    met = "met" if tput["goal_met"] else "NOT met"
    print(f"goal batched/per-file >= {BATCH_GOAL:g}x: {tput['ratio_batched_over_per_file']:.1f}x -- {met}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=None, help="timed launches per variant (default 20)")
    parser.add_argument("--files", type=int, default=None, help="synthetic CT slices, batched run (default 1000)")
    parser.add_argument("--per-file-sample", type=int, default=None, help="files run one container each (100)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 5 reps, 100 files, 20 per-file")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "container_overhead.json")
    args = parser.parse_args(argv)
    if any(n is not None and n < 1 for n in (args.reps, args.files, args.per_file_sample)):
        parser.error("--reps, --files and --per-file-sample must be at least 1")
    reps = args.reps or (5 if args.quick else 20)
    files = args.files or (100 if args.quick else 1000)
    sample = min(files, args.per_file_sample or (20 if args.quick else 100))
    image_id, engine = check_docker()
    report: dict[str, Any] = {
        "benchmark": "container_overhead",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": [Path(sys.executable).name, *sys.argv],
        "machine": {**machine(engine), "loadavg_before": os.getloadavg()},
        "image": {"name": IMAGE, "id": image_id},
    }
    with tempfile.TemporaryDirectory(prefix="dicompose-bench-") as tmp:
        try:
            print(f"launch overhead: {reps} rounds ...", flush=True)
            report["launch"] = bench_launch(reps, image_id, Path(tmp))
            print(f"throughput: {files} files batched, {sample} files one container each ...", flush=True)
            report["throughput"] = bench_throughput(files, sample, image_id, Path(tmp))
        except DicomposeError as exc:
            sys.exit(f"error: {exc}")
    if check_docker()[0] != image_id:  # every variant ran image_id; a rebuild meanwhile means a busy engine
        sys.exit(f"error: {IMAGE} was rebuilt during the run (another docker client?); rerun on a quiet machine")
    finish_report(args.out, report, print_table)


if __name__ == "__main__":
    main()
