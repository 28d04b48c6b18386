"""Small synthetic objects of every grayscale image IOD the tools accept, built from the CT phantom.

They are not complete objects (dciodvfy finds errors in most of them): the validity rule the tests check is
that a tool's output has no error its input did not have, so each object only needs its IOD's SOP class and the
attributes whose rules differ between IODs (bits, signedness, rescale, Image Type). Enhanced (functional group)
objects come from highdicom's legacy conversion of a classic series; pydicom's external test data adds real
Enhanced MR and CT files (see test_pydicom_corpus).
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from dicompose.dicom import synthetic


def _image(sop_class: str, modality: str, *, bits: int = 16, frames: int = 1, rescale: bool = True) -> Dataset:
    ds = synthetic._base(sop_class, modality, modality, 1)
    stored = synthetic.phantom_hu(32, 32, 0).astype(np.int32) + 1024
    stored = (stored // 16).astype(np.uint8) if bits == 8 else stored.astype(np.uint16)
    if frames > 1:
        stored = np.stack([stored] * frames)
        ds.NumberOfFrames = frames
    ds.Rows, ds.Columns = 32, 32
    synthetic._set_pixels(ds, stored, 8 if bits == 8 else 12)
    if not rescale:
        for keyword in ("RescaleSlope", "RescaleIntercept", "RescaleType"):
            if keyword in ds:
                delattr(ds, keyword)
    return ds


def _projection(sop_class: str, modality: str) -> Dataset:
    ds = _image(sop_class, modality, rescale=False)
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = "1", "0", "US"
    ds.PixelIntensityRelationship, ds.PixelIntensityRelationshipSign = "LIN", 1
    ds.PresentationLUTShape, ds.BurnedInAnnotation, ds.ImageLaterality = "IDENTITY", "NO", "U"
    return ds


def _cine(sop_class: str, modality: str, image_type: list[str], bits: int = 8) -> Dataset:
    ds = _image(sop_class, modality, bits=bits, frames=2, rescale=False)
    ds.ImageType = image_type
    ds.FrameIncrementPointer, ds.FrameTime = 0x00181063, "33"
    return ds


def classic() -> dict[str, Dataset]:
    made: dict[str, Dataset] = {}
    made["CT"] = synthetic.ct_slice("iod", 0, 32, 32)
    made["MR"] = synthetic.mr_slice("iod", 0, 32, 32)
    made["CR"] = _image("1.2.840.10008.5.1.4.1.1.1", "CR", rescale=False)
    made["CR"].ImageType, made["CR"].BodyPartExamined = ["ORIGINAL", "PRIMARY"], "CHEST"
    made["DX"] = _projection("1.2.840.10008.5.1.4.1.1.1.1", "DX")
    made["MG"] = _projection("1.2.840.10008.5.1.4.1.1.1.2", "MG")
    made["MG"].Laterality = made["MG"].ImageLaterality = "L"
    made["IO"] = _projection("1.2.840.10008.5.1.4.1.1.1.3", "IO")
    nm = _image("1.2.840.10008.5.1.4.1.1.20", "NM", frames=2, rescale=False)
    nm.ImageType = ["ORIGINAL", "PRIMARY", "STATIC", "EMISSION"]
    nm.FrameIncrementPointer, nm.EnergyWindowVector, nm.NumberOfEnergyWindows = 0x00540010, [1, 1], 1
    made["NM"] = nm
    pt = _image("1.2.840.10008.5.1.4.1.1.128", "PT")
    pt.ImageType, pt.Units, pt.CorrectedImage = ["ORIGINAL", "PRIMARY"], "BQML", ["ATTN"]
    pt.DecayCorrection, pt.SeriesType = "START", ["STATIC", "IMAGE"]
    made["PT"] = pt
    made["US"] = _image("1.2.840.10008.5.1.4.1.1.6.1", "US", bits=8, rescale=False)
    made["US"].ImageType = ["ORIGINAL", "PRIMARY", "ABDOMINAL"]
    made["US-multiframe"] = _cine("1.2.840.10008.5.1.4.1.1.3.1", "US", ["ORIGINAL", "PRIMARY", "ABDOMINAL"])
    made["XA"] = _cine("1.2.840.10008.5.1.4.1.1.12.1", "XA", ["ORIGINAL", "PRIMARY", "SINGLE PLANE"])
    made["XA"].PixelIntensityRelationship = "LIN"
    made["XRF"] = copy.deepcopy(made["XA"])
    made["XRF"].SOPClassUID, made["XRF"].Modality = "1.2.840.10008.5.1.4.1.1.12.2", "RF"
    made["SC"] = _image("1.2.840.10008.5.1.4.1.1.7", "OT", bits=8, rescale=False)
    made["SC-byte-multiframe"] = _image("1.2.840.10008.5.1.4.1.1.7.2", "OT", bits=8, frames=2, rescale=False)
    made["SC-word-multiframe"] = _image("1.2.840.10008.5.1.4.1.1.7.3", "OT", frames=2)
    for name in ("SC", "SC-byte-multiframe", "SC-word-multiframe"):
        made[name].ConversionType = "WSD"
    for name in ("SC-byte-multiframe", "SC-word-multiframe"):
        made[name].FrameIncrementPointer = 0x00200013
    return made


def _legacy_series(folder: Path, make: Callable[[str, int, int, int], Dataset], **extra: object) -> list[Dataset]:
    series = []
    for index in range(3):
        ds = make("legacy", index, 32, 32)
        for keyword, value in extra.items():
            setattr(ds, keyword, value)
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        series.append(pydicom.dcmread(synthetic.save(ds, folder / f"classic-{index}.dcm")))
    return series


def legacy_converted(folder: Path) -> dict[str, Path]:
    """Legacy Converted Enhanced CT, MR and PET (functional groups), written into ``folder``."""
    from highdicom.legacy import (
        LegacyConvertedEnhancedCTImage,
        LegacyConvertedEnhancedMRImage,
        LegacyConvertedEnhancedPETImage,
    )

    pet = {"Modality": "PT", "SOPClassUID": "1.2.840.10008.5.1.4.1.1.128", "Units": "BQML"}
    kinds = {
        "legacy-enhanced-CT": (LegacyConvertedEnhancedCTImage, synthetic.ct_slice, {}),
        "legacy-enhanced-MR": (LegacyConvertedEnhancedMRImage, synthetic.mr_slice, {}),
        "legacy-enhanced-PET": (LegacyConvertedEnhancedPETImage, synthetic.ct_slice, pet),
    }
    written: dict[str, Path] = {}
    for name, (cls, make, extra) in kinds.items():
        work = folder / f".{name}"
        work.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image = cls(
                legacy_datasets=_legacy_series(work, make, **extra),
                series_instance_uid=generate_uid(),
                series_number=9,
                sop_instance_uid=generate_uid(),
                instance_number=1,
            )
        written[name] = folder / f"{name}.dcm"
        image.save_as(written[name], enforce_file_format=True)
    return written


def write_all(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {name: synthetic.save(ds, folder / f"{name}.dcm") for name, ds in classic().items()}
    return {**paths, **legacy_converted(folder)}
