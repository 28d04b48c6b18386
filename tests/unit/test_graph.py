"""The step graph on its own (no runs): references resolved to sources, steps in dependency order whatever
their order in the file, key files bound to their inputs, de-identification followed downstream, and every
problem collected, each with its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from dicompose.errors import ProblemsError, UsageError
from dicompose.pipeline.graph import Source, bind_files, build_graph


def _pipeline(tmp_path: Path, steps: str, outputs: str = "  masks: steps.mask.output", inputs: str = "") -> Path:
    path = tmp_path / "pipeline.yaml"
    path.write_text(f"version: 1\nname: t\ninputs:\n  scans: dicom\n{inputs}steps:\n{steps}\noutputs:\n{outputs}\n")
    return path


STEPS = (
    "  mask:\n    tool: threshold\n    with: {input: steps.normalize.output, level: 50}\n"
    "  normalize:\n    tool: normalize\n    with: {input: inputs.scans, max: 10}"
)


def test_steps_come_in_dependency_order_with_their_sources(tmp_path: Path):
    graph = build_graph(_pipeline(tmp_path, STEPS))
    assert [node.name for node in graph.steps] == ["normalize", "mask"]  # mask is written first in the file
    assert graph.step("normalize").source == Source("input", "scans")
    assert graph.step("mask").source == Source("step", "normalize", "normalized")  # "output": the only one
    assert graph.step("normalize").params == {"max": 10} and graph.step("mask").batch_input == "input"
    assert graph.outputs == {"masks": Source("step", "mask", "mask")}
    assert not graph.deidentifying


def test_deidentification_is_followed_downstream(tmp_path: Path):
    steps = (
        "  deid:\n    tool: deidentify\n    with: {input: inputs.scans, key_file: inputs.key}\n"
        "  mask:\n    tool: threshold\n    with: {input: steps.deid.output}"
    )
    graph = build_graph(_pipeline(tmp_path, steps, inputs="  key: file\n"))
    assert graph.deidentifying and graph.deidentified("mask") and graph.deidentified("deid")
    assert graph.step("deid").file_refs == {"key_file": "key"}
    (tmp_path / "site.key").write_bytes(b"k" * 32)
    bound = bind_files(graph, {"key": tmp_path / "site.key"}, lambda: tmp_path / "default.key")
    assert bound.step("deid").params["key_file"] == str(tmp_path / "site.key")


def test_every_problem_is_collected_with_its_line(tmp_path: Path):
    steps = (
        "  a:\n    tool: normalize\n    with: {input: steps.b.output, min: 5, max: 1}\n"
        "  b:\n    tool: threshold\n    with: {input: steps.a.output, level: high}"
    )
    problems: list[str] = []
    build_graph(_pipeline(tmp_path, steps, outputs="  o: steps.a.nope"), collect=problems)
    joined = "\n".join(problems)
    assert "line 8, steps.a.with" in joined and "min (5) must be <= max (1)" in joined
    assert "'high' is not a number" in joined and "dependency cycle" in joined
    assert all(line.startswith("line ") for line in problems if "dependency cycle" in line)  # a cycle has its line
    assert "step 'a' has no output 'nope'" in joined
    with pytest.raises(UsageError):  # without collect: one error carrying them all
        build_graph(_pipeline(tmp_path, steps))


def test_a_file_that_cannot_be_modelled_lists_each_problem(tmp_path: Path):
    path = tmp_path / "pipeline.yaml"
    path.write_text("version: 3\nname: 5\nsteps: []\n")
    with pytest.raises(ProblemsError) as caught:
        build_graph(path, collect=[])
    assert len(caught.value.problems) == 4 and caught.value.problems[0].startswith("line 1, version")
