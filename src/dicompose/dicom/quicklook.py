"""A few elements from the start of a DICOM file, read with pydicom's own element reader and value conversion.

Discovery, the duplicate check and the audit log need two to four identifiers of every file. pydicom's
partial read builds a whole dataset to give them (0.1 to 1 ms a file, seeks reaching the disk); reading the
elements up to the last one wanted from the first bytes costs a fifth of that. When the bytes end before that
element, the file's transfer syntax is deflated, or anything looks wrong, the answer is "cannot tell here" and
the caller reads the file the usual way: the quick look never gives a different answer, only a faster one.

A file without the Part 10 header (no preamble, no 'DICM', no file meta: a bare data set, as older systems and
some exports write them) is DICOM too when its first bytes are elements of group 0008 in ascending order, in
implicit or explicit VR little endian: :func:`bare_dataset_syntax` says which.
"""

from __future__ import annotations

import functools
import io
import threading
import warnings
from collections.abc import Mapping

from dicompose.dicom.headscan import PREAMBLE, scan_values

#: Bytes to read for a quick look: the preamble, the file meta and the first elements of nearly every file.
HEAD_BYTES = 8192
_TRANSFER_SYNTAX = 0x00020010
_CHARACTER_SET = 0x00080005
_SNIFFED_ELEMENTS = 4  # elements that must read well for a bare data set to count as DICOM


_IMPORTING = threading.Lock()


def load_pydicom() -> None:
    """Import pydicom whole, once, whichever thread asks first. Imported lazily (the runner rarely needs it),
    it may be asked for by two threads at once (the seal threads, the main thread publishing), and pydicom's
    own circular imports then fail in the second ("partially initialized module"): so one thread at a time."""
    with _IMPORTING:
        import pydicom
        import pydicom.charset
        import pydicom.dataelem
        import pydicom.filereader
        import pydicom.uid
        import pydicom.valuerep  # noqa: F401  (all of them: the later imports are dictionary lookups)


def is_part10(head: bytes) -> bool:
    """The Part 10 header: a 128-byte preamble, then 'DICM'."""
    return len(head) >= PREAMBLE + 4 and head[PREAMBLE : PREAMBLE + 4] == b"DICM"


def is_dicom(head: bytes) -> bool:
    """A Part 10 file or a bare data set (see :func:`bare_dataset_syntax`)."""
    return is_part10(head) or bare_dataset_syntax(head) is not None


def bare_dataset_syntax(head: bytes) -> str | None:
    """The transfer syntax of a file that is a bare data set (implicit or explicit VR little endian), or None.

    It must start with a group 0008 element (every image has (0008,0016) SOP Class UID; older files open with
    the group length (0008,0000)) and its first elements, or all of them if fewer, must read in ascending tag
    order with lengths that fit the file: a text or image file that happens to start with 08 00 is not taken.
    """
    if len(head) < 8 or head[:2] != b"\x08\x00" or is_part10(head):
        return None
    load_pydicom()
    from pydicom.dataelem import RawDataElement
    from pydicom.filereader import data_element_generator
    from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

    explicit = head[4:6] in _known_vrs()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fp = io.BytesIO(head)
            previous, count = -1, 0
            for raw in data_element_generator(fp, not explicit, True):
                cut = False
                if isinstance(raw, RawDataElement) and raw.length != 0xFFFFFFFF:
                    cut = len(raw.value or b"") != raw.length
                if raw.tag <= previous or (count == 0 and raw.tag >> 16 != 8) or cut:
                    return None
                previous, count = raw.tag, count + 1
                if count == _SNIFFED_ELEMENTS:
                    break
    except Exception:
        return None
    if count == 0:
        return None
    return ExplicitVRLittleEndian if explicit else ImplicitVRLittleEndian


@functools.cache
def _known_vrs() -> frozenset[bytes]:
    load_pydicom()
    from pydicom.valuerep import VR

    return frozenset(vr.value.encode("ascii") for vr in VR)


def first_values(head: bytes, wanted: Mapping[int, str], *, whole: bool) -> dict[int, str | None] | None:
    """The values of ``wanted`` tags (tag → the dictionary VR to read them with when the file's VR is
    implicit) as pydicom gives them, None for a tag the file does not have; None if ``head`` cannot tell.

    ``head`` is the file's first bytes, ``whole`` says whether they are the whole file. Elements are read up
    to the last tag wanted; text values are decoded with the file's Specific Character Set. Most files are
    answered by :mod:`dicompose.dicom.headscan` without loading pydicom; pydicom reads the others.
    """
    sure, values = scan_values(head, wanted, whole=whole)
    return values if sure else pydicom_values(head, wanted, whole=whole)


def pydicom_values(head: bytes, wanted: Mapping[int, str], *, whole: bool) -> dict[int, str | None] | None:
    """:func:`first_values` as pydicom's element reader and value conversion give them."""
    load_pydicom()
    from pydicom.charset import convert_encodings
    from pydicom.dataelem import RawDataElement, convert_raw_data_element
    from pydicom.filereader import data_element_generator
    from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian, ImplicitVRLittleEndian

    bare_syntax = None if is_part10(head) else bare_dataset_syntax(head)
    if bare_syntax is None and not is_part10(head):
        return None
    last = max(wanted)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fp = io.BytesIO(head)
            syntax = bare_syntax
            if syntax is None:
                fp.seek(PREAMBLE + 4)
                for raw in data_element_generator(fp, False, True, stop_when=lambda tag, _vr, _n: tag.group != 2):
                    if raw.tag == _TRANSFER_SYNTAX and isinstance(raw, RawDataElement):
                        syntax = str(convert_raw_data_element(raw).value)
            if syntax is None or syntax == DeflatedExplicitVRLittleEndian:
                return None
            implicit, little = syntax == ImplicitVRLittleEndian, syntax != ExplicitVRBigEndian
            raws: dict[int, RawDataElement] = {}
            stopped = False

            def stop(tag: int, _vr: str | None, _length: int) -> bool:
                nonlocal stopped
                stopped = tag > last
                return stopped

            for raw in data_element_generator(fp, implicit, little, stop_when=stop):
                if not isinstance(raw, RawDataElement):
                    return None
                if raw.tag in wanted or raw.tag == _CHARACTER_SET:
                    if raw.value is None or len(raw.value) != raw.length:  # cut by the end of the bytes read
                        return None
                    raws[raw.tag] = raw._replace(VR=wanted.get(raw.tag, "CS")) if implicit else raw
            if not (stopped or whole):
                return None  # the bytes ended before the last tag wanted: it may come later
            encodings = None
            if _CHARACTER_SET in raws:
                charset = convert_raw_data_element(raws[_CHARACTER_SET]).value
                encodings = convert_encodings(list(charset) if isinstance(charset, list | tuple) else [charset])
            return {
                tag: (str(convert_raw_data_element(raws[tag], encoding=encodings).value or "") or None)
                if tag in raws
                else None
                for tag in wanted
            }
    except Exception:  # damaged: the caller's full read decides what to say
        return None
