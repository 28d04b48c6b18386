"""Pipelines of the step tools (tests/data/tools: every launch logged, so tests count launches exactly),
their inputs, and how the tests run them (in process and through the CLI)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tests.support.cli import BIN

from dicompose.dicom import synthetic
from dicompose.pipeline.runner import PipelineReport, PipelineRequest, run_pipeline

TOOLS = Path(__file__).parent.parent / "data" / "tools"


def write_scans(folder: Path, groups: int = 2, per_group: int = 2) -> Path:
    for g in range(groups):
        for i in range(per_group):
            synthetic.save(synthetic.ct_slice(f"series-{g}", i, 16, 16), folder / f"g{g}" / f"s{i}.dcm")
    return folder


def pipeline_file(tmp_path: Path, *, a: str = "", b: str = "", a_extra: str = "") -> Path:
    log = tmp_path / "launches.log"
    text = f"""
    version: 1
    name: test
    inputs:
      scans: dicom
    steps:
      first:
        tool: {TOOLS / "stepa.json"}
        with: {{input: inputs.scans, script: "{TOOLS / "steptool.py"}", log: "{log}"{a}}}
        {a_extra}
      second:
        tool: {TOOLS / "stepb.json"}
        with: {{input: steps.first.output, script: "{TOOLS / "steptool.py"}", log: "{log}"{b}}}
    outputs:
      firsts: steps.first.output
      seconds: steps.second.output
    """
    path = tmp_path / "pipeline.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def launches(tmp_path: Path) -> list[str]:
    log = tmp_path / "launches.log"
    return log.read_text().splitlines() if log.exists() else []


def run(tmp_path: Path, pipeline: Path, scheduler: str = "local", **kwargs: object) -> PipelineReport:
    if scheduler == "slurm":  # one worker job of two cores: several tests share this node's two
        kwargs.setdefault("slurm", ("jobs=1", "cores=2", "walltime=00:10:00"))
    request = PipelineRequest(
        pipeline,
        {"scans": tmp_path / "scans"},
        tmp_path / "out",
        engine="local",
        scheduler=scheduler,
        workers=2,
        **kwargs,
    )  # type: ignore[arg-type]
    return run_pipeline(request)


def cli_run_argv(tmp_path: Path, pipeline: Path, *extra: str) -> list[str]:
    """`dicompose run PIPELINE` on tmp_path/scans into tmp_path/out with the local engine."""
    return [
        str(BIN / "dicompose"),
        "run",
        str(pipeline),
        "--in",
        str(tmp_path / "scans"),
        "--out",
        str(tmp_path / "out"),
        "--engine",
        "local",
        *extra,
    ]


def outputs(tmp_path: Path) -> dict[str, bytes]:
    return {p.relative_to(tmp_path / "out").as_posix(): p.read_bytes() for p in (tmp_path / "out").rglob("*.[ab]")}
