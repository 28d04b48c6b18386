"""What each image IOD allows a derived image to be: the rules a tool must follow to write a valid object.

The tools keep an input's SOP class (a normalized CT is still a CT image), so each output must satisfy the
rules of its input's IOD (PS3.3 Annex A and the modules it names). Rules that differ between IODs live here,
keyed by SOP Class UID; everything else is common to all image IODs (see ``derivation`` and ``pixel_module``).
"""

from __future__ import annotations

from dataclasses import dataclass

from pydicom.dataset import Dataset
from pydicom.uid import UID

from dicompose.dicom.kernel import ANY_ENCODING, EncodingLimits

#: Storage SOP classes built on the Multi-frame Functional Groups module (by class, not by the presence of the
#: groups: a damaged or trimmed object of these classes is still judged by its IOD's rules).
FUNCTIONAL_GROUP_CLASSES = frozenset(
    {
        "1.2.840.10008.5.1.4.1.1.2.1",  # Enhanced CT Image
        "1.2.840.10008.5.1.4.1.1.2.2",  # Legacy Converted Enhanced CT Image
        "1.2.840.10008.5.1.4.1.1.4.1",  # Enhanced MR Image
        "1.2.840.10008.5.1.4.1.1.4.3",  # Enhanced MR Color Image
        "1.2.840.10008.5.1.4.1.1.4.4",  # Legacy Converted Enhanced MR Image
        "1.2.840.10008.5.1.4.1.1.6.2",  # Enhanced US Volume
        "1.2.840.10008.5.1.4.1.1.12.1.1",  # Enhanced XA Image
        "1.2.840.10008.5.1.4.1.1.12.2.1",  # Enhanced XRF Image
        "1.2.840.10008.5.1.4.1.1.13.1.1",  # X-Ray 3D Angiographic Image
        "1.2.840.10008.5.1.4.1.1.13.1.2",  # X-Ray 3D Craniofacial Image
        "1.2.840.10008.5.1.4.1.1.13.1.3",  # Breast Tomosynthesis Image
        "1.2.840.10008.5.1.4.1.1.13.1.4",  # Breast Projection X-Ray Image - For Presentation
        "1.2.840.10008.5.1.4.1.1.13.1.5",  # Breast Projection X-Ray Image - For Processing
        "1.2.840.10008.5.1.4.1.1.14.1",  # Intravascular OCT Image - For Presentation
        "1.2.840.10008.5.1.4.1.1.14.2",  # Intravascular OCT Image - For Processing
        "1.2.840.10008.5.1.4.1.1.30",  # Parametric Map
        "1.2.840.10008.5.1.4.1.1.66.4",  # Segmentation
        "1.2.840.10008.5.1.4.1.1.77.1.5.4",  # Ophthalmic Tomography Image
        "1.2.840.10008.5.1.4.1.1.128.1",  # Enhanced PET Image
        "1.2.840.10008.5.1.4.1.1.130",  # Legacy Converted Enhanced PET Image
    }
)

#: Attributes of the multi-frame (functional group) IODs that are Type 1C/2C "required if Image Type Value 1 is
#: ORIGINAL or MIXED" and not allowed otherwise: they describe an acquisition the derived pixels no longer
#: come from directly (the source is still referenced by Source Image Sequence). MR Pulse Sequence module
#: (PS3.3 C.8.13.4), Bulk Motion Synchronization module (C.7.6.18.3), and the top-level uses of the CT
#: Acquisition Type and MR sequence macros.
ORIGINAL_ONLY = frozenset(
    {
        "PulseSequenceName",
        "MRAcquisitionType",
        "EchoPulseSequence",
        "MultipleSpinEcho",
        "MultiPlanarExcitation",
        "PhaseContrast",
        "VelocityEncodingAcquisitionSequence",
        "TimeOfFlightContrast",
        "ArterialSpinLabelingContrast",
        "SteadyStatePulseSequence",
        "EchoPlanarPulseSequence",
        "SaturationRecovery",
        "SpectrallySelectedSuppression",
        "OversamplingPhase",
        "GeometryOfKSpaceTraversal",
        "RectilinearPhaseEncodeReordering",
        "SegmentedKSpaceTraversal",
        "CoverageOfKSpace",
        "NumberOfKSpaceTrajectories",
        "BulkMotionCompensationTechnique",
        "BulkMotionSignalSource",
        "SequenceName",
        "AcquisitionType",
    }
)


#: Classic IODs whose Image Type value 2 is PRIMARY only (NM C.8.4.7, PET C.8.9.4): derived images keep it.
_VALUE2_PRIMARY_CLASSES = frozenset({"1.2.840.10008.5.1.4.1.1.20", "1.2.840.10008.5.1.4.1.1.128"})

_UNSIGNED_ANY_RESCALE = EncodingLimits(bits=(8, 16), signed=False, rescale="any")
_PROJECTION_XRAY = EncodingLimits(bits=(8, 16), signed=False, rescale="identity")  # DX C.8.11.3, MG, IO

#: Pixel encodings each IOD allows (PS3.3 module attribute tables); absent classes allow any.
_LIMITS: dict[str, tuple[str, EncodingLimits]] = {
    "1.2.840.10008.5.1.4.1.1.1.1": ("Digital X-Ray image", _PROJECTION_XRAY),
    "1.2.840.10008.5.1.4.1.1.1.1.1": ("Digital X-Ray image", _PROJECTION_XRAY),
    "1.2.840.10008.5.1.4.1.1.1.2": ("Digital Mammography image", _PROJECTION_XRAY),
    "1.2.840.10008.5.1.4.1.1.1.2.1": ("Digital Mammography image", _PROJECTION_XRAY),
    "1.2.840.10008.5.1.4.1.1.1.3": ("Digital Intra-Oral X-Ray image", _PROJECTION_XRAY),
    "1.2.840.10008.5.1.4.1.1.1.3.1": ("Digital Intra-Oral X-Ray image", _PROJECTION_XRAY),
    # US Image module C.8.5.6: MONOCHROME2 samples are 8 bits, unsigned; the IOD has no Modality LUT.
    "1.2.840.10008.5.1.4.1.1.6.1": ("Ultrasound image", EncodingLimits(bits=(8,), signed=False, rescale="none")),
    "1.2.840.10008.5.1.4.1.1.3.1": (
        "Ultrasound multi-frame image",
        EncodingLimits(bits=(8,), signed=False, rescale="none"),
    ),
    "1.2.840.10008.5.1.4.1.1.12.1": ("X-Ray Angiographic image", _UNSIGNED_ANY_RESCALE),
    "1.2.840.10008.5.1.4.1.1.12.2": ("X-Ray Radiofluoroscopic image", _UNSIGNED_ANY_RESCALE),
    "1.2.840.10008.5.1.4.1.1.12.1.1": ("Enhanced XA image", _UNSIGNED_ANY_RESCALE),
    "1.2.840.10008.5.1.4.1.1.12.2.1": ("Enhanced XRF image", _UNSIGNED_ANY_RESCALE),
    # Multi-frame Grayscale Byte / Word Secondary Capture (C.8.6.3): unsigned 8 / unsigned 16 bits.
    "1.2.840.10008.5.1.4.1.1.7.2": (
        "Multi-frame Grayscale Byte Secondary Capture image",
        EncodingLimits(bits=(8,), signed=False, rescale="identity"),
    ),
    "1.2.840.10008.5.1.4.1.1.7.3": (
        "Multi-frame Grayscale Word Secondary Capture image",
        EncodingLimits(bits=(16,), signed=False, rescale="any"),
    ),
}


#: IODs whose values must be in one unit whatever the image (Rescale Type enumerated): a tool that changes what
#: the values mean (normalize, threshold) cannot write a valid object of them and refuses.
_FIXED_UNITS = {"1.2.840.10008.5.1.4.1.1.2.2": "HU"}  # Legacy Converted Enhanced CT (CT Pixel Value Transformation)


@dataclass(frozen=True)
class IodRules:
    """The rules of one object's IOD that derived images must follow."""

    name: str
    limits: EncodingLimits
    functional_groups: bool
    value2_primary: bool
    fixed_units: str | None = None

    def refuse_new_values(self) -> str | None:
        """Why values of another meaning cannot be written into this IOD, or None when they can."""
        if self.fixed_units is None:
            return None
        return f"{self.name} values must be in {self.fixed_units} (Rescale Type fixed by the IOD)"


def rules_for(ds: Dataset) -> IodRules:
    sop_class = str(ds.get("SOPClassUID", "") or "")
    name, limits = _LIMITS.get(sop_class, ("", ANY_ENCODING))
    functional_groups = (
        sop_class in FUNCTIONAL_GROUP_CLASSES
        or "SharedFunctionalGroupsSequence" in ds
        or "PerFrameFunctionalGroupsSequence" in ds
    )
    value2_primary = functional_groups or sop_class in _VALUE2_PRIMARY_CLASSES
    units = _FIXED_UNITS.get(sop_class)
    return IodRules(name or _class_name(sop_class), limits, functional_groups, value2_primary, units)


def _class_name(sop_class: str) -> str:
    name = UID(sop_class).name if sop_class else ""
    return name.removesuffix(" Storage") or "image"
