"""Walking input folders: one rule for symbolic links, whatever runs the files (host tools, every engine).

A link found in an input folder is followed when its target lies under an input the user named (so a study
folder assembled from links works the same on the local engine and in a container, which sees only the
inputs); every other link -- to a file or folder elsewhere, dangling, or looping -- is reported in one line and
never read, mounted or published: a planted link to ``/etc/shadow`` must not leave the machine. An explicit
option (``allow_outside``) follows links to anywhere. Hidden entries (dot-files, our own partial outputs) are
never inputs; each file is found once, by its real path.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path


def as_given(path: Path | str) -> Path:
    """A path the user gave, absolute and without ``.`` or ``..`` (``../data/x`` from ``tool/``): one file has
    one name in every record, crate and audit entry, wherever dicompose was run from. Lexical, as a shell user
    reads it: links in the path are kept, so a file found through a link is named by the link."""
    return Path(os.path.normpath(Path(path).expanduser().absolute()))  # not resolve(): it follows links


@dataclass(frozen=True)
class Found:
    """A regular file to read: ``path`` where it was found (a link's own path), ``target`` the file itself."""

    path: str
    target: str


@dataclass(frozen=True)
class Ignored:
    """Something found that is not read, and why (one line, naming it)."""

    path: str
    reason: str


def walk(folder: Path, roots: Sequence[Path], *, allow_outside: bool = False) -> Iterator[Found | Ignored]:
    """Every regular file under ``folder`` (paths under ``folder`` as given, sorted), links followed by the rule above;
    ``roots`` are all the inputs the user named (a link may point from one into another)."""
    allowed = [_real(root) for root in roots]
    start = Path(folder)  # paths are reported as the user gave them
    seen_dirs: set[str] = set()  # real paths: a folder reached twice (or a link to an ancestor) is walked once
    real_of: dict[str, str] = {}  # each file's real path → where it was first found
    found: list[Found | Ignored] = []
    pending = [(str(start), _real(start))]  # (where we walk it, its real path)
    linked: list[tuple[str, str]] = []  # folders reached through links: walked after every direct one, in order
    while pending or linked:
        if pending:
            where, real = pending.pop()
        else:
            linked.sort()
            where, real = linked.pop(0)
        if real in seen_dirs:
            continue
        seen_dirs.add(real)
        with os.scandir(where) as entries:  # file types come with the listing: no stat per entry
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                real_entry = f"{real}/{entry.name}"
                if not entry.is_symlink():
                    if entry.is_dir(follow_symlinks=False):
                        pending.append((entry.path, real_entry))
                    elif entry.is_file(follow_symlinks=False):
                        found.append(Found(entry.path, entry.path))
                        real_of.setdefault(real_entry, entry.path)
                    else:
                        found.append(Ignored(entry.path, "not a regular file"))
                    continue
                target = _link(entry.path, allowed, allow_outside)
                if isinstance(target, Ignored):
                    found.append(target)
                elif Path(target).is_dir():
                    linked.append((entry.path, target))
                elif not Path(target).is_file():
                    found.append(Ignored(entry.path, "symbolic link to something that is not a regular file"))
                else:
                    found.append(Found(entry.path, target))
    # a file reached directly and through links is read once: where it lies itself, else through its first link
    kept: list[Found | Ignored] = []
    for item in sorted(found, key=lambda item: item.path):
        if isinstance(item, Found) and item.path != item.target:
            first = real_of.setdefault(item.target, item.path)
            if first != item.path:
                continue
        kept.append(item)
    return iter(kept)


def _link(path: str, allowed: list[str], allow_outside: bool) -> str | Ignored:
    """The real path a link leads to, or why it is not followed."""
    try:
        target = os.path.realpath(path, strict=True)
    except FileNotFoundError:
        return Ignored(path, "dangling symbolic link (its target does not exist)")
    except OSError as exc:  # a loop (ELOOP), or a target we may not see
        return Ignored(path, f"symbolic link not followed ({exc.strerror or exc})")
    if allow_outside or any(_under(target, root) for root in allowed):
        return target
    return Ignored(path, "symbolic link to a target outside the inputs (not followed; see --follow-links)")


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _real(path: Path) -> str:
    return os.path.realpath(Path(path).absolute())
