"""The pipeline suite's promises on the HPC path, with the real tools: SLURM worker jobs running packed ``ch-run``
launches as an ordinary user (``scripts/user-tests.sh``). A damaged file fails only its own task inside a pack,
an unchanged rerun launches nothing, fixing the file reruns exactly its series, and the bytes are the local
engine's. (The runner's engine-independent logic, retries, timeouts and locks, is the local suite's:
tests/integration/test_pipeline.py, which runs on SLURM too.)
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dicompose.dicom import synthetic
from dicompose.tools.samples import demo_pipeline
from tests.support.components import need, slurm_up
from tests.support.hpc import dicompose, outputs

pytestmark = pytest.mark.charliecloud


def _series(scans: Path) -> Path:
    """Three CT series of two slices; the second slice of s1 cut short (its pixel data ends early)."""
    for number in range(3):
        synthetic.write_ct_series(scans / f"s{number}", f"hpc-pipeline-{number}", 2, 16, 16)
    damaged = scans / "s1" / "slice_0001.dcm"
    damaged.write_bytes(damaged.read_bytes()[:-200])
    return damaged


def _run(tmp_path: Path, workspace: str, *engine: str) -> dict:
    argv = ["run", str(demo_pipeline()), "--in", "scans", "--out", "out", "--workspace", workspace, *engine, "--json"]
    proc = dicompose(tmp_path, *argv)
    assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr, proc.stderr
    report: dict = json.loads(proc.stdout)
    assert report["ok"] == (proc.returncode == 0)
    return report


def _states(report: dict) -> dict[tuple[str, str], tuple[str, bool]]:
    return {(t["step"], t["label"].split("#")[0]): (t["status"], t["cached"]) for t in report["tasks"]}


def test_a_damaged_file_fails_only_its_task_and_a_fixed_one_reruns_only_its_series(images: Path, tmp_path: Path):
    need("slurm", *slurm_up())
    damaged = _series(tmp_path / "scans")
    hpc = ("--engine", "charliecloud", "--scheduler", "slurm", "--slurm", "jobs=1", "--slurm", "cores=2")

    first = _run(tmp_path, "ws", *hpc)
    assert not first["ok"] and first["engine"]["name"] == "charliecloud" and first["scheduler"].startswith("slurm")
    states = _states(first)
    assert states[("normalize", "s1")] == ("partial", False)
    assert all(states[(step, s)] == ("ok", False) for step in ("normalize", "mask") for s in ("s0", "s2"))
    problems = [p for t in first["tasks"] for p in t["problems"]]
    assert len(problems) == 1 and problems[0].startswith(f"{damaged}: file truncated")
    packs = {t["launch"] for t in first["tasks"] if t["step"] == "normalize"}
    assert first["launches"] < len(first["tasks"]) and len(packs) < 3  # packed: the damaged file's pack-mates
    assert (tmp_path / "out" / "normalized" / "s1" / "slice_0000-normalized.dcm").is_file()  # kept
    assert not (tmp_path / "out" / "normalized" / "s1" / "slice_0001-normalized.dcm").exists()

    again = _run(tmp_path, "ws", *hpc)
    assert again["launches"] == 0 and all(cached for _status, cached in _states(again).values())

    synthetic.write_ct_series(tmp_path / "fixed", "hpc-pipeline-1", 2, 16, 16)
    damaged.write_bytes((tmp_path / "fixed" / "slice_0001.dcm").read_bytes())
    resumed = _run(tmp_path, "ws", *hpc)
    assert resumed["ok"] and resumed["launches"] == 2
    rerun = {key for key, (_status, cached) in _states(resumed).items() if not cached}
    assert rerun == {("normalize", "s1"), ("mask", "s1")}

    shown = json.loads(dicompose(tmp_path, "show", resumed["run"], "--workspace", "ws", "--json").stdout)
    assert shown["attempts"] and all(a["engine"] == "charliecloud" and a["exit_code"] == 0 for a in shown["attempts"])
    hpc_bytes = outputs(tmp_path / "out")
    (tmp_path / "out").rename(tmp_path / "out-hpc")
    local = _run(tmp_path, "ws-local", "--engine", "local")
    assert local["ok"] and outputs(tmp_path / "out") == hpc_bytes and len(hpc_bytes) == 12
