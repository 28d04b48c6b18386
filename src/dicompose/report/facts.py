"""What the report needs to know of one DICOM file, read once from its header: who it belongs to (to group and to
pseudonymise), where it lies in its volume (to pick slices), how to window it, what it was made from, the
header values worth comparing before and after a step, and every identifying value it holds (so that free
text the report quotes -- a tool's error, a log line -- can be scrubbed of them)."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dicompose.dicom.reading import read_dataset
from dicompose.errors import InputError

#: Header values shown before → after a step: what a derived image is expected to change (and nothing that
#: names a patient). Values of identifying attributes are never shown without --show-identifiers.
COMPARED = (
    "Modality",
    "SOPClassUID",
    "ImageType",
    "PhotometricInterpretation",
    "Rows",
    "Columns",
    "NumberOfFrames",
    "BitsAllocated",
    "BitsStored",
    "PixelRepresentation",
    "RescaleSlope",
    "RescaleIntercept",
    "RescaleType",
    "WindowCenter",
    "WindowWidth",
    "LossyImageCompression",
    "DerivationDescription",  # free text: scrubbed
)
#: The identities a derived file must not share with its source (shown as "new" or "kept").
IDENTITIES = ("SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID", "FrameOfReferenceUID")
_TEXT_VRS = frozenset({"AE", "CS", "DA", "DT", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UT", "AS", "IS"})
_SHOWN_TO_OPT_IN = ("PatientName", "PatientID", "StudyDate", "StudyDescription", "SeriesDescription")


@dataclass
class FileFacts:
    path: Path
    readable: bool
    problem: str = ""
    instance: str | None = None
    series: str | None = None
    study: str | None = None
    patient: str | None = None
    modality: str = ""
    frames: int = 1
    samples: int = 1
    photometric: str = ""
    #: sort key along the volume: position on the slice normal, else instance number, else the file name
    order: tuple[float, float, str] = (0.0, 0.0, "")
    window: tuple[float, float] | None = None
    source_instance: str | None = None
    compared: dict[str, str] = field(default_factory=dict)
    identities: dict[str, str] = field(default_factory=dict)
    opt_in: dict[str, str] = field(default_factory=dict)  # shown only with --show-identifiers
    secrets: set[str] = field(default_factory=set)  # identifying text values, for the scrubber
    keywords: frozenset[str] = frozenset()  # the top-level attributes present (names only)


def read_facts(path: Path, identifying: frozenset[Any]) -> FileFacts:
    """The header of ``path`` (no pixel data), or a fact sheet saying why it could not be read."""
    try:
        ds = read_dataset(path, stop_before_pixels=True)
    except InputError as exc:  # its problem, without the path (a path may name the patient)
        return FileFacts(path, readable=False, problem=exc.problem)
    facts = FileFacts(
        path,
        readable=True,
        instance=_text(ds.get("SOPInstanceUID")),
        series=_text(ds.get("SeriesInstanceUID")),
        study=_text(ds.get("StudyInstanceUID")),
        patient=_text(ds.get("PatientID")),
        modality=_text(ds.get("Modality")) or "",
        frames=_int(ds.get("NumberOfFrames"), 1),
        samples=_int(ds.get("SamplesPerPixel"), 1),
        photometric=_text(ds.get("PhotometricInterpretation")) or "",
    )
    facts.order = (_along_normal(ds), float(_int(ds.get("InstanceNumber"), 0)), path.name)
    facts.window = _window(ds)
    sources = ds.get("SourceImageSequence") or []
    if len(sources) >= 1:
        facts.source_instance = _text(sources[0].get("ReferencedSOPInstanceUID"))
    for keyword in COMPARED:
        if keyword in ds:
            facts.compared[keyword] = _shown(ds.get(keyword))
    for keyword in IDENTITIES:
        if keyword in ds:
            facts.identities[keyword] = _shown(ds.get(keyword))
    for keyword in _SHOWN_TO_OPT_IN:
        if keyword in ds:
            facts.opt_in[keyword] = _shown(ds.get(keyword))
    facts.secrets = _identifying_values(ds, identifying)
    facts.keywords = frozenset(element.keyword for element in ds if element.keyword)
    return facts


def _identifying_values(ds: Any, identifying: frozenset[Any]) -> set[str]:
    """Text values of the attributes PS3.15 says identify (and of private elements), nested ones included:
    each whole value and each of its words (a name printed alone, "998877" of "MRN-998877"), so that a tool's
    message quoting any part of one is scrubbed. The report's own compared attributes (a derivation
    description a tool wrote) are shown scrubbed instead of being secrets themselves."""
    found: set[str] = set()
    for element in ds.iterall():
        if element.VR not in _TEXT_VRS and element.VR != "SQ":
            continue
        if element.VR == "SQ" or not (element.tag in identifying or element.tag.is_private):
            continue
        if element.keyword in COMPARED:
            continue
        values = element.value if element.VM > 1 else [element.value]
        for value in values:
            text = str(value or "").strip()
            if text:
                found.add(text)
                if element.VR in _SPLIT_VRS:  # names, ids, places: a part may be printed alone
                    found.update(
                        word
                        for word in _WORDS.findall(text)
                        if len(word) >= _SHORTEST_WORD and word.lower() not in common_words()
                    )
    return found


#: Values split into words as well: names and short texts (an id, an institution, a private name field). Long
#: texts (comments, reports) and UIDs (their parts are everyone's numbers: 1.2.840...) are blanked whole only.
_SPLIT_VRS = frozenset({"PN", "LO", "SH", "AE", "DA", "DT", "TM", "AS"})

#: Words no name is made of often enough to blank them in every message: English's commonest.
_ENGLISH_WORDS = """the and for not was are with from this that have has had but all any can does did done each into its
may more most must none one only other our out over per than then them they too two use used via were what when
where which who will yes you required found given cannot"""
_ENGLISH = frozenset(_ENGLISH_WORDS.split())


@functools.cache
def common_words() -> frozenset[str]:
    """DICOM's own vocabulary (every attribute and UID name, split into words) and English's commonest words:
    a word of an identifying value that is one of these is not blanked on its own (its whole value still is),
    or a tool's message ("Transfer Syntax not supported") would lose every word."""
    from pydicom._dicom_dict import DicomDictionary
    from pydicom._uid_dict import UID_dictionary

    words = {w.lower() for entry in DicomDictionary.values() for w in re.findall(r"[A-Za-z]+", entry[2])}
    words |= {w.lower() for entry in UID_dictionary.values() for w in re.findall(r"[A-Za-z]+", entry[0])}
    return frozenset(words | _ENGLISH)


#: Words of an identifying value: runs of letters or of digits (unicode letters included: Müller, Jürgen).
_WORDS = re.compile(r"[^\W\d_]+|\d+")
_SHORTEST_WORD = 3


def _text(value: object) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None


def _int(value: object, default: int) -> int:
    try:
        return int(str(value)) if value not in (None, "") else default
    except (TypeError, ValueError):
        return default


def _shown(value: object) -> str:
    from pydicom.multival import MultiValue

    if isinstance(value, list | tuple | MultiValue):  # not a PersonName: iterable too, by character
        return "\\".join(str(v) for v in value)
    return str(value)


def _along_normal(ds: Any) -> float:
    """The slice's position along its normal (ImagePositionPatient · row×column direction), 0 if unknown."""
    try:
        position = [float(v) for v in ds.ImagePositionPatient]
        o = [float(v) for v in ds.ImageOrientationPatient]
    except (AttributeError, TypeError, ValueError):
        return 0.0
    if len(position) != 3 or len(o) != 6:
        return 0.0
    normal = (o[1] * o[5] - o[2] * o[4], o[2] * o[3] - o[0] * o[5], o[0] * o[4] - o[1] * o[3])
    return sum(p * n for p, n in zip(position, normal, strict=True))


def _window(ds: Any) -> tuple[float, float] | None:
    """The first stored Window Center/Width pair, if there is one that makes sense."""
    try:
        center, width = ds.get("WindowCenter"), ds.get("WindowWidth")
        if center is None or width is None:
            return None
        center = center[0] if type(center).__name__ == "MultiValue" else center
        width = width[0] if type(width).__name__ == "MultiValue" else width
        return float(center), float(width)
    except (TypeError, ValueError, IndexError):
        return None
