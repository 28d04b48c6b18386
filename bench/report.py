"""QC report generation time per 100 series (issue 13), next to what a user would write instead in the same
run: a plain loop that reads each series with pydicom and saves one matplotlib figure per series and step
(the middle slice before and after each step, as ``plt.imshow`` + ``savefig`` do), no pages.

A cohort of S series × N CT slices (256×256) goes through the demo pipeline (normalize → threshold, local
engine; not timed), then ``dicompose report RUN --out DIR`` is timed as users run it (start-up included),
median of K rounds, and ``--embed`` once.

``.venv/bin/python bench/report.py [--series 100] [--slices 10] [--repeat 3] [--out PATH]``
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
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from typing import Any

from common import finish_report
from common import machine as machine_info
from dicompose.dicom import synthetic

REPO = Path(__file__).resolve().parent.parent
DICOMPOSE = REPO / ".venv" / "bin" / "dicompose"
DEMO = Path(str(files("dicompose.pipelines") / "demo.yaml"))

#: The user's alternative: one PNG per series and step, the middle slice before and after, nothing else.
PLAIN_LOOP = r"""
import sys
from collections import defaultdict
from pathlib import Path

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pydicom

inputs, outputs, target = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
target.mkdir(parents=True, exist_ok=True)
series = defaultdict(list)
for path in sorted(inputs.rglob("*.dcm")):
    series[path.parent.name].append(path)
for name, paths in series.items():
    middle = paths[len(paths) // 2]
    pictures = [pydicom.dcmread(middle).pixel_array]
    for step in ("normalized", "masks"):
        stem = middle.stem + ("-normalized" if step == "normalized" else "-normalized-mask")
        below = outputs / step / name if (outputs / step / name).is_dir() else outputs / step
        found = list(below.rglob(stem + ".dcm"))
        if found:
            pictures.append(pydicom.dcmread(found[0]).pixel_array)
    figure, axes = plt.subplots(1, len(pictures), figsize=(3 * len(pictures), 3))
    for axis, picture in zip(axes, pictures):
        axis.imshow(picture, cmap="gray")
        axis.axis("off")
    figure.savefig(target / f"{name}.png")
    plt.close(figure)
"""


def cohort(folder: Path, series: int, slices: int) -> None:
    for number in range(series):
        synthetic.write_ct_series(folder / f"series-{number:03d}", f"bench-report-{number}", slices, 256, 256)


def run(argv: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{argv[1]} failed ({proc.returncode}): {proc.stderr.strip()[-800:]}")
    return elapsed, proc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=int, default=100)
    parser.add_argument("--slices", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "report.json")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dicompose-bench-report-"))
    env = {**os.environ, "DICOMPOSE_HOME": str(work / "home")}
    try:
        cohort(work / "scans", args.series, args.slices)
        pipeline = [str(DICOMPOSE), "run", str(DEMO), "--in", f"scans={work / 'scans'}", "--out", str(work / "out")]
        pipeline += ["--workspace", str(work / "ws"), "--engine", "local", "--json"]
        pipeline_seconds, proc = run(pipeline, env)
        run_id = json.loads(proc.stdout)["run"]
        report = [str(DICOMPOSE), "report", run_id, "--workspace", str(work / "ws"), "--json"]
        folder_times, summary = [], {}
        for _ in range(args.repeat):
            seconds, proc = run([*report, "--out", str(work / "qc")], env)
            folder_times.append(seconds)
            summary = json.loads(proc.stdout)
        embed_seconds, embedded = run([*report, "--out", str(work / "qc.html"), "--embed"], env)
        script = work / "plain_loop.py"
        script.write_text(PLAIN_LOOP)
        plain_times = []
        for _ in range(args.repeat):
            shutil.rmtree(work / "plain", ignore_errors=True)
            seconds, _ = run(
                [
                    str(REPO / ".venv" / "bin" / "python"),
                    str(script),
                    str(work / "scans"),
                    str(work / "out"),
                    str(work / "plain"),
                ],
                env,
            )
            plain_times.append(seconds)
        folder = statistics.median(folder_times)
        plain = statistics.median(plain_times)
        result: dict[str, Any] = {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": machine_info(series=args.series, slices=args.slices, rows=256, columns=256),
            "pipeline_seconds": round(pipeline_seconds, 2),
            "report_seconds": [round(t, 2) for t in folder_times],
            "report_seconds_median": round(folder, 2),
            "report_seconds_per_100_series": round(folder * 100 / args.series, 2),
            "report_figures": summary.get("figures"),
            "report_bytes": summary.get("bytes"),
            "embed_seconds": round(embed_seconds, 2),
            "embed_bytes": json.loads(embedded.stdout).get("bytes"),
            "plain_loop_seconds": [round(t, 2) for t in plain_times],
            "plain_loop_seconds_median": round(plain, 2),
            "report_vs_plain_loop": round(folder / plain, 2),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    finish_report(args.out, result, print_table)
    return 0


def print_table(result: dict[str, Any]) -> None:
    print(f"| work ({result['machine']['series']} series × {result['machine']['slices']} slices 256×256) | seconds |")
    print("| --- | --- |")
    print(f"| demo pipeline (not part of the report's time) | {result['pipeline_seconds']} |")
    print(
        f"| `dicompose report RUN --out DIR` (median of {len(result['report_seconds'])}; "
        f"{result['report_figures']} figures, {result['report_bytes'] / 1e6:.1f} MB) | "
        f"{result['report_seconds_median']} |"
    )
    print(f"| ... per 100 series | {result['report_seconds_per_100_series']} |")
    print(f"| `--embed` ({result['embed_bytes'] / 1e6:.1f} MB page) | {result['embed_seconds']} |")
    print(
        f"| plain pydicom + matplotlib loop (middle slice per step, no pages) | {result['plain_loop_seconds_median']} |"
    )
    print(f"| report ÷ plain loop | {result['report_vs_plain_loop']} |")


if __name__ == "__main__":
    sys.exit(main())
