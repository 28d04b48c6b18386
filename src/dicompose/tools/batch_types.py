"""What a batch of a built-in tool is made of and gives back: the operation, each file's result, the summary."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from dicompose.dicom.identifiers import Fingerprints
from dicompose.fileio import Hashing
from dicompose.params import ValueRange


class Status(StrEnum):
    PROCESSED = "processed"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass(frozen=True)
class FileResult:
    """One line of the batch report. ``message`` is a single line naming the file and the problem."""

    source: Path
    status: Status
    output: Path | None = None
    message: str = ""
    #: The audit log's objects for the file read and the file written (identifiers, path, sha256), from what
    #: the tool learnt while it worked: nothing is read or hashed again for them.
    audit: tuple[dict[str, object], ...] = ()
    #: The output's place is full or read-only (:class:`StorageError`): the batch attempts no more files.
    stop: bool = False


@dataclass
class Summary:
    results: list[FileResult] = field(default_factory=list)
    seconds: float = 0.0
    #: Why the batch stopped early (a full or read-only output folder), and how many files it did not attempt.
    stopped: str = ""
    not_attempted: int = 0

    def count(self, status: Status) -> int:
        return sum(1 for r in self.results if r.status is status)

    @property
    def ok(self) -> bool:
        return self.count(Status.FAILED) == 0 and not self.stopped


@dataclass(frozen=True)
class Operation:
    """What to do to each file. Holds module-level functions (and frozen params), so it pickles to workers.

    ``apply(source, destination, source_range, hashing)`` returns the two files' fingerprints when
    ``hashing`` is not None (the batch is audited), else None.
    """

    name: str
    apply: Callable[[Path, Path, ValueRange | None, Hashing | None], Fingerprints | None]
    output_name: Callable[[Path], str]
    series_scope: bool = False  # first pass: one value range per series, passed to ``apply``
    flatten: bool = False  # all outputs directly in the output folder (input folder names may identify people)
