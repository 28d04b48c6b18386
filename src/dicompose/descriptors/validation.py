"""Validating Boutiques descriptors as ``bosh validate`` does (the vendored schema 0.5 and the reference
validator's checks), then dicompose's own checks beyond it as warnings: what is legal Boutiques but would not
run here as written, or is suspicious. Every problem carries a JSON path (``$.inputs[2].value-key``) so a tool
author can find it; dicompose's extensions live under ``custom["dicompose"]`` (:data:`CUSTOM_KEYS`).
"""

from __future__ import annotations

import copy
import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

CUSTOM_KEYS = {
    "network": bool,  # needs a network (default: none)
    "gpu": bool,  # needs a GPU
    "partial-exit-codes": list,  # exit codes meaning "some inputs failed, the outputs written are valid"
    "batch-input": str,  # the list File input that `dicompose run --in` feeds
    "pack": dict,  # {"manifest-flag": "--manifest"}: takes many tasks per launch (tools/manifest.py)
    "deidentifies": bool,  # its outputs hold no identifier of its inputs, and are named without them
    "site-key": str,  # the File input that takes the site's key ($DICOMPOSE_HOME) when none is given
    "constraints": list,  # relations between Number inputs, "min <= max": checked before anything runs
}
#: A constraint: ``ID OP ID`` or ``ID OP NUMBER`` (Boutiques states bounds per input, not between inputs).
CONSTRAINT = re.compile(r"^\s*([\w.-]+)\s*(<=|>=|<|>|==|!=)\s*([\w.+-]+)\s*$")


@dataclass(frozen=True)
class Problem:
    """One validation problem: where (JSON path, ``$`` when the reference validator does not say) and what.

    An ``error`` makes the descriptor invalid, as Boutiques' reference validator (``bosh validate``) judges;
    a ``warning`` is one of dicompose's checks beyond it (an error under ``--strict``).
    """

    path: str
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@cache
def _schema_validator() -> Any:
    from jsonschema import Draft4Validator  # ~0.1 s to import: only when a descriptor needs the schema check

    text = (files("dicompose.descriptors") / "schema" / "boutiques-descriptor.schema.json").read_text()
    return Draft4Validator(json.loads(text))


def _json_path(parts: Iterable[object]) -> str:
    path = "$"
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def schema_problems(doc: object) -> list[Problem]:
    errors = sorted(_schema_validator().iter_errors(doc), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    problems = [Problem(_json_path(e.absolute_path), _short(e.message)) for e in errors]
    return list(dict.fromkeys(problems))  # one line once (the schema can reach one error by two routes)


def semantic_problems(doc: dict[str, Any]) -> list[Problem]:
    """dicompose's checks beyond the reference validator's (warnings): what is legal Boutiques but would not
    run here as written, or is suspicious."""
    return [replace(problem, severity="warning") for problem in _semantic(doc)]


def _semantic(doc: dict[str, Any]) -> Iterator[Problem]:
    inputs = [i for i in doc.get("inputs", []) if isinstance(i, dict)]
    outputs = [o for o in doc.get("output-files", []) if isinstance(o, dict)]
    groups = [g for g in doc.get("groups", []) if isinstance(g, dict)]
    ids = Counter(str(x.get("id")) for x in [*inputs, *outputs, *groups])
    input_ids = {str(i.get("id")) for i in inputs}
    for kind, items in (("inputs", inputs), ("output-files", outputs), ("groups", groups)):
        for index, item in enumerate(items):
            if ids[str(item.get("id"))] > 1:
                yield Problem(f"$.{kind}[{index}].id", f"id {item.get('id')!r} is not unique")
    keys = Counter(str(x.get("value-key")) for x in inputs if x.get("value-key"))
    for index, item in enumerate(inputs):
        key = item.get("value-key")
        if key and keys[str(key)] > 1 and not _exclusive(groups, str(key), inputs):
            yield Problem(f"$.inputs[{index}].value-key", f"value-key {key} is used by more than one input")
    group_ids = {str(g.get("id")) for g in groups}
    for index, spec in enumerate(inputs):
        yield from _input_problems(spec, f"$.inputs[{index}]", input_ids, group_ids)
    from dicompose.descriptors.conditions import condition_problem

    known = frozenset(str(x.get("id")) for x in [*inputs, *outputs])
    for index, spec in enumerate(outputs):
        template = str(spec.get("path-template", ""))
        if template.startswith("/") or ".." in Path(template).parts:
            yield Problem(f"$.output-files[{index}].path-template", "must be a relative path inside the output folder")
        for number, entry in enumerate(spec.get("conditional-path-template") or []):
            for condition in entry if isinstance(entry, dict) else {}:
                if (problem := condition_problem(str(condition), known)) is not None:
                    where = f"$.output-files[{index}].conditional-path-template[{number}]"
                    yield Problem(where, f"condition {condition!r} is never true: {problem}")
    for index, group in enumerate(groups):
        for member in group.get("members", []):
            if member not in input_ids:
                yield Problem(f"$.groups[{index}].members", f"{member!r} is not an input id")
        if group.get("mutually-exclusive"):
            for member in group.get("members", []):
                spec = next((i for i in inputs if i.get("id") == member), {})
                if not spec.get("optional", False):
                    yield Problem(f"$.groups[{index}]", f"mutually exclusive member {member!r} must be optional")
    numbers = {str(i.get("id")) for i in inputs if i.get("type") == "Number"}
    files = {str(i.get("id")) for i in inputs if i.get("type") == "File"}
    yield from _custom_problems(doc.get("custom", {}).get("dicompose", {}), input_ids, numbers, files)


def out_of_bounds(spec: dict[str, Any], number: float) -> str | None:
    """How ``number`` breaks a Number input's bounds ("below the minimum 0"), or None: the one rule for
    values given and defaults declared."""
    low, high = spec.get("minimum"), spec.get("maximum")
    if low is not None and (number < low or (spec.get("exclusive-minimum") and number == low)):
        return f"below the minimum {low}"
    if high is not None and (number > high or (spec.get("exclusive-maximum") and number == high)):
        return f"above the maximum {high}"
    return None


def _exclusive(groups: list[dict[str, Any]], key: str, inputs: list[dict[str, Any]]) -> bool:
    """Inputs sharing ``key`` are alternatives (a mutually exclusive group holds them all)."""
    sharing = {str(i.get("id")) for i in inputs if i.get("value-key") == key}
    return any(g.get("mutually-exclusive") and sharing <= set(g.get("members", [])) for g in groups)


def _input_problems(
    spec: dict[str, Any],
    where: str,
    input_ids: set[str],
    group_ids: set[str],
) -> Iterator[Problem]:
    kind = spec.get("type")
    if kind == "Flag":
        if not spec.get("command-line-flag"):
            yield Problem(where, "a Flag input needs a command-line-flag")
        if spec.get("list"):
            yield Problem(f"{where}.list", "a Flag cannot be a list")
    if kind == "Number":
        low, high = spec.get("minimum"), spec.get("maximum")
        if low is not None and high is not None and low > high:
            yield Problem(where, f"minimum {low} is greater than maximum {high}")
        if (
            low is not None
            and high is not None
            and low == high
            and (spec.get("exclusive-minimum") or spec.get("exclusive-maximum"))
        ):
            yield Problem(where, f"no value can satisfy the bounds ({low} excluded)")
        default = spec.get("default-value")
        if isinstance(default, int | float) and not isinstance(default, bool) and out_of_bounds(spec, default):
            yield Problem(f"{where}.default-value", f"{default} is outside the input's bounds")
    if spec.get("list"):
        low, high = spec.get("min-list-entries"), spec.get("max-list-entries")
        if low is not None and high is not None and low > high:
            yield Problem(where, f"min-list-entries {low} is greater than max-list-entries {high}")
    choices = spec.get("value-choices")
    default = spec.get("default-value")
    if choices is not None and default is not None and default not in choices:
        yield Problem(f"{where}.default-value", f"{default!r} is not one of value-choices")
    for relation in ("requires-inputs", "disables-inputs"):
        for other in spec.get(relation, []):
            if other not in input_ids | group_ids:
                yield Problem(f"{where}.{relation}", f"{other!r} is not an input or group id")
            if other == spec.get("id"):
                yield Problem(f"{where}.{relation}", "an input cannot refer to itself")
    both = set(spec.get("requires-inputs", [])) & set(spec.get("disables-inputs", []))
    if both:
        yield Problem(where, f"inputs both required and disabled: {sorted(both)}")


def _custom_problems(
    custom: object,
    input_ids: set[str],
    numbers: set[str],
    files: set[str],
) -> Iterator[Problem]:
    if not isinstance(custom, dict):
        yield Problem("$.custom.dicompose", "must be an object")
        return
    for key, value in custom.items():
        expected = CUSTOM_KEYS.get(key)
        if expected is None:
            yield Problem(f"$.custom.dicompose.{key}", f"unknown dicompose extension (known: {sorted(CUSTOM_KEYS)})")
        elif not isinstance(value, expected):
            yield Problem(f"$.custom.dicompose.{key}", f"must be a {expected.__name__}")
    for key in ("batch-input", "site-key"):
        named = custom.get(key)
        if isinstance(named, str) and named not in input_ids:
            yield Problem(f"$.custom.dicompose.{key}", f"{named!r} is not an input id")
        elif isinstance(named, str) and named not in files:
            yield Problem(f"$.custom.dicompose.{key}", f"{named!r} is not a File input")
    codes = custom.get("partial-exit-codes")
    if isinstance(codes, list) and not all(isinstance(c, int) and not isinstance(c, bool) for c in codes):
        yield Problem("$.custom.dicompose.partial-exit-codes", "must be a list of integer exit codes")
    constraints = custom.get("constraints")
    for index, text in enumerate(constraints if isinstance(constraints, list) else []):
        where = f"$.custom.dicompose.constraints[{index}]"
        match = CONSTRAINT.match(text) if isinstance(text, str) else None
        if match is None:
            yield Problem(where, f"{text!r}: expected 'ID OP ID' or 'ID OP NUMBER' with OP one of <= >= < > == !=")
            continue
        for side in (match.group(1), match.group(3)):
            if not _is_number(side) and side not in numbers:
                yield Problem(where, f"{side!r} is not a Number input")
        if match.group(1) == match.group(3):
            yield Problem(where, f"{text!r} compares an input with itself")
    pack = custom.get("pack")
    if isinstance(pack, dict) and not (isinstance(pack.get("manifest-flag"), str) and pack["manifest-flag"]):
        yield Problem("$.custom.dicompose.pack.manifest-flag", "must name the tool's manifest option, e.g. --manifest")


def reference_problems(doc: object) -> list[Problem]:
    """What Boutiques' reference validator (the ``boutiques`` package, ``bosh validate``) says of ``doc``: its
    verdict is the verdict. Schema errors are given with our JSON paths where our copy of the schema finds
    them; the reference's other findings come one per line, as it words them."""
    from boutiques.validator import DescriptorValidationError, validate_descriptor  # ~0.1 s: only when asked

    try:
        validate_descriptor(copy.deepcopy(doc))  # it fills in defaults as it goes
    except DescriptorValidationError as exc:
        text = str(exc).removeprefix("[ ERROR ] ")
        located = schema_problems(doc)
        if located and text.count("\n") > 0 and "Failed validating" in text:  # a jsonschema error
            return located
        lines = [" ".join(line.split()) for line in text.splitlines() if line.strip()]
        if "Failed validating" in text:
            lines = lines[:1]
        return [Problem(_locate(line, doc), _short(line)) for line in lines]
    except Exception as exc:  # the reference itself fails on this document: bosh validate would not pass it
        name = type(exc).__name__
        return [Problem("$", _short(f"Boutiques' validator fails on this descriptor ({name}: {exc})"))]
    return []


def _locate(message: str, doc: object) -> str:
    """The JSON path of what a reference message names first ("IdError: \"min\" is non-unique"): the first
    input, output or group with that id (or value-key); ``$`` when nothing matches."""
    named = re.search(r'"([^"]+)"', message)
    if named is None or not isinstance(doc, dict):
        return "$"
    for kind in ("inputs", "output-files", "groups"):
        items = doc.get(kind)
        for index, item in enumerate(items if isinstance(items, list) else []):
            if isinstance(item, dict) and item.get("id") == named.group(1):
                return f"$.{kind}[{index}]"
    for kind in ("inputs", "output-files"):
        items = doc.get(kind)
        for index, item in enumerate(items if isinstance(items, list) else []):
            if isinstance(item, dict) and item.get("value-key") == named.group(1):
                return f"$.{kind}[{index}].value-key"
    return "$"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def validate(doc: object, *, strict: bool = False) -> list[Problem]:
    """Every problem of a descriptor document: the reference validator's errors, then dicompose's own checks
    as warnings (errors with ``strict``) on a document the reference accepts."""
    problems = reference_problems(doc)
    if problems or not isinstance(doc, dict):
        return problems
    ours = semantic_problems(doc)
    return [replace(p, severity="error") for p in ours] if strict else ours


def errors(problems: Iterable[Problem]) -> list[Problem]:
    return [p for p in problems if p.severity == "error"]


def run_problems(doc: dict[str, Any]) -> list[Problem]:
    """What stops dicompose from running a descriptor the reference accepts: its own extensions, malformed."""
    return [replace(p, severity="error") for p in semantic_problems(doc) if p.path.startswith("$.custom.dicompose")]


def _short(message: str) -> str:
    message = re.sub(r"\s+", " ", message)
    return message if len(message) <= 200 else message[:197] + "..."
