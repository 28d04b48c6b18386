"""Runs that de-identify describe their work without naming their inputs.

Folder and file names of patient data are identifiers too (``DOE_JOHN_MRN12345/...``). A run with a
de-identifying step (descriptor ``custom.dicompose.deidentifies``) therefore labels its tasks with keyed
pseudonyms of the input folders, publishes the de-identified outputs flat (their names come from
de-identified values), and its reports (``--json``, the RO-Crate) replace every path segment that names an
input -- a folder, a file, or a file's stem at the start of a derived name -- by a keyed pseudonym. The key is
the site's audit pseudonym key, so the same folder gets the same label in every run on this machine (domain
separated from the patient pseudonyms of the audit log, so the two cannot be matched).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

_SEGMENT = re.compile(r"(?<=/)[^/]+")
#: Where a name taken from an input may end inside a derived string: ``stem-normalized.dcm``, ``name: reason``.
_ENDS = frozenset("-.:,;)'\" \t]")


def folder_label(label: str, pseudonym: Callable[[str], str | None]) -> str:
    """A task label (``folder#series``) with the folder replaced by its keyed pseudonym."""
    where, sep, rest = label.partition("#")
    return f"{_short(pseudonym('folder:' + where))}{sep}{rest}"


def _short(value: str | None) -> str:
    return (value or "p-")[:14]


def run_redactor(
    run: dict[str, Any], attempts: list[dict[str, Any]], pseudonym: Callable[[str], str | None]
) -> Redactor | None:
    """For a recorded de-identifying run (``details.private``), the redactor of its records (``show``, ``logs``):
    the names it knows are the inputs its attempts read, below the input folders it was given."""
    details = run.get("details") or {}
    if not details.get("private"):
        return None
    names = [str(item.get("path") or item.get("name")) for a in attempts for item in a.get("inputs", [])]
    return Redactor(names, [str(v) for v in (details.get("inputs") or {}).values()], pseudonym)


def pseudonymous_path(path: str, base: str, pseudonym: Callable[[str], str | None]) -> str:
    """``path`` with every segment below ``base`` replaced by its keyed pseudonym (the file extension kept):
    for paths whose names no longer exist anywhere to be matched (outputs of a deleted input)."""
    prefix = base.rstrip("/") + "/"
    if not path.startswith(prefix):
        return path
    parts = path[len(prefix) :].split("/")
    leaf = parts[-1]
    extension = leaf[leaf.rfind(".") :] if "." in leaf else ""
    hidden = [_short(pseudonym("name:" + part)) for part in parts[:-1]] + [
        _short(pseudonym("name:" + leaf)) + extension
    ]
    return prefix + "/".join(hidden)


class Redactor:
    """Replaces the path segments that name inputs (below the input roots the user gave) in any string."""

    def __init__(self, names: Iterable[str], roots: Iterable[str], pseudonym: Callable[[str], str | None]) -> None:
        self._pseudonym = pseudonym
        self._known: dict[str, str] = {}
        bases = sorted({root.rstrip("/") + "/" for root in roots}, key=len, reverse=True)
        for name in names:
            base = next((b for b in bases if name.startswith(b)), None)
            if base is None:
                continue
            parts = name[len(base) :].split("/")
            for part in parts:
                self._add(part)
            leaf = parts[-1]
            self._add(leaf.split(".", 1)[0])  # the stem that derived names start with
            self._add(leaf.rsplit(".", 1)[0])
        self._longest = max((len(k) for k in self._known), default=0)

    def _add(self, segment: str) -> None:
        if segment and segment not in (".", "..") and segment not in self._known:
            self._known[segment] = _short(self._pseudonym("name:" + segment))

    def text(self, value: str) -> str:
        """``value`` with every segment after a ``/`` that names an input replaced; a string without ``/`` is
        one segment (an output's file name)."""
        if not self._known:
            return value
        if "/" not in value:
            return self._replace(value)
        return _SEGMENT.sub(lambda match: self._replace(match.group(0)), value)

    def _replace(self, segment: str) -> str:
        replaced = self._known.get(segment)
        if replaced is not None:
            return replaced
        # the longest known name that the segment starts with, ending where a derived name may go on
        for end in range(min(len(segment) - 1, self._longest), 0, -1):
            if segment[end] in _ENDS and (replaced := self._known.get(segment[:end])) is not None:
                return replaced + segment[end:]
        return segment

    def value(self, obj: Any) -> Any:
        """``obj`` (JSON-like) with every string redacted."""
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, dict):
            return {self.text(k) if isinstance(k, str) else k: self.value(v) for k, v in obj.items()}
        if isinstance(obj, list | tuple):
            return [self.value(v) for v in obj]
        return obj
