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
        objects: list[list[str]] = []  # the files sharing the UID, grouped by content (copies of one object)
        for name in names:
            same = next((group for group in objects if same_content(group[0], name)), None)
            if same is None:
                objects.append([name])
            else:
                same.append(name)
        if len(objects) < 2:
            continue
        sharing = sum(len(group) for group in objects)
        refusing = "refusing both" if sharing == 2 else f"refusing all {sharing}"
        for group in objects:
            rivals = ", ".join(other for other_group in objects if other_group is not group for other in other_group)
            for name in group:
                refused[name] = (
                    f"{name}: same SOP Instance UID {uid[:64]} as {rivals} but different content; "
                    f"{refusing} (their outputs would share one identity)"
                )
    return refused
