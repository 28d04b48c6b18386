"""Pull and push throughput against a real PACS (Debian's Orthanc, in a private network namespace), next to the
raw pynetdicom loops a user would write by hand (bench/pacs_raw.py), in the same run (issue 13).

N synthetic CT slices (512x512, ~0.5 MB each, one study) are pushed into an empty Orthanc and pulled back:
``dicompose pacs push DIR --to URL`` against one association of C-STOREs, and ``dicompose pacs pull URL
--study UID --out DIR`` (C-GET) against one C-GET writing each instance as it comes. The dicompose commands are
timed as users run them (start-up, the C-FIND that makes them idempotent, whole-file writes with fsync). Each
round starts from an empty PACS (a fresh storage folder) and an empty output folder. Goal: dicompose ≥ 0.9× the
raw loop's throughput.

Run as root (a network namespace): ``.venv/bin/python bench/pacs.py [--files N] [--repeat K] [--out PATH]``.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.orthanc import Orthanc, orthanc_available  # noqa: E402

from common import finish_report  # noqa: E402
from common import machine as machine_info  # noqa: E402
from dicompose.dicom import synthetic  # noqa: E402

DICOMPOSE = REPO / ".venv" / "bin" / "dicompose"
RAW = Path(__file__).with_name("pacs_raw.py")
GOAL = 0.9


def timed(pacs: Orthanc, argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    proc = pacs.run(argv, env=env, timeout=600)
    if proc.returncode != 0:
        raise SystemExit(f"{argv[:3]}: exit {proc.returncode}\n{proc.stderr[-1500:]}")
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "pacs.json")
    args = parser.parse_args(argv)
    ok, why = orthanc_available()
    if not ok:
        raise SystemExit(why)
    report: dict[str, Any] = {
        "benchmark": "pacs",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": [Path(sys.executable).name, *sys.argv],
        "machine": machine_info(),
        "files": args.files,
    }
    seconds: dict[str, list[float]] = {"raw push": [], "dicompose push": [], "raw pull": [], "dicompose pull": []}
    with tempfile.TemporaryDirectory(prefix="dicompose-pacs-") as tmp:
        root = Path(tmp)
        scans = root / "scans"
        synthetic.write_ct_series(scans, "pacs-bench", args.files, 512, 512)
        files = sorted(scans.rglob("*.dcm"))
        report["megabytes"] = sum(p.stat().st_size for p in files) / 1e6
        import pydicom

        study = str(pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)
        env = {"PATH": "/usr/bin:/bin", "DICOMPOSE_HOME": str(root / "home")}
        python = str(REPO / ".venv" / "bin" / "python")
        for number in range(args.repeat):
            for who in ("raw", "dicompose") if number % 2 == 0 else ("dicompose", "raw"):
                pacs = Orthanc(root / f"orthanc-{number}-{who}").start()  # empty: a push stores everything
                try:
                    if who == "raw":
                        seconds["raw push"].append(timed(pacs, [python, str(RAW), "push", str(scans)], env))
                        out = root / f"raw-{number}"
                        seconds["raw pull"].append(timed(pacs, [python, str(RAW), "pull", study, str(out)], env))
                    else:
                        push = [str(DICOMPOSE), "pacs", "push", str(scans), "--to", pacs.url]
                        seconds["dicompose push"].append(timed(pacs, push, env))
                        out = root / f"ours-{number}"
                        pull = [str(DICOMPOSE), "pacs", "pull", pacs.url, "--study", study, "--out", str(out)]
                        seconds["dicompose pull"].append(timed(pacs, pull, env))
                    assert len(list(out.rglob("*.dcm"))) == args.files
                    shutil.rmtree(out)
                finally:
                    pacs.stop()
            print(f"  round {number + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in seconds.items()), flush=True)
    medians = {k: statistics.median(v) for k, v in seconds.items()}
    report["seconds"] = {k: {"median": m, "all": [round(s, 3) for s in seconds[k]]} for k, m in medians.items()}
    report["instances_per_s"] = {k: args.files / m for k, m in medians.items()}
    report["megabytes_per_s"] = {k: report["megabytes"] / m for k, m in medians.items()}
    report["ratios"] = {
        "push": medians["raw push"] / medians["dicompose push"],
        "pull": medians["raw pull"] / medians["dicompose pull"],
    }
    report["goal"] = {"dicompose/raw throughput": f">= {GOAL}", "met": min(report["ratios"].values()) >= GOAL}
    finish_report(args.out, report, print_table)


def print_table(report: dict[str, Any]) -> None:
    print(f"\npacs benchmark ({report['date']}): {report['files']} instances, {report['megabytes']:.1f} MB")
    print("  variant           median s   instances/s   MB/s")
    for name, values in report["seconds"].items():
        print(
            f"  {name:<16} {values['median']:9.2f} {report['instances_per_s'][name]:12.1f} "
            f"{report['megabytes_per_s'][name]:7.1f}"
        )
    for what, ratio in report["ratios"].items():
        print(f"  {what}: dicompose ÷ raw loop throughput {ratio:.2f}x (goal >= {GOAL})")


if __name__ == "__main__":
    main()
