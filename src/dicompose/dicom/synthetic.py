"""Synthetic, patient-free DICOM images: the bundled sample scans, benchmark cohorts and test cases.

Everything is deterministic (UIDs derived from names, no clock), so regenerated files are byte-identical.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, MRImageStorage, generate_uid

from dicompose.config import UID_ROOT
from dicompose.dicom.writing import IMPLEMENTATION_CLASS_UID, write_atomic

_ELLIPSES = (  # (value HU, centre x, centre y, semi-axis a, semi-axis b): a head-like phantom
    (40.0, 0.0, 0.0, 0.69, 0.92),
    (-60.0, 0.0, -0.0184, 0.6624, 0.874),
    (1000.0, 0.22, 0.0, 0.11, 0.31),
    (1000.0, -0.22, 0.0, 0.16, 0.41),
    (70.0, 0.0, 0.35, 0.21, 0.25),
    (-900.0, 0.0, 0.1, 0.046, 0.046),
)


def synthetic_uid(*parts: object) -> str:
    return str(generate_uid(prefix=UID_ROOT, entropy_srcs=["dicompose synthetic", *map(str, parts)]))


def phantom_hu(rows: int, cols: int, slice_index: int = 0) -> npt.NDArray[np.int16]:
    """A head phantom in Hounsfield units (air -1000 outside), varying slightly from slice to slice."""
    y, x = np.mgrid[-1 : 1 : rows * 1j, -1 : 1 : cols * 1j]
    image = np.full((rows, cols), -1000.0)
    scale = 1.0 - 0.25 * (slice_index % 32) / 32  # shrinks along a 32-slice 'head', then repeats
    for value, cx, cy, a, b in _ELLIPSES:
        inside = ((x - cx) / (a * scale)) ** 2 + ((y - cy) / (b * scale)) ** 2 <= 1
        image[inside] = value if value != 40.0 else 40.0 + 10 * (slice_index % 32)
    ramp = (np.arange(cols) % 17).astype(np.float64)  # texture so values are not all equal within tissue
    image += np.where(image > -1000, ramp, 0)
    clipped: npt.NDArray[np.int16] = np.clip(np.rint(image), -1024, 3071).astype(np.int16)
    return clipped


def _base(sop_class: str, modality: str, series: str, index: int) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = synthetic_uid(series, "instance", index)
    ds.StudyInstanceUID = synthetic_uid(series, "study")
    ds.SeriesInstanceUID = synthetic_uid(series, "series")
    ds.FrameOfReferenceUID = synthetic_uid(series, "frame-of-reference")
    ds.Modality = modality
    ds.PatientPosition = "HFS"
    ds.BodyPartExamined = "HEAD"
    ds.PatientName = "PHANTOM^SYNTHETIC"
    ds.PatientID = "SYNTH-0001"
    ds.PatientBirthDate = ""
    ds.PatientSex = "O"
    ds.StudyDate = "20240101"
    ds.StudyTime = "120000"
    ds.AccessionNumber = ""
    ds.ReferringPhysicianName = ""
    ds.StudyID = "1"
    ds.SeriesNumber = 1
    ds.InstanceNumber = index + 1
    ds.Manufacturer = "dicompose synthetic phantom"
    ds.PatientOrientation = ""
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.ImagePositionPatient = [0.0, 0.0, float(index) * 2.5]
    ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    ds.PixelSpacing = [0.5, 0.5]
    ds.SliceThickness = 2.5
    ds.PositionReferenceIndicator = ""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    return ds


def ct_slice(series: str, index: int, rows: int = 512, cols: int = 512) -> Dataset:
    """A 12-bit unsigned CT slice of the phantom (RescaleIntercept -1024 like most scanners: stored = HU + 1024)."""
    ds = _base(CTImageStorage, "CT", series, index)
    hu = phantom_hu(rows, cols, index)
    stored = (hu.astype(np.int32) + 1024).astype(np.uint16)  # HU is clipped to [-1024, 3071]: 0..4095
    ds.KVP = 120
    ds.AcquisitionNumber = 1
    ds.RescaleIntercept = -1024
    ds.RescaleSlope = 1
    ds.RescaleType = "HU"
    ds.WindowCenter = 40
    ds.WindowWidth = 400
    _set_pixels(ds, stored, bits_stored=12)
    return ds


def mr_slice(series: str, index: int, rows: int = 256, cols: int = 256) -> Dataset:
    """A 16-bit unsigned MR-like slice (no rescale), for a second modality in the samples."""
    ds = _base(MRImageStorage, "MR", series, index)
    ds.ScanningSequence = "SE"
    ds.SequenceVariant = "NONE"
    ds.ScanOptions = ""
    ds.MRAcquisitionType = "2D"
    ds.EchoTrainLength = 1
    ds.RepetitionTime = 500
    ds.EchoTime = 15
    signal = (phantom_hu(rows, cols, index).astype(np.int32) + 1000) // 3
    _set_pixels(ds, signal.astype(np.uint16), bits_stored=12)
    return ds


def _set_pixels(ds: Dataset, stored: npt.NDArray[np.integer], bits_stored: int) -> None:
    ds.Rows, ds.Columns = stored.shape[-2:]
    ds.BitsAllocated = stored.dtype.itemsize * 8
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 1 if stored.dtype.kind == "i" else 0
    ds.PixelData = stored.astype(stored.dtype.newbyteorder("<")).tobytes()


def save(ds: Dataset, path: Path) -> Path:
    """Write ``ds`` as a Part 10 file (explicit VR little endian), atomically."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    ds.file_meta = meta
    write_atomic(ds, path)
    return path


def write_ct_series(folder: Path, series: str, count: int, rows: int = 512, cols: int = 512) -> list[Path]:
    """``count`` CT slices of one series as ``folder/slice_NNNN.dcm``."""
    return [save(ct_slice(series, i, rows, cols), folder / f"slice_{i:04d}.dcm") for i in range(count)]
