"""The identifiers of a DICOM file the audit log needs (to be pseudonymised there, never logged raw)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pydicom

_TAGS = ["StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "PatientID"]


def identifiers(path: Path) -> dict[str, str | None]:
    """study/series/instance UIDs and patient id of a DICOM file (None where absent or unreadable)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=_TAGS)
    except Exception:  # not DICOM, or damaged: the file is still audited by path and hash
        return {"study": None, "series": None, "instance": None, "patient": None}
    return {
        "study": str(ds.get("StudyInstanceUID", "") or "") or None,
        "series": str(ds.get("SeriesInstanceUID", "") or "") or None,
        "instance": str(ds.get("SOPInstanceUID", "") or "") or None,
        "patient": str(ds.get("PatientID", "") or "") or None,
    }
