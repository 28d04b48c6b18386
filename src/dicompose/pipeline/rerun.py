"""``dicompose rerun`` and ``dicompose verify``: the paper's cross-environment check as one command.

A recorded pipeline run is executed again from its snapshot (same descriptors, parameters and image digests;
refused if a digest is gone) in a fresh workspace, so nothing comes from the cache, and its outputs are
compared with the recorded ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dicompose.errors import UsageError
from dicompose.pipeline.runner import PipelineReport, PipelineRequest, run_pipeline
from dicompose.records.compare import Comparison, compare_folders
from dicompose.records.index import existing_index


@dataclass(frozen=True)
class RerunResult:
    original: str
    report: PipelineReport
    comparison: Comparison

    @property
    def identical(self) -> bool:
        return self.comparison.passed and all(f.status == "identical" for f in self.comparison.files)


def rerun(
    run_id: str,
    workspace: Path,
    out_dir: Path,
    *,
    engine: str | None = None,
    tolerance: float = 0.0,
    scheduler: str = "local",
    workers: int | None = None,
) -> RerunResult:
    index = existing_index(workspace)
    try:
        record = index.run(run_id)
    finally:
        index.close()
    if record is None:
        raise UsageError(f"no run {run_id!r} in {workspace} (see dicompose runs)")
    details = record["details"]
    if record["kind"] not in ("pipeline", "tool") or "snapshot" not in details:
        raise UsageError(f"run {record['id']} is not a recorded pipeline or tool run; it cannot be rerun")
    if record["status"] != "ok":
        raise UsageError(f"run {record['id']} did not succeed ({record['status']}); there is nothing to reproduce")
    original_out = Path(record["out_dir"])
    if out_dir.resolve() == original_out.resolve():
        raise UsageError("--out must differ from the recorded run's output folder (the outputs are compared)")
    if out_dir.exists() and any(out_dir.iterdir()):  # its workspace would serve the earlier rerun's results
        raise UsageError(
            f"--out {out_dir} is not empty: a rerun recomputes everything into a new folder (one holding an "
            "earlier rerun would answer from its cache and prove nothing)"
        )
    request = PipelineRequest(
        pipeline=Path(record["target"]),
        inputs={name: Path(path) for name, path in details["inputs"].items()},
        out_dir=out_dir,
        workspace=out_dir / ".dicompose",  # fresh: nothing may come from the original run's cache
        engine=engine or record["engine"],
        scheduler=scheduler,
        workers=workers,
        recorded=details["snapshot"],
        kind=record["kind"],
    )
    report = run_pipeline(request)
    return RerunResult(record["id"], report, compare_folders(original_out, out_dir, tolerance))
