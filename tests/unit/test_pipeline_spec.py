"""Pipeline files: every problem names the line and the field; the graph catches references, types, cycles."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from dicompose.errors import UsageError
from dicompose.pipeline.graph import build_graph
from dicompose.pipeline.spec import load_pipeline, parse_reference

GOOD = """
version: 1
name: ct-prep
inputs:
  scans: dicom
steps:
  normalize:
    tool: normalize
    with: {input: inputs.scans, min: 0, max: 100}
    retries: 2
    timeout: 10m
    resources: {memory: 2g, cpus: 1.5}
  mask:
    tool: threshold
    with: {input: steps.normalize.output, level: 50}
outputs:
  normalized: steps.normalize.output
  masks: steps.mask.mask
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pipeline.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def problem(tmp_path: Path, text: str) -> str:
    with pytest.raises(UsageError) as caught:
        build_graph(write(tmp_path, text))
    return str(caught.value)


def test_a_good_pipeline_builds_in_dependency_order(tmp_path: Path):
    graph = build_graph(write(tmp_path, GOOD))
    assert [s.name for s in graph.steps] == ["normalize", "mask"]
    normalize = graph.step("normalize")
    assert normalize.batch_input == "input" and normalize.params == {"min": 0, "max": 100}
    assert normalize.spec.timeout_seconds() == 600 and normalize.spec.resources.memory_bytes() == 2 * 1024**3
    assert graph.step("mask").source.output == "normalized"  # ".output" resolves to the only output
    assert graph.outputs["masks"].output == "mask"


@pytest.mark.parametrize(
    ("old", "new", "needles"),
    [
        ("retries: 2", "retries: many", ["line 10", "steps.normalize.retries"]),
        ("timeout: 10m", "timeout: soon", ["line 11", "steps.normalize.timeout", "duration"]),
        ("memory: 2g", "memory: lots", ["line 12", "steps.normalize.resources.memory"]),
        ("version: 1", "version: 2", ["line 2", "version"]),
        ("  mask:\n    tool: threshold", "  mask:\n    tol: threshold", ["line 14", "steps.mask.tol", "unknown field"]),
    ],
)
def test_model_errors_name_line_and_field(tmp_path: Path, old: str, new: str, needles: list[str]):
    message = problem(tmp_path, GOOD.replace(old, new))
    for needle in needles:
        assert needle in message, message


@pytest.mark.parametrize(
    ("old", "new", "needle"),
    [
        ("input: inputs.scans", "input: inputs.scan", "unknown pipeline input 'scan'"),
        ("steps.normalize.output, level", "steps.normalise.output, level", "unknown step 'normalise'"),
        ("steps.normalize.output, level", "steps.normalize.result, level", "has no output 'result'"),
        ("min: 0", "min: inputs.scans", "type mismatch"),
        ("min: 0", "minimum: 0", "has no input 'minimum'"),
        ("min: 0, max: 100", "min: 0, max: abc", "'abc' is not a number"),
        ("input: inputs.scans, min", "input: /data/scans, min", "a File input takes a reference"),
        ("tool: threshold", "tool: ./missing.json", "descriptor not found"),
        ("masks: steps.mask.mask", "masks: inputs.scans", "must reference a step output"),
    ],
)
def test_graph_errors(tmp_path: Path, old: str, new: str, needle: str):
    message = problem(tmp_path, GOOD.replace(old, new))
    assert needle in message and "line " in message, message


def test_cycles_are_found(tmp_path: Path):
    text = GOOD.replace("with: {input: inputs.scans, min: 0, max: 100}", "with: {input: steps.mask.output}")
    assert "dependency cycle" in problem(tmp_path, text)


def test_yaml_syntax_and_duplicate_keys(tmp_path: Path):
    message = problem(tmp_path, "version: 1\nname: x\ninputs:\n  scans: [dicom\n")
    assert "not valid YAML" in message and "line 5" in message
    assert "duplicate key 'name'" in problem(tmp_path, "version: 1\nname: x\nname: y\n")


def test_references():
    assert parse_reference("inputs.scans") == ("input", "scans", "")
    assert parse_reference("steps.normalize.output") == ("step", "normalize", "output")
    assert parse_reference("steps.normalize") is None and parse_reference(5) is None


def test_load_keeps_the_raw_document_with_lines(tmp_path: Path):
    spec, document = load_pipeline(write(tmp_path, GOOD))
    assert spec.name == "ct-prep" and document["__lines__"]["steps"] == 6
