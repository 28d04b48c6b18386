"""The core budget on the local engine: scheduler workers × processes inside each launch ≤ the cores given.

Each launch is told its share (DICOMPOSE_WORKERS, OMP_NUM_THREADS) and the built-in tools size their process
pools by it. A probe tool reports what it was told; the built-in normalize is watched from outside (its
process tree) while it runs with the share it was given.
"""

from __future__ import annotations

import contextlib
import json
import textwrap
import time
from pathlib import Path

import pytest

from dicompose.dicom import synthetic
from dicompose.pipeline.runner import PipelineRequest, run_pipeline
from dicompose.pipeline.tool_graph import tool_graph
from tests.support.descriptors import snippet_tool

CODE = textwrap.dedent(
    """
    import json, os, sys, time
    time.sleep(0.5)
    json.dump({"workers": os.environ.get("DICOMPOSE_WORKERS"), "omp": os.environ.get("OMP_NUM_THREADS"),
               "inputs": len(sys.argv) - 1}, open("budget.json", "w"))
    """
)


def probe(folder: Path) -> Path:
    return snippet_tool(
        folder / "budget.json", "budget", CODE, "budget.json", "reports the process share its launch was given"
    )


def scans(folder: Path, series: int) -> Path:
    for s in range(series):
        synthetic.write_ct_series(folder / f"s{s}", f"budget-{s}", 2, 8, 8)
    return folder


def run_tool(tmp_path: Path, tool: str, source: Path, workers: int, **params: object):
    request = PipelineRequest(
        Path(tool),
        {"in": source},
        tmp_path / "out",
        tmp_path / "ws",
        "local",
        workers=workers,
        graph=tool_graph(tool, dict(params)),
        kind="tool",
    )
    return run_pipeline(request)


@pytest.mark.parametrize(("workers", "series", "share"), [(4, 1, 4), (4, 2, 2), (4, 4, 1), (2, 6, 1), (3, 2, 1)])
def test_each_launch_is_told_its_share(tmp_path: Path, workers: int, series: int, share: int):
    report = run_tool(tmp_path, str(probe(tmp_path)), scans(tmp_path / "scans", series), workers)
    assert report.ok and report.launches == series  # no pack contract: one launch per task
    told = [json.loads(p.read_text()) for p in (tmp_path / "out").rglob("budget.json")]
    assert [int(t["workers"]) for t in told] == [share] * series and all(t["omp"] == t["workers"] for t in told)
    assert all(launch.processes == share for launch in report.launch_log)
    assert most_at_once(report) * share <= workers


def most_at_once(report) -> int:
    """The most launches running at the same moment (a sweep over their start and end times)."""
    events = []
    for launch in report.launch_log:
        tasks = [t for t in report.tasks if t.key in launch.tasks and t.result is not None]
        events += [(min(t.result.started for t in tasks), 1), (max(t.result.ended for t in tasks), -1)]
    running = most = 0
    for _time, step in sorted(events):
        running += step
        most = max(most, running)
    return most


def peak_descendants(run) -> tuple[object, int]:
    """Run ``run()`` while counting the most processes any launched tool had below it at once."""
    import threading

    import psutil

    peak = [0]
    done = threading.Event()

    def watch() -> None:
        me = psutil.Process()
        while not done.is_set():
            for tool in me.children():
                with contextlib.suppress(psutil.Error):
                    peak[0] = max(peak[0], len(tool.children(recursive=True)))
            time.sleep(0.01)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        result = run()
    finally:
        done.set()
        watcher.join()
    return result, peak[0]


def test_normalize_uses_no_more_processes_than_its_share(tmp_path: Path):
    """Two series on two cores: two launches of one process each (no pool); one series: one launch whose pool
    has two workers (forked from the step's process)."""
    source = tmp_path / "scans"
    for s in range(2):
        synthetic.write_ct_series(source / f"s{s}", f"pool-{s}", 40, 128, 128)
    report, peak = peak_descendants(lambda: run_tool(tmp_path, "normalize", source, 2))
    assert report.ok and report.launches == 2 and all(launch.processes == 1 for launch in report.launch_log)
    assert peak == 0
    single, peak = peak_descendants(lambda: run_tool(tmp_path / "one", "normalize", source / "s0", 2))
    assert single.ok and single.launch_log[0].processes == 2
    assert 2 <= peak <= 4
