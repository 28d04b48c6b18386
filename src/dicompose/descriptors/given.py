"""Values as users give them, before they are checked against a descriptor: ``-p ID=VALUE`` pairs and
invocation JSON files (their JSON types checked as ``bosh`` checks them)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dicompose.errors import UsageError

if TYPE_CHECKING:
    from dicompose.descriptors.descriptor import Descriptor


def parse_pairs(pairs: list[str], lists: frozenset[str] = frozenset()) -> dict[str, str | list[str]]:
    """``-p ID=VALUE`` options (repeatable). An id of a list input (``lists``) collects its values in order
    (``-p words=a -p words=b``); any other id given twice is an error, not a silent override."""
    result: dict[str, str | list[str]] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"-p {pair!r}: expected ID=VALUE")
        if key in lists:
            collected = result.setdefault(key, [])
            assert isinstance(collected, list)
            collected.append(value)
            continue
        if key in result:
            raise UsageError(f"-p {key}: given more than once")
        result[key] = value
    return result


def read_invocation_file(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8-sig"))  # a byte-order mark is no error (bosh reads it)
    except FileNotFoundError:
        raise UsageError(f"{path}: invocation file not found") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(doc, dict):
        raise UsageError(f"{path}: an invocation must be a JSON object of input id → value")
    return doc


_JSON_TYPES: dict[str, tuple[type, ...]] = {"String": (str,), "File": (str,), "Number": (int, float), "Flag": (bool,)}


def check_invocation_types(descriptor: Descriptor, doc: Mapping[str, object], source: Path) -> None:
    """An invocation JSON's values have the JSON types Boutiques' invocation schema gives each input (text for
    String and File, a number for Number, true/false for Flag, a list for a list input), as ``bosh`` checks:
    ``"n": "7"`` or ``"s": null`` is refused, never turned into text. ``-p`` values are text and are converted
    instead. Every problem is said at once."""
    problems = []
    for spec in descriptor.inputs:
        if spec["id"] not in doc:
            continue
        value, wanted = doc[spec["id"]], _JSON_TYPES.get(spec["type"], (str,))
        items = value if isinstance(value, list) else [value]
        if spec.get("list") and not isinstance(value, list):
            problems.append(f"input {spec['id']!r}: {_json(value)} is not a list")
        elif not spec.get("list") and isinstance(value, list):
            problems.append(f"input {spec['id']!r}: takes one value, not a list")
        else:
            for item in items:
                is_bool = isinstance(item, bool)
                if spec["type"] == "Number" and spec.get("integer") and isinstance(item, float):
                    problems.append(f"input {spec['id']!r}: {_json(item)} is not an integer (write it without .0)")
                    break
                if not isinstance(item, wanted) or (is_bool and spec["type"] != "Flag"):
                    kind = {"String": "text", "File": "a path (text)", "Number": "a number", "Flag": "true or false"}
                    problems.append(f"input {spec['id']!r}: {_json(item)} is not {kind.get(spec['type'], 'text')}")
                    break
    if problems:
        raise UsageError(f"{source}: " + "; ".join(problems))


def _json(value: object) -> str:
    return json.dumps(value)[:60]
