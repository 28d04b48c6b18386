"""Finding input files: explicit files are always attempted, folders are walked recursively for DICOM files."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from dicompose.dicom.reading import peek


@dataclass(frozen=True)
class Candidate:
    """A file to process, where it was found, and its path relative to the output folder."""

    path: Path
    relative_parent: Path
    explicit: bool
    #: From the file's first bytes (None if unreadable): the batch refuses different files sharing one.
    instance_uid: str | None = None


@dataclass(frozen=True)
class Skipped:
    """A file found in a folder that is not DICOM: reported, never an error."""

    path: Path
    reason: str


def discover(inputs: Iterable[Path], *, walked: bool = False) -> Iterator[Candidate | Skipped]:
    """Yield each input once (by resolved path), in a stable order: the order given, folders sorted.

    ``walked``: the files were found in folders the user named (a pipeline task's files), not named one by one:
    objects the tool does not handle are then skipped, as in a folder walk, not failed."""
    seen: set[Path] = set()
    for given in inputs:
        if given.is_dir():
            for path in sorted(p for p in given.rglob("*") if not _hidden(p.relative_to(given))):
                if not path.is_file() or path.resolve() in seen:
                    continue
                seen.add(path.resolve())
                header = peek(path)
                if header.dicom:
                    yield Candidate(path, path.parent.relative_to(given), False, header.instance_uid)
                else:
                    yield Skipped(path, "not a DICOM file")
        else:
            key = given.resolve() if given.exists() else given.absolute()
            if key not in seen:
                seen.add(key)
                yield Candidate(given, Path(), not walked, peek(given).instance_uid)


def _hidden(relative: Path) -> bool:
    """Dot-files and dot-folders (our own partial outputs, .git, .DS_Store...) are never inputs."""
    return any(part.startswith(".") for part in relative.parts)
