"""Is the copy of an instance already in ``--out`` whole? A pull skips what it has, so a copy cut short (a disk
that filled up, a copy made by another tool, a file edited by hand) would never be fetched again. A copy counts
only if it parses as DICOM up to its last element, every value fits in the file, and it is the instance its
name says; one that is not is set aside (deleted: it is ours, made by an earlier pull) and fetched again.

Cheap on purpose: element headers are parsed and large values skipped (a seek, not a read), so checking a
study already pulled costs a stat and a few kilobytes per instance, not its pixel data."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

#: Values larger than this are not read, only their extent checked against the file's size.
_DEFER = 4096


def whole_instance(path: Path, sop_instance: str, name: Callable[[str], str]) -> bool:
    """True when ``path`` is a complete DICOM file of the instance ``sop_instance`` (named by ``name``)."""
    return name(sop_instance) == path.stem and complete_file(path, sop_instance)


def complete_file(path: Path, sop_instance: str) -> bool:
    """True when ``path`` parses to its last element, every value ends within it, it holds ``sop_instance``
    and, if an image, its pixel data (what a pull checks of a copy, and a push of what it is about to send)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _whole(path, sop_instance)
    except (OSError, ValueError, KeyError, EOFError, TypeError, AttributeError, IndexError, NotImplementedError):
        return False


def _whole(path: Path, sop_instance: str) -> bool:
    """Element by element with pydicom's raw reader, values above a few kilobytes skipped by a seek: every
    value must end within the file, the instance UID must match, and an image must have its pixel data."""
    from pydicom.errors import InvalidDicomError
    from pydicom.filereader import data_element_generator, read_file_meta_info
    from pydicom.uid import UID

    size = path.stat().st_size
    try:
        meta = read_file_meta_info(path)
    except InvalidDicomError:
        return False
    syntax = UID(str(meta.get("TransferSyntaxUID", "")))
    group_length = meta.get("FileMetaInformationGroupLength")
    if group_length is None or not syntax.is_transfer_syntax or syntax.is_deflated:
        return _whole_by_full_read(path, sop_instance)  # rare: read it all the usual way
    found, pixels, image = None, False, False
    with path.open("rb") as fp:
        fp.seek(132 + 12 + int(group_length))  # preamble, 'DICM', the group length element, the rest of the meta
        for element in data_element_generator(fp, syntax.is_implicit_VR, syntax.is_little_endian, defer_size=_DEFER):
            tell, length = getattr(element, "value_tell", None), getattr(element, "length", None)
            if tell is not None and length is not None and length != 0xFFFFFFFF and tell + length > size:
                return False  # a value the file ends inside of
            if element.tag == 0x00080016:
                image = "Image Storage" in str(getattr(UID(_text(element.value)), "name", ""))
            elif element.tag == 0x00080018:
                found = _text(element.value)
            elif element.tag in (0x7FE00010, 0x7FE00008, 0x7FE00009):
                pixels = True
        end = fp.tell()
    return found == sop_instance and end <= size and (pixels or not image)


def _text(value: object) -> str:
    raw = value if isinstance(value, bytes) else str(value or "").encode()
    return raw.rstrip(b"\x00 ").decode("ascii", errors="replace")


def _whole_by_full_read(path: Path, sop_instance: str) -> bool:
    from dicompose.dicom.reading import read_dataset
    from dicompose.errors import InputError

    try:
        ds = read_dataset(path)
    except InputError:
        return False
    return str(ds.get("SOPInstanceUID", "")) == sop_instance


def present_instances(folder: Path, wanted: dict[str, str], name: Callable[[str], str]) -> set[str]:
    """The SOP Instance UIDs of ``wanted`` (UID -> file stem) whose copy in ``folder`` is whole; a copy that
    is not is removed, so the pull writes it again."""
    if not folder.is_dir():
        return set()
    here: set[str] = set()
    for sop, stem in wanted.items():
        path = folder / f"{stem}.dcm"
        if not path.exists():
            continue
        if whole_instance(path, sop, name):
            here.add(sop)
        else:
            path.unlink(missing_ok=True)
    return here
