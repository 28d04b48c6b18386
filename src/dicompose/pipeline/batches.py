"""Splitting a ``--in`` path into batches: many files per container launch, one folder per batch at most."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from dicompose.dicom.reading import looks_like_dicom
from dicompose.errors import UsageError

DEFAULT_BATCH_SIZE = 500


@dataclass(frozen=True)
class Batch:
    """Files under ``root`` processed by one launch; outputs go to ``--out``/``relative_parent``."""

    root: Path
    files: tuple[Path, ...]
    relative_parent: Path


def plan_batches(source: Path, batch_size: int = DEFAULT_BATCH_SIZE) -> tuple[list[Batch], list[Path]]:
    """(batches, skipped non-DICOM files). A file is one batch; a folder is chunked per sub-folder."""
    if batch_size < 1:
        raise UsageError("--batch-size must be at least 1")
    if source.is_file():
        return [Batch(source.parent, (source,), Path())], []
    if not source.is_dir():
        raise UsageError(f"{source}: no such file or folder")
    by_folder: dict[Path, list[Path]] = defaultdict(list)
    skipped: list[Path] = []
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if any(part.startswith(".") for part in relative.parts) or not path.is_file():
            continue
        if looks_like_dicom(path):
            by_folder[path.parent].append(path)
        else:
            skipped.append(path)
    batches = []
    for folder, files in sorted(by_folder.items()):
        for start in range(0, len(files), batch_size):
            chunk = tuple(files[start : start + batch_size])
            batches.append(Batch(source, chunk, folder.relative_to(source)))
    return batches, skipped
