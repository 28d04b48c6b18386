"""A run's exact recipe, stored with the run: every step's descriptor, parameters and image digest.

``dicompose rerun`` and ``verify`` rebuild the pipeline from this snapshot, not from files that may have
changed since, so a rerun really is the same computation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dicompose.descriptors.descriptor import Descriptor
from dicompose.engines.base import Engine, ImageRef
from dicompose.errors import UsageError
from dicompose.pipeline.graph import PipelineGraph, Source, StepNode
from dicompose.pipeline.images import Images, resolve_step_image
from dicompose.pipeline.spec import PipelineSpec, Step


def snapshot(graph: PipelineGraph, images: Images) -> dict[str, Any]:
    return {
        "spec": graph.spec.model_dump(by_alias=True),
        "steps": [
            {
                "name": node.name,
                "descriptor": node.descriptor.doc,
                "batch_input": node.batch_input,
                "source": [node.source.kind, node.source.name, node.source.output],
                "params": node.params,
                "image": {"name": image.name, "digest": image.digest} if (image := images[node.name][0]) else None,
            }
            for node in graph.steps
        ],
        "outputs": {name: [s.kind, s.name, s.output] for name, s in graph.outputs.items()},
        "flat_outputs": graph.flat_outputs,
    }


def graph_from_snapshot(data: dict[str, Any], path: Path) -> tuple[PipelineGraph, dict[str, ImageRef | None]]:
    spec = PipelineSpec.model_validate(data["spec"])
    steps = []
    recorded: dict[str, ImageRef | None] = {}
    for item in data["steps"]:
        descriptor = Descriptor(item["descriptor"], f"{path} (recorded {item['name']})")
        kind, name, output = item["source"]
        steps.append(
            StepNode(
                item["name"],
                Step.model_validate(data["spec"]["steps"][item["name"]]),
                descriptor,
                item["batch_input"],
                Source(kind, name, output),
                item["params"],
            )
        )
        image = item.get("image")
        recorded[item["name"]] = ImageRef(image["name"], image["digest"]) if image else None
    outputs = {name: Source(*value) for name, value in data["outputs"].items()}
    flat = bool(data.get("flat_outputs", False))
    return PipelineGraph(path, spec, tuple(steps), outputs, flat), recorded


def recorded_images(
    graph: PipelineGraph, recorded: dict[str, ImageRef | None], engine: Engine, allow_unpinned: bool
) -> Images:
    """The recorded digests, checked to still exist; steps recorded without an image resolve as usual."""
    images: Images = {}
    for node in graph.steps:
        image = recorded.get(node.name)
        if not engine.isolates:
            images[node.name] = (None, False)
        elif image is None:
            images[node.name] = resolve_step_image(node.descriptor, engine, allow_unpinned)
        else:
            if not engine.has_image(image):
                raise UsageError(
                    f"step {node.name}: recorded image {image.name} {image.digest[:19]} is no longer available to "
                    f"the {engine.name} engine{_where(engine)}; refusing to rerun with another image"
                )
            images[node.name] = (image, True)
    return images


def _where(engine: Engine) -> str:
    """Where an engine that runs image folders looked (the charliecloud engine's image folder)."""
    if engine.name != "charliecloud":
        return ""
    from dicompose.engines.charliecloud import image_dir

    return f" (image folder {image_dir()}; --image-dir names another)"
