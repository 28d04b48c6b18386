"""The task: the unit of caching and retry (one series in one folder, or one chunk of a large one)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from dicompose.descriptors.invocation import build_invocation, with_batch
from dicompose.pipeline.graph import StepNode
from dicompose.pipeline.launch import TaskResult
from dicompose.records.hashing import canonical_hash, sha256_file


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
    problems: tuple[str, ...] = ()  # a cache hit's recorded problems (a partial task's failed files)
    result: TaskResult | None = None
    launch: str = ""  # the launch that carried its latest attempt
    not_before: float = 0.0  # monotonic time before which a retry must not start (backoff)
    engine_retries: int = 0


@lru_cache(maxsize=256)
def _file_sha256_at(path: str, _version: tuple[int, ...]) -> str:
    folder = Path(path)
    if not folder.is_dir():
        return sha256_file(folder)
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return canonical_hash({"folder": [[f.relative_to(folder).as_posix(), sha256_file(f)] for f in files]})


def _version_of(path: Path) -> tuple[int, ...]:
    """What changes when the content may have: size and mtime of a file; of a folder, those of every file in it
    (a folder's own mtime misses edits inside its files)."""
    if not path.is_dir():
        st = path.stat()
        return (st.st_size, st.st_mtime_ns)
    stats = [f.stat() for f in path.rglob("*") if f.is_file()]
    return (len(stats), sum(st.st_size for st in stats), max((st.st_mtime_ns for st in stats), default=0))


def _file_sha256(path: str) -> str:
    """sha256 of a File parameter (a key, a table, or a folder such as a BIDS dataset, by its files' names and
    contents), hashed once per content version, not once per task."""
    try:
        version = _version_of(Path(path))
    except OSError:
        return "missing"  # the tool will say so; the task cannot be cached under a key it never read
    return _file_sha256_at(str(Path(path).absolute()), version)


def key_of(node: StepNode, image: str, inputs: tuple[dict[str, str], ...]) -> str:
    """The cache key: what the task computes from, and nothing else.

    The descriptor (its digest: command line, outputs), the software (image digest; for the local engine
    our version and lock hash), every parameter value after defaults, which input takes the files, and the
    content of the inputs by name and sha256 -- never their paths or mtimes, so moving a study folder or
    touching a file keeps the cache, while any changed byte, parameter or image computes anew.
    """
    values = build_invocation(node.descriptor, with_batch(node.descriptor, node.batch_input, node.params, ["/"])).values
    params = {k: v for k, v in values.items() if k != node.batch_input}
    for spec in node.descriptor.inputs:  # a key or table counts by its content, like the batch's files
        if spec["type"] == "File" and spec["id"] in params:
            value = params[spec["id"]]
            paths = value if isinstance(value, list) else [value]
            params[spec["id"]] = [{"sha256": _file_sha256(str(p))} for p in paths]
    return canonical_hash(
        {
            "descriptor": node.descriptor.digest,
            "image": image,
            "params": params,
            "batch-input": node.batch_input,
            "inputs": sorted([i["name"], i["sha256"]] for i in inputs),
        }
    )
