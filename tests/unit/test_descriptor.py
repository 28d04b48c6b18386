"""Descriptor validation: Boutiques' reference verdict (errors) plus dicompose's checks (warnings), each problem
with its JSON path."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from dicompose import __version__
from dicompose.descriptors.descriptor import builtin_path, load_descriptor
from dicompose.descriptors.validation import validate
from dicompose.errors import UsageError

BUILTIN = json.loads(builtin_path("normalize").read_text())


def paths_of(doc: object) -> dict[str, str]:
    return {p.path: p.message for p in validate(doc)}


def test_builtin_normalize_is_valid_and_matches_the_package_version():
    from dicompose.descriptors.descriptor import BUILTIN_TOOLS

    for name in BUILTIN_TOOLS:  # loading a built-in skips the schema check: it is made here instead
        assert validate(json.loads(builtin_path(name).read_text())) == [], name
    descriptor = load_descriptor("normalize")
    assert descriptor.version == __version__
    assert descriptor.digest.startswith("sha256:") and len(descriptor.digest) == 71


def test_schema_errors_carry_json_paths():
    doc = copy.deepcopy(BUILTIN)
    doc["inputs"][1]["type"] = "Integer"
    del doc["name"]
    problems = paths_of(doc)
    assert "$.inputs[1].type" in problems
    assert any(path == "$" and "'name' is a required property" in msg for path, msg in problems.items())


@pytest.mark.parametrize(
    ("mutate", "path", "needle", "severity"),
    [
        (lambda d: d["inputs"][2].__setitem__("id", "min"), "$.inputs[1]", '"min" is non-unique', "error"),
        (
            lambda d: d.__setitem__("command-line", "dicompose normalize [INPUT] --out ."),
            "$.inputs[1].value-key",
            '"[MIN]" not in command-line',
            "error",
        ),
        (lambda d: d["inputs"][1].update({"minimum": 5, "maximum": 1}), "$.inputs[1]", "greater min (5)", "error"),
        (
            lambda d: d["inputs"][3].__setitem__("default-value", "volume"),
            "$.inputs[3]",
            "default value outside its choices",
            "error",
        ),
        (lambda d: d["inputs"][1].__setitem__("requires-inputs", ["nope"]), "$.inputs[1]", '"nope" not found', "error"),
        (
            lambda d: d["output-files"][0].__setitem__("path-template", "../escape.dcm"),
            "$.output-files[0].path-template",
            "inside the output folder",
            "warning",  # legal Boutiques; refused when run
        ),
        (
            lambda d: d.__setitem__("groups", [{"id": "g", "name": "g", "members": ["min", "ghost"]}]),
            "$.groups[0]",
            'member "ghost" does not exist',
            "error",
        ),
        (
            lambda d: d["custom"]["dicompose"].__setitem__("netwrk", True),
            "$.custom.dicompose.netwrk",
            "unknown dicompose extension",
            "warning",
        ),
        (
            lambda d: d["custom"]["dicompose"].__setitem__("batch-input", "min2"),
            "$.custom.dicompose.batch-input",
            "not an input id",
            "warning",
        ),
    ],
)
def test_problems_are_found_located_and_graded(mutate, path, needle, severity):
    """Errors are the reference validator's (bosh validate), located by the id they name; dicompose's own
    checks beyond it are warnings, errors under strict."""
    doc = copy.deepcopy(BUILTIN)
    mutate(doc)
    problems = {p.path: p for p in validate(doc)}
    assert path in problems, problems
    assert needle in problems[path].message and problems[path].severity == severity
    assert {p.path: p.severity for p in validate(doc, strict=True)}[path] == "error"


def test_a_descriptor_with_only_warnings_loads_unless_its_extensions_are_broken(tmp_path: Path):
    doc = copy.deepcopy(BUILTIN)
    doc["output-files"][0]["path-template"] = "../escape.dcm"  # a warning: refused when the outputs are collected
    (tmp_path / "ok.json").write_text(json.dumps(doc))
    assert load_descriptor(str(tmp_path / "ok.json")).name == "normalize"
    doc["custom"]["dicompose"]["pack"] = {}
    (tmp_path / "broken.json").write_text(json.dumps(doc))
    with pytest.raises(UsageError, match="manifest-flag"):
        load_descriptor(str(tmp_path / "broken.json"))


def test_load_refuses_invalid_descriptors_with_every_problem(tmp_path: Path):
    doc = copy.deepcopy(BUILTIN)
    doc["inputs"][1]["minimum"], doc["inputs"][1]["maximum"] = 9, 1
    doc["inputs"][2]["id"] = "min"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(UsageError) as caught:
        load_descriptor(str(path))
    assert "$.inputs[1]" in str(caught.value) and "non-unique" in str(caught.value)


@pytest.mark.parametrize(("content", "needle"), [("{not json", r"not valid JSON \(line 1"), (None, "not found")])
def test_unreadable_descriptor_files(tmp_path: Path, content, needle):
    path = tmp_path / "tool.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(UsageError, match=needle):
        load_descriptor(str(path))


def test_constraints_between_number_inputs_are_checked_for_any_tool(tmp_path: Path):
    """A user's tool declares its relations as the built-ins do (``custom.dicompose.constraints``): a run or a
    check refuses values that break one, with the values named; a malformed constraint is a warning (an error
    when the descriptor is run)."""
    from dicompose.descriptors.invocation import build_invocation

    doc = copy.deepcopy(BUILTIN)
    doc["name"] = "mine"
    doc["inputs"][2]["default-value"] = 100
    doc["custom"]["dicompose"]["constraints"] = ["min <= max", "max < 1000"]
    (tmp_path / "mine.json").write_text(json.dumps(doc))
    descriptor = load_descriptor(str(tmp_path / "mine.json"))
    assert build_invocation(descriptor, {"input": ["a.dcm"], "min": 1, "max": 2}).values["max"] == 2
    with pytest.raises(UsageError, match=r"min \(5\) must be <= max \(1\)"):
        build_invocation(descriptor, {"input": ["a.dcm"], "min": 5, "max": 1})
    with pytest.raises(UsageError, match=r"max \(2000\) must be < 1000"):
        build_invocation(descriptor, {"input": ["a.dcm"], "max": 2000})
    doc["custom"]["dicompose"]["constraints"] = ["min <= scope", "min ~ max"]
    problems = {p.path: p for p in validate(doc)}
    assert "not a Number input" in problems["$.custom.dicompose.constraints[0]"].message
    assert "expected 'ID OP ID'" in problems["$.custom.dicompose.constraints[1]"].message
    assert {p.severity for p in problems.values()} == {"warning"}
    (tmp_path / "mine.json").write_text(json.dumps(doc))
    with pytest.raises(UsageError, match="constraints"):
        load_descriptor(str(tmp_path / "mine.json"))


def test_a_default_outside_its_bounds_is_a_warning_and_refused_when_used(tmp_path: Path):
    from dicompose.descriptors.invocation import build_invocation

    doc = copy.deepcopy(BUILTIN)
    doc["name"] = "mine"
    doc["inputs"][1].update({"minimum": 0, "maximum": 10, "default-value": 99})
    problems = {p.path: p for p in validate(doc)}
    assert problems["$.inputs[1].default-value"].severity == "warning"
    (tmp_path / "mine.json").write_text(json.dumps(doc))
    descriptor = load_descriptor(str(tmp_path / "mine.json"))
    with pytest.raises(UsageError, match="its default 99 is outside its bounds"):
        build_invocation(descriptor, {"input": ["a.dcm"]})
    assert build_invocation(descriptor, {"input": ["a.dcm"], "min": 5}).values["min"] == 5


@pytest.mark.parametrize(
    ("custom", "path", "needle"),
    [
        ({"partial-exit-codes": ["x"]}, "$.custom.dicompose.partial-exit-codes", "integer exit codes"),
        ({"batch-input": "min"}, "$.custom.dicompose.batch-input", "not a File input"),
        ({"constraints": ["min < min"]}, "$.custom.dicompose.constraints[0]", "with itself"),
    ],
)
def test_malformed_extensions_are_caught(custom, path, needle, tmp_path: Path):
    doc = copy.deepcopy(BUILTIN)
    doc["name"] = "mine"
    doc["custom"]["dicompose"].update(custom)
    problems = {p.path: p for p in validate(doc, strict=True)}
    assert needle in problems[path].message and problems[path].severity == "error"
    (tmp_path / "mine.json").write_text(json.dumps(doc))
    with pytest.raises(UsageError, match=needle):
        load_descriptor(str(tmp_path / "mine.json"))
