"""De-identification: DICOM PS3.15 Annex E Basic Application Level Confidentiality Profile.

Every attribute of Table E.1-1 (the table itself comes from the ``dicom-anonymizer`` package's 2026c
database) gets its action, recursively inside sequences: D (dummy value), Z (empty), X (remove), U (UID
replaced), and the compound actions resolved conservatively (Z/D → D, X/Z → Z, X/D and X/Z/D → D, X/Z/U* →
the sequence kept with its UIDs replaced). Private attributes are removed (unless listed in
``retain_private``), curves and overlay data/comments removed, the preamble zeroed and the file meta rebuilt.
UIDs are replaced through a keyed mapping (HMAC): the same key gives the same new UID across files, series
and runs, so references between instances stay consistent. With ``retain_dates`` every date and time is
shifted by a per-patient offset (keyed, whole days), which keeps intervals (Retain Longitudinal Temporal
Information with Modified Dates). Images with burned-in annotation are refused (no Clean Pixel Data option).
"""

from __future__ import annotations

import hashlib
import hmac
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path

import pydicom
from pydicom.datadict import dictionary_VM, dictionary_VR
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag, Tag

from dicompose import __version__
from dicompose.dicom.derivation import code_item
from dicompose.dicom.header_checks import require_identity
from dicompose.dicom.identifiers import Fingerprints, fingerprinted
from dicompose.dicom.pixels import check_compressed_pixels_decode
from dicompose.dicom.reading import read_dataset
from dicompose.dicom.writing import convert_raw_values_to_little_endian, rebuild_file_meta, write_atomic
from dicompose.errors import InputError, UnsupportedInputError, storage_error
from dicompose.fileio import Digest, Hasher, Hashing

TABLE_VERSION = "dicomfields_2026c"
RECIPE_VERSION = 1
_MAX_SHIFT_DAYS = 3650
_DUMMY_TEXT = {
    "PN": "ANONYMOUS",
    "DA": "19000101",
    "TM": "000000",
    "DT": "19000101000000",
    "AS": "000Y",
    "IS": "0",
    "DS": "0",
    "CS": "ANONYMIZED",
}
_NUMERIC = {"US": 0, "SS": 0, "UL": 0, "SL": 0, "FL": 0.0, "FD": 0.0, "UV": 0, "SV": 0}


@cache
def action_table() -> dict[BaseTag, str]:
    """Tag → action letter(s), from PS3.15 Table E.1-1."""
    from dicomanonymizer.dicomfields_selector import dicom_anonymization_database_selector

    database = dicom_anonymization_database_selector(TABLE_VERSION)
    actions: dict[BaseTag, str] = {}
    for category, action in (
        ("X_TAGS", "X"),
        ("Z_TAGS", "Z"),
        ("D_TAGS", "D"),
        ("U_TAGS", "U"),
        ("Z_D_TAGS", "D"),
        ("X_Z_TAGS", "Z"),
        ("X_D_TAGS", "D"),
        ("X_Z_D_TAGS", "D"),
        ("X_Z_U_STAR_TAGS", "U*"),
    ):
        for entry in database[category]:
            if len(entry) == 2:  # (group, element); masked repeating groups (curves, overlays) are handled in _apply
                actions[Tag(entry[0], entry[1])] = action
    return actions


@dataclass(frozen=True)
class DeidParams:
    key: bytes
    retain_dates: bool = False
    retain_private: frozenset[BaseTag] = field(default_factory=frozenset)

    def pseudonym(self, kind: str, value: str) -> str:
        return hmac.new(self.key, f"{kind}\0{value}".encode(), hashlib.sha256).hexdigest()

    def uid(self, old: str) -> str:
        """The same old UID → the same new UID, for this key (consistent references across files and runs)."""
        digest = int(self.pseudonym("uid", old)[:30], 16)
        return f"2.25.{digest}"  # a UUID-derived UID (PS3.5 B.2), 64 characters at most

    def day_shift(self, patient: str) -> timedelta:
        days = int(self.pseudonym("dates", patient)[:8], 16) % (2 * _MAX_SHIFT_DAYS) - _MAX_SHIFT_DAYS
        return timedelta(days=days or 1)

    def recipe(self) -> str:
        key_id = hashlib.sha256(self.key).hexdigest()[:16]
        private = ",".join(sorted(str(t) for t in self.retain_private))
        return f"dicompose.deidentify/r{RECIPE_VERSION}/key={key_id}/dates={self.retain_dates}/private={private}"


def output_name_for(params: DeidParams, source: Path) -> str:
    """A file name that identifies nobody (paths may hold patient names) and depends only on the instance
    (its keyed SOP Instance UID), so every engine and machine names the same input's output alike."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            header = pydicom.dcmread(source, stop_before_pixels=True, specific_tags=["SOPInstanceUID"], force=True)
            uid = str(header.SOPInstanceUID)
    except Exception:  # unreadable: the tool itself reports the file; the name only has to identify nobody
        uid = "path:" + source.name
    return f"deid-{params.pseudonym('name', uid)[:24]}.dcm"


def _shift_value(vr: str, value: str, shift: timedelta) -> str:
    text = value.strip()
    try:
        if vr == "DA" and len(text) >= 8:
            return (datetime.strptime(text[:8], "%Y%m%d").date() + shift).strftime("%Y%m%d")
        if vr == "DT" and len(text) >= 8:
            shifted = (datetime.strptime(text[:8], "%Y%m%d").date() + shift).strftime("%Y%m%d")
            return shifted + text[8:]
    except ValueError:
        return _DUMMY_TEXT[vr]
    return text if vr == "TM" else _DUMMY_TEXT.get(vr, "")


def _dummy(element: DataElement, params: DeidParams, shift: timedelta | None) -> object:
    vr = element.VR
    if vr in ("DA", "DT", "TM") and shift is not None and element.value:
        values = element.value if element.VM > 1 else [element.value]
        shifted = [_shift_value(vr, str(v), shift) for v in values]
        return shifted if element.VM > 1 else shifted[0]
    if vr == "UI":
        return params.uid(str(element.value)) if element.value else ""
    if vr in _NUMERIC:
        return _NUMERIC[vr]
    if vr in ("OB", "OW", "OF", "OD", "OL", "OV", "UN"):
        return b""
    return _DUMMY_TEXT.get(vr, "ANONYMIZED")


#: Sequences Table E.1-1 zeroes that are Type 3 wherever they are defined (General Study; Prescription notes).
_TYPE3_ZEROED_SEQUENCES = frozenset({0x00081110, 0x30100081})  # ReferencedStudy, PrescriptionNotes


def _apply(ds: Dataset, params: DeidParams, shift: timedelta | None) -> None:
    table = action_table()
    for tag in list(ds.keys()):  # values are decoded only where an action needs them (private ones stay raw)
        if tag.is_private:
            creator_of_kept = 0x10 <= tag.element <= 0xFF and any(
                kept.group == tag.group and kept.element >> 8 == tag.element for kept in params.retain_private
            )  # a retained element needs its Private Creator, or nobody can read it (and it is invalid)
            if tag not in params.retain_private and not creator_of_kept:
                del ds[tag]
            continue
        if tag.group in range(0x5000, 0x5020, 2) or tag.group in range(0x6000, 0x6020, 2):
            # Curves, and overlays: Table E.1-1 removes overlay data and comments; an overlay without its data
            # would be invalid, so the whole overlay group goes.
            del ds[tag]
            continue
        action = table.get(tag)
        element = ds[tag]
        if element.VR == "SQ":
            if action in ("X",):
                del ds[tag]
                continue
            if action == "Z":
                if tag in _TYPE3_ZEROED_SEQUENCES:  # an empty Type 3 sequence is invalid: absent is "zero length"
                    del ds[tag]
                else:  # Type 2 where defined (Acquisition Context, Specimen, Verifying Observer): empty
                    ds[tag].value = Sequence()
                continue
            for item in element.value or []:  # D, U* and unlisted sequences: clean every item
                _apply(item, params, shift)
            continue
        if action is None:
            continue
        if action in ("Z", "D"):  # a value of our own: written in the VR the standard gives (damage may differ)
            element = _with_standard_vr(ds, tag, element)
        if shift is not None and element.VR in ("DA", "DT") and action in ("X", "Z", "D"):
            ds[tag].value = _dummy(element, params, shift)  # Modified Dates option: shifted, not removed
        elif action == "X":
            del ds[tag]
        elif action == "Z":
            ds[tag].value = "" if element.VR not in _NUMERIC else None
        elif action in ("U", "U*"):
            if element.VR == "UI" and element.value:
                if element.VM > 1 and dictionary_VM(tag) != "1":
                    ds[tag].value = [params.uid(str(v)) for v in element.value]
                else:  # one UID, even if damage put a backslash in it: its pseudonym is one valid UID
                    text = "\\".join(map(str, element.value)) if element.VM > 1 else str(element.value)
                    ds[tag].value = params.uid(text)
        else:  # D
            ds[tag].value = _dummy(element, params, shift)


def _with_standard_vr(ds: Dataset, tag: BaseTag, element: DataElement) -> DataElement:
    """``element``, re-created in its dictionary VR when its (explicit) VR differs and the dictionary has one VR."""
    standard = dictionary_VR(tag)
    if standard == element.VR or " or " in standard:
        return element
    ds[tag] = DataElement(tag, standard, None)
    return ds[tag]


def deidentify_dataset(ds: Dataset, params: DeidParams, path: Path) -> Dataset:
    if str(ds.get("BurnedInAnnotation", "")).upper() == "YES":
        raise UnsupportedInputError(
            path,
            "burned-in annotation: pixel data would need cleaning, which is not "
            "supported (Clean Pixel Data option); refusing",
        )
    patient = str(ds.get("PatientID", "") or ds.get("PatientName", "") or "")
    pseudonym = "ANON-" + params.pseudonym("patient", patient)[:16].upper() if patient else "ANON"
    shift = params.day_shift(patient) if params.retain_dates else None
    _apply(ds, params, shift)
    ds.PatientID = pseudonym  # a consistent dummy: one patient stays one (pseudonymous) patient
    ds.PatientName = pseudonym
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = f"dicompose {__version__} deidentify: PS3.15 E.1-1 Basic Profile"[:64]
    codes = [code_item("113100", "DCM", "Basic Application Confidentiality Profile")]
    if params.retain_dates:
        codes.append(code_item("113107", "DCM", "Retain Longitudinal Temporal Information Modified Dates Option"))
        ds.LongitudinalTemporalInformationModified = "MODIFIED"
    else:
        ds.LongitudinalTemporalInformationModified = "REMOVED"
    if params.retain_private:
        codes.append(code_item("113111", "DCM", "Retain Safe Private Option"))
    ds.DeidentificationMethodCodeSequence = Sequence(codes)
    return ds


def deidentify_file(source: Path, destination: Path, params: DeidParams) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        _deidentify(read_dataset(source), source, destination, params)
    return destination


def deidentify_file_fingerprinted(
    source: Path, destination: Path, params: DeidParams, *, hashing: Hashing = "inline"
) -> Fingerprints:
    """:func:`deidentify_file`, returning who both files are about (the output's identifiers are the
    de-identified ones, as written) and the sha256 of their bytes (the source read once, hashed from memory;
    the output hashed as it is written; see :class:`Hasher` for the thread)."""
    return fingerprinted(
        source, lambda ds, hasher: _deidentify(ds, source, destination, params, hasher), hashing=hashing
    )


def _deidentify(
    ds: Dataset, source: Path, destination: Path, params: DeidParams, hasher: Hasher | None = None
) -> Digest | None:
    require_identity(ds, source)
    check_compressed_pixels_decode(ds, source)  # kept as they are: they must be an image, not damage
    big_endian = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "") == "1.2.840.10008.1.2.2"
    syntax = ds.file_meta.TransferSyntaxUID if "TransferSyntaxUID" in ds.file_meta else None
    deidentify_dataset(ds, params, source)
    if big_endian:
        convert_raw_values_to_little_endian(ds)
    rebuild_file_meta(ds, __version__)
    if syntax is not None and syntax.is_compressed:
        ds.file_meta.TransferSyntaxUID = syntax  # encapsulated pixel data is kept as it is
    ds.preamble = b"\0" * 128
    try:
        return write_atomic(ds, destination, hasher=hasher, source=source)
    except OSError as exc:
        raise storage_error(destination, exc) or InputError(
            destination, f"cannot write output ({exc.strerror or exc})"
        ) from None
