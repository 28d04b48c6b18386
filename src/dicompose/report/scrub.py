"""Free text a report quotes (a tool's error message, the end of its log, a derivation description) may name
a patient: a file called ``DOE_JOHN_0001.dcm``, a folder ``MRN12345``, a name a tool printed. The scrubber
knows every identifying value the report's files hold (PS3.15's identifying attributes and private text, read
from their headers) and every path segment below the run's inputs, and blanks each where it stands as a word.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

REDACTED = "[redacted]"
#: Values this short are matched only as whole words, and never below this length at all (a one-letter
#: name part would blank every "a").
_SHORTEST = 2
_PLAIN = frozenset({"dcm", "dicom", "out", "in", "tmp", "data", "work", "series", "study", "normalized", "mask"})


class Scrubber:
    """``values`` blanked where they stand as words; each of ``roots`` (an input folder, absolute, by the
    input's name) replaced by ``NAME:`` first, so a quoted path shows neither the host's folders nor the
    patient's names: ``scans:/[redacted]/[redacted]``."""

    def __init__(self, values: Iterable[str], roots: dict[str, str] | None = None) -> None:
        given = ((root.rstrip("/"), f"{name}:") for name, root in (roots or {}).items() if root.rstrip("/"))
        self._roots = sorted(given, key=lambda pair: len(pair[0]), reverse=True)
        words = {v.strip() for v in values} - set(roots or {})  # "scans:" names a pipeline's input, not a patient
        kept = sorted(
            (w for w in words if len(w) >= _SHORTEST and w.lower() not in _PLAIN and not _number(w)),
            key=len,
            reverse=True,
        )
        self._pattern = (
            re.compile("(?<![A-Za-z0-9])(?:" + "|".join(re.escape(w) for w in kept) + ")(?![A-Za-z0-9])", re.I)
            if kept
            else None
        )

    def __call__(self, text: str) -> str:
        if not text:
            return text
        for root, name in self._roots:  # longest first: a root inside another one wins
            text = text.replace(root + "/", name + "/").replace(root, name[:-1])  # a file input: "scans"
        return self._pattern.sub(REDACTED, text) if self._pattern is not None else text


def _number(word: str) -> bool:
    """Short numbers (a slope, a slice count) are not identifiers; long ones (an MRN, a date) may be."""
    return len(word) < 5 and word.replace(".", "", 1).replace("-", "", 1).isdigit()


def path_words(paths: Iterable[str], roots: Iterable[str]) -> set[str]:
    """Every folder and file name below the run's input roots (and the roots' own last names), with the stems
    that derived file names start with (``DOE_JOHN`` of ``DOE_JOHN.dcm`` in ``DOE_JOHN-normalized.dcm``)."""
    bases = sorted({root.rstrip("/") + "/" for root in roots if root}, key=len, reverse=True)
    words: set[str] = set()
    for root in roots:
        name = root.rstrip("/").rsplit("/", 1)[-1]
        words.update((name, name.split(".", 1)[0], name.rsplit(".", 1)[0]))
    for path in paths:
        base = next((b for b in bases if path.startswith(b)), None)
        if base is None:
            continue
        parts = path[len(base) :].split("/")
        words.update(parts)
        leaf = parts[-1]
        words.add(leaf.split(".", 1)[0])
        words.add(leaf.rsplit(".", 1)[0])
    return {w for w in words if w not in ("", ".", "..")}
