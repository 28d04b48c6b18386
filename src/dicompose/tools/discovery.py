"""Finding input files: explicit files are always attempted, folders are walked recursively for DICOM files."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from dicompose.dicom.reading import peek
from dicompose.walk import Ignored, walk


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


def discover(
    inputs: Iterable[Path], *, walked: bool = False, follow_links: bool = False
) -> Iterator[Candidate | Skipped]:
    """Yield each input once (by resolved path), in a stable order: the order given, folders sorted.

    Folders are walked by :func:`dicompose.walk.walk` (its rule for symbolic links; ``follow_links`` follows
    links to anywhere). ``walked``: the files were found in folders the user named (a pipeline task's files),
    not named one by one: objects the tool does not handle are then skipped, as in a folder walk, not failed.
    """
    given_inputs = list(inputs)
    seen: set[Path] = set()
    for given in given_inputs:
        if given.is_dir():
            for item in walk(given, given_inputs, allow_outside=follow_links):
                if isinstance(item, Ignored):
                    yield Skipped(Path(item.path), item.reason)
                    continue
                path = Path(item.path)
                real = Path(item.target).resolve()
                if real in seen:
                    continue
                seen.add(real)
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
