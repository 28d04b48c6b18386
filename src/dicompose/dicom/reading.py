"""Reading DICOM files, translating every pydicom failure into one clear line; peeks, and whether two files are
one object. The checks live in ``header_checks``, the pixels in ``pixels``."""

from __future__ import annotations

import contextlib
import filecmp
import io
import struct
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileDataset
from pydicom.errors import InvalidDicomError
from pydicom.filereader import read_partial
from pydicom.uid import UID

from dicompose.dicom.header_checks import check_header, short_error
from dicompose.dicom.pixels import decoded_pixels
from dicompose.dicom.quicklook import HEAD_BYTES, bare_dataset_syntax, first_values, is_dicom
from dicompose.errors import InputError, UnsupportedInputError
from dicompose.fileio import Digest, Hasher

_PREAMBLE_LENGTH = 128
_SOP_INSTANCE_UID = 0x00080018


def looks_like_dicom(path: Path) -> bool:
    """True when the file is DICOM: the Part 10 'DICM' prefix or a bare data set (cheap: its first bytes)."""
    return peek(path).dicom


@dataclass(frozen=True)
class Peek:
    """What the first bytes of a file say: DICOM Part 10 or not, and which instance it holds."""

    dicom: bool
    instance_uid: str | None = None


def peek(path: Path) -> Peek:
    """Whether ``path`` is DICOM (the 'DICM' prefix, or a bare data set) and, if so, its SOP Instance UID (None
    where it cannot be read: the tool reports why). One open and the first few hundred bytes: discovery asks
    this of every file it finds, so the batch learns the UIDs it checks for duplicates without reading any
    file twice."""
    try:
        with path.open("rb") as fh:
            head = fh.read(HEAD_BYTES)
            if not is_dicom(head):
                return Peek(dicom=False)
            found = first_values(head, {_SOP_INSTANCE_UID: "UI"}, whole=len(head) < HEAD_BYTES)
            if found is not None:
                return Peek(dicom=True, instance_uid=found[_SOP_INSTANCE_UID])
            fh.seek(0)  # the first bytes cannot tell (see quicklook): pydicom reads as far as it needs
            return Peek(dicom=True, instance_uid=_instance_uid(fh))
    except OSError:
        return Peek(dicom=False)


def _instance_uid(fh: BinaryIO) -> str | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # stop at the first element after (0008,0018): a few hundred bytes, not the whole header
            ds = read_partial(fh, stop_when=lambda tag, _vr, _length: tag > _SOP_INSTANCE_UID, force=True)
        return str(ds.get("SOPInstanceUID", "") or "") or None
    except Exception:  # damaged or not DICOM after all: the tool's own read says why
        return None


def read_dataset(path: Path, *, stop_before_pixels: bool = False) -> FileDataset:
    """Read a DICOM Part 10 file; any failure becomes an :class:`InputError` naming the file.

    Every element is decoded now (pydicom decodes lazily, on first use): a damaged value is refused here, with
    the element it is in, instead of failing later in whatever code first touches it.
    """
    with _read_errors(path):
        ds = _parse(path, path, stop_before_pixels=stop_before_pixels)
    check_header(ds, path, pixels=not stop_before_pixels)
    return ds


def _parse(source: Path | io.BytesIO, path: Path, *, stop_before_pixels: bool = False) -> FileDataset:
    """pydicom's parse, its warnings kept quiet (they would flood batch output) but for the one that says
    the file ended inside an element: pydicom keeps what came before, so it is the only sign of truncation."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            ds = pydicom.dcmread(source, stop_before_pixels=stop_before_pixels)
        except InvalidDicomError:
            ds = _parse_bare(source, stop_before_pixels)
    if any("End of file reached" in str(w.message) for w in caught):
        raise InputError(path, "file truncated: it ends inside an element (a copy or transfer stopped early?)")
    return ds


def _parse_bare(source: Path | io.BytesIO, stop_before_pixels: bool) -> FileDataset:
    """A bare data set (no Part 10 header; see :func:`~dicompose.dicom.quicklook.bare_dataset_syntax`), read
    with the transfer syntax its first elements show, written into its file meta so the rest reads it as any
    file. Anything else is not DICOM: the caller's InvalidDicomError stands."""
    if isinstance(source, io.BytesIO):
        source.seek(0)
        head = source.read(HEAD_BYTES)
        source.seek(0)
    else:
        with source.open("rb") as fh:
            head = fh.read(HEAD_BYTES)
    syntax = bare_dataset_syntax(head)
    if syntax is None:
        raise InvalidDicomError("neither a DICOM Part 10 file nor a bare data set")
    ds = pydicom.dcmread(source, stop_before_pixels=stop_before_pixels, force=True)
    ds.file_meta.TransferSyntaxUID = UID(syntax)
    return ds


def instance_uid(path: Path) -> str | None:
    """The SOP Instance UID in ``path``'s header, or None where it cannot be read (the tool reports why)."""
    return peek(path).instance_uid


def is_whole(path: Path) -> bool:
    """Whether ``path`` reads as a whole DICOM object, its pixels decoded too (asked only of files that share
    a UID: a damaged copy of a good file is no rival, it fails on its own damage)."""
    return damage(path) is None


def damage(path: Path) -> str | None:
    """What is wrong with ``path`` (the one-line refusal a tool would give), or None if it reads whole."""
    try:
        ds = read_dataset(path)
        if "PixelData" in ds:
            decoded_pixels(ds, path)
    except InputError as exc:
        return str(exc)
    return None


def same_object(a: Path, b: Path) -> bool:
    """Whether two files hold one object: byte-identical, or the same pixels (decoded) and the same elements
    in other encodings (another transfer syntax of one instance). Asked only of files sharing a UID."""
    if filecmp.cmp(a, b, shallow=False):
        return True
    try:
        first, second = read_dataset(a), read_dataset(b)
        if ("PixelData" in first) != ("PixelData" in second):
            return False
        if "PixelData" in first:
            if not np.array_equal(decoded_pixels(first, a), decoded_pixels(second, b)):
                return False
            del first.PixelData, second.PixelData
        return same_elements(first, second)
    except InputError:
        return False


#: How a binary number VR's values are laid out as bytes, for comparing them with the same values as OB/OW.
_PACKING = {"US": "<H", "SS": "<h", "UL": "<I", "SL": "<i", "FL": "<f", "FD": "<d", "UV": "<Q", "SV": "<q"}


def same_elements(first: Dataset, second: Dataset) -> bool:
    """Element by element, the same values in whatever encoding: a value an implicit VR file gives as OW bytes
    (LUT Data, whose VR is "US or OW") equals the US numbers an explicit VR file gives; sequences recurse."""
    tags = list(first.keys())  # keys: no value decoded yet
    if set(tags) != set(second.keys()):
        return False
    for tag in tags:
        a, b = first[tag], second[tag]
        if a.value == b.value:
            continue
        if a.VR == "SQ" and b.VR == "SQ":
            items_a, items_b = list(a.value or []), list(b.value or [])
            if len(items_a) != len(items_b) or not all(map(same_elements, items_a, items_b)):
                return False
            continue
        as_bytes = _as_bytes(a.VR, a.value)
        if as_bytes is None or as_bytes != _as_bytes(b.VR, b.value):
            return False
    return True


def _as_bytes(vr: str, value: object) -> bytes | None:
    """A binary value as little endian bytes (None for text and anything else)."""
    if isinstance(value, bytes):
        return value
    packing = _PACKING.get(vr)
    if packing is None or value is None:
        return None
    numbers = list(value) if isinstance(value, list | tuple) or hasattr(value, "__iter__") else [value]
    try:
        return b"".join(struct.pack(packing, n) for n in numbers)
    except (struct.error, TypeError):
        return None


def read_dataset_hashed(path: Path, hasher: Hasher) -> tuple[FileDataset, Digest]:
    """:func:`read_dataset`, and the sha256 of the file's bytes: the file is read once, into memory, and
    hashed from those bytes (on ``hasher``'s thread, once the work is done)."""
    with _read_errors(path):
        data = path.read_bytes()
        digest = hasher.sha256()
        digest.update(data)
        ds = _parse(io.BytesIO(data), path)
    ds.filename = str(path)  # as if read from the path
    check_header(ds, path)
    return ds, digest


@contextlib.contextmanager
def _read_errors(path: Path) -> Iterator[None]:
    """Translate every failure to read ``path`` as DICOM into one :class:`InputError` line naming it."""
    try:
        yield
    except InvalidDicomError:
        raise UnsupportedInputError(path, "not a DICOM file (no DICOM file meta information)") from None
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except IsADirectoryError:
        raise InputError(path, "is a directory, not a file") from None
    except PermissionError:
        raise InputError(path, "permission denied") from None
    except OSError as exc:
        raise InputError(path, f"cannot read file ({exc.strerror or exc})") from None
    except Exception as exc:  # pydicom raises many types on corrupt data; all mean "damaged file"
        raise InputError(path, f"corrupt DICOM file ({short_error(exc)})") from None
