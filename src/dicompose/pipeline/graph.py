"""From a pipeline model to a checked step graph: tools loaded, references resolved, types and cycles checked.

``dicompose check`` is this module with nothing run: every problem, each with its line and field.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Any

from dicompose.descriptors.descriptor import Descriptor, load_descriptor
from dicompose.descriptors.invocation import build_invocation, output_patterns, with_batch
from dicompose.errors import ProblemsError, UsageError
from dicompose.pipeline.spec import PipelineSpec, Step, load_pipeline_leniently, parse_reference
from dicompose.tools.builtin_checks import check_builtin_values


@dataclass(frozen=True)
class Source:
    """Where a step's files come from: a pipeline input, or an output of an earlier step."""

    kind: str  # "input" | "step"
    name: str
    output: str = ""


@dataclass(frozen=True)
class StepNode:
    name: str
    spec: Step
    descriptor: Descriptor
    batch_input: str  # the File input fed by ``source``
    source: Source
    params: dict[str, Any]  # literal values for the other inputs
    #: File inputs fed by a pipeline input of kind ``file`` (a key, a table): input id → pipeline input name;
    #: the path given with ``--in NAME=PATH`` becomes the value when the run starts (:func:`bind_files`).
    file_refs: dict[str, str] = field(default_factory=dict)

    @property
    def gpus(self) -> int:
        """GPUs each launch of this step asks for: the step's ``resources.gpus``, else 1 if its descriptor says
        it needs a GPU (``custom.dicompose.gpu``), else none."""
        if self.spec.resources.gpus is not None:
            return self.spec.resources.gpus
        return 1 if self.descriptor.custom.get("gpu") else 0


@dataclass(frozen=True)
class PipelineGraph:
    path: Path
    spec: PipelineSpec
    steps: tuple[StepNode, ...]  # in dependency order
    outputs: dict[str, Source]
    #: A tool run publishes its outputs straight into --out/<folder>; a pipeline into --out/<output>/<folder>.
    flat_outputs: bool = False
    #: The YAML as read, with line numbers (``__lines__``): where ``dicompose check`` says a problem is.
    document: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def step(self, name: str) -> StepNode:
        return next(s for s in self.steps if s.name == name)

    @property
    def deidentifying(self) -> bool:
        """A step de-identifies: the run describes its work without naming its inputs (``privacy``)."""
        return any(node.descriptor.deidentifies for node in self.steps)

    def deidentified(self, name: str) -> bool:
        """The step's outputs derive from de-identified data (it, or a step upstream of it, de-identifies)."""
        node = self.step(name)
        while not node.descriptor.deidentifies:
            if node.source.kind != "step":
                return False
            node = self.step(node.source.name)
        return True


def bind_files(graph: PipelineGraph, inputs: Mapping[str, Path], site_key: Callable[[], Path]) -> PipelineGraph:
    """The graph with every File input that takes a file given at run time bound to its path: a pipeline input
    of kind ``file`` (``--in key=PATH``), or for a tool that declares ``custom.dicompose.site-key``, the site's
    key when none is given (so a container uses the same key, and gives the same pseudonyms, as the host tool)."""
    nodes = []
    for node in graph.steps:
        params = dict(node.params)
        for input_id, name in node.file_refs.items():
            path = inputs.get(name)
            if path is None:
                raise UsageError(f"pipeline input {name!r} (a file) is not given: add --in {name}=PATH")
            if not path.is_file():
                raise UsageError(f"--in {name}={path}: not a file (a pipeline input of kind file is one file)")
            params[input_id] = str(path.absolute())
        key_input = node.descriptor.custom.get("site-key")
        if isinstance(key_input, str) and key_input not in params:
            params[key_input] = str(site_key())
        nodes.append(replace(node, params=params, file_refs={}))
    return replace(graph, steps=tuple(nodes))


def line_at(document: dict[str, Any], *keys: str) -> str:
    node: Any = document
    line = None
    for key in keys:
        if not isinstance(node, dict):
            break
        line = node.get("__lines__", {}).get(key, line)
        node = node.get(key)
    return f"line {line}, " if line else ""


def _output_id(descriptor: Descriptor, name: str) -> str | None:
    ids = [o["id"] for o in descriptor.outputs]
    if name in ids:
        return name
    if name == "output" and len(ids) == 1:
        return str(ids[0])
    return None


def _reference_problems(spec: PipelineSpec, name: str, where: str, descriptors: Mapping[str, Descriptor]) -> list[str]:
    """Inputs, steps and step outputs that step ``name``'s values refer to and the pipeline lacks (for a step
    whose tool is unknown: which of its inputs take references cannot be known, but a missing target is wrong
    either way)."""
    problems = []
    for key, value in spec.steps[name].with_.items():
        reference = parse_reference(value)
        if reference is None:
            continue
        kind, target, output = reference
        field = f"{where}steps.{name}.with.{key}"
        if kind == "input" and target not in spec.inputs:
            problems.append(f"{field}: unknown pipeline input {target!r}")
        elif kind == "step" and target not in spec.steps:
            problems.append(f"{field}: unknown step {target!r}")
        elif kind == "step" and target in descriptors and _output_id(descriptors[target], output) is None:
            outs = ", ".join(o["id"] for o in descriptors[target].outputs)
            problems.append(f"{field}: step {target!r} has no output {output!r} (outputs: {outs})")
    return problems


def _files_source(
    spec: PipelineSpec, descriptors: Mapping[str, Descriptor], reference: tuple[str, str, str], depends: set[str]
) -> tuple[Source | None, str]:
    """Where a File input's files come from (a pipeline input, or a step's output: added to ``depends``), or
    the problem with its reference."""
    kind, ref_name, ref_output = reference
    if kind == "input" and ref_name not in spec.inputs:
        return None, f"unknown pipeline input {ref_name!r}"
    if kind == "step":
        if ref_name not in spec.steps:
            return None, f"unknown step {ref_name!r}"
        upstream = descriptors.get(ref_name)
        resolved = _output_id(upstream, ref_output) if upstream else None
        if upstream is not None and resolved is None:
            outs = ", ".join(o["id"] for o in upstream.outputs)
            return None, f"step {ref_name!r} has no output {ref_output!r} (outputs: {outs})"
        ref_output = resolved or ref_output
        depends.add(ref_name)
    return Source(kind, ref_name, ref_output), ""


def _no_files_problem(file_inputs: set[str], file_refs: dict[str, str]) -> str:
    given = ", ".join(f"{key} takes inputs.{ref}, a file input" for key, ref in file_refs.items())
    return (
        f"no File input takes DICOM files (one of {', '.join(sorted(file_inputs)) or 'none'} must take a dicom "
        f"input inputs.X or steps.S.output{'; ' + given if given else ''})"
    )


def _values_problem(
    descriptor: Descriptor, batch_input: str, params: dict[str, Any], file_refs: dict[str, str]
) -> str | None:
    """What the step's literal values break, checked as a run would (placeholders for its files)."""
    try:
        placeholders = {ref: "/placeholder" for ref in file_refs}
        invocation = build_invocation(
            descriptor,
            with_batch(descriptor, batch_input, {**params, **placeholders}, ["/placeholder"]),
        )
        check_builtin_values(descriptor, invocation.values)
        output_patterns(descriptor, invocation)  # an output the values send out of its folder
    except UsageError as exc:
        return str(exc)
    return None


def _bind_step(
    spec: PipelineSpec,
    name: str,
    descriptors: Mapping[str, Descriptor],
    document: dict[str, Any],
    problems: list[str],
    depends: set[str],
) -> StepNode | None:
    """Step ``name`` bound to its tool: which File input takes the files and from where (an input, or a
    step's output: added to ``depends``), the literal values, the key files; every problem appended to
    ``problems``, its values checked even when a reference is wrong. None when it cannot run as written.
    Over 60 lines: one loop with a branch per kind of value, in the order the checks apply."""
    step = spec.steps[name]
    descriptor = descriptors.get(name)
    where = line_at(document, "steps", name, "with")
    if descriptor is None:  # its tool is unknown (reported): what it refers to can still be checked
        problems.extend(_reference_problems(spec, name, where, descriptors))
        return None
    file_inputs = {i["id"] for i in descriptor.inputs if i["type"] == "File"}
    known = {i["id"] for i in descriptor.inputs}
    source: Source | None = None
    batch_input = ""
    params: dict[str, Any] = {}
    file_refs: dict[str, str] = {}
    broken = ""  # a File input whose reference is wrong: reported, and its step's values still checked
    for key, value in step.with_.items():
        field = f"steps.{name}.with.{key}"
        if key not in known:
            problems.append(
                f"{where}{field}: {descriptor.name} has no input {key!r} (inputs: {', '.join(sorted(known))})"
            )
            continue
        reference = parse_reference(value)
        if reference is None:
            if key in file_inputs:
                problems.append(
                    f"{where}{field}: a File input takes a reference (inputs.X or steps.S.output); give a key "
                    "or table as a pipeline input of kind file (inputs: {NAME: file}, --in NAME=PATH)"
                )
            params[key] = value
            continue
        if reference[0] == "input" and spec.inputs.get(reference[1]) == "file":
            if key not in file_inputs:
                problems.append(f"{where}{field}: {value} is a file, but {key!r} is not a File input")
            else:
                file_refs[key] = reference[1]
            continue
        if key not in file_inputs:
            problems.append(
                f"{where}{field}: type mismatch: {value} is files, but {key!r} is a {descriptor.input(key)['type']}"
            )
            continue
        if source is not None:
            problems.append(f"{where}{field}: only one File input per step can take files")
            continue
        found, problem = _files_source(spec, descriptors, reference, depends)
        if found is None:
            problems.append(f"{where}{field}: {problem}")
            broken = key
            continue
        source, batch_input = found, key
    if source is None and not broken:
        problems.append(f"{where}steps.{name}.with: {_no_files_problem(file_inputs, file_refs)}")
        if not file_refs:
            return None
        broken = next(iter(file_refs))  # its values are checked all the same
    if (wrong := _values_problem(descriptor, batch_input or broken, params, file_refs)) is not None:
        problems.append(f"{where}steps.{name}.with: {wrong}")
        return None
    if source is None:
        return None  # its reference is wrong (reported above); its values were checked all the same
    return StepNode(name, step, descriptor, batch_input, source, params, file_refs)


def _pipeline_outputs(
    spec: PipelineSpec, descriptors: Mapping[str, Descriptor], document: dict[str, Any], problems: list[str]
) -> dict[str, Source]:
    """The pipeline's named outputs, each a step's output (resolved to the tool's output id); problems appended."""
    outputs: dict[str, Source] = {}
    for out_name, value in spec.outputs.items():
        reference = parse_reference(value)
        field = f"{line_at(document, 'outputs', out_name)}outputs.{out_name}"
        if reference is not None and reference[0] == "step" and reference[1] not in spec.steps:
            problems.append(f"{field}: unknown step {reference[1]!r} (steps: {', '.join(spec.steps)})")
            continue
        if reference is None or reference[0] != "step":
            problems.append(f"{field}: must reference a step output (steps.S.output), got {value!r}")
            continue
        upstream = descriptors.get(reference[1])
        resolved = _output_id(upstream, reference[2]) if upstream else None
        if upstream is not None and resolved is None:
            problems.append(f"{field}: step {reference[1]!r} has no output {reference[2]!r}")
            continue
        outputs[out_name] = Source("step", reference[1], resolved or reference[2])
    return outputs


def build_graph(path: Path, collect: list[str] | None = None) -> PipelineGraph:
    """The validated pipeline. Every problem found is reported together (one UsageError), or, with
    ``collect``, appended to it and the graph of what is valid returned (``dicompose check`` adds its own)."""
    spec, document, problems = load_pipeline_leniently(path)
    if spec is None:
        raise ProblemsError(str(path), problems)
    descriptors: dict[str, Descriptor] = {}
    for name, step in spec.steps.items():
        try:
            descriptors[name] = load_descriptor(step.tool, base=path.parent)
        except UsageError as exc:
            problems.append(f"{line_at(document, 'steps', name, 'tool')}steps.{name}.tool: {exc}")
    nodes: dict[str, StepNode] = {}
    dependencies: dict[str, set[str]] = {}
    for name in spec.steps:
        depends: set[str] = set()
        node = _bind_step(spec, name, descriptors, document, problems, depends)
        if node is not None:
            nodes[name] = node
        if node is not None or depends:  # a broken step's references still count: a cycle is found all the same
            dependencies[name] = depends
    order: list[str] = []
    try:
        order = list(TopologicalSorter(dependencies).static_order())
    except CycleError as exc:
        steps = list(exc.args[1]) if len(exc.args) > 1 else []
        where = line_at(document, "steps", steps[0], "with") if steps else ""  # the step that closes the loop
        problems.append(f"{where}steps: dependency cycle {' → '.join(steps) or '?'}")
    outputs = _pipeline_outputs(spec, descriptors, document, problems)
    if collect is not None:
        collect.extend(problems)
    elif problems:
        raise UsageError(f"{path}: " + "; ".join(problems))
    return PipelineGraph(path, spec, tuple(nodes[n] for n in order if n in nodes), outputs, document=document)
