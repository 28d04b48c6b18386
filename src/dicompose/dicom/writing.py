"""Writing DICOM: explicit VR little endian, file meta rebuilt, published atomically (temp file + rename)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import BinaryIO

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filewriter import dcmwrite
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from dicompose.config import UID_ROOT
from dicompose.fileio import Digest, Hasher, atomic_write, atomic_write_bytes, folder_sync_wanted

#: Identifies files written by dicompose (deterministic, derived from the name under our UID root).
IMPLEMENTATION_CLASS_UID = generate_uid(prefix=UID_ROOT, entropy_srcs=["dicompose implementation class"])
_IN_MEMORY_LIMIT = 64 << 20  # bytes of pixel data encoded in memory before writing
_BYTE_WIDTH = {"OW": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8}


def implementation_version_name(version: str) -> str:
    """(0002,0013) is SH, at most 16 characters."""
    return f"DICOMPOSE_{version}"[:16]


def rebuild_file_meta(ds: Dataset, version: str) -> None:
    """New file meta for an explicit VR little endian file of ``ds`` (old group lengths and TS dropped)."""
    meta = FileMetaDataset()
    meta.FileMetaInformationVersion = b"\x00\x01"
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    meta.ImplementationVersionName = implementation_version_name(version)
    ds.file_meta = meta


def convert_raw_values_to_little_endian(ds: Dataset) -> None:
    """Byte-swap OW/OF/OL/OD/OV values of a dataset read as big endian (pydicom leaves those to the caller)."""
    for element in ds:
        if element.VR == "SQ":
            for item in element.value or []:
                convert_raw_values_to_little_endian(item)
        elif element.VR in _BYTE_WIDTH and element.tag != 0x7FE00010 and isinstance(element.value, bytes):
            width = _BYTE_WIDTH[element.VR]
            raw = element.value
            usable = len(raw) - len(raw) % width
            swapped = bytearray(raw)
            for offset in range(width):
                swapped[offset:usable:width] = raw[width - 1 - offset : usable : width]
            element.value = bytes(swapped)


def write_atomic(ds: Dataset, destination: Path, *, hasher: Hasher | None = None) -> Digest | None:
    """Write ``ds`` to ``destination`` atomically (readers see the old file or the complete new one); with
    ``hasher``, return the sha256 of the bytes written, hashed as they were written.

    The file is encoded in memory first (pydicom's hundreds of small writes cost far less into a buffer than
    into a file, and the digest is one update) unless its pixel data is large: then it streams, so memory
    never holds two copies of a big multi-frame object.
    """
    sync_folder = folder_sync_wanted()
    pixel_data = ds.get("PixelData")
    if pixel_data is not None and len(pixel_data) > _IN_MEMORY_LIMIT:

        def encode(fh: BinaryIO) -> None:
            dcmwrite(fh, ds, enforce_file_format=True)

        return atomic_write(destination, encode, hasher=hasher, sync_folder=sync_folder)
    buffer = io.BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    return atomic_write_bytes(destination, buffer.getvalue(), hasher=hasher, sync_folder=sync_folder)
