"""From a run's records to the rows of its report: which series went through which step, how, and which files.

A row is an input series of the run. Files are followed through the steps by content: an input whose sha256
some task of the run wrote belongs to the row of the file it was written from (a derived image names its
source instance in Source Image Sequence; a task whose inputs are all one series gives its outputs to that
series). Inputs no task wrote start rows, grouped by their Series Instance UID. Files are found where the run
left them (the task folder) or, after ``dicompose gc``, where it published them, checked by size.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from dicompose.report.facts import COMPARED, IDENTITIES, FileFacts, read_facts
from dicompose.report.model import Change, Panel, Report, SeriesRow, StepSummary
from dicompose.report.scrub import Scrubber, path_words

LOG_TAIL_LINES = 15
_OPT_IN_ROW = ("PatientName", "PatientID", "StudyDate", "StudyDescription", "SeriesDescription")


class RunFiles:
    """Where each recorded file of a run is now, and its header facts (each file read once)."""

    def __init__(
        self,
        published: Callable[[], dict[str, list[tuple[str, int | None]]]],
        identifying: frozenset[Any],
        workers: int = 1,
        remembered: Callable[[list[str]], dict[str, str]] | None = None,
    ):
        self._published = published
        self.remembered = remembered or (lambda shas: {})  # sha256 -> series UID of files since deleted
        self._workers = workers
        self._by_content: dict[str, list[tuple[str, int | None]]] | None = None
        self._identifying = identifying
        self.facts: dict[str, FileFacts] = {}

    def output_path(self, attempt: dict[str, Any], output: dict[str, Any]) -> str | None:
        name, size = str(output.get("name") or ""), output.get("size")
        if attempt.get("log_dir") and name:
            candidate = str(Path(attempt["log_dir"], "out", name))
            if _has_size(candidate, size):
                return candidate
        if self._by_content is None:
            self._by_content = self._published()
        for path, _ in self._by_content.get(str(output.get("sha256")), []):
            if _has_size(path, size):
                return path
        return None

    def read(self, paths: Iterable[str]) -> None:
        """Read the headers of ``paths`` not read yet: parsing is CPU-bound, so in forked processes when there
        are enough of them to pay for the start (a few ms each)."""
        from dicompose.tools.pool import pool_map

        wanted = sorted({p for p in paths if p not in self.facts})
        read = functools.partial(_read_facts_at, identifying=self._identifying)
        workers = self._workers if len(wanted) >= _PARALLEL_FROM else 1
        self.facts.update(zip(wanted, pool_map(read, wanted, workers), strict=True))


#: Headers read in parallel from this many files on.
_PARALLEL_FROM = 200


def _read_facts_at(path: str, identifying: frozenset[Any]) -> FileFacts:
    return read_facts(Path(path), identifying)


def _has_size(path: str, size: object) -> bool:
    try:
        return size is None or Path(path).stat().st_size == size
    except OSError:
        return False


def final_attempts(attempts: list[dict[str, Any]]) -> tuple[dict[tuple[str, str], dict[str, Any]], dict[str, int]]:
    """The last attempt of each (step, task), and how many attempts each task took (cache hits count none)."""
    finals: dict[tuple[str, str], dict[str, Any]] = {}
    tries: dict[str, int] = {}
    for attempt in sorted(attempts, key=lambda a: a.get("id") or 0):
        key = (attempt["step"], attempt["task_key"])
        finals[key] = attempt
        if not attempt["cached"]:
            tries[attempt["task_key"]] = tries.get(attempt["task_key"], 0) + 1
    return finals, tries


def step_order(run: dict[str, Any], attempts: list[dict[str, Any]]) -> list[str]:
    snapshot = (run.get("details") or {}).get("snapshot") or {}
    names = [str(step.get("name")) for step in snapshot.get("steps", []) if step.get("name")]
    for attempt in attempts:
        if attempt["step"] not in names:
            names.append(attempt["step"])
    return names


def collect(
    run: dict[str, Any],
    attempts: list[dict[str, Any]],
    launches: list[dict[str, Any]],
    files: RunFiles,
    pseudonym: Callable[[str], str | None],
    *,
    show_identifiers: bool,
    version: str,
) -> tuple[Report, Scrubber]:
    """The report's rows and summaries (no figures yet), and the scrubber its free text went through."""
    finals, tries = final_attempts(attempts)
    order = step_order(run, attempts)
    details = run.get("details") or {}
    outputs_of: dict[tuple[str, str], list[tuple[dict[str, Any], str | None]]] = {}
    for key, attempt in finals.items():
        outputs_of[key] = [(out, files.output_path(attempt, out)) for out in attempt.get("outputs") or []]
    input_paths = [str(i["path"]) for a in finals.values() for i in a.get("inputs") or [] if i.get("path")]
    output_paths = [path for outs in outputs_of.values() for _, path in outs if path]
    files.read([*input_paths, *output_paths])

    roots = [str(v) for v in (details.get("inputs") or {}).values()]
    not_processed = dict(details.get("not_processed") or {})
    left_out = [str(p) for p in not_processed.pop("paths", {}).get("lines", [])]
    secrets: set[str] = path_words([*input_paths, *left_out], roots)
    made = {str(out.get("sha256")) for a in finals.values() for out in a.get("outputs") or []}
    for attempt in finals.values():  # the run's own inputs: what its tools wrote adds no identifier, only words
        for item in attempt.get("inputs") or []:
            facts = files.facts.get(str(item.get("path") or ""))
            if facts is not None and str(item.get("sha256")) not in made:
                secrets |= facts.secrets
    # with --show-identifiers the user asked to see them: messages are quoted as the tools wrote them
    named = {str(name): str(path) for name, path in (details.get("inputs") or {}).items()}
    scrub = Scrubber(() if show_identifiers else secrets, None if show_identifiers else named)

    spans = {str(launch["id"]): _launch_span(launch) for launch in launches}
    gone = [
        str(i.get("sha256"))
        for a in finals.values()
        for i in a.get("inputs") or []
        if not (facts := files.facts.get(str(i.get("path") or ""))) or not facts.readable
    ]
    builder = _RowBuilder(pseudonym, show_identifiers, files, scrub, run["status"], spans, files.remembered(gone))
    for step in order:
        for (name, task_key), attempt in finals.items():
            if name == step:
                builder.add_task(step, task_key, attempt, tries.get(task_key, 0), outputs_of[(name, task_key)])
    rows = builder.rows

    for row in rows.values():
        for step in order:
            if step not in row.panels:
                row.panels[step] = Panel(step, "not run")
        first = next((p.inputs for p in row.panels.values() if p.inputs), [])
        row.files = len(first)
        row.frames = sum(f.frames for f in first)
        if not row.modality:
            row.modality = next((f.modality for f in first if f.modality), "")
        row.panels = {step: row.panels[step] for step in order}
        for panel in row.panels.values():
            panel.inputs.sort(key=lambda f: f.order)
            panel.outputs.sort(key=lambda f: f.order)
            panel.changes = header_changes(panel, scrub, show_identifiers=show_identifiers)
            unread = [f for f in panel.inputs if not f.readable]
            if unread:
                why = scrub(unread[0].problem)
                panel.notes.append(
                    f"{len(unread)} of {len(panel.inputs)} input files cannot be read now ({why}): deleted or changed "
                    "since the run?" + ("" if panel.changes else " No header comparison.")
                )

    report = Report(
        run_id=run["id"],
        status=run["status"],
        kind=run["kind"],
        name=str(details.get("pipeline") or Path(run["target"]).name),
        description=scrub(str(((details.get("snapshot") or {}).get("spec") or {}).get("description") or "")),
        started=run["started"],
        ended=run.get("ended"),
        engine=run.get("engine") or "",
        engine_why=scrub(run.get("engine_why") or ""),
        scheduler=run.get("scheduler") or "",
        dicompose_version=version,
        show_identifiers=show_identifiers,
        inputs=[
            (name, path if show_identifiers else (pseudonym("folder:" + path) or "p-")[:14])
            for name, path in (details.get("inputs") or {}).items()
        ],
        steps=step_summaries(run, order, finals, attempts, launches, scrub),
        not_processed=[
            (kind, int(item.get("count", 0)), [scrub(str(line)) for line in item.get("lines", [])[:50]])
            for kind, item in not_processed.items()
        ],
        rows=sorted(rows.values(), key=lambda r: (r.key.startswith("task:"), r.modality, r.label)),
    )
    return report, scrub


class _RowBuilder:
    """Rows keyed by input Series Instance UID (or ``task:KEY`` for inputs without one), filled step by step:
    a file some earlier task wrote joins the row of what it was written from."""

    def __init__(
        self,
        pseudonym: Callable[[str], str | None],
        show_identifiers: bool,
        files: RunFiles,
        scrub: Scrubber,
        run_status: str,
        spans: dict[str, tuple[float | None, int]],
        remembered: dict[str, str],
    ) -> None:
        self.rows: dict[str, SeriesRow] = {}
        self._remembered = remembered  # sha256 -> series UID of inputs that cannot be read now (deleted)
        self._run_status = run_status
        self._spans = spans  # launch id -> (its duration, how many tasks it carried)
        self._pseudonym = pseudonym
        self._show_identifiers = show_identifiers
        self._files = files
        self._scrub = scrub
        self._row_of_content: dict[str, str] = {}  # sha256 -> row key
        self._row_of_instance: dict[str, str] = {}  # SOP Instance UID -> row key

    def row(self, key: str, facts: FileFacts | None) -> SeriesRow:
        if key not in self.rows:
            # a series is named by the audit log's pseudonym of its UID, shortened (so the two can be matched)
            label = "t-" + key[5:15] if key.startswith("task:") else (self._pseudonym(key) or "p-")[:12]
            row = self.rows[key] = SeriesRow(key, label, f"series/{label}.html")
            if facts is not None:
                row.modality = facts.modality
                if self._show_identifiers:
                    row.identifiers = {k: facts.opt_in[k] for k in _OPT_IN_ROW if k in facts.opt_in}
                    row.identifiers["SeriesInstanceUID"] = key
        return self.rows[key]

    def add_task(
        self,
        step: str,
        task_key: str,
        attempt: dict[str, Any],
        tries: int,
        outputs: list[tuple[dict[str, Any], str | None]],
    ) -> None:
        status = task_outcome(attempt, self._run_status)
        seconds, carried = self._spans.get(str(attempt.get("launch_id") or ""), (None, 0))
        panels: dict[str, Panel] = {}

        def panel_of(row: SeriesRow) -> Panel:
            if row.key not in panels:
                panel = Panel(step, status, None if status == "cached" else seconds, tries, launch_tasks=carried)
                if status in ("failed", "partial", "interrupted"):
                    panel.message = self._scrub(str(attempt.get("message") or "the tool failed"))
                    panel.log_tail = self._scrub(_log_tail(attempt))
                elif status == "skipped":
                    panel.message = self._scrub("; ".join(_skipped(attempt)) or "the tool handles none of its files")
                row.panels[step] = panels[row.key] = panel
            return panels[row.key]

        task_rows: set[str] = set()
        for item in attempt.get("inputs") or []:
            path, sha = str(item.get("path") or ""), str(item.get("sha256") or "")
            facts = self._files.facts.get(path)
            if sha in self._row_of_content:
                key = self._row_of_content[sha]
            elif facts is not None and facts.readable and facts.series:
                key = facts.series
            elif self._remembered.get(sha):  # deleted since: the series it was, as the workspace remembers it
                key = self._remembered[sha]
            else:
                key = "task:" + task_key
            task_rows.add(key)
            self._row_of_content.setdefault(sha, key)
            panel = panel_of(self.row(key, facts))
            if facts is not None:
                if facts.instance:
                    self._row_of_instance.setdefault(facts.instance, key)
                panel.inputs.append(facts)
        if not task_rows:
            task_rows.add("task:" + task_key)
            panel_of(self.row("task:" + task_key, None))
        for output, where in outputs:
            facts = self._files.facts.get(where) if where else None
            if facts is not None and facts.source_instance in self._row_of_instance:
                key = self._row_of_instance[str(facts.source_instance)]
            elif len(task_rows) == 1:
                key = next(iter(task_rows))
            else:
                key = "task:" + task_key
            self._row_of_content.setdefault(str(output.get("sha256")), key)
            panel = panel_of(self.row(key, None))
            if facts is not None and facts.readable:
                if facts.instance:
                    self._row_of_instance.setdefault(facts.instance, key)
                panel.outputs.append(facts)
            elif where is None:
                panel.missing_outputs += 1  # neither in its task folder nor where it was published
            else:
                panel.other_outputs += 1


def task_outcome(attempt: dict[str, Any], run_status: str) -> str:
    """What became of a task, as the report says it: a cache hit, ok, skipped (the tool handles none of its
    files), partial, interrupted (its launch was stopped with the run) or failed."""
    if attempt["cached"]:
        return "cached"
    status = str(attempt["status"])
    if status in ("ok", "skipped", "partial"):
        return status
    stopped = "before this task finished" in str(attempt.get("message") or "") or (attempt.get("exit_code") or 0) < 0
    return "interrupted" if run_status == "interrupted" and stopped else "failed"


def _launch_span(launch: dict[str, Any]) -> tuple[float | None, int]:
    started, ended = launch.get("started"), launch.get("ended")
    return (ended - started if started and ended else None), len(launch.get("tasks") or [])


def _skipped(attempt: dict[str, Any]) -> list[str]:
    """Why the tool skipped a task's files, as its launch recorded them (``task.json``)."""
    folder = attempt.get("log_dir")
    if not folder:
        return []
    try:
        record = json.loads(Path(folder, "task.json").read_text())
    except (OSError, ValueError):
        return []
    return [str(line) for line in record.get("skipped", [])][:20] if isinstance(record, dict) else []


def step_summaries(
    run: dict[str, Any],
    order: list[str],
    finals: dict[tuple[str, str], dict[str, Any]],
    attempts: list[dict[str, Any]],
    launches: list[dict[str, Any]],
    scrub: Callable[[str], str],
) -> list[StepSummary]:
    snapshot = ((run.get("details") or {}).get("snapshot") or {}).get("steps") or []
    described = {str(s.get("name")): s for s in snapshot}
    summaries = []
    for step in order:
        spec = described.get(step, {})
        descriptor = spec.get("descriptor") or {}
        image = spec.get("image") or (descriptor.get("container-image") or {}).get("image") or ""
        mine = [a for (name, _), a in finals.items() if name == step]
        summary = StepSummary(
            name=step,
            tool=str(descriptor.get("name") or step),
            tool_version=str(descriptor.get("tool-version") or ""),
            image=str(image if isinstance(image, str) else image.get("reference", "")),
            digests=sorted({str(a["image_digest"]) for a in mine if a.get("image_digest")}),
            params={str(k): scrub(str(v)) for k, v in (spec.get("params") or {}).items()},
            engine=", ".join(sorted({str(a["engine"]) for a in mine if a.get("engine")})) or run.get("engine") or "",
            tasks=len(mine),
            cached=sum(1 for a in mine if a["cached"]),
            failed=sum(1 for a in mine if task_outcome(a, run["status"]) in ("failed", "partial", "interrupted")),
            skipped=sum(1 for a in mine if not a["cached"] and a["status"] == "skipped"),
            launches=sum(1 for launch in launches if launch["step"] == step)
            or sum(1 for a in attempts if a["step"] == step and not a["cached"]),
            attempts=sum(1 for a in attempts if a["step"] == step and not a["cached"]),
        )
        summary.launch_seconds = [
            seconds
            for launch in launches
            if launch["step"] == step and (seconds := _launch_span(launch)[0]) is not None
        ]
        summaries.append(summary)
    return summaries


def header_changes(panel: Panel, scrub: Callable[[str], str], *, show_identifiers: bool) -> list[Change]:
    """The first output against the input it was made from (or the first input): identities new or kept,
    the compared attributes as values, and the names of any other attribute the step added or removed."""
    readable_inputs = [f for f in panel.inputs if f.readable]
    if not panel.outputs or not readable_inputs:  # inputs gone or unreadable: nothing to compare with
        return []
    after = panel.outputs[0]
    before = next(
        (f for f in readable_inputs if f.instance and f.instance == after.source_instance), readable_inputs[0]
    )
    changes: list[Change] = []
    for keyword in IDENTITIES:
        old, new = before.identities.get(keyword), after.identities.get(keyword)
        if old is None and new is None:
            continue
        verdict = "kept" if old == new else "new" if old and new else "added" if new else "removed"
        shown_old = (old or "-") if show_identifiers else ("present" if old else "-")
        shown_new = (new or "-") if show_identifiers else ("present" if new else "-")
        changes.append(Change(keyword, shown_old, shown_new, verdict))
    for keyword in COMPARED:
        old, new = before.compared.get(keyword), after.compared.get(keyword)
        if old is None and new is None:
            continue
        verdict = (
            "same"
            if old == new or _same_numbers(old, new)
            else "changed"
            if old is not None and new is not None
            else ("added" if new is not None else "removed")
        )
        changes.append(Change(keyword, scrub(old or "-")[:200], scrub(new or "-")[:200], verdict))
    listed = {*COMPARED, *IDENTITIES, "PixelData"}
    added = sorted(after.keywords - before.keywords - listed)
    removed = sorted(before.keywords - after.keywords - listed)
    if added:
        changes.append(Change("other attributes added", "-", ", ".join(added), "added"))
    if removed:
        changes.append(Change("other attributes removed", ", ".join(removed), "-", "removed"))
    return changes


def _same_numbers(old: str | None, new: str | None) -> bool:
    """``1.0`` and ``1`` (a DS written anew), ``40\\400`` and ``40.0\\400.0``: the same values."""
    if old is None or new is None:
        return False
    try:
        return [float(v) for v in old.split("\\")] == [float(v) for v in new.split("\\")]
    except ValueError:
        return False


def _log_tail(attempt: dict[str, Any]) -> str:
    folder = attempt.get("log_dir")
    candidates = [Path(folder, n) for n in ("stderr", "stderr.log")] if folder else []
    for candidate in candidates:
        try:
            with candidate.open("rb") as fh:
                fh.seek(0, os.SEEK_END)
                size = fh.tell()
                fh.seek(max(0, size - 16384))
                lines = fh.read().decode("utf-8", errors="replace").splitlines()
        except OSError:
            continue
        return "\n".join(lines[-LOG_TAIL_LINES:])
    return ""
