"""Pipeline files: YAML → a validated model, every problem reported with its line and field.

A radiology researcher writes::

    version: 1
    name: ct-prep
    inputs:
      scans: dicom                 # given as --in scans=PATH (or --in PATH if there is one input)
    steps:
      normalize:
        tool: normalize            # built-in name, or a Boutiques descriptor path relative to this file
        with: {input: inputs.scans, min: 0, max: 100}
        retries: 1                 # optional: attempts after a failure (with backoff)
        timeout: 10m               # optional: per task (s, m, h)
        pack: 50                   # optional: at most 50 tasks per launch (default: chosen from the work)
        resources: {memory: 2g, cpus: 1}   # gpus: 1 for a step that needs a GPU
      mask:
        tool: threshold
        with: {input: steps.normalize.output, level: 50}
    outputs:
      normalized: steps.normalize.output
      masks: steps.mask.output
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from dicompose.errors import UsageError

InputKind = Literal["dicom", "file"]  # dicom: files or folders of scans; file: one file (a key, a table)
_REFERENCE = re.compile(r"^(inputs\.(?P<input>[A-Za-z_][\w-]*)|steps\.(?P<step>[A-Za-z_][\w-]*)\.(?P<output>[\w-]+))$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h)?\s*$")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)


class Resources(BaseModel):
    model_config = ConfigDict(extra="forbid")
    memory: str | None = None
    cpus: float | None = Field(default=None, gt=0)
    gpus: int | None = Field(default=None, ge=0)  # per launch; a descriptor's custom gpu flag means 1

    @field_validator("memory")
    @classmethod
    def _memory(cls, value: str | None) -> str | None:
        if value is not None and _SIZE.match(str(value)) is None:
            raise ValueError("must be a size like 512m or 2g")
        return value

    def memory_bytes(self) -> int | None:
        if self.memory is None:
            return None
        match = _SIZE.match(str(self.memory))
        assert match is not None
        return int(float(match.group(1)) * 1024 ** "_kmgt".index((match.group(2) or "_").lower()))


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    tool: str
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")
    retries: int = Field(default=0, ge=0, le=10)
    timeout: str | float | None = None  # per task (a launch carrying N tasks on P processes gets ⌈N/P⌉×)
    resources: Resources = Field(default_factory=Resources)
    pack: int | None = Field(default=None, ge=1)  # at most this many tasks per launch (default: chosen)

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, value: str | float | None) -> str | float | None:
        if value is not None and _DURATION.match(str(value)) is None:
            raise ValueError("must be a duration like 90, 90s, 10m or 2h")
        return value

    def timeout_seconds(self) -> float | None:
        if self.timeout is None:
            return None
        match = _DURATION.match(str(self.timeout))
        assert match is not None
        return float(match.group(1)) * {"s": 1, "m": 60, "h": 3600}[match.group(2) or "s"]


class PipelineSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: Literal[1]
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    inputs: dict[str, InputKind] = Field(min_length=1)
    steps: dict[str, Step] = Field(min_length=1)
    outputs: dict[str, str] = Field(default_factory=dict)


class _LineLoader(yaml.SafeLoader):
    """A safe loader that remembers the line of every mapping key (for error messages), and every duplicate
    key (a problem: YAML would silently keep the last value), so the rest of the file is still checked."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[str] = []


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    mapping: dict[Any, Any] = {}
    lines: dict[Any, int] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in mapping:
            loader.duplicates.append(f"line {key_node.start_mark.line + 1}: duplicate key {key!r}")
        mapping[key] = loader.construct_object(value_node, deep=True)
        lines[key] = key_node.start_mark.line + 1
    mapping["__lines__"] = lines
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _strip_lines(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_lines(v) for k, v in value.items() if k != "__lines__"}
    if isinstance(value, list):
        return [_strip_lines(v) for v in value]
    return value


def _line_of(document: Any, location: tuple[int | str, ...]) -> int | None:
    line = None
    node = document
    for part in location:
        if isinstance(node, dict):
            key = "with" if part == "with_" else part
            line = node.get("__lines__", {}).get(key, line)
            node = node.get(key)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            break
    return line


def parse_reference(text: object) -> tuple[str, str, str] | None:
    """('input', name, '') or ('step', step, output) for a reference string, else None (a literal)."""
    if not isinstance(text, str):
        return None
    match = _REFERENCE.match(text.strip())
    if match is None:
        return None
    if match.group("input"):
        return ("input", match.group("input"), "")
    return ("step", match.group("step"), match.group("output"))


def load_pipeline(path: Path) -> tuple[PipelineSpec, dict[str, Any]]:
    """(model, raw document with line info); any problem is a UsageError naming file, line and field."""
    spec, document, problems = load_pipeline_leniently(path)
    if problems or spec is None:
        raise UsageError(f"{path}: " + "; ".join(problems))
    return spec, document


def load_pipeline_leniently(path: Path) -> tuple[PipelineSpec | None, dict[str, Any], list[str]]:
    """(model of what is valid, raw document with line info, every problem of the model): see
    :func:`validate_leniently`. A file that cannot be read or parsed is a UsageError."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{path}: pipeline file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read pipeline file ({exc})") from None
    loader = _LineLoader(text)
    try:
        document = loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise UsageError(f"{path}: {where}not valid YAML ({getattr(exc, 'problem', exc)})") from None
    except UsageError as exc:
        raise UsageError(f"{path}: {exc}") from None
    finally:
        loader.dispose()
    if not isinstance(document, dict):
        raise UsageError(f"{path}: a pipeline is a YAML mapping (version, name, inputs, steps, outputs)")
    spec, problems = validate_leniently(document)
    return spec, document, [*loader.duplicates, *problems]


def validate_leniently(document: dict[str, Any]) -> tuple[PipelineSpec | None, list[str]]:
    """The model of ``document`` and every problem in it, each with its line. A field that fails is reported
    and left out, and the rest validated again (a few rounds), so that the checks that need a model (tools,
    references, parameters) still run: one ``check`` says everything, not one problem class at a time."""
    raw = _strip_lines(document)
    problems: list[str] = []
    dropped: set[tuple[Any, ...]] = set()
    for _round in range(8):
        try:
            return PipelineSpec.model_validate(raw), problems
        except ValidationError as exc:
            removed = False
            for error in exc.errors():
                location = tuple(error["loc"])
                if error["type"] == "missing" and location in dropped:
                    continue  # a required field whose value was wrong (said already), not a missing one
                dropped.add(location)
                field = ".".join("with" if p == "with_" else str(p) for p in location) or "(top level)"
                line = _line_of(document, location)
                problems.append(f"{'line ' + str(line) + ', ' if line else ''}{field}: {_plain(error)}")
                if location == ("version",):  # say it once, and check the rest as the only version there is
                    raw["version"], removed = 1, True
                    continue
                removed = _drop(raw, location) or removed
            if not removed:
                return None, problems
    return None, problems


def _plain(error: Any) -> str:
    """pydantic's message in the words of a pipeline file's reader."""
    kind, message = error.get("type", ""), str(error.get("msg", ""))
    if kind == "extra_forbidden":
        return "unknown field (a typo? see docs/pipelines.md for the fields a pipeline has)"
    if kind == "missing":
        return "required, but missing"
    if error.get("loc") == ("version",):
        return f"must be 1 (the only version of the pipeline format), not {error.get('input')!r}"
    return message.removeprefix("Value error, ").replace("Input should be", "must be")


def _drop(document: Any, location: tuple[Any, ...]) -> bool:
    """Remove the value at ``location`` (pydantic's error path, "with_" spelt as the YAML's "with")."""
    keys = ["with" if key == "with_" else key for key in location]
    node = document
    for key in keys[:-1]:
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    if isinstance(node, dict) and keys and keys[-1] in node:
        del node[keys[-1]]
        return True
    return False
