"""Provenance export: a Workflow Run RO-Crate that an independent validator accepts (Provenance Run Crate).

The validator (roc-validator, in .venv-validator, see scripts/validator-venv.sh) runs offline against a
seeded context cache; a deliberately broken crate must fail it, so the pass is not vacuous.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dicompose.provenance.export import export_provenance
from tests.support.crate_validator import validate
from tests.support.pipelines import pipeline_file, run, write_scans


@pytest.fixture
def crate(tmp_path: Path) -> Path:
    write_scans(tmp_path / "scans", groups=2)
    report = run(tmp_path, pipeline_file(tmp_path))
    assert report.ok
    return export_provenance(tmp_path / ".dicompose", report.run_id, tmp_path / "crate").parent


def test_the_crate_passes_the_independent_validator(crate: Path):
    report = validate(crate)
    assert report["passed"] is True, report.get("issues")


def test_a_broken_crate_fails_the_validator(crate: Path):
    metadata = crate / "ro-crate-metadata.json"
    doc = json.loads(metadata.read_text())
    for entity in doc["@graph"]:
        if entity["@id"] == "pipeline.yaml":
            entity["@type"] = ["File"]  # no longer a ComputationalWorkflow
    metadata.write_text(json.dumps(doc))
    assert validate(crate)["passed"] is False


def test_the_crate_records_every_step_execution(crate: Path, tmp_path: Path):
    graph = {e["@id"]: e for e in json.loads((crate / "ro-crate-metadata.json").read_text())["@graph"]}
    actions = [e for e in graph.values() if e["@type"] == "CreateAction" and e["@id"].startswith("#task-")]
    assert len(actions) == 4  # 2 groups × 2 steps
    for action in actions:
        assert "engine local" in action["description"] and action["startTime"] <= action["endTime"]
        for ref in [*action["object"], *action["result"]]:
            assert len(graph[ref["@id"]]["sha256"]) == 64
    inputs = {
        graph[r["@id"]]["name"] for a in actions if a["instrument"]["@id"] == "tools/first.json" for r in a["object"]
    }
    assert inputs == {"s0.dcm", "s1.dcm"}
    assert (crate / "tools" / "first.json").is_file() and (crate / "pipeline.yaml").is_file()
    run_action = next(e for e in graph.values() if e["@id"].startswith("#run-"))
    assert run_action["instrument"]["@id"] == "pipeline.yaml" and len(run_action["result"]) == 8
    software = graph["#dicompose"]
    assert software["softwareVersion"]


def test_a_tool_run_exports_a_valid_crate_too(tmp_path: Path):
    """``dicompose run TOOL`` is a one-step pipeline: recorded, cached and exported like any pipeline run."""
    from dicompose.dicom import synthetic
    from dicompose.pipeline.runner import PipelineRequest, run_pipeline
    from dicompose.pipeline.tool_graph import tool_graph

    synthetic.write_ct_series(tmp_path / "scans", "tool", 3, 16, 16)
    graph = tool_graph("normalize", {"max": 1000})
    request = PipelineRequest(
        Path("normalize"),
        {"in": tmp_path / "scans"},
        tmp_path / "out",
        tmp_path / "ws",
        "local",
        graph=graph,
        kind="tool",
    )
    report = run_pipeline(request)
    assert report.ok and report.launches == 1 and len(report.published) == 3
    again = run_pipeline(request)
    assert again.launches == 0 and all(t.cached for t in again.tasks)
    crate = export_provenance(tmp_path / "ws", report.run_id, tmp_path / "crate").parent
    graph_doc = {e["@id"]: e for e in json.loads((crate / "ro-crate-metadata.json").read_text())["@graph"]}
    actions = [e for e in graph_doc.values() if e["@type"] == "CreateAction" and e["@id"].startswith("#task-")]
    assert len(actions) == 1 and len(actions[0]["object"]) == 3 and len(actions[0]["result"]) == 3
    assert validate(crate)["passed"] is True
