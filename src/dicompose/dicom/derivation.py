"""Headers of derived objects: new deterministic UIDs, DERIVED image type, references and equipment.

Shared by every tool that writes a new image from an input image, so each derived file tells what it came
from and who made it, and the same input + parameters always give the same UIDs (and the same bytes).
"""

from __future__ import annotations

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import UID, generate_uid

from dicompose.config import UID_ROOT
from dicompose.dicom.iod import ORIGINAL_ONLY, rules_for

_MAX_LO = 64
_MAX_ST = 1024
#: DICOM lossy transfer syntaxes and the Lossy Image Compression Method (0028,2114) each implies.
_LOSSY_METHODS = {
    "1.2.840.10008.1.2.4.50": "ISO_10918_1",
    "1.2.840.10008.1.2.4.51": "ISO_10918_1",
    "1.2.840.10008.1.2.4.81": "ISO_14495_1",
    "1.2.840.10008.1.2.4.91": "ISO_15444_1",
    "1.2.840.10008.1.2.4.203": "ISO_15444_15",
}


def derived_uid(kind: str, source_uid: str, recipe: str, uid_root: str = UID_ROOT) -> str:
    """A UID that is a pure function of (what it identifies, the source UID, the derivation recipe)."""
    return str(generate_uid(prefix=uid_root, entropy_srcs=[kind, source_uid, recipe]))


def code_item(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


def mark_derived(
    ds: Dataset,
    *,
    recipe: str,
    description: str,
    tool: str,
    software_version: str,
    series_suffix: str,
    uid_root: str = UID_ROOT,
) -> None:
    """Turn ``ds`` (a copy of the source image) into the header of a new derived instance, in place."""
    source_class = str(ds.SOPClassUID)
    source_instance = str(ds.SOPInstanceUID)
    source_syntax = str(getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "") or "")

    ds.SOPInstanceUID = derived_uid("instance", source_instance, recipe, uid_root)
    ds.SeriesInstanceUID = derived_uid("series", str(ds.get("SeriesInstanceUID", "")), recipe, uid_root)
    for keyword in ("InstanceCreationDate", "InstanceCreationTime", "InstanceCreatorUID"):
        if keyword in ds:
            delattr(ds, keyword)

    rules = rules_for(ds)
    image_type = list(ds.get("ImageType", []) or [])
    # Value 2 (patient examination characteristics) stays PRIMARY where the IOD allows nothing else (functional
    # group IODs, C.8.16.1 and kin; NM; PET); elsewhere an image made after the examination is SECONDARY.
    image_type[:2] = ["DERIVED", *image_type[1:2]] if rules.value2_primary else ["DERIVED", "SECONDARY"]
    ds.ImageType = image_type
    _derive_frame_types(ds)
    if rules.functional_groups:
        _drop_original_only(ds)

    previous = str(ds.get("DerivationDescription", "") or "").strip()
    text = description if not previous else f"{description}; previously: {previous}"
    ds.DerivationDescription = text[:_MAX_ST]

    if UID(source_class).is_valid and UID(source_instance).is_valid:  # never spread an invalid UID further
        source = Dataset()
        source.ReferencedSOPClassUID = source_class
        source.ReferencedSOPInstanceUID = source_instance
        ds.SourceImageSequence = Sequence([source])
    elif "SourceImageSequence" in ds:
        del ds.SourceImageSequence  # it described the source's own sources

    ds.ContributingEquipmentSequence = Sequence(
        [*(ds.get("ContributingEquipmentSequence") or []), _equipment(tool, software_version, description)]
    )
    series = str(ds.get("SeriesDescription", "") or "").strip()
    ds.SeriesDescription = (f"{series} {series_suffix}" if series else series_suffix)[-_MAX_LO:].strip()
    _keep_lossy_history(ds, source_syntax)


def _equipment(tool: str, software_version: str, description: str) -> Dataset:
    """dicompose as Modifying Equipment (Contributing Equipment Sequence item)."""
    equipment = Dataset()
    equipment.Manufacturer = "dicompose"
    equipment.ManufacturerModelName = f"dicompose {tool}"[:_MAX_LO]
    equipment.SoftwareVersions = software_version
    equipment.ContributionDescription = description[:_MAX_ST]
    equipment.PurposeOfReferenceCodeSequence = Sequence([code_item("109103", "DCM", "Modifying Equipment")])
    return equipment


def _keep_lossy_history(ds: Dataset, source_syntax: str) -> None:
    """A source decoded from a lossy syntax leaves a derived image that was lossy compressed once: say so."""
    method = _LOSSY_METHODS.get(source_syntax)
    if method is not None:
        ds.LossyImageCompression = "01"
        value = ds.get("LossyImageCompressionMethod") or []
        methods = [value] if isinstance(value, str) else list(value)  # one value reads as a str
        if method not in methods:
            ds.LossyImageCompressionMethod = [*methods, method]


def _drop_original_only(ds: Dataset) -> None:
    for keyword in ORIGINAL_ONLY:
        if keyword in ds:
            delattr(ds, keyword)


def _derive_frame_types(ds: Dataset) -> None:
    """Enhanced objects repeat the image type per frame (Frame Type); keep value 1 consistent with ImageType."""
    for group_keyword in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        for group in ds.get(group_keyword) or []:
            for element in group:
                if element.VR != "SQ" or not element.keyword.endswith("FrameTypeSequence"):
                    continue
                for item in element.value or []:
                    if "FrameType" in item:
                        frame_type = list(item.FrameType)
                        frame_type[:1] = ["DERIVED"]
                        item.FrameType = frame_type
