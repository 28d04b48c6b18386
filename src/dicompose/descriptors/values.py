"""Checking the values given for a descriptor's inputs, as Boutiques does: types (Flag, Number, String,
File; integers, finite numbers), bounds, list lengths, required and mutually exclusive inputs, requires and
disables-inputs; then dicompose's constraints between Number inputs (``custom.dicompose.constraints``)."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from dicompose.errors import UsageError

if TYPE_CHECKING:
    from dicompose.descriptors.descriptor import Descriptor

Value = str | float | int | bool | list[Any]


def _coerce_one(spec: dict[str, Any], raw: object) -> Value:
    kind = spec["type"]
    name = spec["id"]
    if kind == "Flag":
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("true", "1", "yes"):
            return True
        if text in ("false", "0", "no"):
            return False
        raise UsageError(f"input {name!r}: {raw!r} is not true/false")
    if kind == "Number":
        if isinstance(raw, bool):
            raise UsageError(f"input {name!r}: {raw!r} is not a number")
        try:
            number = raw if isinstance(raw, int | float) else float(str(raw))
        except (TypeError, ValueError):
            raise UsageError(f"input {name!r}: {raw!r} is not a number") from None
        if not math.isfinite(float(number)):
            raise UsageError(f"input {name!r}: {raw!r} is not a finite number")
        if spec.get("integer"):
            if not float(number).is_integer():
                raise UsageError(f"input {name!r}: {raw!r} is not an integer")
            number = int(number)
        _check_bounds(spec, float(number))
        return number
    text = str(raw)
    if "\x00" in text:
        raise UsageError(f"input {name!r}: NUL characters are not allowed")
    return text


def _check_bounds(spec: dict[str, Any], number: float) -> None:
    from dicompose.descriptors.validation import out_of_bounds

    if (problem := out_of_bounds(spec, number)) is not None:
        raise UsageError(f"input {spec['id']!r}: {number:g} is {problem}")


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
    "==": operator.eq,
    "!=": operator.ne,
}


def check_constraints(descriptor: Descriptor, values: Mapping[str, Value]) -> None:
    """The descriptor's relations between Number inputs (``custom.dicompose.constraints``), where both sides
    have a value: a run refuses what the tool would refuse on every task."""
    from dicompose.descriptors.validation import CONSTRAINT

    for text in descriptor.custom.get("constraints") or []:
        match = CONSTRAINT.match(str(text))
        if match is None:
            continue  # reported by the descriptor's validation
        left, op, right = match.groups()
        sides = [_side(side, values) for side in (left, right)]
        if sides[0] is None or sides[1] is None:
            continue
        if not _COMPARE[op](sides[0], sides[1]):
            raise UsageError(
                f"{descriptor.name}: {left} ({sides[0]:g}) must be {op} {right}"
                + (f" ({sides[1]:g})" if right in values else "")
                + f" (constraint {text!r})"
            )


def _side(text: str, values: Mapping[str, Value]) -> float | None:
    if text in values:
        value = values[text]
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
    try:
        return float(text)
    except ValueError:
        return None


def take_value(
    descriptor: Descriptor, input_id: str, spec: dict[str, Any], raw: Mapping[str, object], values: dict[str, Value]
) -> None:
    """Put input ``input_id``'s checked value (given, or its default) into ``values``."""
    if input_id in raw:
        item = raw[input_id]
        if spec.get("list"):
            items = item if isinstance(item, list) else [item]
            coerced = [_coerce_one(spec, x) for x in items]
            _check_list(spec, coerced)
            values[input_id] = coerced
        else:
            if isinstance(item, list):
                raise UsageError(f"input {input_id!r} takes one value, not a list")
            values[input_id] = _coerce_one(spec, item)
    elif "default-value" in spec:
        values[input_id] = spec["default-value"]
        if spec["type"] == "Number" and not spec.get("list"):
            try:
                _check_bounds(spec, float(values[input_id]))  # type: ignore[arg-type]
            except (UsageError, TypeError, ValueError):
                raise UsageError(
                    f"{descriptor.name}: input {input_id!r} has no valid value: its default "
                    f"{spec['default-value']!r} is outside its bounds; give one with -p {input_id}=VALUE"
                ) from None
    elif not spec.get("optional", False):
        raise UsageError(f"{descriptor.name}: required input {input_id!r} is missing")
    choices = spec.get("value-choices")
    if choices is not None and input_id in values:
        chosen = values[input_id] if isinstance(values[input_id], list) else [values[input_id]]
        for choice in chosen:  # type: ignore[union-attr]
            if choice not in choices:
                raise UsageError(f"input {input_id!r}: {choice!r} is not one of {choices}")


def _check_list(spec: dict[str, Any], items: list[Any]) -> None:
    low, high = spec.get("min-list-entries"), spec.get("max-list-entries")
    if low is not None and len(items) < low:
        raise UsageError(f"input {spec['id']!r}: needs at least {low} entries, got {len(items)}")
    if high is not None and len(items) > high:
        raise UsageError(f"input {spec['id']!r}: takes at most {high} entries, got {len(items)}")


def _given(values: Mapping[str, Value], input_id: str) -> bool:
    value = values.get(input_id)
    return value is not None and value is not False


def check_relations(descriptor: Descriptor, values: Mapping[str, Value]) -> None:
    for spec in descriptor.inputs:
        if not _given(values, spec["id"]):
            continue
        for other in spec.get("requires-inputs", []):
            if not _given(values, other):
                raise UsageError(f"input {spec['id']!r} requires input {other!r}")
        for other in spec.get("disables-inputs", []):
            if _given(values, other):
                raise UsageError(f"input {spec['id']!r} cannot be used with input {other!r}")
    for group in descriptor.doc.get("groups", []):
        given = [m for m in group["members"] if _given(values, m)]
        if group.get("mutually-exclusive") and len(given) > 1:
            raise UsageError(f"inputs {', '.join(given)} are mutually exclusive (group {group['id']!r})")
        if group.get("one-is-required") and not given:
            raise UsageError(f"one of {', '.join(group['members'])} is required (group {group['id']!r})")
        if group.get("all-or-none") and 0 < len(given) < len(group["members"]):
            raise UsageError(f"inputs {', '.join(group['members'])} go together (group {group['id']!r})")
