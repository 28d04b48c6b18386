"""The report's picture choices on arrays: which slices, which window, thumbnails, masks, mosaics, and the
scrubber that keeps identifiers out of the text it quotes."""

from __future__ import annotations

import numpy as np
import pytest

from dicompose.report import imaging
from dicompose.report.scrub import REDACTED, Scrubber, path_words


@pytest.mark.parametrize(
    ("count", "wanted", "expected"),
    [(0, 9, []), (1, 9, [0]), (5, 9, [0, 1, 2, 3, 4]), (100, 3, [0, 50, 99]), (10, 9, [0, 1, 2, 3, 4, 6, 7, 8, 9])],
)
def test_spread_keeps_first_and_last_and_never_repeats(count: int, wanted: int, expected: list[int]) -> None:
    assert imaging.spread(count, wanted) == expected


def test_ct_in_hounsfield_units_uses_the_stored_window_when_it_fits_the_data() -> None:
    values = np.linspace(-1000, 1500, 1000)
    window = imaging.choose_window(values, "CT", (300.0, 1500.0))
    assert (window.low, window.high) == (-450.0, 1050.0)
    assert "stored" in window.why


def test_ct_falls_back_to_soft_tissue_when_the_stored_window_is_outside_the_data() -> None:
    window = imaging.choose_window(np.linspace(-1000, 1500, 1000), "CT", (5000.0, 10.0))
    assert (window.low, window.high) == (-160.0, 240.0)


def test_derived_ct_no_longer_in_hu_and_mr_use_robust_percentiles() -> None:
    values = np.concatenate([np.linspace(0, 100, 10000), [1e6]])  # one hot pixel
    for modality in ("CT", "MR"):
        window = imaging.choose_window(values, modality, (40.0, 400.0))
        assert 0 <= window.low < 1 and 99 < window.high <= 100, modality


def test_a_flat_image_gets_a_window_that_is_not_empty() -> None:
    window = imaging.choose_window(np.full(100, 7.0), "MR", None)
    assert window.low < 7 < window.high
    assert imaging.choose_window(np.zeros(0), "MR", None).why == "no values"


@pytest.mark.parametrize("shape", [(512, 512), (513, 301), (161, 7), (3, 1000), (640, 480, 3)])
def test_shrink_fits_the_longest_side_whatever_the_shape(shape: tuple[int, ...]) -> None:
    image = np.arange(np.prod(shape), dtype=np.float64).reshape(shape)
    small = imaging.shrink(image, 160)
    assert max(small.shape[:2]) <= 160
    assert small.shape[2:] == shape[2:]
    assert image.min() <= small.min() and small.max() <= image.max()


def test_shrink_keeps_a_one_pixel_lesion_of_a_mask() -> None:
    mask = np.zeros((512, 512), dtype=bool)
    mask[301, 77] = True
    small = imaging.shrink(mask, 128)
    assert small.dtype == np.bool_ and small.sum() == 1


def test_shrink_averages_blocks() -> None:
    image = np.array([[0, 2, 4, 4], [2, 0, 4, 4]], dtype=np.float64)
    assert imaging.shrink(image, 2).tolist() == [[1.0, 4.0]]


def test_monochrome1_is_shown_inverted() -> None:
    window = imaging.Window(0, 100, "test")
    image = np.array([[0.0, 100.0]])
    assert imaging.to_grey(image, window).tolist() == [[0, 255]]
    assert imaging.to_grey(image, window, inverted=True).tolist() == [[255, 0]]


def test_overlay_tints_the_mask_and_leaves_the_rest_grey() -> None:
    grey = np.full((2, 2), 100, np.uint8)
    mask = np.array([[True, False], [False, False]])
    rgb = imaging.overlay(grey, mask)
    assert rgb.shape == (2, 2, 3)
    assert rgb[1, 1].tolist() == [100, 100, 100]
    red, green, blue = rgb[0, 0].tolist()
    assert red > 100 > green and green == blue


def test_mosaic_grid_and_strip() -> None:
    tiles = [np.full((40, 60), i * 20, np.uint8) for i in range(5)]
    grid = imaging.mosaic(tiles, gap=2)
    assert grid.shape == (2 * 40 + 2, 3 * 60 + 4, 3)  # 5 tiles: 3 columns, 2 rows
    strip = imaging.mosaic(tiles[:3], gap=3, columns=3)
    assert strip.shape == (40, 3 * 60 + 6, 3)
    assert strip[0, 60:63].max() == 0  # the gap is black


def test_a_thin_picture_is_centred_on_a_band_not_stretched() -> None:
    thin = np.full((4, 160), 200, np.uint8)
    band = imaging.padded(thin)
    assert band.shape == (32, 160) and band.sum() == thin.sum()
    assert band[14:18].min() == 200 and band[:14].max() == 0
    assert imaging.padded(np.zeros((40, 40), np.uint8)).shape == (40, 40)


@pytest.mark.parametrize(
    ("values", "expected"),
    [([0, 1, 1, 0], True), ([0, 255], True), ([0, 0], True), ([1, 2], False), ([0, 1, 2], False), ([], False)],
)
def test_is_mask(values: list[int], expected: bool) -> None:
    assert imaging.is_mask(np.array(values)) is expected


def test_blank() -> None:
    assert imaging.blank(np.zeros((4, 4, 3), np.uint8))
    picture = np.zeros((4, 4), np.uint8)
    picture[2, 2] = 1
    assert not imaging.blank(picture)


def test_scrubber_blanks_identifiers_as_words_only() -> None:
    scrub = Scrubber({"DOE", "JOHN", "DOE^JOHN", "MRN12345", "a", "12", "St Elsewhere"})
    text = "patient DOE^JOHN (MRN12345) at st elsewhere: DOES JOHNSON slice 12 a"
    assert scrub(text) == f"patient {REDACTED} ({REDACTED}) at {REDACTED}: DOES JOHNSON slice 12 a"


def test_path_words_name_every_segment_below_the_inputs_and_the_stems_of_derived_names() -> None:
    words = path_words(["/data/in/DOE_JOHN/MRN42/DOE_JOHN_1.dcm", "/elsewhere/x.dcm"], ["/data/in"])
    assert {"DOE_JOHN", "MRN42", "DOE_JOHN_1.dcm", "DOE_JOHN_1", "in"} <= words
    assert "elsewhere" not in words and "data" not in words
    scrub = Scrubber(words)
    assert REDACTED in scrub("wrote DOE_JOHN_1-normalized.dcm")


def test_input_roots_are_named_by_their_input() -> None:
    scrub = Scrubber({"DOE"}, {"scans": "/srv/pacs-export", "masks": "/srv/pacs-export/masks"})
    assert scrub("/srv/pacs-export/DOE/1.dcm and /srv/pacs-export/masks/x.dcm") == (
        f"scans:/{REDACTED}/1.dcm and masks:/x.dcm"
    )


def test_an_input_named_like_its_folder_keeps_its_name() -> None:
    roots = {"scans": "/data/scans"}
    scrub = Scrubber(path_words(["/data/scans/DOE/1.dcm"], roots.values()), roots)
    assert scrub("/data/scans/DOE/1.dcm: truncated") == f"scans:/{REDACTED}/{REDACTED}: truncated"
