"""What a QC report says, as plain data: the run, its steps, and one row per series with one panel per step.

Built by :mod:`dicompose.report.collect` from the workspace's records and the files' headers, given figures
by :mod:`dicompose.report.figures`, and rendered by :mod:`dicompose.report.render`. Every string here is safe
to show: labels are pseudonyms, free text has been scrubbed, identifiers appear only when asked for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dicompose.report.facts import FileFacts


@dataclass
class Change:
    """One header attribute before and after a step (``verdict``: new, kept, changed, same, added, removed)."""

    attribute: str
    before: str
    after: str
    verdict: str


@dataclass
class Panel:
    """One series through one step: what went in and out, how it went, and the pictures of it."""

    step: str
    status: str  # ok | cached | skipped | partial | failed | interrupted | not run
    seconds: float | None = None  # the launch that ran it (a launch may carry many tasks: launch_tasks)
    attempts: int = 0
    launch_tasks: int = 0
    inputs: list[FileFacts] = field(default_factory=list)
    outputs: list[FileFacts] = field(default_factory=list)
    other_outputs: int = 0  # outputs that are not DICOM images (reports, tables): counted, not shown
    missing_outputs: int = 0  # recorded outputs no longer found (deleted since, and collected by gc)
    message: str = ""  # why it failed (scrubbed)
    log_tail: str = ""  # the end of the tool's stderr (scrubbed)
    figures: dict[str, str] = field(default_factory=dict)  # before | after | histogram -> file name
    notes: list[str] = field(default_factory=list)  # windows used, mask coverage, why a picture is missing
    changes: list[Change] = field(default_factory=list)
    before_range: tuple[float, float] | None = None
    after_range: tuple[float, float] | None = None
    mask: bool = False


@dataclass
class SeriesRow:
    """One input series of the run (or, where its files could not be read, one task)."""

    key: str  # the Series Instance UID (never shown by default) or "task:<key>"
    label: str  # a keyed pseudonym: the same series gets the same label in every report of this site
    page: str  # series/<label>.html
    modality: str = ""
    files: int = 0
    frames: int = 0
    panels: dict[str, Panel] = field(default_factory=dict)
    identifiers: dict[str, str] = field(default_factory=dict)  # shown with --show-identifiers only
    strip: str = ""  # the overview's thumbnail strip: before, then after each step

    @property
    def status(self) -> str:
        """The worst of its panels: failed, interrupted, partial, skipped (a step the tool skipped: the steps
        after it do not run), not run, else ok."""
        statuses = {panel.status for panel in self.panels.values()}
        for worst in ("failed", "interrupted", "partial", "skipped", "not run"):
            if worst in statuses:
                return worst
        return "cached" if statuses == {"cached"} else "ok"


@dataclass
class StepSummary:
    name: str
    tool: str
    tool_version: str
    image: str
    digests: list[str]
    params: dict[str, Any]
    engine: str
    tasks: int = 0
    cached: int = 0
    failed: int = 0  # failed, partial or interrupted
    skipped: int = 0
    launches: int = 0
    attempts: int = 0
    launch_seconds: list[float] = field(default_factory=list)  # each launch of the step in this run

    @property
    def median_seconds(self) -> float | None:
        ordered = sorted(self.launch_seconds)
        return ordered[len(ordered) // 2] if ordered else None

    @property
    def total_seconds(self) -> float:
        return sum(self.launch_seconds)


@dataclass
class Report:
    run_id: str
    status: str
    kind: str  # pipeline | tool
    name: str  # the pipeline's name or the tool's
    description: str
    started: float
    ended: float | None
    engine: str
    engine_why: str
    scheduler: str
    dicompose_version: str
    show_identifiers: bool
    inputs: list[tuple[str, str]]  # (input name, folder label or path)
    steps: list[StepSummary]
    rows: list[SeriesRow]
    problems: list[str] = field(default_factory=list)  # what the report itself could not do (scrubbed)
    not_processed: list[tuple[str, int, list[str]]] = field(default_factory=list)  # (kind, count, lines)
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def failed_panels(self) -> list[tuple[SeriesRow, Panel]]:
        bad = ("failed", "partial", "interrupted")
        return [(row, panel) for row in self.rows for panel in row.panels.values() if panel.status in bad]

    @property
    def series_counts(self) -> dict[str, int]:
        """Series by outcome, worst first (only the outcomes that occur)."""
        order = ("failed", "interrupted", "partial", "skipped", "not run", "cached", "ok")
        found = [row.status for row in self.rows]
        return {status: found.count(status) for status in order if status in found}
