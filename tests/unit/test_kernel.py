"""The pure kernel against exact rational arithmetic (hypothesis explores shapes, transforms and targets)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from dicompose.dicom.kernel import choose_encoding, modality_range, remap
from dicompose.params import ValueRange, format_ds
from tests.support.dicom_checks import exact_expected


def run(stored, slopes, intercepts, low, high):
    stored = stored.reshape((len(slopes), -1, stored.shape[-1]))
    source = modality_range(stored, np.asarray(slopes, float), np.asarray(intercepts, float))
    enc = choose_encoding(ValueRange(low, high), stored.dtype.itemsize * 8)
    out = remap(stored, np.asarray(slopes, float), np.asarray(intercepts, float), source, ValueRange(low, high), enc)
    return out, enc, source


@settings(max_examples=150, deadline=None)
@given(
    data=arrays(np.int16, st.tuples(st.integers(1, 3), st.integers(1, 9), st.integers(1, 9))),
    slope=st.sampled_from([1.0, 0.5, 2.0, -1.0, 0.684]),
    intercept=st.sampled_from([0.0, -1024.0, 200.0, -0.5]),
    low=st.integers(-40000, 40000),
    width=st.integers(0, 70000),
)
def test_integer_targets_are_correctly_rounded_and_span_exactly(data, slope, intercept, low, width):
    high = low + width
    frames = data.shape[0]
    out, enc, source = run(data, [slope] * frames, [intercept] * frames, float(low), float(high))
    values = data.astype(np.float64) * slope + intercept
    expected = exact_expected(values, low, high, source.low, source.high)
    got = out.astype(np.float64) * enc.slope + enc.intercept
    assert np.all(np.abs(got - expected) <= 0.5 + 1e-9)
    assert got.min() == low
    if source.width > 0:
        assert got.max() == high


@settings(max_examples=60, deadline=None)
@given(
    data=arrays(np.uint16, st.tuples(st.integers(1, 2), st.integers(1, 6), st.integers(1, 6))),
    low=st.floats(-1000, 1000, allow_nan=False),
    width=st.floats(0.001, 5000, allow_nan=False),
)
def test_fractional_targets_within_one_quantum(data, low, width):
    high = low + width
    assume(not (float(low).is_integer() and float(high).is_integer()))
    frames = data.shape[0]
    out, enc, source = run(data, [1.0] * frames, [0.0] * frames, low, high)
    assert not enc.is_identity_rescale
    values = data.astype(np.float64)
    expected = exact_expected(values, low, high, source.low, source.high)
    got = out.astype(np.float64) * float(enc.slope_text) + float(enc.intercept_text)
    assert np.all(np.abs(got - expected) <= enc.slope / 2 + 1e-9 * max(1.0, abs(high), abs(low)))


def test_per_frame_transforms_share_one_range():
    stored = np.array([[[0, 10]], [[0, 10]]], dtype=np.int16)
    out, _enc, source = run(stored, [1.0, 2.0], [0.0, 100.0], 0.0, 120.0)
    assert (source.low, source.high) == (0.0, 120.0)
    assert out.tolist() == [[[0, 10]], [[100, 120]]]


def test_constant_image_gives_min_without_nan_or_warnings():
    stored = np.full((1, 4, 4), 7, dtype=np.int16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out, enc, _ = run(stored, [1.0], [0.0], 5.0, 9.0)
    assert out.dtype == enc.dtype and np.all(out == 5)


def test_large_signed_span_has_no_overflow():
    stored = np.array([[[-32768, 0, 32767]]], dtype=np.int16)
    out, enc, _ = run(stored, [1.0], [0.0], 0.0, 65535.0)
    assert enc.dtype == np.dtype("<u2")
    assert out.tolist() == [[[0, 32768, 65535]]]


def test_32_bit_values_use_arithmetic_path():
    stored = np.array([[[0, 2_000_000_000, 4_000_000_000]]], dtype=np.uint32)
    out, _, _ = run(stored, [1.0], [0.0], 0.0, 100.0)
    assert out.tolist() == [[[0, 50, 100]]]


@pytest.mark.parametrize(
    ("low", "high", "input_bits", "bits", "signed"),
    [
        (0, 100, 16, 16, False),
        (0, 100, 8, 8, False),
        (0, 1000, 8, 16, False),
        (0, 65535, 16, 16, False),
        (-1000, 3000, 16, 16, True),
        (0, 70000, 16, 32, False),
        (-40000, 40000, 16, 32, True),
    ],
)
def test_encoding_holds_the_range(low, high, input_bits, bits, signed):
    enc = choose_encoding(ValueRange(low, high), input_bits)
    assert (enc.bits_allocated, enc.signed, enc.slope, enc.intercept) == (bits, signed, 1.0, 0.0)


def test_fractional_and_huge_ranges_use_rescale():
    assert choose_encoding(ValueRange(0, 1), 16).is_identity_rescale  # integer range: integers, as specified
    enc = choose_encoding(ValueRange(0, 0.5), 16)
    assert enc.bits_allocated == 16 and not enc.signed
    assert float(enc.slope_text) == pytest.approx(0.5 / 65535, rel=1e-12)
    huge = choose_encoding(ValueRange(0, 1e12), 16)
    assert float(huge.slope_text) * 65535 == pytest.approx(1e12, rel=1e-12)


def test_min_above_max_is_refused():
    with pytest.raises(ValueError, match="greater than"):
        choose_encoding(ValueRange(2, 1), 16)


@pytest.mark.parametrize("value", [0.0, 1.0, -1024.0, 1 / 65535, 1e-20, 123456789.123456, -0.1, 1e300])
def test_decimal_strings_fit_dicom_and_round_trip(value):
    text = format_ds(value)
    assert len(text) <= 16
    assert float(text) == pytest.approx(value, rel=1e-10)
