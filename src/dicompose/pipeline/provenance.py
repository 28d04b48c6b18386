"""``dicompose export-provenance RUN``: a Workflow Run RO-Crate (Provenance Run Crate profile) of a run.

The crate describes the pipeline (workflow), each tool (descriptor included), each step execution (image
digest, engine, parameters, start/end, inputs and outputs with sha256), the host and dicompose's version.
Input and output files are referenced by ``file://`` URI and sha256, never copied: they are patient data.
"""

from __future__ import annotations

import json
import platform
import socket
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from dicompose import __version__
from dicompose.errors import UsageError
from dicompose.pipeline.snapshot import graph_from_snapshot
from dicompose.records.index import existing_index

PROFILES = {
    "process": "https://w3id.org/ro/wfrun/process/0.5",
    "workflow": "https://w3id.org/ro/wfrun/workflow/0.5",
    "provenance": "https://w3id.org/ro/wfrun/provenance/0.5",
    "wfcrate": "https://w3id.org/workflowhub/workflow-ro-crate/1.0",
}


def _iso(timestamp: float | None) -> str | None:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds") if timestamp else None


def _file_entity(path: str, sha256: str, named: bool = True) -> dict[str, Any]:
    """A file by ``file://`` URI and sha256; or, where its path may name a patient (the identified files of a
    de-identifying run: ``privacy``), by its sha256 alone."""
    if not named:
        return {"@id": f"#file-{sha256}", "@type": "File", "name": f"file {sha256[:12]}", "sha256": sha256}
    return {"@id": Path(path).absolute().as_uri(), "@type": "File", "name": Path(path).name, "sha256": sha256}


def export_provenance(workspace: Path, run_id: str, out_dir: Path) -> Path:
    from rocrate.model.contextentity import ContextEntity
    from rocrate.rocrate import ROCrate

    index = existing_index(workspace)
    try:
        run = index.run(run_id)
        if run is None:
            raise UsageError(f"no run {run_id!r} in {workspace} (see dicompose runs)")
        attempts = [a for a in index.attempts(run["id"]) if a["status"] != "failed" or not a["cached"]]
    finally:
        index.close()
    snapshot = run["details"].get("snapshot")
    if run["kind"] not in ("pipeline", "tool") or snapshot is None:
        raise UsageError(f"run {run['id']} is not a recorded pipeline or tool run")

    crate = ROCrate(version="1.1")
    # RO-Crate 1.1 terms, plus the Workflow Run vocabulary, so every type and property resolves to the IRIs the
    # Workflow Run Crate profiles (and their validator) expect.
    crate.metadata.extra_terms = {
        "ComputationalWorkflow": "https://bioschemas.org/ComputationalWorkflow",
        "ContainerImage": "https://w3id.org/ro/terms/workflow-run#ContainerImage",
        "sha256": "https://w3id.org/ro/terms/workflow-run#sha256",
    }
    crate.root_dataset["name"] = f"dicompose run {run['id']}"
    crate.root_dataset["description"] = f"Provenance of the dicompose pipeline run {run['id']} ({run['status']})"
    crate.root_dataset["license"] = "https://spdx.org/licenses/CC-BY-4.0"
    crate.root_dataset["conformsTo"] = [{"@id": url} for url in PROFILES.values()]
    for url, name in (
        (PROFILES["process"], "Process Run Crate"),
        (PROFILES["workflow"], "Workflow Run Crate"),
        (PROFILES["provenance"], "Provenance Run Crate"),
        (PROFILES["wfcrate"], "Workflow RO-Crate"),
    ):
        crate.add(ContextEntity(crate, url, {"@type": "CreativeWork", "name": name, "version": url.rsplit("/", 1)[1]}))
    crate.metadata["conformsTo"] = [{"@id": "https://w3id.org/ro/crate/1.1"}, {"@id": PROFILES["wfcrate"]}]
    data_entities: list[Any] = []

    with tempfile.TemporaryDirectory() as tmp:
        tmp_dir = Path(tmp)
        pipeline_file = tmp_dir / "pipeline.yaml"
        pipeline_file.write_text(yaml.safe_dump(snapshot["spec"], sort_keys=False))
        language = crate.add(
            ContextEntity(
                crate,
                "#dicompose-pipeline",
                {
                    "@type": "ComputerLanguage",
                    "name": "dicompose pipeline",
                    "alternateName": "dicompose",
                    "identifier": {"@id": "https://github.com/dicompose/dicompose"},
                    "url": {"@id": "https://github.com/dicompose/dicompose"},
                    "version": "1",
                },
            )
        )
        workflow = crate.add_file(
            pipeline_file,
            "pipeline.yaml",
            properties={
                "name": snapshot["spec"]["name"],
                "@type": ["File", "SoftwareSourceCode", "ComputationalWorkflow", "HowTo"],
                "programmingLanguage": {"@id": language.id},
                "encodingFormat": "application/yaml",
            },
        )
        crate.root_dataset["mainEntity"] = workflow
        engine_app = crate.add(
            ContextEntity(
                crate,
                "#dicompose",
                {
                    "@type": "SoftwareApplication",
                    "name": "dicompose",
                    "softwareVersion": __version__,
                    "url": "https://github.com/dicompose/dicompose",
                },
            )
        )
        host = crate.add(
            ContextEntity(
                crate, "#host", {"@type": "Place", "name": socket.gethostname(), "description": platform.platform()}
            )
        )
        tools: dict[str, Any] = {}
        steps: dict[str, Any] = {}
        for position, item in enumerate(snapshot["steps"]):
            name = item["name"]
            descriptor_path = tmp_dir / f"{name}.json"
            descriptor_path.write_text(json.dumps(item["descriptor"], indent=2))
            image = item.get("image")
            tool = crate.add_file(
                descriptor_path,
                f"tools/{name}.json",
                properties={
                    "@type": ["File", "SoftwareApplication"],
                    "name": item["descriptor"]["name"],
                    "softwareVersion": item["descriptor"]["tool-version"],
                    "encodingFormat": "application/json",
                    **({"softwareRequirements": {"@id": f"#image-{name}"}} if image else {}),
                },
            )
            if image:
                crate.add(
                    ContextEntity(
                        crate,
                        f"#image-{name}",
                        {
                            "@type": "ContainerImage",
                            "name": image["name"],
                            "additionalType": {"@id": "https://w3id.org/ro/terms/workflow-run#DockerImage"},
                            "sha256": image["digest"].removeprefix("sha256:"),
                        },
                    )
                )
            step = crate.add(
                ContextEntity(
                    crate,
                    f"#step-{name}",
                    {"@type": "HowToStep", "name": name, "position": str(position), "workExample": {"@id": tool.id}},
                )
            )
            tools[name], steps[name] = tool, step
        workflow["hasPart"] = list(tools.values())
        workflow["step"] = list(steps.values())

        inputs: dict[str, dict[str, Any]] = {}
        outputs: dict[str, dict[str, Any]] = {}
        control_actions = []
        private = bool(run["details"].get("private"))
        recorded_graph = graph_from_snapshot(snapshot, Path(str(run["target"])))[0] if private else None
        for attempt in attempts:
            if attempt["status"] == "blocked":
                continue
            # in a de-identifying run, only the files of de-identified steps are named (their names are
            # de-identified values); a step's inputs are de-identified if the step upstream of it is
            named_in = named_out = True
            if recorded_graph is not None:
                source = recorded_graph.step(attempt["step"]).source
                named_out = recorded_graph.deidentified(attempt["step"])
                named_in = source.kind == "step" and recorded_graph.deidentified(source.name)
            folder = Path(attempt["log_dir"]) / "out" if attempt["log_dir"] else None
            objects: list[dict[str, str]] = []
            for item in attempt["inputs"]:
                entity = _file_entity(item.get("path") or item["name"], item["sha256"], named_in)
                inputs.setdefault(entity["@id"], entity)
                objects.append({"@id": entity["@id"]})
            results = []
            for item in attempt["outputs"]:
                path = str(folder / item["name"]) if folder else item["name"]
                entity = _file_entity(path, item["sha256"], named_out)
                outputs.setdefault(entity["@id"], entity)
                results.append({"@id": entity["@id"]})
            action = crate.add(
                ContextEntity(
                    crate,
                    f"#task-{attempt['task_key'][:16]}-{attempt['attempt']}",
                    {
                        "@type": "CreateAction",
                        "name": f"{attempt['step']} {attempt['task_label']}",
                        "instrument": {"@id": tools[attempt["step"]].id},
                        "object": objects,
                        "result": results,
                        "actionStatus": "http://schema.org/CompletedActionStatus"
                        if attempt["status"] in ("ok", "partial", "skipped")
                        else "http://schema.org/FailedActionStatus",
                        **({"startTime": _iso(attempt["started"])} if attempt["started"] else {}),
                        **({"endTime": _iso(attempt["ended"])} if attempt["ended"] else {}),
                        "description": f"engine {attempt['engine']}; image {attempt['image_digest'] or 'none'}; "
                        f"exit {attempt['exit_code']}; {'cached' if attempt['cached'] else 'executed'}",
                    },
                )
            )
            control = crate.add(
                ContextEntity(
                    crate,
                    f"#control-{action.id.lstrip('#')}",
                    {
                        "@type": "ControlAction",
                        "name": f"orchestrate {attempt['step']}",
                        "instrument": {"@id": steps[attempt["step"]].id},
                        "object": {"@id": action.id},
                    },
                )
            )
            control_actions.append(control)
        for entity in [*inputs.values(), *outputs.values()]:
            added = crate.add(ContextEntity(crate, entity["@id"], {k: v for k, v in entity.items() if k != "@id"}))
            data_entities.append(added)
        run_action = crate.add_action(
            workflow,
            identifier=f"#run-{run['id']}",
            properties={
                "name": f"dicompose run {run['id']}",
                "startTime": _iso(run["started"]),
                "endTime": _iso(run["ended"]),
                "object": [{"@id": i} for i in inputs],
                "result": [{"@id": o} for o in outputs],
                "location": {"@id": host.id},
                "actionStatus": "http://schema.org/CompletedActionStatus"
                if run["status"] == "ok"
                else "http://schema.org/FailedActionStatus",
            },
        )
        crate.add(
            ContextEntity(
                crate,
                f"#organize-{run['id']}",
                {
                    "@type": "OrganizeAction",
                    "name": "dicompose pipeline run",
                    "instrument": {"@id": engine_app.id},
                    "object": [{"@id": c.id} for c in control_actions],
                    "result": {"@id": run_action.id},
                    "description": f"engine {run['engine']} ({run['engine_why']}); scheduler {run['scheduler']}",
                    "startTime": _iso(run["started"]),
                    "endTime": _iso(run["ended"]),
                },
            )
        )
        crate.root_dataset["hasPart"] = [workflow, *tools.values(), *data_entities]
        out_dir.mkdir(parents=True, exist_ok=True)
        crate.write(out_dir)
    return out_dir / "ro-crate-metadata.json"
