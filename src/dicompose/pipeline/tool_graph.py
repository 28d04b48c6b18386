"""``dicompose run TOOL``: one tool as a one-step pipeline, so it runs through the same runner as pipelines
(cache, packing, retries, records, audit log, provenance) and is rerun, verified and exported alike.

The one pipeline input is called ``in``; every output of the tool is published flat into ``--out``
(mirroring the input's folders), as a tool run always did.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from dicompose.descriptors.descriptor import Descriptor, load_descriptor
from dicompose.descriptors.invocation import build_invocation, output_patterns, with_batch
from dicompose.errors import UsageError
from dicompose.pipeline.graph import PipelineGraph, Source, StepNode
from dicompose.pipeline.spec import PipelineSpec, Step
from dicompose.tools.builtin_checks import check_builtin_values
from dicompose.walk import as_given

INPUT_NAME = "in"


def batch_input_id(descriptor: Descriptor) -> str:
    """The File input ``--in`` feeds: ``custom.dicompose.batch-input``, else the only File input."""
    chosen = descriptor.custom.get("batch-input")
    if chosen:
        return str(chosen)
    files = [spec["id"] for spec in descriptor.inputs if spec["type"] == "File"]
    if len(files) != 1:
        raise UsageError(f"{descriptor.name}: --in needs exactly one File input (found {len(files)}); use -p")
    return str(files[0])


def _batchable(descriptor: Descriptor) -> str | None:
    try:
        return batch_input_id(descriptor)
    except UsageError:
        return None


def _files_resolved(descriptor: Descriptor, params: dict[str, Any], batch_input: str) -> dict[str, Any]:
    """File inputs given with ``-p`` or ``--invocation``: made absolute (relative to the folder dicompose runs
    in, as ``bosh`` reads them; the tool runs elsewhere) and checked to exist, all problems at once. A folder is
    a valid File value in Boutiques (a BIDS dataset): it is mounted read-only and hashed by content too."""
    resolved = dict(params)
    problems = []
    for spec in descriptor.inputs:
        if spec["type"] != "File" or spec["id"] == batch_input or spec["id"] not in params:
            continue
        value = params[spec["id"]]
        if value is None:
            continue
        paths = []
        for item in value if isinstance(value, list) else [value]:
            path = as_given(str(item))
            if not path.exists():
                problems.append(f"input {spec['id']!r}: {item}: no such file or folder")
            paths.append(str(path))
        resolved[spec["id"]] = paths if isinstance(value, list) else paths[0]
    if problems:
        raise UsageError("; ".join(problems))
    return resolved


def tool_graph(
    tool: str, params: dict[str, Any], timeout_s: float | None = None, *, batch: bool = True
) -> PipelineGraph:
    """The one-step graph of ``tool`` with ``params``; parameters are validated before anything runs.

    ``batch=False``: no ``--in``; the tool runs once, its File inputs (if any) given with ``-p`` or
    ``--invocation`` and mounted read-only, as ``bosh exec launch`` runs a tool from an invocation.
    """
    descriptor = load_descriptor(tool)
    batch_input = batch_input_id(descriptor) if batch else ""
    if batch_input in params:
        raise UsageError(f"input {batch_input!r} comes from --in; do not also give it with -p")
    params = _files_resolved(descriptor, params, batch_input)
    try:
        invocation = build_invocation(descriptor, with_batch(descriptor, batch_input, params, ["/placeholder"]))
    except UsageError as exc:
        candidate = _batchable(descriptor)
        missing = f"required input {candidate!r} is missing" in str(exc) if candidate else False
        hint = " (or give its files with --in PATH)" if missing and not batch else ""
        raise UsageError(f"{exc}{hint}") from None
    check_builtin_values(descriptor, invocation.values)
    output_patterns(descriptor, invocation)  # an output path the values send out of the folder: refused now
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", descriptor.name).strip("-") or "tool"
    fed = {batch_input: f"inputs.{INPUT_NAME}"} if batch_input else {}
    step = Step.model_validate({"tool": tool, "with": {**fed, **params}, "timeout": timeout_s})
    spec = PipelineSpec.model_validate(
        {
            "version": 1,
            "name": name,
            "inputs": {INPUT_NAME: "dicom"},  # the model wants one; a run without --in leaves it unbound
            "steps": {name: step.model_dump(by_alias=True, exclude_none=True)},
            "outputs": {o["id"]: f"steps.{name}.{o['id']}" for o in descriptor.outputs},
        }
    )
    source = Source("input", INPUT_NAME) if batch_input else Source("none", "")
    node = StepNode(name, spec.steps[name], descriptor, batch_input, source, dict(params))  # paths absolute
    outputs = {o["id"]: Source("step", name, str(o["id"])) for o in descriptor.outputs}
    return PipelineGraph(Path(tool), spec, (node,), outputs, flat_outputs=True)
