"""What a user gets from the demo pipeline, against the same tools run by hand and against Snakemake (issue 8).

Everything goes through the command line (subprocess argv lists, never a shell string), so the benchmark keeps
working while dicompose's internals change. Cohorts of synthetic CT (generated beforehand, not timed):

- ``a``: 20 series x 25 slices of 256x256 (500 files);
- ``b``: 4 series x 250 slices of 512x512 (1,000 files).

Variants, each in a fresh output folder (and workspace), timed end to end (wall clock), default settings:

- ``pipeline_local``: ``dicompose run demo.yaml --in scans --out OUT --engine local --workspace WS --json``
  (the demo pipeline: normalize, scope series -> threshold); launches read from the ``--json`` report;
- ``direct``: the same two tools by hand, ``dicompose normalize scans --out N ...`` then
  ``dicompose threshold N --out M ...``, with the parameters read from the pipeline file;
- ``snakemake``: a generated Snakefile with one rule per step per series running the same two commands
  (``.venv-bench/bin/snakemake --cores CORES``; ``scripts/bench-venv.sh`` installs it; skipped if missing);
- ``pipeline_docker``: the pipeline with ``--engine docker``, if an untimed probe run on a tiny cohort works
  (engine answers, images built and pinned); else skipped with the reason;
- ``pipeline_local_1_worker``: the pipeline with ``--workers 1``, for the scaling ratio;
- ``direct_1_worker``: the tools by hand with ``--workers 1``: how the tools themselves scale on this machine's
  cores (a VM's two cores may give less than 2x), in the same run, to judge the pipeline's ratio by.

Ratios of medians: pipeline / direct (goals <= 1.15 local, <= 1.3 docker), snakemake / direct,
pipeline / snakemake, pipeline 1 worker / default (goal >= 1.8). Every variant's output files are counted:
one normalized file and one mask per input, else the benchmark stops.

Run: ``.venv/bin/python bench/cohort.py [--quick] [--cohort a|b|all] [--repeat K] [--dicompose PATH]
[--snakemake PATH] [--pipeline PATH] [--no-docker] [--out PATH]``.
"""

from __future__ import annotations

import argparse
import json
import os
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
import yaml
from pydicom.uid import UID

from common import finish_report, write_report
from common import machine as machine_info
from dicompose.dicom.synthetic import ct_slice, phantom_hu, save, synthetic_uid

REPO = Path(__file__).resolve().parent.parent
COHORTS = {"a": (20, 25, 256), "b": (4, 250, 512)}  # series, slices per series, rows = columns
GOALS = {"pipeline_local/direct": ("<=", 1.15), "pipeline_docker/direct": ("<=", 1.3), "speedup_2w/1w": (">=", 1.8)}
# Settings the benchmark must not inherit: it measures the defaults (both are recorded when removed).
SCRUBBED_ENV = ("DICOMPOSE_WORKERS", "DICOMPOSE_AUDIT")
FLAGS = {"normalize": ("min", "max", "scope"), "threshold": ("level", "upper")}


def generate(folder: Path, series: int, per_series: int, size: int) -> int:
    """``series`` folders of ``per_series`` CT slices, written without fsync (as bench/pipeline.py's ``generate``,
    which this does not import: that module imports the pipeline internals being rewritten)."""
    pixels = [(phantom_hu(size, size, i).astype(np.int32) + 1024).astype("<u2").tobytes() for i in range(32)]
    count = 0
    for s in range(series):
        name = f"series-{s:03d}"
        ds = ct_slice(name, 0, size, size)
        save(ds, folder / name / "slice_0000.dcm")  # sets file_meta; the file itself is rewritten below
        for i in range(per_series):
            ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = UID(synthetic_uid(name, "instance", i))
            ds.InstanceNumber, ds.ImagePositionPatient, ds.PixelData = i + 1, [0.0, 0.0, i * 2.5], pixels[i % 32]
            pydicom.dcmwrite(folder / name / f"slice_{i:04d}.dcm", ds, enforce_file_format=True)
            count += 1
    return count


def tool_arguments(pipeline: Path) -> dict[str, list[str]]:
    """The CLI flags of the pipeline's normalize and threshold steps (``--min 0 --max 100 --scope series``...),
    so the tools by hand and Snakemake run exactly what the pipeline runs. Stops on anything it cannot map."""
    spec = yaml.safe_load(pipeline.read_text())
    result: dict[str, list[str]] = {}
    for name, step in spec["steps"].items():
        tool, given = step.get("tool"), dict(step.get("with", {}))
        given.pop("input", None)
        if tool not in FLAGS or tool in result or set(given) - set(FLAGS[tool]):
            raise SystemExit(f"{pipeline}: step {name!r} ({tool}, {sorted(given)}) has no by-hand equivalent here")
        result[tool] = [arg for key in FLAGS[tool] if key in given for arg in (f"--{key}", str(given[key]))]
    if set(result) != set(FLAGS):
        raise SystemExit(f"{pipeline}: expected one normalize and one threshold step, found {sorted(result)}")
    return result


def run_argv(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, str]:
    """Run one command, timed; stop the benchmark with its output's tail if it fails."""
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise RuntimeError(f"exit {proc.returncode}: {' '.join(argv)}\n{tail}")
    return seconds, proc.stdout


def count_outputs(folder: Path) -> dict[str, int]:
    """DICOM files under ``folder``: masks (``*-mask.dcm``) and normalized (every other ``.dcm``)."""
    masks = normalized = 0
    for _, _, names in os.walk(folder):
        masks += sum(n.endswith("-mask.dcm") for n in names)
        normalized += sum(n.endswith(".dcm") and not n.endswith("-mask.dcm") for n in names)
    return {"normalized": normalized, "masks": masks}


def launches(document: dict[str, Any]) -> dict[str, Any]:
    """Launches in all and per step from a ``dicompose run --json`` report; null where a field is missing."""
    tasks = document.get("tasks")
    per_step: dict[str, Any] | None = None
    if isinstance(tasks, list):
        per_step = {}
        for task in (t for t in tasks if isinstance(t, dict)):
            step = str(task.get("step"))
            previous = per_step.get(step, {"tasks": 0, "launched": 0, "attempts": 0})
            cached, attempts = task.get("cached"), task.get("attempts")
            per_step[step] = {
                "tasks": previous["tasks"] + 1,
                "launched": _add(previous["launched"], int(not cached) if isinstance(cached, bool) else None),
                "attempts": _add(previous["attempts"], attempts if isinstance(attempts, int) else None),
            }
    engine = document.get("engine")
    return {
        "launches": document.get("launches"),
        "per_step": per_step,
        "engine": engine.get("name") if isinstance(engine, dict) else engine,
        "ok": document.get("ok"),
    }


def _add(total: int | None, value: int | None) -> int | None:
    return None if total is None or value is None else total + value


def snakefile(scans: Path, target: Path, series: list[str], dicompose: Path, args: dict[str, list[str]]) -> str:
    """One rule per step per series, each running the same command as by hand; every path and value quoted by
    Snakemake (``:q``), the dicompose binary by absolute path."""
    rules = [
        "# Generated by bench/cohort.py: the demo pipeline's two steps per series, as a Snakemake user writes them.",
        "rule all:",
        "    input:",
        *(f"        {str(target / 'masks' / s)!r}," for s in series),
    ]
    for i, name in enumerate(series):
        for step, tool, source, dest in (
            ("normalize", "normalize", scans / name, target / "normalized" / name),
            ("mask", "threshold", target / "normalized" / name, target / "masks" / name),
        ):
            values = args[tool]
            params = [f"tool={str(dicompose)!r}"] + [f"a{k}={v!r}" for k, v in enumerate(values)]
            command = f"{{params.tool:q}} {tool} {{input:q}} --out {{output:q}} " + " ".join(
                f"{{params.a{k}:q}}" for k in range(len(values))
            )
            rules += [
                "",
                f"rule {step}_{i:03d}:",
                f"    input: {str(source)!r}",
                f"    output: directory({str(dest)!r})",
                f"    params: {', '.join(params)}",
                f"    shell: {command + ' --quiet'!r}",
            ]
    return "\n".join(rules) + "\n"


class Bench:
    def __init__(self, args: argparse.Namespace, root: Path) -> None:
        self.dicompose = args.dicompose.absolute()
        self.snakemake = args.snakemake.absolute()
        self.pipeline = args.pipeline.absolute()
        self.tool_args = tool_arguments(self.pipeline)
        self.root = root
        self.cores = len(os.sched_getaffinity(0))
        self.env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
        self.skipped: dict[str, str] = {}

    def argvs(self, variant: str, scans: Path, work: Path, write: bool = True) -> list[list[str]]:
        """The command(s) one variant runs, with outputs (and workspace) under ``work``."""
        d, n, t = str(self.dicompose), self.tool_args["normalize"], self.tool_args["threshold"]
        if variant.startswith("pipeline_"):
            engine = "docker" if variant == "pipeline_docker" else "local"
            argv = [d, "run", str(self.pipeline), "--in", str(scans), "--out", str(work / "out")]
            argv += ["--engine", engine, "--workspace", str(work / "ws"), "--json"]
            return [argv + (["--workers", "1"] if variant.endswith("_1_worker") else [])]
        if variant.startswith("direct"):
            one = ["--workers", "1"] if variant == "direct_1_worker" else []
            return [
                [d, "normalize", str(scans), "--out", str(work / "normalized"), *n, *one],
                [d, "threshold", str(work / "normalized"), "--out", str(work / "masks"), *t, *one],
            ]
        if variant == "snakemake":
            if write:
                series = sorted(p.name for p in scans.iterdir() if p.is_dir())
                work.mkdir(parents=True, exist_ok=True)
                (work / "Snakefile").write_text(snakefile(scans, work, series, self.dicompose, self.tool_args))
            snakefile_path = str(work / "Snakefile")
            return [
                [
                    str(self.snakemake),
                    "--snakefile",
                    snakefile_path,
                    "--directory",
                    str(work),
                    "--cores",
                    str(self.cores),
                ]
            ]
        raise ValueError(variant)

    def run_variant(self, variant: str, scans: Path, work: Path, expected: int) -> dict[str, Any]:
        """One timed run of ``variant`` in the fresh folder ``work``; outputs counted, then removed."""
        shutil.rmtree(work, ignore_errors=True)
        argvs = self.argvs(variant, scans, work)  # writes the Snakefile (untimed)
        os.sync()  # no dirty pages of the previous variant flushed during this one
        seconds, out = 0.0, ""
        for argv in argvs:
            spent, out = run_argv(argv, self.env, self.root)
            seconds += spent
        outputs = work / "out" if variant.startswith("pipeline_") else work  # not the workspace's task folders
        result: dict[str, Any] = {"seconds": seconds, "counts": count_outputs(outputs)}
        if variant.startswith("direct"):
            result["launches"] = len(argvs)  # one process per tool
        elif variant == "snakemake":
            result["launches"] = 2 * sum(p.is_dir() for p in scans.iterdir())  # jobs: one per step per series
        else:
            try:
                result.update(launches(json.loads(out)))
            except json.JSONDecodeError:
                result.update({"launches": None, "per_step": None, "engine": None, "ok": None})
            want = "docker" if variant == "pipeline_docker" else "local"
            if result["ok"] is False or result["engine"] not in (None, want):
                raise RuntimeError(f"{variant}: ok={result['ok']}, engine={result['engine']} (asked for {want})")
        if result["counts"] != {"normalized": expected, "masks": expected}:
            raise RuntimeError(f"{variant}: {result['counts']} output files for {expected} inputs")
        shutil.rmtree(work, ignore_errors=True)
        return result

    def probe(self, variants: list[str]) -> list[str]:
        """Each variant once on a tiny cohort (untimed: a smoke check and a warm-up); docker and Snakemake
        are dropped, with the reason, when they cannot run."""
        scans = self.root / "probe-scans"
        expected = generate(scans, 2, 2, 64)
        kept = []
        for variant in variants:
            if variant == "snakemake" and not self.snakemake.exists():
                self.skipped[variant] = f"{self.snakemake} not found (install it: scripts/bench-venv.sh)"
            if variant in self.skipped:
                print(f"  {variant} skipped: {self.skipped[variant]}", flush=True)
                continue
            try:
                self.run_variant(variant, scans, self.root / f"probe-{variant}", expected)
            except RuntimeError as exc:
                if variant != "pipeline_docker":
                    raise
                self.skipped[variant] = f"probe run failed: {exc}"
                print(f"  {variant} skipped: {self.skipped[variant]}", flush=True)
                continue
            kept.append(variant)
        shutil.rmtree(scans)
        return kept

    def cohort(self, name: str, variants: list[str], repeat: int) -> dict[str, Any]:
        series, slices, size = COHORTS[name]
        scans = self.root / f"scans-{name}"
        started = time.perf_counter()
        files = generate(scans, series, slices, size)
        result: dict[str, Any] = {"files": files, "series": series, "slices": slices, "size": f"{size}x{size}"}
        result["generation_s"] = time.perf_counter() - started
        runs: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
        for r in range(repeat):  # rounds, the order rotated each round, so a slow spell hits every variant
            order = variants[r % len(variants) :] + variants[: r % len(variants)]
            for variant in order:
                run = self.run_variant(variant, scans, self.root / f"{name}-{variant}", files)
                print(f"  cohort {name}, round {r + 1}: {variant:<24} {run['seconds']:7.1f} s", flush=True)
                runs[variant].append(run)
        shutil.rmtree(scans)
        result["variants"] = {}
        for variant, samples in runs.items():
            seconds = [s["seconds"] for s in samples]
            row = {"argv": self.argvs_shown(variant), "median_s": statistics.median(seconds), "all_s": seconds}
            row["files_per_s"] = files / row["median_s"]
            row["counts"] = samples[-1]["counts"]
            for key in ("launches", "per_step", "engine"):
                if key in samples[-1]:
                    row[key] = samples[-1][key]
            result["variants"][variant] = row
        result["ratios"] = ratios(result["variants"])
        return result

    def argvs_shown(self, variant: str) -> list[list[str]]:
        """The commands, with the temp folders written as placeholders."""
        return self.argvs(variant, Path("SCANS"), Path("WORK"), write=False)


def source_of(dicompose: Path) -> dict[str, Any]:
    """Which dicompose the binary runs: its package folder and, if in a git checkout, the commit and whether
    ``src/`` differs from it (so a result says whether it measured landed code). Null where unknown."""
    info: dict[str, Any] = {"package": None, "commit": None, "src_modified": None}
    try:
        interpreter = dicompose.read_text(errors="replace").splitlines()[0].removeprefix("#!").strip()
        probe = [interpreter, "-c", "import dicompose; print(dicompose.__file__)"]
        package = Path(subprocess.run(probe, capture_output=True, text=True, check=True).stdout.strip()).parent
        info["package"] = str(package)
        git = ["git", "-C", str(package)]
        info["commit"] = subprocess.run(
            [*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        status = subprocess.run([*git, "status", "--porcelain", "--", "."], capture_output=True, text=True, check=True)
        info["src_modified"] = bool(status.stdout.strip())
    except (OSError, IndexError, subprocess.CalledProcessError):
        pass
    return info


def docker_images() -> dict[str, str | None]:
    """The image IDs the tags of the two tools point at (the pipeline runs the pinned digests, normally these)."""
    ids: dict[str, str | None] = {}
    for tool in FLAGS:
        try:
            argv = ["docker", "image", "inspect", "--format", "{{.Id}}", f"dicompose/{tool}:0.1.0"]
            ids[tool] = subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            ids[tool] = None
    return ids


def ratios(variants: dict[str, dict[str, Any]]) -> dict[str, Any]:
    median = {name: row["median_s"] for name, row in variants.items()}
    pairs = {
        "pipeline_local/direct": ("pipeline_local", "direct"),
        "pipeline_docker/direct": ("pipeline_docker", "direct"),
        "snakemake/direct": ("snakemake", "direct"),
        "pipeline_local/snakemake": ("pipeline_local", "snakemake"),
        "speedup_2w/1w": ("pipeline_local_1_worker", "pipeline_local"),  # time 1 worker / time default
        # the same for the tools by hand: what this machine's two cores give the tools themselves (a VM's
        # cores may not scale 2x: the pipeline's ratio is judged against this one, measured in the same run)
        "direct_speedup_2w/1w": ("direct_1_worker", "direct"),
    }
    result: dict[str, Any] = {}
    for key, (top, bottom) in pairs.items():
        if top in median and bottom in median:
            value = median[top] / median[bottom]
            result[key] = {"value": value}
            if key in GOALS:
                op, goal = GOALS[key]
                result[key].update({"goal": f"{op} {goal}", "met": value <= goal if op == "<=" else value >= goal})
    return result


LABELS = {
    "direct": "tools by hand (normalize, threshold)",
    "pipeline_local": "dicompose run, local engine",
    "pipeline_local_1_worker": "dicompose run, local, --workers 1",
    "direct_1_worker": "tools by hand, --workers 1",
    "pipeline_docker": "dicompose run, docker engine",
    "snakemake": "Snakemake, one rule per step per series",
}


def print_table(report: dict[str, Any]) -> None:
    print(f"\ncohort benchmark ({report['machine']['usable_cores']} cores, {report['date']})")
    for name, cohort in report["cohorts"].items():
        print(f"\ncohort {name}: {cohort['files']} files ({cohort['series']} x {cohort['slices']}, {cohort['size']})")
        print(f"  {'variant':<40}{'median s':>9}{'files/s':>9}{'launches':>9}  all s")
        for variant, row in cohort["variants"].items():
            launched = "-" if row.get("launches") is None else str(row["launches"])
            runs = " / ".join(f"{s:.1f}" for s in row["all_s"])
            print(f"  {LABELS[variant]:<40}{row['median_s']:>9.1f}{row['files_per_s']:>9.1f}{launched:>9}  {runs}")
        for key, ratio in cohort["ratios"].items():
            goal = f"  (goal {ratio['goal']}: {'met' if ratio['met'] else 'NOT met'})" if "goal" in ratio else ""
            print(f"  {key:<28}{ratio['value']:.2f}x{goal}")
    for variant, why in report["skipped"].items():
        print(f"{variant} skipped: {why}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="cohort a only")
    parser.add_argument("--cohort", choices=["a", "b", "all"], default="all")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of every variant (median; default 3)")
    parser.add_argument("--dicompose", type=Path, default=REPO / ".venv" / "bin" / "dicompose")
    parser.add_argument("--snakemake", type=Path, default=REPO / ".venv-bench" / "bin" / "snakemake")
    parser.add_argument("--pipeline", type=Path, default=REPO / "src" / "dicompose" / "pipelines" / "demo.yaml")
    parser.add_argument("--no-docker", action="store_true", help="skip the docker engine variant")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "cohort.json")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if not args.dicompose.exists():
        parser.error(f"--dicompose {args.dicompose}: not found")
    cohorts = ["a"] if args.quick else (["a", "b"] if args.cohort == "all" else [args.cohort])
    report: dict[str, Any] = {
        "benchmark": "cohort",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": [Path(sys.executable).name, *sys.argv],
        "machine": machine_info(numpy=np.__version__, pydicom=pydicom.__version__, loadavg_before=os.getloadavg()),
        "scrubbed_env": {k: os.environ[k] for k in SCRUBBED_ENV if k in os.environ},
        "cohorts": {},
    }
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # killed: still remove the temp folder
    with tempfile.TemporaryDirectory(prefix="dicompose-cohort-") as tmp:
        bench = Bench(args, Path(tmp))
        if args.no_docker:
            bench.skipped["pipeline_docker"] = "--no-docker given"
        report["dicompose"] = str(bench.dicompose)
        report["pipeline"] = str(bench.pipeline)
        report["tool_arguments"] = bench.tool_args
        report["snakemake_version"] = None
        if bench.snakemake.exists():
            version = subprocess.run([str(bench.snakemake), "--version"], capture_output=True, text=True, check=False)
            report["snakemake_version"] = version.stdout.strip() if version.returncode == 0 else None
        wanted = ["direct", "pipeline_local", "snakemake", "pipeline_local_1_worker", "direct_1_worker"]
        wanted.append("pipeline_docker")
        print("probe: every variant once on 2 x 2 slices (untimed) ...", flush=True)
        variants = bench.probe(wanted)
        report["skipped"] = bench.skipped
        report["dicompose_source"] = source_of(bench.dicompose)
        if "pipeline_docker" in variants:
            report["docker_images"] = docker_images()
        for name in cohorts:
            series, slices, size = COHORTS[name]
            print(f"cohort {name}: {series} x {slices} slices of {size}x{size}, {args.repeat} round(s) ...", flush=True)
            report["cohorts"][name] = bench.cohort(name, variants, args.repeat)
            write_report(args.out, report)
    finish_report(args.out, report, print_table)


if __name__ == "__main__":
    main()
