"""Runs on the in-process fake engine (engines/fake.py): scans, a two-step pipeline of fake tools, a run."""

from __future__ import annotations

import textwrap
from pathlib import Path

from dicompose.dicom import synthetic
from dicompose.pipeline.runner import PipelineRequest, run_pipeline

TOOLS = Path(__file__).parents[1] / "data" / "tools"


def scans(folder: Path, series: int = 6, per_series: int = 2, names: dict[tuple[int, int], str] | None = None) -> Path:
    for s in range(series):
        for i in range(per_series):
            name = (names or {}).get((s, i), f"s{i}")
            synthetic.save(synthetic.ct_slice(f"series-{s}", i, 8, 8), folder / f"g{s}" / f"{name}.dcm")
    return folder


def pipeline(tmp_path: Path, first: str = "fakepack", second: str = "fakesingle", extra: str = "") -> Path:
    text = f"""
    version: 1
    name: fake
    inputs: {{scans: dicom}}
    steps:
      a:
        tool: {TOOLS / (first + ".json")}
        with: {{input: inputs.scans}}
        {extra}
      b:
        tool: {TOOLS / (second + ".json")}
        with: {{input: steps.a.output}}
    outputs: {{first: steps.a.output, second: steps.b.output}}
    """
    path = tmp_path / "pipeline.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def run(tmp_path: Path, path: Path, workers: int = 2, **kwargs: object):
    request = PipelineRequest(
        path, {"scans": tmp_path / "scans"}, tmp_path / "out", tmp_path / "ws", "fake", workers=workers, **kwargs
    )  # type: ignore[arg-type]
    return run_pipeline(request)
