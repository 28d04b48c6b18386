"""Helpers every benchmark shares: the machine description and the atomic JSON result."""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dicompose


def machine(**extra: Any) -> dict[str, Any]:
    """Cores, CPU model, platform, Python and dicompose versions, plus whatever the benchmark adds."""
    model = ""
    if Path("/proc/cpuinfo").exists():
        lines = [ln for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("model name")]
        model = lines[0].split(":", 1)[1].strip() if lines else ""
    return {
        "cpu_count": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "dicompose": dicompose.__version__,
        **extra,
    }


def write_report(path: Path, report: dict[str, Any]) -> None:
    """Write the JSON result through a temp file: a crash never leaves half a JSON file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".tmp")
    partial.write_text(json.dumps(report, indent=2) + "\n")
    partial.replace(path)


def finish_report(path: Path, report: dict[str, Any], print_table: Callable[[dict[str, Any]], None]) -> None:
    """The end of every benchmark: the load afterwards (a busy machine shows), the JSON result, the table."""
    report["machine"]["loadavg_after"] = os.getloadavg()
    write_report(path, report)
    print_table(report)
    print(f"\nwritten: {path}")
