"""Finding input files: explicit files are always attempted, folders are walked recursively for DICOM files."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from dicompose.dicom.reading import Peek, peek
from dicompose.walk import Ignored, walk

#: Files looked at together: a batch's pool peeks at a block's files in parallel (``peek_many``).
_BLOCK = 256


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


def peek_each(paths: Sequence[Path]) -> list[Peek]:
    return [peek(path) for path in paths]


def discover(
    inputs: Iterable[Path],
    *,
    walked: bool = False,
    follow_links: bool = False,
    peek_many: Callable[[Sequence[Path]], list[Peek]] = peek_each,
) -> Iterator[Candidate | Skipped]:
    """Yield each input once (by resolved path), in a stable order: the order given, folders sorted.

    Folders are walked by :func:`dicompose.walk.walk` (its rule for symbolic links; ``follow_links`` follows
    links to anywhere). ``walked``: the files were found in folders the user named (a pipeline task's files),
    not named one by one: objects the tool does not handle are then skipped, as in a folder walk, not failed.
    ``peek_many`` reads the first bytes of a block of files (in parallel, in a batch's pool).
    """
    given_inputs = list(inputs)
    seen: set[Path] = set()
    for given in given_inputs:
        if given.is_dir():
            block: list[Path | Skipped] = []
            for item in walk(given, given_inputs, allow_outside=follow_links):
                if isinstance(item, Ignored):
                    block.append(Skipped(Path(item.path), item.reason))
                elif (real := Path(item.target).resolve()) not in seen:
                    seen.add(real)
                    block.append(Path(item.path))
                if len(block) >= _BLOCK:
                    yield from _looked_at(block, given, peek_many)
                    block = []
            yield from _looked_at(block, given, peek_many)
        else:
            key = given.resolve() if given.exists() else given.absolute()
            if key not in seen:
                seen.add(key)
                yield Candidate(given, Path(), not walked, peek(given).instance_uid)


def _looked_at(
    block: list[Path | Skipped], given: Path, peek_many: Callable[[Sequence[Path]], list[Peek]]
) -> Iterator[Candidate | Skipped]:
    """The block's files as candidates (DICOM) or skipped (not), in the walk's order."""
    paths = [item for item in block if isinstance(item, Path)]
    headers = iter(peek_many(paths) if paths else [])
    for item in block:
        if isinstance(item, Skipped):
            yield item
        elif (header := next(headers)).dicom:
            yield Candidate(item, item.parent.relative_to(given), False, header.instance_uid)
        else:
            yield Skipped(item, "not a DICOM file")
