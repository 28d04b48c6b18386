"""Test tools as Boutiques descriptors: a Python snippet run over the task's files, writing one output."""

from __future__ import annotations

import json
from pathlib import Path


def snippet_tool(path: Path, name: str, code: str, output: str, description: str) -> Path:
    """Write a descriptor running ``python3 -c CODE FILE...`` that writes ``output`` in its working folder."""
    doc = {
        "name": name,
        "tool-version": "1",
        "schema-version": "0.5",
        "description": description,
        "command-line": "python3 -c [CODE] [INPUT]",
        "inputs": [
            {"id": "code", "name": "code", "type": "String", "value-key": "[CODE]", "default-value": code},
            {"id": "input", "name": "input", "type": "File", "list": True, "value-key": "[INPUT]"},
        ],
        "output-files": [{"id": "result", "name": "result", "path-template": output}],
    }
    path.write_text(json.dumps(doc))
    return path


def boutiques(
    name: str,
    command_line: str,
    inputs: list[dict[str, object]],
    outputs: list[dict[str, object]],
    extra: dict[str, object] | None = None,
) -> dict[str, object]:
    """A Boutiques 0.5 descriptor document: the header every test tool shares, around its own parts
    (``extra``: container-image, environment-variables, ...)."""
    return {**header(name), "command-line": command_line, "inputs": inputs, "output-files": outputs, **(extra or {})}


def header(name: str, description: str = "") -> dict[str, object]:
    """The fields every Boutiques 0.5 descriptor starts with."""
    return {"name": name, "tool-version": "1", "description": description or name, "schema-version": "0.5"}
