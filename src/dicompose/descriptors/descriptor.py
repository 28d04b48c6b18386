"""Boutiques tool descriptors: found (a built-in name or a path), read, validated (:mod:`.validation`), and
read through the accessors the runner needs. dicompose's own extensions live under ``custom["dicompose"]``,
so every descriptor stays valid Boutiques.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

from dicompose.descriptors.validation import Problem, errors, run_problems, validate
from dicompose.errors import UsageError

BUILTIN_TOOLS = ("normalize", "threshold", "deidentify")


@dataclass(frozen=True)
class Descriptor:
    """A validated descriptor with the accessors the executor needs."""

    doc: dict[str, Any]
    source: str
    problems: tuple[Problem, ...] = field(default=())

    @property
    def name(self) -> str:
        return str(self.doc["name"])

    @property
    def version(self) -> str:
        return str(self.doc["tool-version"])

    @property
    def command_line(self) -> str:
        return str(self.doc["command-line"])

    @property
    def inputs(self) -> list[dict[str, Any]]:
        return list(self.doc.get("inputs", []))

    @property
    def outputs(self) -> list[dict[str, Any]]:
        return list(self.doc.get("output-files", []))

    @property
    def container(self) -> dict[str, Any]:
        return dict(self.doc.get("container-image", {}))

    @property
    def custom(self) -> dict[str, Any]:
        return dict(self.doc.get("custom", {}).get("dicompose", {}))

    @property
    def deidentifies(self) -> bool:
        """The tool writes de-identified outputs: a run that contains it describes its work without naming
        the inputs (their folder and file names may identify people)."""
        return self.custom.get("deidentifies") is True

    @property
    def manifest_flag(self) -> str | None:
        """The option that takes a task manifest if the tool runs many tasks per launch (else None)."""
        pack = self.custom.get("pack")
        return str(pack["manifest-flag"]) if isinstance(pack, dict) and pack.get("manifest-flag") else None

    @property
    def digest(self) -> str:
        """sha256 of the canonical JSON: identifies exactly this descriptor (cache keys, image labels)."""
        return "sha256:" + hashlib.sha256(canonical_json(self.doc)).hexdigest()

    def input(self, input_id: str) -> dict[str, Any]:
        for spec in self.inputs:
            if spec["id"] == input_id:
                return spec
        raise KeyError(input_id)


def canonical_json(doc: object) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def read_document(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise UsageError(f"{path}: descriptor not found") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read descriptor ({exc})") from None


def builtin_path(name: str) -> Path:
    return Path(str(files("dicompose.descriptors") / "builtin" / f"{name}.json"))


def resolve_tool(tool: str, base: Path | None = None) -> Path:
    """A built-in tool name or a descriptor path (relative to ``base``)."""
    if tool in BUILTIN_TOOLS:
        return builtin_path(tool)
    path = Path(tool) if base is None else base / tool
    if path.suffix != ".json" and not path.exists():
        raise UsageError(f"unknown tool {tool!r}: not a built-in ({', '.join(BUILTIN_TOOLS)}) nor a descriptor file")
    return path


def load_descriptor(tool: str, base: Path | None = None) -> Descriptor:
    """Load and validate; any problem is a usage error listing every problem with its JSON path."""
    path = resolve_tool(tool, base)
    doc = read_document(path)
    shipped = path == builtin_path(tool) and isinstance(doc, dict)  # the package's tests validate them
    problems = [] if shipped else errors(validate(doc))
    if not problems and isinstance(doc, dict):
        problems = run_problems(doc)
    if problems:
        listing = "; ".join(str(p) for p in problems[:10])
        more = f" (+{len(problems) - 10} more)" if len(problems) > 10 else ""
        raise UsageError(f"{path}: invalid tool descriptor: {listing}{more}")
    assert isinstance(doc, dict)
    return Descriptor(doc, str(path))
