"""The normalize kernel: pure numpy, no DICOM objects.

Input is *stored* pixel values plus a per-frame linear modality transform (value = stored x slope + intercept).
Output is new stored values for a chosen :class:`OutputEncoding`, such that the output's modality values span
exactly [low, high] (low at the input's minimum modality value, high at its maximum, linear in between).

Integer data of 8 or 16 bits goes through a lookup table indexed by the raw bit pattern: the mapping is
computed once per distinct stored value (in float64, so every pixel gets the correctly rounded value) and the
pixels are only gathered, chunk by chunk so the index temporaries stay in cache.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from dicompose.params import ValueRange, format_ds  # pure text and data: defined with the parameters

#: Pixels per chunk for the LUT gather: the intp index temporary (8 bytes/pixel) stays in L2 cache.
_CHUNK = 1 << 15
#: Largest stored-value span remapped through a lookup table (bigger spans use direct float64 arithmetic).
_MAX_LUT_SPAN = 1 << 20
#: Codes of the fractional encoding: [0, 65535] scaled by a rescale slope/intercept.
_FRACTION_LEVELS = 65535


@dataclass(frozen=True)
class OutputEncoding:
    """How normalized values are stored: sample width, signedness and the rescale pair a reader applies."""

    bits_allocated: int
    signed: bool
    slope: float
    intercept: float
    #: The slope/intercept as written (DICOM DS strings, at most 16 characters).
    slope_text: str
    intercept_text: str

    @property
    def dtype(self) -> np.dtype[np.integer]:
        kind = "i" if self.signed else "u"
        return np.dtype(f"<{kind}{self.bits_allocated // 8}")

    @property
    def is_identity_rescale(self) -> bool:
        return self.slope == 1.0 and self.intercept == 0.0

    def stored_limits(self) -> tuple[int, int]:
        info = np.iinfo(self.dtype)
        return int(info.min), int(info.max)


def _limits_text(limits: EncodingLimits) -> str:
    sign = "signed or unsigned" if limits.signed else "unsigned"
    widths = "/".join(str(b) for b in limits.bits)
    transform = {"identity": "no rescale other than slope 1, intercept 0", "none": "no rescale"}.get(
        limits.rescale, "a rescale"
    )
    largest = (1 << max(limits.bits)) - 1
    return (
        f"it stores {sign} {widths}-bit integers with {transform}: "
        f"choose MIN and MAX as whole numbers within 0..{largest}"
    )


def _fits(low: float, high: float, bits: int, signed: bool) -> bool:
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    return lo <= low and high <= hi


@dataclass(frozen=True)
class EncodingLimits:
    """What an object's IOD lets its pixel values be: sample widths, signed samples, and its modality transform
    (``any`` rescale pair, ``identity`` only: slope 1 and intercept 0, or ``none``: no rescale attributes)."""

    bits: tuple[int, ...] = (8, 16, 32)
    signed: bool = True
    rescale: Literal["any", "identity", "none"] = "any"


class EncodingError(ValueError):
    """The target range cannot be stored within the object's :class:`EncodingLimits`."""


ANY_ENCODING = EncodingLimits()


def choose_encoding(
    target: ValueRange,
    input_bits_allocated: int,
    *,
    zero_intercept: bool = False,
    limits: EncodingLimits = ANY_ENCODING,
) -> OutputEncoding:
    """Pick the narrowest integer encoding, not narrower than the input's, that holds ``target`` exactly.

    Integer ranges are stored as the values themselves (slope 1, intercept 0), widening to 16 or 32 bits and
    switching to signed samples as the range requires (0..65535 on 12-bit input must not be masked); where the
    IOD allows only unsigned samples, a negative range is stored shifted, with the low end as intercept.
    Non-integer ranges, or integer ranges wider than 32 bits, are stored as 0..65535 with a rescale pair;
    ``zero_intercept`` (RT Dose, whose only transform is a scaling) stores them as 0..65535 x high / 65535.
    Raises :class:`EncodingError` when ``limits`` allow no exact encoding.
    """
    if target.low > target.high:
        raise ValueError(f"minimum {target.low} is greater than maximum {target.high}")
    integral = float(target.low).is_integer() and float(target.high).is_integer()
    start = 8 if input_bits_allocated <= 8 else 16
    widths = [bits for bits in limits.bits if bits >= start] or [max(limits.bits)]
    if integral:
        signed = target.low < 0
        if not signed or limits.signed:
            for bits in widths:
                if _fits(target.low, target.high, bits, signed):
                    return OutputEncoding(bits, signed, 1.0, 0.0, "1", "0")
        elif limits.rescale == "any":
            for bits in widths:
                if _fits(0, target.high - target.low, bits, False):
                    text = format_ds(target.low)
                    return OutputEncoding(bits, False, 1.0, float(text), "1", text)
    if limits.rescale != "any" or 16 not in limits.bits:
        raise EncodingError(_limits_text(limits))
    if zero_intercept:
        if target.low < 0:
            raise ValueError("a scaling without intercept cannot store negative values")
        slope_text = format_ds(target.high / _FRACTION_LEVELS if target.high > 0 else 1.0)
        return OutputEncoding(16, False, float(slope_text), 0.0, slope_text, "0")
    intercept_text = format_ds(target.low)
    slope = target.width / _FRACTION_LEVELS if target.width > 0 else 1.0
    slope_text = format_ds(slope)
    return OutputEncoding(16, False, float(slope_text), float(intercept_text), slope_text, intercept_text)


def stored_extrema(
    stored: npt.NDArray[np.generic],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Per-frame min and max of stored values; ``stored`` is shaped (frames, rows, cols)."""
    flat = stored.reshape(stored.shape[0], -1)
    return flat.min(axis=1).astype(np.float64), flat.max(axis=1).astype(np.float64)


def modality_range(
    stored: npt.NDArray[np.generic], slopes: npt.NDArray[np.float64], intercepts: npt.NDArray[np.float64]
) -> ValueRange:
    """Min and max modality value over all frames, computed with the same float64 formula as :func:`remap`."""
    smin, smax = stored_extrema(stored)
    a = smin * slopes + intercepts
    b = smax * slopes + intercepts
    low = float(np.minimum(a, b).min())
    high = float(np.maximum(a, b).max())
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError("pixel values are not finite")
    return ValueRange(low, high)


def _target_codes(
    values: npt.NDArray[np.float64], source: ValueRange, target: ValueRange, enc: OutputEncoding
) -> npt.NDArray[np.float64]:
    """Map modality values to output stored codes (float64, already rounded and clipped). Pure arithmetic."""
    if source.width > 0:
        normalized = target.low + (values - source.low) / source.width * target.width
    else:  # constant image: every pixel is the minimum, no division, no NaN
        normalized = np.full_like(values, target.low)
    codes = np.rint((normalized - enc.intercept) / enc.slope) if not enc.is_identity_rescale else np.rint(normalized)
    lo, hi = enc.stored_limits()
    return np.clip(codes, lo, hi, out=codes)


def _gather(lut: npt.NDArray[np.generic], index: npt.NDArray[np.integer], out: npt.NDArray[np.generic]) -> None:
    """out[i] = lut[index[i]], in cache-sized chunks (index is 1-D)."""
    for start in range(0, index.size, _CHUNK):
        stop = start + _CHUNK
        np.take(lut, index[start:stop], out=out[start:stop])


def _gather_offset(
    lut: npt.NDArray[np.generic], values: npt.NDArray[Any], offset: int, out: npt.NDArray[np.generic]
) -> None:
    """out[i] = lut[values[i] - offset], chunk by chunk through one reused index buffer."""
    index = np.empty(min(_CHUNK, values.size), dtype=np.intp)
    for start in range(0, values.size, _CHUNK):
        chunk = values[start : start + _CHUNK]
        idx = index[: chunk.size]
        np.subtract(chunk, offset, out=idx, casting="unsafe")
        np.take(lut, idx, out=out[start : start + chunk.size])


def remap(
    stored: npt.NDArray[np.generic],
    slopes: npt.NDArray[np.float64],
    intercepts: npt.NDArray[np.float64],
    source: ValueRange,
    target: ValueRange,
    enc: OutputEncoding,
) -> npt.NDArray[np.integer]:
    """Remap stored values (frames, rows, cols) to output stored values of ``enc.dtype``, same shape."""
    frames = stored.shape[0]
    out = np.empty(stored.shape, dtype=enc.dtype)
    out_dtype_native = enc.dtype.newbyteorder("=")
    for frame_range in _runs_of_equal_transform(slopes, intercepts):
        sl = slice(frame_range[0], frame_range[1])
        slope, intercept = float(slopes[frame_range[0]]), float(intercepts[frame_range[0]])
        block = stored[sl]
        dst = out[sl].reshape(-1)
        if block.dtype.kind in "iu" and block.dtype.itemsize <= 2:
            lo, hi = int(block.min()), int(block.max())
            if (hi - lo + 1) * 8 < 1 << (8 * block.dtype.itemsize):
                # Narrow LUT over the values present (typical 12-bit data): cheap to build, offset per chunk.
                domain = np.arange(lo, hi + 1, dtype=np.float64)
                lut = _target_codes(domain * slope + intercept, source, target, enc).astype(out_dtype_native)
                _gather_offset(lut, block.reshape(-1), lo, dst)
            else:
                # LUT over every bit pattern of the sample type: no subtraction pass.
                unsigned = block.view(block.dtype.newbyteorder("=").str.replace("i", "u"))
                patterns = np.arange(1 << (8 * block.dtype.itemsize), dtype=np.int64)
                as_values = patterns.astype(unsigned.dtype).view(block.dtype.newbyteorder("="))
                lut = _target_codes(as_values * slope + intercept, source, target, enc).astype(out_dtype_native)
                _gather(lut, unsigned.reshape(-1), dst)
        elif block.dtype.kind in "iu":
            lo, hi = (int(x) for x in (block.min(), block.max()))
            if hi - lo <= _MAX_LUT_SPAN:
                domain = np.arange(lo, hi + 1, dtype=np.float64)
                lut = _target_codes(domain * slope + intercept, source, target, enc).astype(out_dtype_native)
                _gather(lut, (block.reshape(-1).astype(np.int64) - lo), dst)
            else:
                dst[...] = _target_codes(block.reshape(-1).astype(np.float64) * slope + intercept, source, target, enc)
        else:
            dst[...] = _target_codes(block.reshape(-1).astype(np.float64) * slope + intercept, source, target, enc)
    assert frames == out.shape[0]
    return out


def _runs_of_equal_transform(
    slopes: npt.NDArray[np.float64], intercepts: npt.NDArray[np.float64]
) -> list[tuple[int, int]]:
    """Consecutive frame ranges sharing one (slope, intercept), so a volume with one transform is one block."""
    runs: list[tuple[int, int]] = []
    start = 0
    for i in range(1, len(slopes) + 1):
        if i == len(slopes) or slopes[i] != slopes[start] or intercepts[i] != intercepts[start]:
            runs.append((start, i))
            start = i
    return runs
