"""Boutiques semantics that ``bosh`` defines and dicompose must match: conditional outputs (in order, default
included; a condition naming an absent input is false), invocation JSON types, byte-order marks, File inputs
given with ``-p`` (made absolute, checked, folders allowed), and conditions ``tool validate`` warns about."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dicompose.descriptors.conditions import condition_holds
from dicompose.descriptors.descriptor import Descriptor, load_descriptor
from dicompose.descriptors.given import check_invocation_types, read_invocation_file
from dicompose.descriptors.invocation import build_invocation, output_patterns
from dicompose.descriptors.validation import validate
from dicompose.errors import UsageError
from dicompose.pipeline.tool_graph import tool_graph
from tests.support.descriptors import header


def _descriptor(tmp_path: Path, outputs: list[dict[str, object]], command: str = "tool [N] [S] [F] [I]") -> Path:
    doc = {
        **header("semantics"),
        "command-line": command,
        "inputs": [
            {"id": "n", "name": "n", "type": "Number", "value-key": "[N]", "optional": True},
            {"id": "s", "name": "s", "type": "String", "value-key": "[S]", "optional": True},
            {"id": "f", "name": "f", "type": "File", "value-key": "[F]", "optional": True},
            {"id": "i", "name": "i", "type": "Number", "integer": True, "value-key": "[I]", "optional": True},
        ],
        "output-files": outputs,
    }
    path = tmp_path / "tool.json"
    path.write_text(json.dumps(doc))
    return path


def _patterns(descriptor: Descriptor, values: dict[str, object]) -> dict[str, str]:
    return {p.id: p.pattern for p in output_patterns(descriptor, build_invocation(descriptor, values))}


def test_conditional_entries_are_taken_in_order_default_included(tmp_path: Path):
    outputs = [
        {
            "id": "first",
            "name": "a",
            "optional": False,
            "conditional-path-template": [{"default": "a"}, {"n > 1": "b"}],
        },
        {
            "id": "second",
            "name": "b",
            "optional": False,
            "conditional-path-template": [{"n > 1": "b"}, {"default": "a"}],
        },
    ]
    descriptor = load_descriptor(str(_descriptor(tmp_path, outputs)))
    assert _patterns(descriptor, {"n": 5}) == {"first": "a", "second": "b"}
    assert _patterns(descriptor, {"n": 0}) == {"first": "a", "second": "a"}


def test_a_condition_naming_an_absent_input_is_false():
    ids = frozenset({"n", "s"})
    assert not condition_holds("n < 3", {}, ids)  # None < 3 is no question bosh asks: the whole condition is false
    assert not condition_holds("s != 'x' or n < 3", {"n": 1}, ids)
    assert condition_holds("s != 'x' or n < 3", {"n": 1, "s": "y"}, ids)
    assert condition_holds("(n + 1) * 2 > 5", {"n": 2}, ids) and not condition_holds("n / 0 > 1", {"n": 2}, ids)


def test_conditions_that_can_never_hold_are_warned_about(tmp_path: Path):
    outputs = [
        {"id": "o", "name": "o", "optional": True, "conditional-path-template": [{"zz > 5": "x"}, {"n >": "y"}]},
    ]
    warnings = [p for p in validate(json.loads(_descriptor(tmp_path, outputs).read_text())) if p.severity == "warning"]
    messages = " | ".join(p.message for p in warnings)
    assert "'zz' is no input id" in messages and "not an expression" in messages


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"s": 5}, "5 is not text"),
        ({"n": "7"}, '"7" is not a number'),
        ({"n": True}, "true is not a number"),
        ({"s": None}, "null is not text"),
        ({"f": ["a", "b"]}, "takes one value, not a list"),
        ({"i": 2.0}, "2.0 is not an integer"),  # JSON's 2.0 is no integer to bosh either
    ],
)
def test_invocation_json_values_have_the_types_bosh_requires(tmp_path: Path, values: dict[str, object], problem: str):
    descriptor = load_descriptor(str(_descriptor(tmp_path, [{"id": "o", "name": "o", "path-template": "o.txt"}])))
    with pytest.raises(UsageError) as caught:
        check_invocation_types(descriptor, values, tmp_path / "inv.json")
    assert problem in str(caught.value) and str(caught.value).startswith(str(tmp_path / "inv.json"))


def test_files_with_a_byte_order_mark_are_read(tmp_path: Path):
    path = _descriptor(tmp_path, [{"id": "o", "name": "o", "path-template": "out.txt"}])
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert load_descriptor(str(path)).name == "semantics"
    invocation = tmp_path / "inv.json"
    invocation.write_bytes(b"\xef\xbb\xbf" + json.dumps({"n": 2}).encode())
    assert read_invocation_file(invocation) == {"n": 2}


def test_file_inputs_given_by_hand_are_absolute_checked_and_may_be_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    tool = str(_descriptor(tmp_path, [{"id": "o", "name": "o", "path-template": "out.txt"}]))
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "key.txt").write_text("k")
    monkeypatch.chdir(tmp_path / "data")
    graph = tool_graph(tool, {"f": "key.txt"}, batch=False)
    assert graph.steps[0].params["f"] == str(tmp_path / "data" / "key.txt")
    assert tool_graph(tool, {"f": "."}, batch=False).steps[0].params["f"] == str(tmp_path / "data")
    with pytest.raises(UsageError, match=r"input 'f': nope\.txt: no such file or folder"):
        tool_graph(tool, {"f": "nope.txt"}, batch=False)
