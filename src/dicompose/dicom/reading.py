"""Reading DICOM files and their grayscale pixels, translating every pydicom failure into one clear line."""

from __future__ import annotations

import contextlib
import filecmp
import io
import os
import struct
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt
import pydicom
from pydicom.datadict import dictionary_VM, dictionary_VR
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileDataset
from pydicom.encaps import generate_fragments
from pydicom.errors import InvalidDicomError
from pydicom.filereader import read_partial
from pydicom.pixels.decoders.base import get_decoder
from pydicom.pixels.processing import apply_modality_lut
from pydicom.tag import BaseTag
from pydicom.uid import UID
from pydicom.valuerep import VR

from dicompose.dicom.quicklook import HEAD_BYTES, bare_dataset_syntax, first_values, is_dicom
from dicompose.errors import InputError, UnsupportedInputError
from dicompose.fileio import Digest, Hasher

_PREAMBLE_LENGTH = 128
_SOP_INSTANCE_UID = 0x00080018
_GRAYSCALE = ("MONOCHROME1", "MONOCHROME2")


def looks_like_dicom(path: Path) -> bool:
    """True when the file is DICOM: the Part 10 'DICM' prefix or a bare data set (cheap: its first bytes)."""
    return peek(path).dicom


@dataclass(frozen=True)
class Peek:
    """What the first bytes of a file say: DICOM Part 10 or not, and which instance it holds."""

    dicom: bool
    instance_uid: str | None = None


def peek(path: Path) -> Peek:
    """Whether ``path`` is DICOM (the 'DICM' prefix, or a bare data set) and, if so, its SOP Instance UID (None
    where it cannot be read: the tool reports why). One open and the first few hundred bytes: discovery asks
    this of every file it finds, so the batch learns the UIDs it checks for duplicates without reading any
    file twice."""
    try:
        with path.open("rb") as fh:
            head = fh.read(HEAD_BYTES)
            if not is_dicom(head):
                return Peek(dicom=False)
            found = first_values(head, {_SOP_INSTANCE_UID: "UI"}, whole=len(head) < HEAD_BYTES)
            if found is not None:
                return Peek(dicom=True, instance_uid=found[_SOP_INSTANCE_UID])
            fh.seek(0)  # the first bytes cannot tell (see quicklook): pydicom reads as far as it needs
            return Peek(dicom=True, instance_uid=_instance_uid(fh))
    except OSError:
        return Peek(dicom=False)


def _instance_uid(fh: BinaryIO) -> str | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # stop at the first element after (0008,0018): a few hundred bytes, not the whole header
            ds = read_partial(fh, stop_when=lambda tag, _vr, _length: tag > _SOP_INSTANCE_UID, force=True)
        return str(ds.get("SOPInstanceUID", "") or "") or None
    except Exception:  # damaged or not DICOM after all: the tool's own read says why
        return None


def read_dataset(path: Path, *, stop_before_pixels: bool = False) -> FileDataset:
    """Read a DICOM Part 10 file; any failure becomes an :class:`InputError` naming the file.

    Every element is decoded now (pydicom decodes lazily, on first use): a damaged value is refused here, with
    the element it is in, instead of failing later in whatever code first touches it.
    """
    with _read_errors(path):
        ds = _parse(path, path, stop_before_pixels=stop_before_pixels)
    check_header(ds, path)
    return ds


def _parse(source: Path | io.BytesIO, path: Path, *, stop_before_pixels: bool = False) -> FileDataset:
    """pydicom's parse, its warnings kept quiet (they would flood batch output) but for the one that says
    the file ended inside an element: pydicom keeps what came before, so it is the only sign of truncation."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            ds = pydicom.dcmread(source, stop_before_pixels=stop_before_pixels)
        except InvalidDicomError:
            ds = _parse_bare(source, stop_before_pixels)
    if any("End of file reached" in str(w.message) for w in caught):
        raise InputError(path, "file truncated: it ends inside an element (a copy or transfer stopped early?)")
    return ds


def _parse_bare(source: Path | io.BytesIO, stop_before_pixels: bool) -> FileDataset:
    """A bare data set (no Part 10 header; see :func:`~dicompose.dicom.quicklook.bare_dataset_syntax`), read
    with the transfer syntax its first elements show, written into its file meta so the rest reads it as any
    file. Anything else is not DICOM: the caller's InvalidDicomError stands."""
    if isinstance(source, io.BytesIO):
        source.seek(0)
        head = source.read(HEAD_BYTES)
        source.seek(0)
    else:
        with source.open("rb") as fh:
            head = fh.read(HEAD_BYTES)
    syntax = bare_dataset_syntax(head)
    if syntax is None:
        raise InvalidDicomError("neither a DICOM Part 10 file nor a bare data set")
    ds = pydicom.dcmread(source, stop_before_pixels=stop_before_pixels, force=True)
    ds.file_meta.TransferSyntaxUID = UID(syntax)
    return ds


def instance_uid(path: Path) -> str | None:
    """The SOP Instance UID in ``path``'s header, or None where it cannot be read (the tool reports why)."""
    return peek(path).instance_uid


def is_whole(path: Path) -> bool:
    """Whether ``path`` reads as a whole DICOM object, its pixels decoded too (asked only of files that share
    a UID: a damaged copy of a good file is no rival, it fails on its own damage)."""
    return damage(path) is None


def damage(path: Path) -> str | None:
    """What is wrong with ``path`` (the one-line refusal a tool would give), or None if it reads whole."""
    try:
        ds = read_dataset(path)
        if "PixelData" in ds:
            decoded_pixels(ds, path)
    except InputError as exc:
        return str(exc)
    return None


def same_object(a: Path, b: Path) -> bool:
    """Whether two files hold one object: byte-identical, or the same pixels (decoded) and the same elements
    in other encodings (another transfer syntax of one instance). Asked only of files sharing a UID."""
    if filecmp.cmp(a, b, shallow=False):
        return True
    try:
        first, second = read_dataset(a), read_dataset(b)
        if ("PixelData" in first) != ("PixelData" in second):
            return False
        if "PixelData" in first:
            if not np.array_equal(decoded_pixels(first, a), decoded_pixels(second, b)):
                return False
            del first.PixelData, second.PixelData
        return same_elements(first, second)
    except InputError:
        return False


#: How a binary number VR's values are laid out as bytes, for comparing them with the same values as OB/OW.
_PACKING = {"US": "<H", "SS": "<h", "UL": "<I", "SL": "<i", "FL": "<f", "FD": "<d", "UV": "<Q", "SV": "<q"}


def same_elements(first: Dataset, second: Dataset) -> bool:
    """Element by element, the same values in whatever encoding: a value an implicit VR file gives as OW bytes
    (LUT Data, whose VR is "US or OW") equals the US numbers an explicit VR file gives; sequences recurse."""
    tags = list(first.keys())  # keys: no value decoded yet
    if set(tags) != set(second.keys()):
        return False
    for tag in tags:
        a, b = first[tag], second[tag]
        if a.value == b.value:
            continue
        if a.VR == "SQ" and b.VR == "SQ":
            items_a, items_b = list(a.value or []), list(b.value or [])
            if len(items_a) != len(items_b) or not all(map(same_elements, items_a, items_b)):
                return False
            continue
        as_bytes = _as_bytes(a.VR, a.value)
        if as_bytes is None or as_bytes != _as_bytes(b.VR, b.value):
            return False
    return True


def _as_bytes(vr: str, value: object) -> bytes | None:
    """A binary value as little endian bytes (None for text and anything else)."""
    if isinstance(value, bytes):
        return value
    packing = _PACKING.get(vr)
    if packing is None or value is None:
        return None
    numbers = list(value) if isinstance(value, list | tuple) or hasattr(value, "__iter__") else [value]
    try:
        return b"".join(struct.pack(packing, n) for n in numbers)
    except (struct.error, TypeError):
        return None


def read_dataset_hashed(path: Path, hasher: Hasher) -> tuple[FileDataset, Digest]:
    """:func:`read_dataset`, and the sha256 of the file's bytes: the file is read once, into memory, and
    hashed from those bytes (on ``hasher``'s thread, once the work is done)."""
    with _read_errors(path):
        data = path.read_bytes()
        digest = hasher.sha256()
        digest.update(data)
        ds = _parse(io.BytesIO(data), path)
    ds.filename = str(path)  # as if read from the path
    check_header(ds, path)
    return ds, digest


def check_header(ds: Dataset, path: Path) -> None:
    """Refuse a dataset whose elements cannot all be decoded or whose pixel data is damaged, with one line
    naming the file, the element and the cause."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _scan(getattr(ds, "file_meta", Dataset()), path)  # a damaged file meta misleads all parsing after it
        _scan(ds, path)
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if syntax is not None and not UID(str(syntax)).is_transfer_syntax:
        raise InputError(path, f"corrupt DICOM file: unknown transfer syntax {str(syntax)[:64]!r}")
    if syntax is None and "PixelData" in ds and ds["PixelData"].is_undefined_length:
        raise InputError(path, "corrupt DICOM file: compressed pixel data but no Transfer Syntax UID (0002,0010)")
    _check_pixel_data(ds, path)
    _check_image_has_pixels(ds, path)


def _check_image_has_pixels(ds: Dataset, path: Path) -> None:
    """An image object whose pixels are not there was cut short (pydicom drops a partial element at the end
    without a word) or is damaged: refused as such by every tool, never skipped as a non-image or copied on."""
    if any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        return
    if not ds.keys():
        raise InputError(path, "file truncated: no data set after the file meta")
    if _ends_early(ds, path):
        raise InputError(path, "file truncated: it ends inside an element's header (no pixel data left)")
    sop_class = str(getattr(ds.get("SOPClassUID"), "name", "") or "")
    if "Image Storage" in sop_class:
        raise InputError(
            path, f"truncated or damaged: a {sop_class} object without its pixel data (Type 1 in every image IOD)"
        )


def require_identity(ds: Dataset, path: Path) -> None:
    """What a tool that writes a new object from ``ds`` needs: its SOP Class and Instance UIDs (Type 1 in every
    IOD; the class decides the rules the output follows, the instance its new UIDs). Called once the tool has
    decided the object is one it handles, so a non-image is refused as such first."""
    if "SOPClassUID" not in ds and str(getattr(ds, "file_meta", {}).get("MediaStorageSOPClassUID", "")) == (
        "1.2.840.10008.1.3.10"
    ):
        raise UnsupportedInputError(path, "a DICOMDIR (media directory), not an image or instance")
    for keyword, tag in (("SOPClassUID", "(0008,0016)"), ("SOPInstanceUID", "(0008,0018)")):
        if not str(ds.get(keyword, "") or "").strip():
            raise InputError(path, f"corrupt DICOM file: no {keyword} {tag}")
    if not UID(str(ds.SOPClassUID)).is_valid:
        raise InputError(path, f"corrupt DICOM file: SOPClassUID {str(ds.SOPClassUID)[:64]!r} is not a valid UID")


_PIXEL_DESCRIPTION = ("Rows", "Columns", "BitsAllocated", "SamplesPerPixel", "PhotometricInterpretation")


def _check_pixel_data(ds: Dataset, path: Path) -> None:
    """Pixel data whose structure is damaged is refused, whatever a tool would do with it (de-identification
    copies it unchanged, so it must be whole): the Image Pixel module's Type 1 attributes must describe it;
    encapsulated data must be a run of even-length items filling the value exactly; native data must be as
    long as Rows x Columns x frames x samples x bits."""
    if "PixelData" not in ds:
        return
    missing = [k for k in _PIXEL_DESCRIPTION if k not in ds or ds[k].value in (None, "")]
    if missing:
        raise InputError(path, f"corrupt image: missing {', '.join(missing)}")
    try:
        if int(ds.get("NumberOfFrames", 1) or 1) < 1:
            raise ValueError
    except (TypeError, ValueError):
        raise InputError(path, f"corrupt image: Number of Frames {str(ds.NumberOfFrames)[:20]!r} is no count") from None
    data = ds.get("PixelData")
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if not isinstance(data, bytes) or syntax is None:
        return
    if not UID(str(syntax)).is_encapsulated:
        _check_native_pixel_length(ds, data, path)
        return
    try:
        fragments = list(generate_fragments(data))
    except Exception as exc:
        raise InputError(path, f"compressed pixel data damaged ({_short(exc)})") from None
    whole = sum(8 + len(f) for f in fragments) == len(data) and not any(len(f) % 2 for f in fragments)
    if not whole or not ds["PixelData"].is_undefined_length:  # encapsulated data has undefined length
        raise InputError(path, "compressed pixel data damaged (not a whole run of items of undefined length)")


def _check_native_pixel_length(ds: Dataset, data: bytes, path: Path) -> None:
    try:
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        samples = int(ds.SamplesPerPixel)
        if str(ds.PhotometricInterpretation).strip() in ("YBR_FULL_422", "YBR_PARTIAL_422"):
            samples = 2  # two chrominance samples shared by each pair of pixels (PS3.3 C.7.6.3.1.2)
        expected = int(ds.Rows) * int(ds.Columns) * frames * samples * int(ds.BitsAllocated)
    except (AttributeError, TypeError, ValueError):
        return  # the tools that need these attributes say so themselves
    if len(data) * 8 < expected:
        raise InputError(path, f"pixel data truncated: {len(data)} bytes, the header describes {(expected + 7) // 8}")


#: Bytes per value of the binary number VRs: their value count follows from their length alone.
_BINARY_SIZES = {"US": 2, "SS": 2, "UL": 4, "SL": 4, "FL": 4, "AT": 4, "FD": 8, "UV": 8, "SV": 8}
_KNOWN_VRS = frozenset(vr.value for vr in VR)
_UNDEFINED_LENGTH = 0xFFFFFFFF


def _scan(ds: Dataset, path: Path) -> None:
    """Check every element's encoding without decoding values the tools never read (pydicom writes those
    raw, and decoding them all would cost more than the rest of the header work): a VR no standard has, a
    binary value whose length is no multiple of its size or whose count the dictionary forbids, and, for the
    elements that are decoded here (sequences, odd lengths), any decoding failure, are refused."""
    for tag in sorted(ds.keys()):
        try:
            element = ds.get_item(tag)  # raw where pydicom can keep it raw (it decodes some kinds here already)
            if isinstance(element, RawDataElement):
                declared, present = element.length, len(element.value or b"")
                if declared != _UNDEFINED_LENGTH and element.value is not None and present < declared:
                    raise InputError(path, f"file truncated: element {tag} declares {declared} bytes, {present} remain")
                if element.VR is not None and element.VR not in _KNOWN_VRS:
                    raise ValueError(f"unknown value representation {element.VR!r}")
                # implicit VR: the dictionary's VR is the one the value is read (and written back) as
                vr = element.VR if element.VR is not None else _dictionary_vr(tag)
                size = _BINARY_SIZES.get(str(vr))
                if size is not None and element.length != _UNDEFINED_LENGTH:
                    if element.length % size:
                        raise ValueError(f"length {element.length} is no multiple of {size} ({vr})")
                    _check_count(tag, element.length // size)
                implicit_sequence = element.VR is None and _dictionary_sequence(tag)
                if element.VR not in ("SQ", "UN") and not implicit_sequence and element.length % 2 == 0:
                    continue  # raw and well-formed: written back as it is (UN: pydicom re-reads it by dictionary)
                element = ds[tag]  # sequences, implicit VR, odd lengths: decoded now, and failures caught here
            if element.VR == "SQ":
                for item in element.value or []:
                    _scan(item, path)
            elif element.VR in _BINARY_SIZES and not tag.is_private and not isinstance(element.value, bytes):
                _check_count(tag, element.VM)
        except InputError:
            raise
        except Exception as exc:
            cause = str(exc).split("\n")[-1].strip() or type(exc).__name__
            if "got exception:" in str(exc):
                cause = str(exc).split("got exception:", 1)[1].split("\n")[0].strip()
            raise InputError(path, f"damaged element {tag} ({_short(cause)})") from None


def _dictionary_vr(tag: BaseTag) -> str | None:
    """The data dictionary's VR of a public tag (None for private tags, unknown ones, or several VRs)."""
    if BaseTag(tag).is_private:
        return None
    try:
        return str(dictionary_VR(tag))
    except KeyError:
        return None


def _dictionary_sequence(tag: BaseTag) -> bool:
    try:
        return bool(dictionary_VR(tag) == "SQ")
    except KeyError:
        return False


def _check_count(tag: BaseTag, count: int) -> None:
    """A binary number's count comes from its length alone: one outside the dictionary's VM is a damaged length
    (text values with too many or too few values are common in real files and are left to the validators)."""
    if tag.is_private:
        return
    try:
        allowed = dictionary_VM(tag)
    except KeyError:
        return
    low, _, high = allowed.partition("-")
    if not low.isdigit():
        return
    too_many = (high.isdigit() and count > int(high)) or (not high and count > int(low))
    if count and (count < int(low) or too_many):
        raise ValueError(f"{count} values where the standard allows {allowed}")


@contextlib.contextmanager
def _read_errors(path: Path) -> Iterator[None]:
    """Translate every failure to read ``path`` as DICOM into one :class:`InputError` line naming it."""
    try:
        yield
    except InvalidDicomError:
        raise UnsupportedInputError(path, "not a DICOM file (no DICOM file meta information)") from None
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except IsADirectoryError:
        raise InputError(path, "is a directory, not a file") from None
    except PermissionError:
        raise InputError(path, "permission denied") from None
    except OSError as exc:
        raise InputError(path, f"cannot read file ({exc.strerror or exc})") from None
    except Exception as exc:  # pydicom raises many types on corrupt data; all mean "damaged file"
        raise InputError(path, f"corrupt DICOM file ({_short(exc)})") from None


@dataclass(frozen=True)
class GrayscalePixels:
    """Stored values shaped (frames, rows, cols) in native byte order, with each frame's modality transform."""

    stored: npt.NDArray[Any]
    slopes: npt.NDArray[np.float64]
    intercepts: npt.NDArray[np.float64]
    #: True when the values came through a Modality LUT Sequence (already modality values, slope 1).
    from_modality_lut: bool = False


def _ends_early(ds: Dataset, path: Path) -> bool:
    """Whether bytes follow the last element pydicom parsed: a file cut inside an element's tag or length,
    which pydicom drops without a warning (a cut inside a value is caught by :func:`_parse`)."""
    tags = sorted(ds.keys())
    if not tags:
        return False
    last = ds.get_item(tags[-1])
    if not isinstance(last, RawDataElement) or last.length == _UNDEFINED_LENGTH or last.value_tell is None:
        return False
    try:
        size = path.stat().st_size
    except OSError:
        return False
    return bool(size > last.value_tell + last.length)


def check_normalizable(ds: Dataset, path: Path) -> None:
    """Refuse objects the normalize tool cannot remap faithfully, each with one clear reason."""
    if "PixelData" not in ds:
        if "FloatPixelData" in ds or "DoubleFloatPixelData" in ds:
            raise UnsupportedInputError(path, "floating-point pixel data is not supported")
        sop_class = str(getattr(ds.get("SOPClassUID"), "name", "") or "")
        kind = str(ds.get("Modality", "") or sop_class or "unknown")
        raise UnsupportedInputError(path, f"not an image: no pixel data (object type {kind})")
    interpretation = str(ds.PhotometricInterpretation).strip()
    if int(ds.SamplesPerPixel) != 1 or interpretation not in _GRAYSCALE:
        raise UnsupportedInputError(
            path, f"colour images are not supported (PhotometricInterpretation {interpretation})"
        )
    if int(ds.BitsAllocated) == 1:
        raise UnsupportedInputError(path, "1-bit (binary/segmentation) images are not supported")


@contextlib.contextmanager
def _native_stderr_quiet(compressed: bool) -> Iterator[None]:
    """While a native decoder runs, its own writes to stderr (OpenJPEG's diagnostics, a Rust decoder's panic
    message and backtrace) go nowhere: a broken file is reported in our one line, never in a page of theirs.
    Only around compressed data (native code); fd 2 is restored however the decode ends."""
    if not compressed:
        yield
        return
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "wb") as null:  # noqa: PTH123
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def decoded_pixels(ds: Dataset, path: Path) -> npt.NDArray[Any]:
    """``ds.pixel_array``, with any decoder failure as one :class:`InputError` line naming the file."""
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    native = _native_little_endian(ds, str(syntax or ""))
    if native is not None:
        return native
    compressed = syntax is not None and UID(str(syntax)).is_compressed
    try:
        with warnings.catch_warnings(), _native_stderr_quiet(compressed):
            warnings.simplefilter("ignore")
            return ds.pixel_array
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # decoders raise ValueError/RuntimeError/... and Rust ones PanicException
        raise InputError(path, f"cannot decode pixel data ({_short(exc)})") from None


_NATIVE_LITTLE_ENDIAN = frozenset({"1.2.840.10008.1.2", "1.2.840.10008.1.2.1"})


def _native_little_endian(ds: Dataset, syntax: str) -> npt.NDArray[Any] | None:
    """What ``ds.pixel_array`` gives for the commonest pixel data (uncompressed, little endian, one sample of
    8, 16 or 32 bits), read straight from the bytes: pydicom's decoder machinery costs eight times as much
    per slice. None where it is anything else (pydicom decodes it). Equality with pydicom is tested."""
    data = ds.get("PixelData")
    if syntax not in _NATIVE_LITTLE_ENDIAN or not isinstance(data, bytes):
        return None
    try:
        samples, allocated = int(ds.SamplesPerPixel), int(ds.BitsAllocated)
        stored, signed = int(ds.BitsStored), int(ds.PixelRepresentation)
        rows, columns, frames = int(ds.Rows), int(ds.Columns), int(ds.get("NumberOfFrames", 1) or 1)
    except (AttributeError, TypeError, ValueError):
        return None
    if samples != 1 or allocated not in (8, 16, 32) or not 0 < stored <= allocated or signed not in (0, 1):
        return None
    count = rows * columns * frames
    if count <= 0 or len(data) < count * allocated // 8:
        return None
    array = np.frombuffer(data, np.dtype(f"<{'iu'[signed == 0]}{allocated // 8}"), count).copy()
    if stored < allocated:  # unused high bits mean nothing (PS3.5 8.1.1): cleared, or the sign extended
        np.left_shift(array, allocated - stored, out=array)
        np.right_shift(array, allocated - stored, out=array)
    return array.reshape((frames, rows, columns) if frames > 1 else (rows, columns))


def check_compressed_pixels_decode(ds: Dataset, path: Path) -> None:
    """For tools that copy compressed pixel data unchanged (de-identification): refuse data no decoder can
    read, so the copy is never a damaged image. Skipped where no decoder for the syntax is installed."""
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if "PixelData" not in ds or syntax is None or not UID(str(syntax)).is_encapsulated:
        return
    try:
        available = get_decoder(UID(str(syntax))).is_available
    except NotImplementedError:
        available = False
    if available:
        decoded_pixels(ds, path)


def grayscale_pixels(ds: Dataset, path: Path) -> GrayscalePixels:
    """Decode (decompressing if needed) the stored values and each frame's modality transform."""
    check_normalizable(ds, path)
    array = decoded_pixels(ds, path)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if array.size != frames * int(ds.Rows) * int(ds.Columns):
        raise InputError(path, f"pixel data holds {array.size} values, not Number of Frames x Rows x Columns")
    stored = np.ascontiguousarray(array.reshape(frames, int(ds.Rows), int(ds.Columns)))
    if not stored.dtype.isnative:
        stored = stored.astype(stored.dtype.newbyteorder("="))
    if "ModalityLUTSequence" in ds:
        values = np.asarray(apply_modality_lut(stored, ds), dtype=np.float64)
        ones = np.ones(frames)
        return GrayscalePixels(values, ones, np.zeros(frames), from_modality_lut=True)
    slopes, intercepts = frame_rescale(ds, frames, path)
    return GrayscalePixels(stored, slopes, intercepts)


def frame_rescale(ds: Dataset, frames: int, path: Path) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Per-frame (slope, intercept): top level, enhanced functional groups, or RT Dose Grid Scaling."""
    slopes = np.ones(frames)
    intercepts = np.zeros(frames)
    try:
        if "RescaleSlope" in ds or "RescaleIntercept" in ds:
            slopes[:] = float(ds.get("RescaleSlope", 1) or 1)
            intercepts[:] = float(ds.get("RescaleIntercept", 0) or 0)
        elif "DoseGridScaling" in ds:
            slopes[:] = float(ds.DoseGridScaling)
        else:
            shared = _transformation(ds.get("SharedFunctionalGroupsSequence"), 0)
            if shared is not None:
                slopes[:], intercepts[:] = shared
            per_frame = ds.get("PerFrameFunctionalGroupsSequence")
            for index in range(min(frames, len(per_frame or []))):
                pair = _transformation(per_frame, index)
                if pair is not None:
                    slopes[index], intercepts[index] = pair
    except (TypeError, ValueError) as exc:
        raise InputError(path, f"corrupt rescale attributes ({_short(exc)})") from None
    if not np.all(np.isfinite(slopes)) or not np.all(np.isfinite(intercepts)) or np.any(slopes == 0):
        raise InputError(path, "invalid rescale slope/intercept (zero or not finite)")
    return slopes, intercepts


def _transformation(groups: Any, index: int) -> tuple[float, float] | None:
    """The Pixel Value Transformation (slope, intercept) of functional group item ``index``, if any."""
    if not groups or index >= len(groups):
        return None
    sequence = groups[index].get("PixelValueTransformationSequence")
    if not sequence:
        return None
    item = sequence[0]
    return float(item.get("RescaleSlope", 1) or 1), float(item.get("RescaleIntercept", 0) or 0)


def _short(exc: BaseException | str) -> str:
    """A one-line, bounded description of a third-party exception (no multi-line decoder dumps)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."
