"""Invocations: validate input values against a descriptor, then build an argv list. Never a shell string.

The command-line template is tokenised once (POSIX rules). A token that is exactly a value-key expands to
zero or more argv elements (flag, value, list items); a token that embeds a value-key gets the value spliced
in as text. Either way a value stays one argv element whatever characters it holds: there is no shell to
interpret ``;``, ``$()`` or quotes. A template that itself uses shell syntax (``>``, ``&&``, quotes) runs as
``sh -c SCRIPT sh VALUE...`` (:mod:`dicompose.descriptors.shell`): values are positional parameters, never script.
Output value-keys stand for their resolved path templates, as in Boutiques.
"""

from __future__ import annotations

import glob
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from dicompose.descriptors.conditions import condition_holds
from dicompose.descriptors.shell import needs_shell, shell_argv
from dicompose.descriptors.values import Value, check_constraints, check_relations, take_value
from dicompose.errors import UsageError

if TYPE_CHECKING:
    from dicompose.descriptors.descriptor import Descriptor

PathMap = Callable[[Path], str]


@dataclass(frozen=True)
class Invocation:
    """Validated values by input id (defaults applied; absent optional inputs are missing)."""

    values: Mapping[str, Value]


def with_batch(descriptor: Descriptor, input_id: str, params: Mapping[str, Any], files: list[str]) -> dict[str, Any]:
    """``params`` and the value a task's files give its batch input: the list, or the one file of an input that
    takes one (a task of such a tool carries exactly one file); ``params`` alone for a tool run without ``--in``
    (``input_id`` empty: its File inputs come with ``-p`` or ``--invocation``)."""
    if not input_id:
        return dict(params)
    spec = next((s for s in descriptor.inputs if s["id"] == input_id), {})
    return {**params, input_id: list(files) if spec.get("list") or len(files) != 1 else files[0]}


def build_invocation(descriptor: Descriptor, raw: Mapping[str, object]) -> Invocation:
    """Validate raw values (from -p, an invocation file, or a pipeline) into an :class:`Invocation`."""
    known = {spec["id"]: spec for spec in descriptor.inputs}
    unknown = sorted(set(raw) - set(known))
    values: dict[str, Value] = {}
    problems: list[str] = []  # every input's problem, not only the first (check says them all at once)
    if unknown:
        problems.append(f"{descriptor.name}: unknown input(s) {', '.join(unknown)} (known: {', '.join(known)})")
    for input_id, spec in known.items():
        try:
            take_value(descriptor, input_id, spec, raw, values)
        except UsageError as exc:
            problems.append(str(exc))
    for check in (check_relations, check_constraints):  # on the values that passed
        try:
            check(descriptor, values)
        except UsageError as exc:
            problems.append(str(exc))
    if problems:
        raise UsageError("; ".join(problems))
    return Invocation(values)


def _format(value: Value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _expand(spec: dict[str, Any], value: Value, path_map: PathMap) -> list[str]:
    """The argv elements one input contributes when its value-key stands alone as a token."""
    if spec["type"] == "Flag":
        return [spec["command-line-flag"]] if value else []
    items = value if isinstance(value, list) else [value]
    texts = [path_map(Path(str(v))) if spec["type"] == "File" else _format(v) for v in items]
    if spec.get("list") and spec.get("list-separator") is not None:
        texts = [str(spec["list-separator"]).join(texts)]
    flag = spec.get("command-line-flag")
    if not flag:
        return texts
    separator = spec.get("command-line-flag-separator", " ")
    if separator == " ":
        return [flag, *texts]
    return [f"{flag}{separator}{texts[0]}", *texts[1:]]


def build_argv(
    descriptor: Descriptor,
    invocation: Invocation,
    path_map: PathMap = str,
    substitute: Mapping[str, list[str]] | None = None,
) -> list[str]:
    """The argv list for this invocation; ``path_map`` turns host paths into the paths the step sees.

    ``substitute`` replaces the argv elements of an input (by id) whose value-key stands alone as a token:
    a packed launch gives its batch input as ``--manifest PATH`` instead of the files.
    """
    substitute = substitute or {}
    by_key = {spec["value-key"]: spec for spec in descriptor.inputs if spec.get("value-key")}
    outputs = _output_values(descriptor, invocation)
    if needs_shell(descriptor.command_line, [*by_key, *outputs]):
        expansions: dict[str, list[str]] = dict(outputs)
        for key, spec in by_key.items():
            if spec["id"] in substitute:
                expansions[key] = list(substitute[spec["id"]])
            elif spec["id"] in invocation.values:
                expansions[key] = _expand(spec, invocation.values[spec["id"]], path_map)
            else:
                expansions[key] = []
        return shell_argv(descriptor.command_line, expansions)
    replace = _replacer(descriptor, invocation, path_map, outputs)
    try:
        tokens = shlex.split(descriptor.command_line)
    except ValueError as exc:
        raise UsageError(f"{descriptor.source}: command-line cannot be tokenised ({exc})") from None
    argv: list[str] = []
    for token in tokens:
        if token in by_key:
            spec = by_key[token]
            if spec["id"] in substitute:
                argv.extend(substitute[spec["id"]])
            elif spec["id"] in invocation.values:
                argv.extend(_expand(spec, invocation.values[spec["id"]], path_map))
            continue
        if token in outputs:
            argv.extend(outputs[token])
            continue
        argv.append(replace(token))
    return argv


def _replacer(
    descriptor: Descriptor,
    invocation: Invocation,
    path_map: PathMap,
    outputs: Mapping[str, list[str]] | None = None,
) -> Callable[[str], str]:
    """A function that replaces every value-key in a text, in one pass (a value holding another key's text
    stays as it is), longest key first where keys overlap."""
    table = {
        key: " ".join(elements)
        for key, elements in (_output_values(descriptor, invocation) if outputs is None else outputs).items()
    }
    for spec in descriptor.inputs:
        if spec.get("value-key"):
            value = invocation.values.get(spec["id"])
            table[spec["value-key"]] = " ".join(_expand(spec, value, path_map)) if value is not None else ""
    if not table:
        return lambda text: text
    pattern = re.compile("|".join(re.escape(key) for key in sorted(table, key=len, reverse=True)))
    return lambda text: pattern.sub(lambda match: table[match.group(0)], text)


def environment_of(descriptor: Descriptor, invocation: Invocation, path_map: PathMap = str) -> dict[str, str]:
    """The descriptor's ``environment-variables``, their value-keys resolved."""
    replace = _replacer(descriptor, invocation, path_map)
    return {
        str(item["name"]): replace(str(item.get("value", "")))
        for item in descriptor.doc.get("environment-variables", [])
    }


def _output_values(descriptor: Descriptor, invocation: Invocation) -> dict[str, list[str]]:
    """What an output's value-key stands for on the command line: its resolved path template, relative to
    the step's working folder (its output folder), as Boutiques puts it there."""
    keyed = {spec["id"]: spec for spec in descriptor.outputs if spec.get("value-key")}
    if not keyed:
        return {}
    values: dict[str, list[str]] = {}
    for pattern in output_patterns(descriptor, invocation):
        spec = keyed.get(pattern.id)
        if spec is None:
            continue
        flag, separator = spec.get("command-line-flag"), spec.get("command-line-flag-separator", " ")
        if not flag:
            values[spec["value-key"]] = [pattern.pattern]
        elif separator == " ":
            values[spec["value-key"]] = [flag, pattern.pattern]  # "-c ./config.txt", as bosh writes it
        else:
            values[spec["value-key"]] = [f"{flag}{separator}{pattern.pattern}"]
    return values


@dataclass(frozen=True)
class OutputPattern:
    """An output's path template resolved to a pattern relative to the task's output folder."""

    id: str
    pattern: str
    optional: bool
    is_list: bool


def output_patterns(descriptor: Descriptor, invocation: Invocation) -> list[OutputPattern]:
    """Resolve output path templates (value-keys replaced by input values, extensions stripped)."""
    by_key = {spec["value-key"]: spec for spec in descriptor.inputs if spec.get("value-key")}
    ids = frozenset(str(item["id"]) for item in descriptor.inputs)
    patterns = []
    for spec in descriptor.outputs:
        template = _template_of(spec, invocation, ids)
        if template is None:
            continue  # a conditional output none of whose conditions holds: not produced
        for key, input_spec in sorted(by_key.items(), key=lambda item: -len(item[0])):
            if key not in template:
                continue
            value = invocation.values.get(input_spec["id"])
            if value is None:
                continue  # an absent optional input leaves its key, as Boutiques does
            text = PurePosixPath(str(value)).name if input_spec["type"] == "File" else _format(value)
            for extension in spec.get("path-template-stripped-extensions", []):
                if text.endswith(extension):
                    text = text[: -len(extension)]
            template = template.replace(key, glob.escape(text) if spec.get("list") else text)
        pattern = PurePosixPath(template)
        if pattern.is_absolute() or ".." in pattern.parts:
            raise UsageError(f"output {spec['id']!r}: path {template!r} leaves the output folder")
        patterns.append(OutputPattern(spec["id"], str(pattern), bool(spec.get("optional")), bool(spec.get("list"))))
    return patterns


def _template_of(spec: dict[str, Any], invocation: Invocation, ids: frozenset[str] = frozenset()) -> str | None:
    """An output's path template: ``path-template``, or the first ``conditional-path-template`` entry, in
    order, that is ``default`` or whose condition holds for the invocation's values (as ``bosh`` picks it);
    None when none does. ``ids``: every input and output id (a condition naming one without a value is false)."""
    if "path-template" in spec:
        return str(spec["path-template"])
    for entry in spec.get("conditional-path-template", []):
        ((condition, template),) = entry.items()
        if condition.strip() == "default" or condition_holds(condition, invocation.values, ids):
            return str(template)
    return None


def collect_outputs(out_dir: Path, patterns: list[OutputPattern]) -> tuple[dict[str, list[Path]], list[str]]:
    """Files each output matched inside ``out_dir`` and the problems (missing required, escaping symlinks)."""
    root = out_dir.resolve()
    found: dict[str, list[Path]] = {}
    problems: list[str] = []
    for pattern in patterns:
        if pattern.is_list:  # a list output's template may hold wildcards (the values in it are escaped)
            matches = sorted(p for p in out_dir.glob(pattern.pattern) if not p.name.startswith("."))
        else:  # one file, at exactly the path its template gives
            single = out_dir / pattern.pattern
            matches = [single] if single.is_symlink() or single.exists() else []
        safe = []
        for match in matches:
            if match.is_symlink() or not match.resolve().is_relative_to(root):
                problems.append(f"output {pattern.id!r}: {match.name} points outside the output folder; refused")
            elif match.is_file():
                safe.append(match)
        if not safe and not pattern.optional:
            problems.append(f"required output {pattern.id!r} ({pattern.pattern}) was not produced")
        found[pattern.id] = safe
    return found, problems


def file_parameters(descriptor: Descriptor, values: Mapping[str, Value], exclude: str = "") -> list[str]:
    """Host paths given to File inputs other than ``exclude`` (they must be mounted, read-only, too)."""
    paths: list[str] = []
    for spec in descriptor.inputs:
        if spec["type"] != "File" or spec["id"] == exclude or spec["id"] not in values:
            continue
        value = values[spec["id"]]
        paths.extend(str(Path(str(v)).absolute()) for v in (value if isinstance(value, list) else [value]))
    return paths
