"""The report's pages, from Jinja2 templates (autoescaped: every value is text, never markup): ``index.html``
(the run, its steps, failures, the cohort with one row per series, provenance) and one page per series; or,
embedded, all of it in one ``index.html`` with the figures inline as data URIs."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from pathlib import Path

from dicompose.report.model import Report, SeriesRow

#: The mark of a folder (or page) this command wrote, so that writing the report again may replace it.
GENERATOR = "dicompose"


def _environment() -> object:
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    return Environment(
        loader=PackageLoader("dicompose.report", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _when(timestamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp)) if timestamp else "-"


def _context(report: Report) -> dict[str, object]:
    duration = f"{report.ended - report.started:.1f} s" if report.ended else ""
    steps = {step.name: position for position, step in enumerate(report.steps, 1)}
    return {
        "report": report,
        "started": _when(report.started),
        "ended": _when(report.ended),
        "duration": duration,
        "step_number": lambda name: steps.get(name, 0),
    }


def render_folder(report: Report, folder: Path) -> list[Path]:
    """``folder/index.html`` and ``folder/series/*.html`` (the figures are already in ``folder/figures``)."""
    env = _environment()
    context = _context(report)
    (folder / "series").mkdir(exist_ok=True)
    index = env.get_template("index.html.j2").render(  # type: ignore[attr-defined]
        **context,
        embedded=False,
        figure=lambda name: name,
        link=lambda row: row.page,
        anchor=lambda row: row.page + "#",
    )
    written = [_write(folder / "index.html", index)]
    series = env.get_template("series.html.j2")  # type: ignore[attr-defined]
    for position, row in enumerate(report.rows):
        page = series.render(
            **context,
            row=row,
            previous=report.rows[position - 1] if position > 0 else None,
            next=report.rows[position + 1] if position + 1 < len(report.rows) else None,
            figure=lambda name: "../" + name,
        )
        written.append(_write(folder / row.page, page))
    return written


def render_embedded(report: Report, figures: Path) -> str:
    """One self-contained page: every figure inline, every series a section of it."""
    env = _environment()
    inline: Callable[[str], str] = lambda name: _data_uri(figures / Path(name).name)  # noqa: E731
    link: Callable[[SeriesRow], str] = lambda row: "#" + row.label  # noqa: E731
    return str(
        env.get_template("index.html.j2").render(  # type: ignore[attr-defined]
            **_context(report), embedded=True, figure=inline, link=link, anchor=lambda row: "#"
        )
    )


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path
