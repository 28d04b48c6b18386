"""The report's pictures, drawn from pixel data and pseudonymous labels only (never from header text, so no
name burnt into an image can reach them, and no figure carries metadata but its size).

Per series and step: a mosaic of the input slices, one of the outputs (a mask is drawn over the slices it was
made from), and the histograms of both; per series, a strip for the cohort overview (the first input, then
each step's output, at one middle slice). Each slice is decoded once, whichever step and figure it is in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from dicompose.errors import InputError
from dicompose.report import imaging
from dicompose.report.facts import FileFacts
from dicompose.report.model import Panel, SeriesRow
from dicompose.report.pixels import Frame, load_frames

STRIP_SIDE = 96
_NO_METADATA: dict[str, Any] = {
    "Software": None
}  # matplotlib would name itself in every PNG; nothing else is ever written


@dataclass
class FrameCache:
    """Decoded slices by (path, frame): a step's outputs are the next step's inputs, decoded once."""

    frames: dict[tuple[str, int], Frame | None] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)

    def get(self, units: list[tuple[FileFacts, int]]) -> list[Frame | None]:
        wanted: dict[str, list[int]] = {}
        for facts, frame in units:
            if (str(facts.path), frame) not in self.frames:
                wanted.setdefault(str(facts.path), []).append(frame)
        for path, frames in wanted.items():
            try:
                found = load_frames(Path(path), frames)
            except InputError as exc:  # the problem only: the path may name the patient
                self.problems[path] = exc.problem
                found = {}
            for frame in frames:
                self.frames[(path, frame)] = found.get(frame)
        return [self.frames[(str(facts.path), frame)] for facts, frame in units]


def draw_rows(rows: list[SeriesRow], folder: Path, index_of: dict[str, int], workers: int) -> list[SeriesRow]:
    """Every row's figures, ``workers`` series at a time in forked processes (rows share no slices: each
    series' files are its own), the rows returned with their figure names and notes filled in, in order."""
    from dicompose.tools.pool import pool_map

    if workers > 1:
        import matplotlib.figure  # noqa: F401  (imported once, before the fork, not in every worker)
    return pool_map(_draw_one, [(row, folder, index_of) for row in rows], workers)


def _draw_one(job: tuple[SeriesRow, Path, dict[str, int]]) -> SeriesRow:
    row, folder, index_of = job
    draw_row(row, folder, FrameCache(), index_of)
    return row


def units_of(files: list[FileFacts]) -> list[tuple[FileFacts, int]]:
    """Every slice of ``files`` in volume order (frames of a multi-frame file in their stored order)."""
    return [(facts, frame) for facts in files if facts.readable for frame in range(max(1, facts.frames))]


def pick(files: list[FileFacts], wanted: int = imaging.MOSAIC_SLICES) -> list[tuple[FileFacts, int]]:
    units = units_of(files)
    return [units[i] for i in imaging.spread(len(units), wanted)]


def draw_row(row: SeriesRow, folder: Path, cache: FrameCache, index_of: dict[str, int]) -> None:
    """Every figure of one series into ``folder`` (names recorded in its panels and row)."""
    strip: list[npt.NDArray[np.uint8]] = []
    for step, panel in row.panels.items():
        prefix = f"{row.label}-{index_of.get(step, 0)}"
        first = not strip
        before_pictures, before_window = _draw_before(panel, cache, row.modality)
        if before_pictures:
            _save_picture(folder / f"{prefix}-before.png", imaging.mosaic(before_pictures))
            panel.figures["before"] = f"figures/{prefix}-before.png"
            if first:
                strip.append(_strip_tile(before_pictures))
        after_pictures = _draw_after(panel, cache, row.modality, before_window)
        if after_pictures:
            _save_picture(folder / f"{prefix}-after.png", imaging.mosaic(after_pictures))
            panel.figures["after"] = f"figures/{prefix}-after.png"
            strip.append(_strip_tile(after_pictures))
        shown_before = not first and panel.mask  # a mask's inputs are the last step's outputs, drawn there
        if not shown_before and _draw_histogram(folder / f"{prefix}-histogram.png", panel, cache):
            panel.figures["histogram"] = f"figures/{prefix}-histogram.png"
        for facts in [*panel.inputs, *panel.outputs]:
            problem = cache.problems.get(str(facts.path)) or (facts.problem if not facts.readable else "")
            if problem and f"cannot preview a file: {problem}" not in panel.notes:
                panel.notes.append(f"cannot preview a file: {problem}")
    if strip:
        _save_picture(folder / f"{row.label}-strip.png", imaging.mosaic(strip, gap=3, columns=len(strip)))
        row.strip = f"figures/{row.label}-strip.png"


def _draw_before(
    panel: Panel, cache: FrameCache, modality: str
) -> tuple[list[npt.NDArray[np.uint8]], imaging.Window | None]:
    units = pick(panel.inputs)
    frames = cache.get(units)
    pictures, window = _pictures([f for f in frames if f is not None], modality, _stored_window(units))
    if window is not None:
        panel.notes.append(f"inputs: window {window.low:g} to {window.high:g} ({window.why})")
    ranges = [f.sample for f in frames if f is not None and f.sample.size]
    if ranges:
        values = np.concatenate(ranges)
        panel.before_range = (float(values.min()), float(values.max()))
    return pictures, window


def _draw_after(
    panel: Panel, cache: FrameCache, modality: str, before_window: imaging.Window | None
) -> list[npt.NDArray[np.uint8]]:
    if not panel.outputs:
        return []
    units = pick(panel.outputs)
    frames = cache.get(units)
    shown = [f for f in frames if f is not None]
    if not shown:
        return []
    ranges = [f.sample for f in shown if f.sample.size]
    if ranges:
        values = np.concatenate(ranges)
        panel.after_range = (float(values.min()), float(values.max()))
    before = [f for f in cache.get(pick(panel.inputs)) if f is not None]
    if not _made_a_mask(before, shown):
        pictures, window = _pictures(shown, modality, _stored_window(units))
        if window is not None:
            panel.notes.append(f"outputs: window {window.low:g} to {window.high:g} ({window.why})")
        return pictures
    panel.mask = True
    by_instance = {f.instance: f for f in panel.inputs if f.instance}
    sources = [(by_instance.get(facts.source_instance or ""), frame) for facts, frame in units]
    under = cache.get([(s, frame) for s, frame in sources if s is not None]) if all(s for s, _ in sources) else []
    covered = [f.nonzero for f in shown]  # at full resolution: a shrunk mask's blocks would overstate it
    panel.notes.append(f"mask covers {100 * sum(covered) / len(covered):.1f} % of the slices shown, in red")
    if under and all(u is not None and u.kind == "grey" for u in under):
        window = before_window or imaging.choose_window(
            np.concatenate([u.sample for u in under if u is not None]), modality, None
        )
        return [
            imaging.overlay(imaging.to_grey(u.thumbnail, window, inverted=u.inverted), _as_mask(m.thumbnail))
            for u, m in zip(under, shown, strict=True)
            if u is not None
        ]
    panel.notes.append("the slices the mask was made from could not be matched: the mask is shown alone")
    return [imaging.overlay(np.zeros(m.thumbnail.shape[:2], np.uint8), _as_mask(m.thumbnail)) for m in shown]


def _made_a_mask(before: list[Frame], after: list[Frame]) -> bool:
    """Did the step turn images into masks? Its outputs are 1-bit, or hold 0 and at most one other value, while
    its inputs did not (a normalize of an image that was two-valued already, or flat, is not a mask)."""
    if not after or not all(f.kind == "binary" or (f.kind == "grey" and imaging.is_mask(f.sample)) for f in after):
        return False
    if all(f.kind == "binary" for f in after):
        return True
    return not any(f.kind == "binary" or (f.kind == "grey" and np.unique(f.sample).size <= 2) for f in before)


def _as_mask(thumbnail: npt.NDArray[Any]) -> npt.NDArray[np.bool_]:
    return thumbnail if thumbnail.dtype == np.bool_ else np.asarray(thumbnail > 0)


def _stored_window(units: list[tuple[FileFacts, int]]) -> tuple[float, float] | None:
    return next((facts.window for facts, _ in units if facts.window is not None), None)


def _pictures(
    frames: list[Frame], modality: str, stored: tuple[float, float] | None
) -> tuple[list[npt.NDArray[np.uint8]], imaging.Window | None]:
    grey = [f for f in frames if f.kind == "grey"]
    window = imaging.choose_window(np.concatenate([f.sample for f in grey]), modality, stored) if grey else None
    pictures: list[npt.NDArray[np.uint8]] = []
    for frame in frames:
        if frame.kind == "grey" and window is not None:
            pictures.append(imaging.to_grey(frame.thumbnail, window, inverted=frame.inverted))
        elif frame.kind == "binary":
            pictures.append(np.where(frame.thumbnail, 255, 0).astype(np.uint8))
        else:
            pictures.append(np.asarray(frame.thumbnail, dtype=np.uint8))
    return pictures, window


def _strip_tile(pictures: list[npt.NDArray[np.uint8]]) -> npt.NDArray[np.uint8]:
    middle = pictures[len(pictures) // 2]
    return imaging.as_rgb(imaging.shrink(middle.astype(np.float64), STRIP_SIDE).round().astype(np.uint8))


def _save_picture(path: Path, picture: npt.NDArray[np.uint8]) -> None:
    picture = imaging.padded(picture)
    from PIL import Image  # matplotlib's own PNG writer, without its RGBA round trip: 40 % faster

    Image.fromarray(picture).save(path, format="png")  # no text chunk: PIL writes none unless asked


def _draw_histogram(path: Path, panel: Panel, cache: FrameCache) -> bool:
    """Before and after side by side (their value ranges differ: a normalize maps HU to [0, 100]); a mask has
    no histogram worth drawing (its coverage is said in words)."""
    before = _samples(cache, pick(panel.inputs))
    after = np.zeros(0) if panel.mask else _samples(cache, pick(panel.outputs))
    if before.size == 0 and after.size == 0:
        return False
    from matplotlib.figure import Figure
    from matplotlib.ticker import LogLocator, MaxNLocator, NullLocator

    # a fixed layout and a histogram drawn as one filled outline (not 64 bars, not constrained layout, no
    # minor log ticks): 6x faster, and a report draws one of these per series and step
    figure = Figure(figsize=(6.4, 2.0), dpi=90)
    figure.subplots_adjust(left=0.08, right=0.98, bottom=0.22, top=0.86, wspace=0.25)
    axes = figure.subplots(1, 2)
    for axis, values, title, colour in ((axes[0], before, "inputs", "#4a6fa5"), (axes[1], after, "outputs", "#c0504d")):
        if values.size:
            counts, edges = np.histogram(values, bins=64)
            axis.stairs(counts, edges, fill=True, color=colour)
            axis.set_yscale("log")
            axis.yaxis.set_major_locator(LogLocator(numticks=4))
            axis.yaxis.set_minor_locator(NullLocator())
            axis.xaxis.set_major_locator(MaxNLocator(6))
            axis.set_title(f"{title}: {values.min():.4g} to {values.max():.4g}", fontsize=8)
        else:
            axis.set_title(f"{title}: none" if not panel.mask or title == "inputs" else "outputs: mask", fontsize=8)
            axis.set_xticks([])
            axis.set_yticks([])
        axis.tick_params(labelsize=7)
        axis.set_xlabel("value", fontsize=7)
    figure.savefig(path, format="png", metadata=_NO_METADATA)
    return True


def _samples(cache: FrameCache, units: list[tuple[FileFacts, int]]) -> npt.NDArray[np.float64]:
    samples = [f.sample for f in cache.get(units) if f is not None and f.kind == "grey" and f.sample.size]
    return np.concatenate(samples) if samples else np.zeros(0)
