"""A few text values from the first bytes of a little endian Part 10 file, without pydicom.

The pipeline runner reads two to four identifiers of every input and output (the series for grouping, the
audit log's study, series, instance and patient) and nothing else of DICOM. Importing pydicom for that cost
0.2 s of every run before its first launch (pydicom loads numpy, its pixel handlers and an HTTP client), and
pydicom's element reader with its value conversion 0.07 ms a file. This reader walks the elements of the
file meta and the data set (explicit or implicit VR little endian; sequences of undefined length are stepped
over item by item) up to the last tag wanted, and returns the raw values.

It answers only where its answer is certainly pydicom's, and says it is unsure otherwise (big endian,
deflated, an element that does not parse, a value that is not plain printable ASCII without a backslash, an
explicit VR other than the tag's): the caller then asks pydicom (``quicklook.first_values``).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

PREAMBLE = 128
_META_GROUP = 0x0002
_TRANSFER_SYNTAX = 0x00020010
_IMPLICIT = "1.2.840.10008.1.2"
_EXPLICIT_BIG = "1.2.840.10008.1.2.2"
_DEFLATED = ("1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.4.95")  # the data set itself is deflated
_LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"})
_UNDEFINED = 0xFFFFFFFF
_ITEM, _ITEM_END, _SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_TEXT_VRS = frozenset({"UI", "LO", "SH"})  # pydicom: decoded, trailing NULs and spaces stripped
_U16, _U32 = struct.Struct("<H"), struct.Struct("<I")
_MAX_DEPTH = 16


class _UnsureError(Exception):
    """Anything this reader does not answer for with certainty."""


class _CutError(Exception):
    """The bytes end inside an element."""


Answer = tuple[bool, dict[int, str | None] | None]


def scan_values(head: bytes, wanted: Mapping[int, str], *, whole: bool) -> Answer:
    """(sure, values) of ``wanted`` tags (tag → dictionary VR: UI, LO or SH) of a Part 10 file's data set.

    Sure: the values (None where a tag is absent or empty), or None where ``head`` ends before the last tag
    wanted could be reached (it is not the ``whole`` file: the caller reads more). Unsure: ask pydicom.
    """
    unsure: Answer = (False, None)
    if len(head) < PREAMBLE + 4 or head[PREAMBLE : PREAMBLE + 4] != b"DICM" or not set(wanted.values()) <= _TEXT_VRS:
        return unsure
    try:
        meta, offset = _read_meta(head, PREAMBLE + 4)
        syntax = meta.get(_TRANSFER_SYNTAX)
        if syntax is None or syntax == _EXPLICIT_BIG or syntax in _DEFLATED:
            return unsure
        found, stopped = _read_dataset(head, offset, syntax == _IMPLICIT, wanted)
    except _CutError:
        return unsure if whole else (True, None)
    except _UnsureError:
        return unsure
    if not (stopped or whole):
        return True, None
    return True, {tag: found.get(tag) or None for tag in wanted}


def _read_dataset(head: bytes, offset: int, implicit: bool, wanted: Mapping[int, str]) -> tuple[dict[int, str], bool]:
    last = max(wanted)
    found: dict[int, str] = {}
    while offset + 8 <= len(head):
        tag = (_U16.unpack_from(head, offset)[0] << 16) | _U16.unpack_from(head, offset + 2)[0]
        if tag > last:
            return found, True
        vr, length, offset = _header(head, offset, implicit)
        if tag in wanted:
            if length == _UNDEFINED or (vr is not None and vr != wanted[tag]):
                raise _UnsureError
            if offset + length > len(head):
                raise _CutError
            found[tag] = _text(head[offset : offset + length])
            offset += length
        else:
            offset = _skip_value(head, offset, vr, length, implicit, 0)
    if offset != len(head):
        raise _CutError  # the bytes end inside an element's header
    return found, False


def _read_meta(head: bytes, offset: int) -> tuple[dict[int, str], int]:
    """The file meta's transfer syntax (explicit VR little endian, group 0002 from ``offset``); where it ends."""
    found: dict[int, str] = {}
    while offset + 8 <= len(head) and _U16.unpack_from(head, offset)[0] == _META_GROUP:
        tag = (_META_GROUP << 16) | _U16.unpack_from(head, offset + 2)[0]
        _vr, length, offset = _header(head, offset, False)
        if length == _UNDEFINED:
            raise _UnsureError
        if offset + length > len(head):
            raise _CutError
        if tag == _TRANSFER_SYNTAX:
            found[tag] = _text(head[offset : offset + length])
        offset += length
    if offset + 8 > len(head):
        raise _CutError
    return found, offset


def _header(head: bytes, offset: int, implicit: bool) -> tuple[str | None, int, int]:
    """(explicit VR or None, value length, where the value starts) of the element at ``offset``."""
    if implicit:
        return None, _U32.unpack_from(head, offset + 4)[0], offset + 8
    vr = head[offset + 4 : offset + 6]
    if not (vr.isalpha() and vr.isupper()):
        raise _UnsureError
    if vr in _LONG_VRS:
        if offset + 12 > len(head):
            raise _CutError
        return vr.decode(), _U32.unpack_from(head, offset + 8)[0], offset + 12
    return vr.decode(), _U16.unpack_from(head, offset + 6)[0], offset + 8


def _skip_value(head: bytes, offset: int, vr: str | None, length: int, implicit: bool, depth: int) -> int:
    """Where the element whose value starts at ``offset`` ends; a sequence of undefined length is walked."""
    if length != _UNDEFINED:
        if offset + length > len(head):
            raise _CutError
        return offset + length
    if (vr not in (None, "SQ")) or depth >= _MAX_DEPTH:
        raise _UnsureError  # encapsulated pixel data, an undefined-length UN: not before the identifiers
    while True:  # items until the sequence delimiter
        if offset + 8 > len(head):
            raise _CutError
        tag, item_length = _U32.unpack_from(head, offset)[0], _U32.unpack_from(head, offset + 4)[0]
        tag = ((tag & 0xFFFF) << 16) | (tag >> 16)
        offset += 8
        if tag == _SEQUENCE_END:
            return offset
        if tag != _ITEM:
            raise _UnsureError
        if item_length != _UNDEFINED:
            if offset + item_length > len(head):
                raise _CutError
            offset += item_length
            continue
        while True:  # the item's elements until its delimiter
            if offset + 8 > len(head):
                raise _CutError
            inner = (_U16.unpack_from(head, offset)[0] << 16) | _U16.unpack_from(head, offset + 2)[0]
            if inner == _ITEM_END:
                offset += 8
                break
            inner_vr, inner_length, offset = _header(head, offset, implicit)
            offset = _skip_value(head, offset, inner_vr, inner_length, implicit, depth + 1)


def _text(raw: bytes) -> str:
    """A single text value as pydicom decodes it, if its bytes are plain printable ASCII (the same in every
    character set DICOM allows) without a backslash (a second value): else unsure."""
    value = raw.rstrip(b"\0 ")
    if not all(0x20 <= b < 0x7F for b in value) or b"\\" in value:
        raise _UnsureError
    return value.decode("ascii")
