"""Two input files with one SOP Instance UID: refused as a pair, in every tool and pipeline.

Derived UIDs are a function of the source UID and the recipe, so two *different* objects that share a SOP
Instance UID (a broken export, a hand-edited file) would give two outputs with one identity: a PACS keeps one
and drops the other, and nobody can tell which derived from which. Copies of one object (byte-identical, or
the same elements and decoded pixels in another transfer syntax) are one object: they are processed (their
derived outputs are identical too). A damaged file that shares a UID (a
truncated copy of a good one) is no rival: it fails on its own damage, and the good one goes on.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable


def duplicate_instances(
    files: Iterable[tuple[str, str | None]],
    same_content: Callable[[str, str], bool],
    healthy: Callable[[str], bool] = lambda _name: True,
) -> dict[str, str]:
    """{file: one-line reason} for every file whose SOP Instance UID (second item; None or "" = unknown) is
    also another file's with different content; ``same_content(a, b)`` tells byte-identical copies and
    ``healthy(name)`` whether a file sharing a UID is whole (asked only of those: it may read the file)."""
    by_uid: dict[str, list[str]] = defaultdict(list)
    for name, uid in files:
        if uid:
            by_uid[uid].append(name)
    refused: dict[str, str] = {}
    for uid, candidates in by_uid.items():
        names = [name for name in candidates if len(candidates) > 1 and healthy(name)]
        if len(names) < 2 or all(same_content(names[0], other) for other in names[1:]):
            continue
        for name in names:
            others = ", ".join(other for other in names if other != name)
            refused[name] = (
                f"{name}: same SOP Instance UID {uid[:64]} as {others} but different content; "
                "refusing both (their outputs would share one identity)"
            )
    return refused
