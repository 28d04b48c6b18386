"""``dicompose report RUN --out DIR``: a run's QC report, written whole or not at all, its reads audited.

The report is made in a hidden folder beside ``--out`` and moved into place in one rename, so a reader never
sees half a report and an interrupted one leaves nothing behind. An existing report there (a folder or page
this command wrote) is replaced; anything else is refused. Reading the run's files to draw them is access to
patient data: one audit entry per series says who read which series (as keyed pseudonyms) for a report.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dicompose.errors import StorageError, UsageError, storage_error
from dicompose.records.audit import AuditLog, Item, load_keys
from dicompose.records.index import Index
from dicompose.report import MARKER
from dicompose.report.collect import RunFiles, collect
from dicompose.report.figures import draw_rows
from dicompose.report.model import Report
from dicompose.report.render import GENERATOR, render_embedded, render_folder

#: An embedded report past this size is refused (a browser and a mail server both choke on such a page).
EMBED_LIMIT = 25 * 1024 * 1024


@dataclass(frozen=True)
class Written:
    path: Path  # the page to open
    report: Report
    figures: int
    bytes: int
    seconds: float


def write_report(
    index: Index,
    run: dict[str, Any],
    workspace: Path,
    out: Path,
    *,
    embed: bool = False,
    show_identifiers: bool = False,
    workers: int = 1,
) -> Written:
    from dicompose import __version__
    from dicompose.dicom.deidentify import action_table

    started = time.perf_counter()
    target = _target(out, embed)
    keys = load_keys()
    attempts = index.attempts(run["id"])
    files = RunFiles(index.published_by_content, frozenset(action_table()), workers, index.series_by_content)
    report, _ = collect(
        run,
        attempts,
        index.launches(run["id"]),
        files,
        keys.pseudonym,
        show_identifiers=show_identifiers,
        version=__version__,
    )
    report.provenance = {
        "files read": f"{len(files.facts)} (headers), slices sampled for the figures",
        "run record": f"dicompose show {run['id']}",
    }
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    try:
        staging.chmod(_folder_mode())  # mkdtemp's 0700 would keep the report from a web server or a colleague
        figures = staging / "figures"
        figures.mkdir()
        steps = {step.name: position for position, step in enumerate(report.steps, 1)}
        report.rows = draw_rows(report.rows, figures, steps, workers)
        figure_count = sum(1 for _ in figures.iterdir())
        if embed:
            size = sum(p.stat().st_size for p in figures.iterdir()) * 4 // 3
            if size > EMBED_LIMIT:
                raise UsageError(
                    f"{out}: {len(report.rows)} series make a {size / 1e6:.0f} MB page; --embed is for small "
                    f"reports (up to {EMBED_LIMIT // (1024 * 1024)} MB): leave it out for a folder of pages"
                )
            page = staging / "page.html"
            page.write_text(render_embedded(report, figures), encoding="utf-8")
            total = page.stat().st_size
            _audit(index, workspace, keys, run["id"], files)
            _fsync(page)
            page.replace(target)
            _fsync_folder(target.parent)
        else:
            pages = render_folder(report, staging)
            (staging / MARKER).write_text(f"{GENERATOR} report of run {run['id']}\n")
            total = sum(p.stat().st_size for p in [*pages, *figures.iterdir()])
            _audit(index, workspace, keys, run["id"], files)
            _publish_folder(staging, target)
    except OSError as exc:
        raise storage_error(target, exc) or StorageError(target, f"cannot write ({exc.strerror or exc})") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone already once published
    page_path = target if embed else target / "index.html"
    return Written(page_path, report, figure_count, total, time.perf_counter() - started)


def _folder_mode() -> int:
    """Folders as the user's umask makes them (0755 under the usual 022)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o777 & ~mask


def _target(out: Path, embed: bool) -> Path:
    """Where the report goes, refused up front if something that is not a report is there."""
    out = Path(os.path.normpath(out.expanduser().absolute()))  # ~/x/../y never creates ~/x
    target = out
    if embed and target.suffix.lower() not in (".html", ".htm"):
        if (out / MARKER).is_file():
            raise UsageError(
                f"{out}: holds a folder report; --embed writes one page: give --out FILE.html or another folder"
            )
        target = out / "index.html"
    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UsageError(f"{parent}: a file is in the way of the report's folder") from None
    except OSError as exc:
        raise UsageError(f"{parent}: cannot create the report's folder ({exc.strerror or exc})") from None
    if not os.access(parent, os.W_OK):
        raise UsageError(f"{parent}: not writable")
    if embed:
        if target.is_dir():
            raise UsageError(f"{target}: is a folder; --embed writes one page")
        if target.exists() and not _is_our_page(target):
            raise UsageError(f"{target}: exists and is not a dicompose report; choose another --out")
    elif target.exists():
        if not target.is_dir():
            raise UsageError(f"{target}: exists and is not a folder; choose another --out")
        if any(target.iterdir()) and not (target / MARKER).is_file():
            raise UsageError(f"{target}: exists, is not empty and is not a dicompose report; choose another --out")
    return target


def _is_our_page(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            return f'content="{GENERATOR} '.encode() in fh.read(2048)
    except OSError:
        return False


def _publish_folder(staging: Path, target: Path) -> None:
    """The finished report takes the place of ``target`` in one rename (an earlier report is set aside first
    and removed after, so at every moment ``target`` is one whole report or none)."""
    for path in staging.rglob("*"):
        if path.is_file():
            _fsync(path)
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        target.rename(old)
    staging.rename(target)
    _fsync_folder(target.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_folder(path: Path) -> None:
    with contextlib.suppress(OSError):
        _fsync(path)


def _audit(index: Index, workspace: Path, keys: Any, run_id: str, files: RunFiles) -> None:
    """One "read" entry per series whose files the report read (headers, and sampled slices)."""
    per_series: dict[tuple[str | None, str | None, str | None], int] = {}
    for facts in files.facts.values():
        if facts.readable:
            key = (facts.study, facts.series, facts.patient)
            per_series[key] = per_series.get(key, 0) + 1
    if not per_series:
        return
    items: list[Item] = [
        (
            "read",
            {"study": study, "series": series, "patient": patient, "instances": count},
            "report",
            None,
            run_id,
            "ok",
        )
        for (study, series, patient), count in sorted(per_series.items(), key=lambda kv: str(kv[0]))
    ]
    log = AuditLog(workspace / "audit", keys)
    log.append_many(items)
    checkpoint = log.checkpoint()
    if checkpoint is not None:
        index.add_anchor(checkpoint, log.id)
