"""The cache key (pipeline/tasks.py ``key_of``): what a task computes from, and nothing else.

A key that misses a cause reuses a wrong result; a key that includes a non-cause recomputes for nothing (a
moved study folder, a touched file). Each rule of the docstring is checked both ways here.
"""

from __future__ import annotations

import os
from pathlib import Path

from dicompose.pipeline.graph import build_graph
from dicompose.pipeline.tasks import key_of


def _node(tmp_path: Path, with_: str, name: str = "p.yaml", tool: str = "normalize"):  # type: ignore[no-untyped-def]
    path = tmp_path / name
    path.write_text(
        "version: 1\nname: t\ninputs:\n  scans: dicom\n  key: file\nsteps:\n"
        f"  s:\n    tool: {tool}\n    with: {{input: inputs.scans, {with_}}}\noutputs:\n  o: steps.s.output\n"
    )
    return build_graph(path).step("s")


INPUTS = ({"name": "a.dcm", "sha256": "1" * 64, "path": "/data/x/a.dcm"},)


def test_the_same_work_has_the_same_key_wherever_its_files_are(tmp_path: Path):
    node = _node(tmp_path, "max: 10")
    moved = ({"name": "a.dcm", "sha256": "1" * 64, "path": "/elsewhere/a.dcm"},)
    assert key_of(node, "img", INPUTS) == key_of(node, "img", moved)
    assert key_of(node, "img", INPUTS) == key_of(_node(tmp_path, "max: 10", "q.yaml"), "img", INPUTS)


def test_defaults_written_out_change_nothing(tmp_path: Path):
    assert key_of(_node(tmp_path, "max: 10"), "i", INPUTS) == key_of(_node(tmp_path, "max: 10, min: 0"), "i", INPUTS)


def test_every_cause_changes_the_key(tmp_path: Path):
    node = _node(tmp_path, "max: 10")
    base = key_of(node, "img", INPUTS)
    changed_bytes = ({"name": "a.dcm", "sha256": "2" * 64, "path": "/data/x/a.dcm"},)
    renamed = ({"name": "b.dcm", "sha256": "1" * 64, "path": "/data/x/b.dcm"},)
    others = {
        "content": key_of(node, "img", changed_bytes),
        "name": key_of(node, "img", renamed),  # outputs are named after inputs
        "image": key_of(node, "other image", INPUTS),
        "parameter": key_of(_node(tmp_path, "max: 11"), "img", INPUTS),
        "tool": key_of(_node(tmp_path, "level: 10", tool="threshold"), "img", INPUTS),
    }
    assert base not in others.values() and len(set(others.values())) == len(others)


def test_a_key_file_counts_by_its_content(tmp_path: Path):
    key = tmp_path / "site.key"
    key.write_bytes(b"a" * 32)
    node = _node(tmp_path, "key_file: inputs.key", tool="deidentify")
    node.params["key_file"] = str(key)  # as bind_files binds --in key=PATH
    first = key_of(node, "img", INPUTS)
    copy = tmp_path / "copy.key"
    copy.write_bytes(key.read_bytes())
    node.params["key_file"] = str(copy)
    assert key_of(node, "img", INPUTS) == first  # another path, the same bytes
    key.write_bytes(b"b" * 32)
    stat = key.stat()
    os.utime(key, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    node.params["key_file"] = str(key)
    assert key_of(node, "img", INPUTS) != first  # edited: hashed again, a new key
