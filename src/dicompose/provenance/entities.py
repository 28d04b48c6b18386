"""One builder per kind of entity of a Provenance Run Crate: each adds its entity to the crate and returns it.

The profiles (https://www.researchobject.org/workflow-run-crate/profiles/provenance_run_crate) ask for: the
workflow (the pipeline file) with its steps (HowToStep) and tools (the descriptors, with their container
image); one CreateAction per task attempt (its input and output files by sha256) and a ControlAction tying
it to its step; one CreateAction for the whole run and an OrganizeAction for dicompose, which orchestrated it.
Files are referenced by ``file://`` URI and sha256, never copied: they are patient data.
"""

from __future__ import annotations

import json
import platform
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from rocrate.model.contextentity import ContextEntity
from rocrate.model.entity import Entity
from rocrate.rocrate import ROCrate

from dicompose import __version__

PROFILES = {
    "process": ("https://w3id.org/ro/wfrun/process/0.5", "Process Run Crate"),
    "workflow": ("https://w3id.org/ro/wfrun/workflow/0.5", "Workflow Run Crate"),
    "provenance": ("https://w3id.org/ro/wfrun/provenance/0.5", "Provenance Run Crate"),
    "wfcrate": ("https://w3id.org/workflowhub/workflow-ro-crate/1.0", "Workflow RO-Crate"),
}
#: terms beyond RO-Crate 1.1 that the Workflow Run profiles (and their validator) expect to resolve
EXTRA_TERMS = {
    "ComputationalWorkflow": "https://bioschemas.org/ComputationalWorkflow",
    "ContainerImage": "https://w3id.org/ro/terms/workflow-run#ContainerImage",
    "sha256": "https://w3id.org/ro/terms/workflow-run#sha256",
}
_HOME = "https://github.com/dicompose/dicompose"
_COMPLETED, _FAILED = "http://schema.org/CompletedActionStatus", "http://schema.org/FailedActionStatus"


def iso(timestamp: float | None) -> str | None:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds") if timestamp else None


def _context(crate: ROCrate, identifier: str, properties: dict[str, Any]) -> Entity:
    return crate.add(ContextEntity(crate, identifier, properties))


def new_crate(run: dict[str, Any]) -> ROCrate:
    """The crate, its root dataset described and declared conformant to the profiles."""
    crate = ROCrate(version="1.1")
    crate.metadata.extra_terms = dict(EXTRA_TERMS)
    root = crate.root_dataset
    root["name"] = f"dicompose run {run['id']}"
    root["description"] = f"Provenance of the dicompose pipeline run {run['id']} ({run['status']})"
    root["license"] = "https://spdx.org/licenses/CC-BY-4.0"
    root["conformsTo"] = [{"@id": url} for url, _name in PROFILES.values()]
    for url, name in PROFILES.values():
        _context(crate, url, {"@type": "CreativeWork", "name": name, "version": url.rsplit("/", 1)[1]})
    crate.metadata["conformsTo"] = [{"@id": "https://w3id.org/ro/crate/1.1"}, {"@id": PROFILES["wfcrate"][0]}]
    return crate


def add_workflow(crate: ROCrate, spec: dict[str, Any], folder: Path) -> Entity:
    """The pipeline as run (from the snapshot), the crate's main entity, in dicompose's pipeline language."""
    language = _context(
        crate,
        "#dicompose-pipeline",
        {
            "@type": "ComputerLanguage",
            "name": "dicompose pipeline",
            "alternateName": "dicompose",
            "identifier": {"@id": _HOME},
            "url": {"@id": _HOME},
            "version": "1",
        },
    )
    source = folder / "pipeline.yaml"
    source.write_text(yaml.safe_dump(spec, sort_keys=False))
    workflow = crate.add_file(
        source,
        "pipeline.yaml",
        properties={
            "name": spec["name"],
            "@type": ["File", "SoftwareSourceCode", "ComputationalWorkflow", "HowTo"],
            "programmingLanguage": {"@id": language.id},
            "encodingFormat": "application/yaml",
        },
    )
    crate.root_dataset["mainEntity"] = workflow
    return workflow


def add_dicompose(crate: ROCrate) -> Entity:
    """dicompose itself: the instrument of the OrganizeAction."""
    properties = {"@type": "SoftwareApplication", "name": "dicompose", "softwareVersion": __version__, "url": _HOME}
    return _context(crate, "#dicompose", properties)


def add_host(crate: ROCrate) -> Entity:
    return _context(
        crate, "#host", {"@type": "Place", "name": socket.gethostname(), "description": platform.platform()}
    )


def add_tool(crate: ROCrate, item: dict[str, Any], position: int, folder: Path) -> tuple[Entity, Entity]:
    """(tool, step) of one snapshot step: the descriptor as a file, its image by digest, the HowToStep."""
    name, descriptor, image = item["name"], item["descriptor"], item.get("image")
    source = folder / f"{name}.json"
    source.write_text(json.dumps(descriptor, indent=2))
    tool = crate.add_file(
        source,
        f"tools/{name}.json",
        properties={
            "@type": ["File", "SoftwareApplication"],
            "name": descriptor["name"],
            "softwareVersion": descriptor["tool-version"],
            "encodingFormat": "application/json",
            **({"softwareRequirements": {"@id": f"#image-{name}"}} if image else {}),
        },
    )
    if image:
        _context(
            crate,
            f"#image-{name}",
            {
                "@type": "ContainerImage",
                "name": image["name"],
                "additionalType": {"@id": "https://w3id.org/ro/terms/workflow-run#DockerImage"},
                "sha256": image["digest"].removeprefix("sha256:"),
            },
        )
    step_properties = {"@type": "HowToStep", "name": name, "position": str(position), "workExample": {"@id": tool.id}}
    return tool, _context(crate, f"#step-{name}", step_properties)


def file_entity(path: str, sha256: str, named: bool = True) -> dict[str, Any]:
    """A file by ``file://`` URI and sha256; or, where its path may name a patient (the identified files of a
    de-identifying run: ``pipeline.privacy``), by its sha256 alone."""
    if not named:
        return {"@id": f"#file-{sha256}", "@type": "File", "name": f"file {sha256[:12]}", "sha256": sha256}
    return {"@id": Path(path).absolute().as_uri(), "@type": "File", "name": Path(path).name, "sha256": sha256}


def add_files(crate: ROCrate, files: list[dict[str, Any]]) -> list[Entity]:
    return [_context(crate, f["@id"], {k: v for k, v in f.items() if k != "@id"}) for f in files]


def add_task_action(
    crate: ROCrate, attempt: dict[str, Any], tool: Entity, objects: list[str], results: list[str]
) -> Entity:
    """One attempt of one task: what it read and wrote, with which tool, image and engine, and how it ended."""
    ok = attempt["status"] in ("ok", "partial", "skipped")
    how = "cached" if attempt["cached"] else "executed"
    properties = {
        "@type": "CreateAction",
        "name": f"{attempt['step']} {attempt['task_label']}",
        "instrument": {"@id": tool.id},
        "object": [{"@id": i} for i in objects],
        "result": [{"@id": o} for o in results],
        "actionStatus": _COMPLETED if ok else _FAILED,
        **({"startTime": iso(attempt["started"])} if attempt["started"] else {}),
        **({"endTime": iso(attempt["ended"])} if attempt["ended"] else {}),
        "description": f"engine {attempt['engine']}; image {attempt['image_digest'] or 'none'}; "
        f"exit {attempt['exit_code']}; {how}",
    }
    return _context(crate, f"#task-{attempt['task_key'][:16]}-{attempt['attempt']}", properties)


def add_control_action(crate: ROCrate, step_name: str, step: Entity, action: Entity) -> Entity:
    """The orchestration of one task action by its workflow step."""
    properties = {
        "@type": "ControlAction",
        "name": f"orchestrate {step_name}",
        "instrument": {"@id": step.id},
        "object": {"@id": action.id},
    }
    return _context(crate, f"#control-{action.id.lstrip('#')}", properties)


def add_run_action(
    crate: ROCrate, run: dict[str, Any], workflow: Entity, host: Entity, inputs: list[str], outputs: list[str]
) -> Entity:
    """The workflow run as a whole: the pipeline's inputs and outputs, where and when it ran, how it ended."""
    return crate.add_action(
        workflow,
        identifier=f"#run-{run['id']}",
        properties={
            "name": f"dicompose run {run['id']}",
            "startTime": iso(run["started"]),
            "endTime": iso(run["ended"]),
            "object": [{"@id": i} for i in inputs],
            "result": [{"@id": o} for o in outputs],
            "location": {"@id": host.id},
            "actionStatus": _COMPLETED if run["status"] == "ok" else _FAILED,
        },
    )


def add_organize_action(
    crate: ROCrate, run: dict[str, Any], dicompose: Entity, controls: list[Entity], run_action: Entity
) -> Entity:
    """dicompose's orchestration of the run: the engine and scheduler it chose, the control actions."""
    properties = {
        "@type": "OrganizeAction",
        "name": "dicompose pipeline run",
        "instrument": {"@id": dicompose.id},
        "object": [{"@id": c.id} for c in controls],
        "result": {"@id": run_action.id},
        "description": f"engine {run['engine']} ({run['engine_why']}); scheduler {run['scheduler']}",
        "startTime": iso(run["started"]),
        "endTime": iso(run["ended"]),
    }
    return _context(crate, f"#organize-{run['id']}", properties)
