"""Who a DICOM file is about (study, series, instance, patient) and exactly which bytes it holds.

These are the facts an audit log needs (it pseudonymises the identifiers; they are never logged raw). The
tools return them for the files they read and write, taken from the datasets they already hold, so that
nobody has to read a file again to learn them; :func:`identifiers` reads them from a file on disk.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dicompose.dicom.quicklook import HEAD_BYTES, bare_dataset_syntax, first_values, load_pydicom
from dicompose.fileio import Digest, Hasher, Hashing

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

_TAGS = ["StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "PatientID"]
_NONE: dict[str, str | None] = {"study": None, "series": None, "instance": None, "patient": None}


#: tag → dictionary VR, for the quick look at a file's first bytes
_QUICK = {0x0020000D: "UI", 0x0020000E: "UI", 0x00080018: "UI", 0x00100020: "LO"}


def identifiers(path: Path, head: bytes | None = None, *, whole: bool = False) -> dict[str, str | None]:
    """study/series/instance UIDs and patient id of a DICOM file (None where absent or unreadable); ``head``:
    its first bytes when the caller has read them already (``whole``: all of them)."""
    try:
        if head is None:
            with path.open("rb") as fh:
                head = fh.read(HEAD_BYTES)
            whole = len(head) < HEAD_BYTES
        found = first_values(head, _QUICK, whole=whole)
        if found is not None:
            return {
                "study": found[0x0020000D],
                "series": found[0x0020000E],
                "instance": found[0x00080018],
                "patient": found[0x00100020],
            }
    except OSError:
        return dict(_NONE)
    load_pydicom()  # only for the files the quick look cannot read: a run over plain files never loads it
    import pydicom

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # force only for a bare data set: forcing anything else would parse arbitrary bytes as elements
            bare = bare_dataset_syntax(head) is not None
            ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=_TAGS, force=bare)
    except Exception:  # not DICOM, or damaged: the file is still audited by path and hash
        return dict(_NONE)
    return dataset_identifiers(ds)


def file_facts(path: Path, block: int = 1 << 20) -> tuple[str, dict[str, str | None]]:
    """(sha256, :func:`identifiers`) of a file, read once, block by block (a big output is never held whole);
    the identifiers come from its first block."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        first = fh.read(block)
        digest.update(first)
        while chunk := fh.read(block):
            digest.update(chunk)
    return digest.hexdigest(), identifiers(path, first, whole=len(first) < block)


def dataset_identifiers(ds: Dataset) -> dict[str, str | None]:
    """:func:`identifiers` of a dataset in memory (as read, or as just written)."""
    return {
        "study": str(ds.get("StudyInstanceUID", "") or "") or None,
        "series": str(ds.get("SeriesInstanceUID", "") or "") or None,
        "instance": str(ds.get("SOPInstanceUID", "") or "") or None,
        "patient": str(ds.get("PatientID", "") or "") or None,
    }


@dataclass(frozen=True)
class Fingerprint:
    """A file's identifiers and the sha256 of its bytes (a :class:`Digest` still being computed on the
    hashing thread until read: reading it waits; :meth:`settled` before it crosses a process boundary)."""

    identifiers: dict[str, str | None]
    digest: Digest | str

    @property
    def sha256(self) -> str:
        return self.digest if isinstance(self.digest, str) else self.digest.hexdigest()

    def settled(self) -> Fingerprint:
        return self if isinstance(self.digest, str) else Fingerprint(self.identifiers, self.sha256)


@dataclass(frozen=True)
class Fingerprints:
    """What a tool read and what it wrote, for one file."""

    source: Fingerprint
    output: Fingerprint

    @classmethod
    def of(
        cls, source: dict[str, str | None], source_digest: Digest, output: Dataset, output_digest: Digest | None
    ) -> Fingerprints:
        """From the source's identifiers (taken before the tool changed the dataset), the dataset as written,
        and the digests of the bytes read and written."""
        if output_digest is None:
            raise ValueError("the output was written without a digest")
        return cls(
            Fingerprint(source, source_digest),
            Fingerprint(dataset_identifiers(output), output_digest),
        )

    def settled(self) -> Fingerprints:
        """With both digests computed (waiting for them): picklable, for a result sent to another process."""
        return Fingerprints(self.source.settled(), self.output.settled())


def fingerprinted(
    source: Path, work: Callable[[Dataset, Hasher], Digest | None], *, hashing: Hashing = "inline"
) -> Fingerprints:
    """Read ``source`` once (hashed from memory), let ``work`` write the output from the dataset (hashed as it
    is written), and return who both files are about and their sha256: the audit facts of one file's work."""
    from dicompose.dicom.reading import read_dataset_hashed

    with warnings.catch_warnings(), Hasher(hashing) as hasher:
        warnings.simplefilter("ignore", UserWarning)
        ds, source_digest = read_dataset_hashed(source, hasher)
        read = dataset_identifiers(ds)
        output_digest = work(ds, hasher)
        return Fingerprints.of(read, source_digest, ds, output_digest)
