"""Config files a tool reads (outputs with a ``file-template``), written as ``bosh exec launch`` writes them
before the tool runs: values without their flags, text and paths quoted for a shell, lists joined by their
separator, a line naming an input without a value left empty."""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dicompose.descriptors.invocation import Invocation, PathMap, _format, output_patterns
from dicompose.descriptors.values import Value

if TYPE_CHECKING:
    from dicompose.descriptors.descriptor import Descriptor


def config_files(descriptor: Descriptor, invocation: Invocation, path_map: PathMap = str) -> dict[str, str]:
    """Config files the tool reads (outputs with a ``file-template``): path in the output folder → text, each
    line with its value-keys resolved (Boutiques writes them before the tool runs)."""
    paths = {p.id: p.pattern for p in output_patterns(descriptor, invocation)}
    files = {}
    for spec in descriptor.outputs:
        if spec.get("file-template") and spec["id"] in paths:
            stripped = spec.get("path-template-stripped-extensions", [])
            table = _config_values(descriptor, invocation, path_map, paths, stripped)
            lines = [_config_line(str(line), table) for line in spec["file-template"]]
            files[paths[spec["id"]]] = "\n".join(lines)  # as bosh writes it: no newline after the last line
    return files


def _config_line(line: str, table: Mapping[str, str | None]) -> str:
    """One config-file line with its value-keys replaced; empty where it names an input without a value (as
    bosh clears it)."""
    if not table:
        return line
    keys = re.compile("|".join(re.escape(key) for key in sorted(table, key=len, reverse=True)))
    if any(table[match.group(0)] is None for match in keys.finditer(line)):
        return ""
    return keys.sub(lambda match: str(table[match.group(0)]), line)


def _config_values(
    descriptor: Descriptor,
    invocation: Invocation,
    path_map: PathMap,
    output_paths: Mapping[str, str],
    stripped: list[str],
) -> dict[str, str | None]:
    """What each value-key stands for in a config file, as bosh writes it: values without their flags, text
    and paths quoted for a shell (the file may be sourced), lists joined by their separator, the config file's
    stripped extensions removed from text values; None for an input without a value."""
    table: dict[str, str | None] = {}
    for spec in descriptor.outputs:
        if spec.get("value-key") and spec["id"] in output_paths:
            table[spec["value-key"]] = shlex.quote(output_paths[spec["id"]])
    for spec in descriptor.inputs:
        if not spec.get("value-key"):
            continue
        value = invocation.values.get(spec["id"])
        if value is None:
            table[spec["value-key"]] = None
            continue
        quoted = spec["type"] in ("String", "File")

        def text(item: Value, spec: dict[str, Any] = spec, quoted: bool = quoted) -> str:
            raw = path_map(Path(str(item))) if spec["type"] == "File" else _format(item)
            return shlex.quote(raw) if quoted else raw

        joined = (
            str(spec.get("list-separator") or " ").join(text(item) for item in value)
            if isinstance(value, list)
            else text(value)
        )
        if quoted:
            for extension in stripped:
                joined = joined.replace(extension, "")
        table[spec["value-key"]] = joined
    return table
