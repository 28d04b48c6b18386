"""What makes a DICOM file unusable, found before any work: a damaged element, a missing identity, pixel data
that ends early or does not decode, an image that is not grayscale. One line each, naming the file."""

from __future__ import annotations

import warnings
from pathlib import Path

from pydicom.datadict import dictionary_VM, dictionary_VR
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.encaps import generate_fragments
from pydicom.tag import BaseTag
from pydicom.uid import UID
from pydicom.valuerep import VR

from dicompose.errors import InputError, UnsupportedInputError

_GRAYSCALE = ("MONOCHROME1", "MONOCHROME2")


def check_header(ds: Dataset, path: Path, *, pixels: bool = True) -> None:
    """Refuse a dataset whose elements cannot all be decoded or whose pixel data is damaged, with one line
    naming the file, the element and the cause (``pixels=False``: a header read without its pixel data)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _scan(getattr(ds, "file_meta", Dataset()), path)  # a damaged file meta misleads all parsing after it
        _scan(ds, path)
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if syntax is not None and not UID(str(syntax)).is_transfer_syntax:
        raise InputError(path, f"corrupt DICOM file: unknown transfer syntax {str(syntax)[:64]!r}")
    if syntax is None and "PixelData" in ds and ds["PixelData"].is_undefined_length:
        raise InputError(path, "corrupt DICOM file: compressed pixel data but no Transfer Syntax UID (0002,0010)")
    if pixels:
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
        raise InputError(path, f"compressed pixel data damaged ({short_error(exc)})") from None
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
            raise InputError(path, f"damaged element {tag} ({short_error(cause)})") from None


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


def short_error(exc: BaseException | str) -> str:
    """A one-line, bounded description of a third-party exception (no multi-line decoder dumps)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."
