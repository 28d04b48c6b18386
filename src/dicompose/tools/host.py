"""The built-in tools run on the host, outside any pipeline (``dicompose normalize DIR``, ``threshold``,
``deidentify``): a batch with this machine's settings, and its outcome as the versioned document that
``--json`` prints (a contract for scripts: docs/json.md)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from dicompose.config import load_settings
from dicompose.tools.batch import run_batch
from dicompose.tools.batch_types import FileResult, Operation, Status, Summary


def run_on_host(
    inputs: Sequence[Path],
    operation: Operation,
    out_dir: Path | None,
    *,
    workers: int | None,
    on_result: Callable[[FileResult], None],
    on_total: Callable[[int], None],
    follow_links: bool = False,
) -> Summary:
    """Run ``operation`` over ``inputs`` with ``workers`` processes (default: the settings'), audited."""
    chosen = workers or load_settings().workers
    return run_batch(
        inputs, operation, out_dir, workers=chosen, on_result=on_result, on_total=on_total, follow_links=follow_links
    )


def summary_document(summary: Summary, tool: str, parameters: Mapping[str, object]) -> dict[str, Any]:
    """``dicompose.<tool>/1``: the parameters, counts, and one entry per file (source, status, output, message)."""
    return {
        "schema": f"dicompose.{tool}/1",
        "parameters": dict(parameters),
        "counts": {s.value: summary.count(s) for s in Status},
        "seconds": round(summary.seconds, 3),
        "stopped": summary.stopped or None,
        "not_attempted": summary.not_attempted,
        "files": [
            {
                "source": str(r.source),
                "status": r.status.value,
                "output": str(r.output) if r.output else None,
                "message": r.message or None,
            }
            for r in summary.results
        ],
    }
