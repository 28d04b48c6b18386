"""Invocations become argv lists: values never turn into shell syntax, outputs never leave the output folder."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from dicompose.descriptors.descriptor import Descriptor, load_descriptor
from dicompose.descriptors.given import parse_pairs
from dicompose.descriptors.invocation import build_argv, build_invocation, collect_outputs, output_patterns
from dicompose.errors import UsageError


def descriptor(**changes: object) -> Descriptor:
    doc = {
        "name": "demo",
        "tool-version": "1",
        "schema-version": "0.5",
        "description": "test tool",
        "command-line": "tool [FILES] [LEVEL] [VERBOSE] [MODE] --label=[LABEL] -o out_[LABEL].txt",
        "inputs": [
            {"id": "files", "name": "f", "type": "File", "list": True, "value-key": "[FILES]"},
            {
                "id": "level",
                "name": "l",
                "type": "Number",
                "integer": True,
                "minimum": 1,
                "maximum": 9,
                "optional": True,
                "command-line-flag": "-l",
                "value-key": "[LEVEL]",
            },
            {
                "id": "verbose",
                "name": "v",
                "type": "Flag",
                "optional": True,
                "command-line-flag": "-v",
                "value-key": "[VERBOSE]",
            },
            {
                "id": "mode",
                "name": "m",
                "type": "String",
                "optional": True,
                "value-choices": ["a", "b"],
                "command-line-flag": "--mode",
                "command-line-flag-separator": "=",
                "value-key": "[MODE]",
            },
            {
                "id": "label",
                "name": "lab",
                "type": "String",
                "optional": True,
                "default-value": "x",
                "value-key": "[LABEL]",
            },
        ],
        "output-files": [{"id": "out", "name": "o", "path-template": "out_[LABEL].txt"}],
    }
    doc.update(changes)
    return Descriptor(doc, "test")


def test_values_stay_single_argv_elements_whatever_they_contain():
    hostile = "; rm -rf / $(reboot) `id` 'quote\" && echo"
    inv = build_invocation(descriptor(), {"files": ["/data/a b.dcm", "/x/y.dcm"], "label": hostile})
    argv = build_argv(descriptor(), inv)
    assert argv[:3] == ["tool", "/data/a b.dcm", "/x/y.dcm"]
    assert f"--label={hostile}" in argv
    assert argv[-2:] == ["-o", f"out_{hostile}.txt"]


def test_flags_numbers_separators_and_defaults():
    inv = build_invocation(descriptor(), {"files": "/f.dcm", "level": "3", "verbose": "true", "mode": "b"})
    assert build_argv(descriptor(), inv) == [
        "tool",
        "/f.dcm",
        "-l",
        "3",
        "-v",
        "--mode=b",
        "--label=x",
        "-o",
        "out_x.txt",
    ]
    quiet = build_invocation(descriptor(), {"files": "/f.dcm", "verbose": "false"})
    assert "-v" not in build_argv(descriptor(), quiet)


def test_path_map_rewrites_file_inputs_only():
    inv = build_invocation(descriptor(), {"files": ["/host/a.dcm"], "label": "/host/not-a-path"})
    argv = build_argv(descriptor(), inv, path_map=lambda p: f"/in/{p.name}")
    assert "/in/a.dcm" in argv and "--label=/host/not-a-path" in argv


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ({"level": "3"}, "required input 'files' is missing"),
        ({"files": "/f", "level": "0"}, "below the minimum"),
        ({"files": "/f", "level": "2.5"}, "not an integer"),
        ({"files": "/f", "level": "nan"}, "not a finite number"),
        ({"files": "/f", "mode": "c"}, "not one of"),
        ({"files": "/f", "verbose": "maybe"}, "not true/false"),
        ({"files": "/f", "colour": "red"}, "unknown input(s) colour"),
        ({"files": "/f", "label": "a\x00b"}, "NUL"),
    ],
)
def test_invalid_values_are_refused(raw, needle):
    with pytest.raises(UsageError) as caught:
        build_invocation(descriptor(), raw)
    assert needle in str(caught.value)


def test_requires_disables_and_groups():
    doc = descriptor()
    doc.doc["inputs"][1]["requires-inputs"] = ["mode"]
    doc.doc["inputs"][2]["disables-inputs"] = ["mode"]
    with pytest.raises(UsageError, match="requires input 'mode'"):
        build_invocation(doc, {"files": "/f", "level": 2})
    with pytest.raises(UsageError, match="cannot be used with input 'mode'"):
        build_invocation(doc, {"files": "/f", "verbose": True, "mode": "a"})
    grouped = descriptor(groups=[{"id": "g", "name": "g", "members": ["level", "mode"], "mutually-exclusive": True}])
    with pytest.raises(UsageError, match="mutually exclusive"):
        build_invocation(grouped, {"files": "/f", "level": 2, "mode": "a"})


@pytest.mark.parametrize(
    ("pairs", "needle"),
    [(["min"], "expected ID=VALUE"), (["=3"], "expected ID=VALUE"), (["a=1", "a=2"], "more than once")],
)
def test_parameter_pairs(pairs, needle):
    with pytest.raises(UsageError, match=needle):
        parse_pairs(pairs)
    assert parse_pairs(["min=-1000", "label=a=b"]) == {"min": "-1000", "label": "a=b"}


def test_output_templates_cannot_escape(tmp_path: Path):
    inv = build_invocation(descriptor(), {"files": "/f", "label": "../../etc/passwd"})
    with pytest.raises(UsageError, match="leaves the output folder"):
        output_patterns(descriptor(), inv)


def test_collect_outputs_refuses_symlinks_out_and_reports_missing(tmp_path: Path):
    normalize = load_descriptor("normalize")
    inv = build_invocation(normalize, {"input": ["/a.dcm"]})
    patterns = output_patterns(normalize, inv)
    found, problems = collect_outputs(tmp_path, patterns)
    assert found == {"normalized": []} and problems == [
        "required output 'normalized' (*-normalized.dcm) was not produced"
    ]
    (tmp_path / "ok-normalized.dcm").write_bytes(b"x")
    os.symlink("/etc/passwd", tmp_path / "evil-normalized.dcm")
    found, problems = collect_outputs(tmp_path, patterns)
    assert [p.name for p in found["normalized"]] == ["ok-normalized.dcm"]
    assert any("evil-normalized.dcm points outside" in p for p in problems)


def test_invocation_files_are_plain_json_objects(tmp_path: Path):
    from dicompose.descriptors.given import read_invocation_file

    path = tmp_path / "inv.json"
    path.write_text(json.dumps({"min": 0, "max": 10}))
    assert read_invocation_file(path) == {"min": 0, "max": 10}
    path.write_text("[1, 2]")
    with pytest.raises(UsageError, match="JSON object"):
        read_invocation_file(path)


def test_a_list_input_collects_repeated_p_values_in_order():
    from dicompose.descriptors.given import parse_pairs

    assert parse_pairs(["w=a", "n=1", "w=b c", "w="], frozenset({"w"})) == {"w": ["a", "b c", ""], "n": "1"}
    with pytest.raises(UsageError, match="more than once"):
        parse_pairs(["n=1", "n=2"], frozenset({"w"}))


def test_an_unknown_input_does_not_hide_the_other_problems():
    from dicompose.descriptors.descriptor import load_descriptor

    with pytest.raises(UsageError) as caught:
        build_invocation(load_descriptor("normalize"), {"min": 5, "max": 1, "foo": 2})
    assert "unknown input(s) foo" in str(caught.value) and "min (5) must be <= max (1)" in str(caught.value)
