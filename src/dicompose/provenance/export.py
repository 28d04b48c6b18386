"""``dicompose export-provenance RUN``: a Provenance Run Crate of a recorded run, from the records alone."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from dicompose.errors import UsageError
from dicompose.pipeline.graph import PipelineGraph
from dicompose.pipeline.snapshot import graph_from_snapshot
from dicompose.provenance import entities as build
from dicompose.records.index import existing_index


def export_provenance(workspace: Path, run_id: str, out_dir: Path) -> Path:
    """Write the crate of run ``run_id`` (or the one run whose id starts so) into ``out_dir``; its metadata file."""
    run, attempts = _records(workspace, run_id)
    snapshot = run["details"]["snapshot"]
    crate = build.new_crate(run)
    with tempfile.TemporaryDirectory() as tmp:  # the pipeline and descriptors are copied in by write()
        folder = Path(tmp)
        workflow = build.add_workflow(crate, snapshot["spec"], folder)
        dicompose, host = build.add_dicompose(crate), build.add_host(crate)
        tools, steps = {}, {}
        for position, item in enumerate(snapshot["steps"]):
            tools[item["name"]], steps[item["name"]] = build.add_tool(crate, item, position, folder)
        workflow["hasPart"], workflow["step"] = list(tools.values()), list(steps.values())
        private = bool(run["details"].get("private"))
        graph = graph_from_snapshot(snapshot, Path(str(run["target"])))[0] if private else None
        inputs: dict[str, dict[str, Any]] = {}
        outputs: dict[str, dict[str, Any]] = {}
        controls = []
        for attempt in attempts:
            named_in, named_out = _named(graph, attempt["step"])
            objects = _collect(inputs, _input_files(attempt, named_in))
            results = _collect(outputs, _output_files(attempt, named_out))
            action = build.add_task_action(crate, attempt, tools[attempt["step"]], objects, results)
            controls.append(build.add_control_action(crate, attempt["step"], steps[attempt["step"]], action))
        files = build.add_files(crate, [*inputs.values(), *outputs.values()])
        run_action = build.add_run_action(crate, run, workflow, host, list(inputs), list(outputs))
        build.add_organize_action(crate, run, dicompose, controls, run_action)
        crate.root_dataset["hasPart"] = [workflow, *tools.values(), *files]
        out_dir.mkdir(parents=True, exist_ok=True)
        crate.write(out_dir)
    return out_dir / "ro-crate-metadata.json"


def _records(workspace: Path, run_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The run and its attempts worth describing (a cached failure repeats nothing; blocked tasks never ran)."""
    index = existing_index(workspace)
    try:
        run = index.run(run_id)
        if run is None:
            raise UsageError(f"no run {run_id!r} in {workspace} (see dicompose runs)")
        attempts = [
            a
            for a in index.attempts(run["id"])
            if (a["status"] != "failed" or not a["cached"]) and a["status"] != "blocked"
        ]
    finally:
        index.close()
    if run["kind"] not in ("pipeline", "tool") or run["details"].get("snapshot") is None:
        raise UsageError(f"run {run['id']} is not a recorded pipeline or tool run")
    return run, attempts


def _named(graph: PipelineGraph | None, step: str) -> tuple[bool, bool]:
    """May the step's (inputs, outputs) be named by path? In a de-identifying run only de-identified files
    may (their names are de-identified values): a step's outputs if it de-identifies, its inputs if the step
    upstream of it does."""
    if graph is None:
        return True, True
    source = graph.step(step).source
    return source.kind == "step" and graph.deidentified(source.name), graph.deidentified(step)


def _input_files(attempt: dict[str, Any], named: bool) -> list[dict[str, Any]]:
    return [build.file_entity(i.get("path") or i["name"], i["sha256"], named) for i in attempt["inputs"]]


def _output_files(attempt: dict[str, Any], named: bool) -> list[dict[str, Any]]:
    folder = Path(attempt["log_dir"]) / "out" if attempt["log_dir"] else None
    return [
        build.file_entity(str(folder / o["name"]) if folder else o["name"], o["sha256"], named)
        for o in attempt["outputs"]
    ]


def _collect(seen: dict[str, dict[str, Any]], files: list[dict[str, Any]]) -> list[str]:
    """Each file once in the crate; the ids of ``files`` in order."""
    for entity in files:
        seen.setdefault(entity["@id"], entity)
    return [entity["@id"] for entity in files]
