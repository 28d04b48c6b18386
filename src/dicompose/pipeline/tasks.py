"""The task: the unit of caching and retry (one series in one folder, or one chunk of a large one)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dicompose.pipeline.graph import StepNode
from dicompose.pipeline.launch import TaskResult
from dicompose.records.hashing import canonical_hash
from dicompose.tools.invocation import build_invocation


@dataclass
class Task:
    key: str
    step: str
    label: str
    relative_parent: Path
    files: tuple[str, ...]
    inputs: tuple[dict[str, str], ...]
    attempt: int = 1
    status: str = "pending"  # pending | running | ok | partial | failed | blocked
    cached: bool = False
    outputs: tuple[dict[str, str], ...] = ()
    skipped: tuple[str, ...] = ()  # one line per file the tool skipped (not an image it handles)
    result: TaskResult | None = None
    launch: str = ""  # the launch that carried its latest attempt
    not_before: float = 0.0  # monotonic time before which a retry must not start (backoff)
    engine_retries: int = 0


def key_of(node: StepNode, image: str, inputs: tuple[dict[str, str], ...]) -> str:
    """The cache key: what the task computes from, and nothing else.

    The descriptor (its digest: command line, outputs), the software (image digest; for the local engine
    our version and lock hash), every parameter value after defaults, which input takes the files, and the
    content of the inputs by name and sha256 -- never their paths or mtimes, so moving a study folder or
    touching a file keeps the cache, while any changed byte, parameter or image computes anew.
    """
    values = build_invocation(node.descriptor, {**node.params, node.batch_input: ["/"]}).values
    params = {k: v for k, v in values.items() if k != node.batch_input}
    return canonical_hash(
        {
            "descriptor": node.descriptor.digest,
            "image": image,
            "params": params,
            "batch-input": node.batch_input,
            "inputs": sorted([i["name"], i["sha256"]] for i in inputs),
        }
    )
