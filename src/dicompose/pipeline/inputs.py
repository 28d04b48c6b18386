"""Pipeline inputs → groups of files (one per DICOM series and folder, chunked), hashed through the memo.

A no-op rerun must not reread the data: each file is stat'ed and looked up in the workspace memo by
(path, device, inode, size, mtime_ns); only new or changed files are read (hashed, and their header parsed
for the series UID), in parallel threads.
"""

from __future__ import annotations

import os
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from dicompose.errors import UsageError
from dicompose.records.hashing import sha256_file
from dicompose.records.index import FileStat, Index, Memo

DEFAULT_CHUNK = 500


@dataclass(frozen=True)
class InputFile:
    path: Path
    name: str  # relative to the group's folder
    sha256: str


@dataclass(frozen=True)
class Group:
    """Files processed together by one task: one series in one folder (or a chunk of a huge one)."""

    label: str
    relative_parent: Path
    files: tuple[InputFile, ...]


def _series_uid(path: Path) -> str:
    import pydicom  # only for files the memo does not know: a no-op rerun never loads pydicom

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SeriesInstanceUID"])
    except Exception:  # a damaged header still belongs somewhere: the tool reports the file itself
        return ""
    return str(ds.get("SeriesInstanceUID", "") or "")


def _looks_like_dicom(path: Path) -> bool:
    from dicompose.dicom.reading import looks_like_dicom

    return looks_like_dicom(path)


def _hash_and_series(path: Path) -> Memo:
    return Memo(sha256_file(path), _series_uid(path))


def list_files(source: Path) -> list[Path]:
    """Every regular file under ``source`` (a file or folder), absolute, hidden entries ignored, sorted."""
    if source.is_file():
        return [source.absolute()]
    if not source.is_dir():
        raise UsageError(f"{source}: no such file or folder")
    found: list[str] = []
    pending = [str(source.absolute())]
    while pending:  # scandir: file types come with the listing, no stat per entry
        with os.scandir(pending.pop()) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    pending.append(entry.path)
                elif entry.is_file():
                    found.append(entry.path)
    return [Path(p) for p in sorted(found)]


def group_input(
    source: Path, index: Index, *, chunk: int = DEFAULT_CHUNK, threads: int = 8
) -> tuple[list[Group], list[Path]]:
    """Groups of DICOM files under ``source`` and the non-DICOM files skipped; known files are not read."""
    candidates = list_files(source)
    all_stats = [FileStat.of(p) for p in candidates]
    memo = index.memo_lookup(all_stats)
    files: list[Path] = []
    stats: list[FileStat] = []
    skipped: list[Path] = []
    for path, stat in zip(candidates, all_stats, strict=True):
        if stat.path in memo or _looks_like_dicom(path):  # a memoised file was DICOM when it was hashed
            files.append(path)
            stats.append(stat)
        else:
            skipped.append(path)
    missing = [(p, s) for p, s in zip(files, stats, strict=True) if s.path not in memo]
    if missing:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            computed = list(pool.map(lambda item: _hash_and_series(item[0]), missing))
        index.memo_store((s, m) for (_p, s), m in zip(missing, computed, strict=True))
        for (_p, s), m in zip(missing, computed, strict=True):
            memo[s.path] = m
    root = (source if source.is_dir() else source.parent).absolute()
    buckets: dict[tuple[Path, str], list[InputFile]] = defaultdict(list)
    for path, stat in zip(files, stats, strict=True):
        entry = memo[stat.path]
        folder = path.parent.relative_to(root)
        buckets[(folder, entry.series or "")].append(InputFile(path, path.name, entry.sha256))
    groups = []
    for (folder, series), members in sorted(buckets.items()):
        for number, start in enumerate(range(0, len(members), chunk)):
            where = folder.as_posix() if folder != Path() else "."
            label = f"{where}#{series[-12:] or 'noseries'}" + (f"/{number + 1}" if len(members) > chunk else "")
            groups.append(Group(label, folder, tuple(members[start : start + chunk])))
    return groups, skipped
