"""Pipeline inputs → groups of files (one per DICOM series and folder, chunked), hashed through the memo.

A no-op rerun must not reread the data: each file is stat'ed and looked up in the workspace memo by
(path, device, inode, size, mtime_ns); only new or changed files are read (hashed, and their header parsed
for the series UID), in parallel threads.
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from dicompose.dicom.duplicates import duplicate_instances
from dicompose.errors import UsageError
from dicompose.records.index import FileStat, Index, Memo
from dicompose.walk import Found, Ignored, walk

DEFAULT_CHUNK = 500


@dataclass(frozen=True)
class InputFile:
    path: str  # absolute (a string: a no-op rerun over 10,000s of files makes no pathlib objects)
    name: str  # relative to the group's folder
    sha256: str


@dataclass(frozen=True)
class Group:
    """Files processed together by one task: one series in one folder (or a chunk of a huge one)."""

    label: str
    relative_parent: Path
    files: tuple[InputFile, ...]


class Listing(NamedTuple):
    """What an input holds: its groups, the files skipped (not DICOM), one line per file refused, and the
    name of every file found (the names a de-identifying run must not repeat: ``privacy``)."""

    groups: list[Group]
    skipped: list[Path]
    refused: list[str]
    names: list[str]
    ignored: list[str]  # one line each: links not followed, entries that are not regular files
    left_out: list[str]  # the paths of the files skipped, refused or not followed (their names, to redact)


NOT_DICOM = Memo("", None)  # the memo's entry for a file examined and found not to be DICOM


_SERIES, _INSTANCE = 0x0020000E, 0x00080018


def _examine(path: Path) -> Memo | None:
    """A file the memo does not know, read once: its sha256 and series UID, ``NOT_DICOM`` (remembered too, so
    a rerun reads it no more), or None if it cannot be read."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    from dicompose.dicom.quicklook import first_values, is_dicom, load_pydicom  # pydicom: not on a no-op rerun

    if not is_dicom(data):
        return NOT_DICOM

    sha256 = hashlib.sha256(data).hexdigest()
    found = first_values(data, {_SERIES: "UI", _INSTANCE: "UI"}, whole=True)
    if found is not None:
        return Memo(sha256, found[_SERIES] or "", found[_INSTANCE] or "")
    load_pydicom()  # threads examine files at once: one of them imports it (quicklook.load_pydicom)
    import pydicom

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(
                io.BytesIO(data),
                stop_before_pixels=True,
                specific_tags=["SeriesInstanceUID", "SOPInstanceUID"],
                force=True,  # a bare data set (no Part 10 header) is DICOM too
            )
        series = str(ds.get("SeriesInstanceUID", "") or "")
        instance = str(ds.get("SOPInstanceUID", "") or "")
    except Exception:  # a damaged header still belongs somewhere: the tool reports the file itself
        series, instance = "", ""
    return Memo(sha256, series, instance)


def _is_whole(name: str) -> bool:
    """Asked only of files that share a SOP Instance UID: reading them fully is then worth it."""
    from dicompose.dicom.quicklook import load_pydicom

    load_pydicom()  # not while a seal thread imports it
    from dicompose.dicom.reading import is_whole  # pydicom: never on the no-op path

    return is_whole(Path(name))


def _same_object(a: str, b: str) -> bool:
    from dicompose.dicom.quicklook import load_pydicom

    load_pydicom()
    from dicompose.dicom.reading import same_object

    return same_object(Path(a), Path(b))


def _list(source: Path, roots: list[Path], follow_links: bool) -> tuple[list[Found], list[Ignored]]:
    """Every regular file under ``source`` (a file or folder), absolute, sorted, by :func:`dicompose.walk.walk`'s
    rule for links; and what was not read (links not followed), one line each."""
    if source.is_file():  # named by the user: followed wherever it leads
        name = str(source.absolute())
        return [Found(name, os.path.realpath(name))], []
    if not source.is_dir():
        raise UsageError(f"{source}: no such file or folder")
    found: list[Found] = []
    ignored: list[Ignored] = []
    for item in walk(source.absolute(), roots, allow_outside=follow_links):
        (found if isinstance(item, Found) else ignored).append(item)  # type: ignore[arg-type]
    return found, ignored


def group_input(
    source: Path,
    index: Index,
    *,
    chunk: int = DEFAULT_CHUNK,
    threads: int = 2,
    roots: list[Path] | None = None,
    follow_links: bool = False,
) -> Listing:
    """Groups of DICOM files under ``source``, the non-DICOM files skipped, one line per file refused
    (another file has its SOP Instance UID: :mod:`dicompose.dicom.duplicates`) or link not followed (``roots``:
    every input the user named); known files are not read. A file found through a link is read (and mounted)
    where it lies, and grouped where its link was found."""
    listed, ignored = _list(source, roots or [source], follow_links)
    candidates = [item.path for item in listed]  # a link by its own path: outputs are named after it
    all_stats = [FileStat.of(p) for p in candidates]
    memo = index.memo_lookup(all_stats)
    unknown = [(p, st) for p, st in zip(candidates, all_stats, strict=True) if st.path not in memo]
    if unknown:  # read once each; two threads overlap reading with parsing (more only fight for the GIL)
        with ThreadPoolExecutor(max_workers=threads) as pool:
            examined = list(pool.map(lambda item: _examine(Path(item[0])), unknown))
        found = [(st, m) for (_p, st), m in zip(unknown, examined, strict=True) if m is not None]
        index.memo_store(found)
        memo.update((st.path, m) for st, m in found)
    root = str((source if source.is_dir() else source.parent).absolute())
    buckets: dict[tuple[str, str], list[InputFile]] = defaultdict(list)
    skipped: list[Path] = []
    known = {name: memo[stat.path] for name, stat in zip(candidates, all_stats, strict=True) if stat.path in memo}
    refused = duplicate_instances(
        ((name, entry.instance) for name, entry in known.items()),
        lambda a, b: known[a].sha256 == known[b].sha256 or _same_object(a, b),
        _is_whole,
    )
    for name, stat in zip(candidates, all_stats, strict=True):
        entry = memo.get(stat.path)
        if entry is None or entry == NOT_DICOM:
            skipped.append(Path(name))
            continue
        if name in refused:
            continue
        parent, _sep, base = name.rpartition("/")
        relative = parent[len(root) + 1 :] if parent != root else ""
        buckets[(relative, entry.series or "")].append(InputFile(name, base, entry.sha256))
    groups = []
    for (relative, series), members in sorted(buckets.items()):
        where, folder = relative or Path(root).name or ".", Path(relative)  # files at the top: the input's name
        if series:  # a series is never split: per-series results (a volume's min/max) need all of it
            groups.append(Group(f"{where}#{_series_tag(series)}", folder, tuple(members)))
            continue
        for number, start in enumerate(range(0, len(members), chunk)):
            label = f"{where}#noseries" + (f"/{number + 1}" if len(members) > chunk else "")
            groups.append(Group(label, folder, tuple(members[start : start + chunk])))
    refusals = [refused[name] for name in sorted(refused)]
    # a link's target is named in the mounts of a container launch: a name to redact as well
    names = [*candidates, *(i.target for i in listed if i.target != i.path), *(i.path for i in ignored)]
    left_out = [*map(str, skipped), *sorted(refused), *(str(i.path) for i in ignored)]
    return Listing(groups, skipped, refusals, names, [f"{i.path}: {i.reason}" for i in ignored], left_out)


def _series_tag(series: str) -> str:
    """A short, unique name for a series in labels and logs: a hash, never the UID itself."""
    return "s" + hashlib.sha256(series.encode()).hexdigest()[:10]
