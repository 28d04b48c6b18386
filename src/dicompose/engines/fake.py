"""The ``fake`` engine: runs a launch in this process in microseconds, for testing the runner's logic.

It is a fake on purpose (named so in every record): it never runs the tool. It emulates the two launch
contracts the runner relies on, reading only what a real container would see (mounts, manifest, argv):

- one task per launch: every input file mounted read-only is "processed" into the working folder as
  ``<stem>-<tool>.dcm`` (a byte copy);
- a packed launch (``manifest.json`` in the working folder): the same per task, into each task's own output
  folder, then the task's result file, exactly as ``dicompose.tools.manifest`` writes it.

Failure injection by input file name, so tests need no configuration: ``fail`` in a name fails that file's
task (exit 1, no output for it); ``crash`` ends the whole launch at that file with exit 137 (tasks already
finished keep their results); ``transient`` makes the engine raise :class:`EngineError` on the first launch
that carries it (an API error, like Docker's "No such container" race), and succeed afterwards.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from dicompose.engines.base import EngineInfo, ImageRef, Mount, RunResult, TaskSpec
from dicompose.engines.hardening import LABEL_PREFIX, OUTPUT_DIR
from dicompose.errors import EngineError

MANIFEST = "manifest.json"
RESULT = ".dicompose-result.json"


class _CrashError(Exception):
    pass


class FakeEngine:
    name = "fake"
    isolates = True

    def __init__(self) -> None:
        self.launches = 0
        self._transient_seen: set[str] = set()

    def info(self) -> EngineInfo:
        return EngineInfo(self.name, True, "fake (tests only: runs no tool)")

    def site_pin(self, tool: str, descriptor_digest: str) -> str | None:
        return None

    def not_enforced(self) -> tuple[str, ...]:
        return ()

    def command(self, spec: TaskSpec) -> list[str]:
        return ["fake-engine", *spec.argv]

    def resolve_image(
        self, name: str, pin: str | None, *, allow_unpinned: bool, hint: str, tool: str = "TOOL"
    ) -> tuple[ImageRef, bool]:
        return ImageRef(name, pin or f"sha256:fake-{name}"), True

    def has_image(self, image: ImageRef) -> bool:
        return True

    def cleanup(self, run_id: str | None = None) -> int:
        return 0

    def run(self, spec: TaskSpec) -> RunResult:
        self.launches += 1
        started = time.perf_counter()
        tool = spec.labels.get(f"{LABEL_PREFIX}.tool", "tool")
        to_host = _path_mapper(spec)
        manifest = spec.workdir / MANIFEST
        if manifest.is_file():
            doc = json.loads(manifest.read_text())
            tasks = [([to_host(i) for i in t["inputs"]], to_host(t["out"])) for t in doc["tasks"]]
        else:
            inputs = [m.source for m in spec.mounts if m.read_only and m.source.is_file()]
            inputs += [f for m in spec.mounts if m.read_only and m.source.is_dir() for f in sorted(m.source.iterdir())]
            tasks = [(inputs, spec.workdir)]
        self._transient(tasks)
        exit_code = 0
        try:
            for inputs, out in tasks:
                code = _process(inputs, out, tool)
                if manifest.is_file():
                    (out / RESULT).write_text(json.dumps({"exit_code": code, "problems": []}))
                else:
                    exit_code = code
        except _CrashError:
            exit_code = 137
        return RunResult(exit_code, b"", b"", time.perf_counter() - started, self.name, self.command(spec))

    def _transient(self, tasks: list[tuple[list[Path], Path]]) -> None:
        names = {p.name for inputs, _out in tasks for p in inputs if "transient" in p.name}
        fresh = names - self._transient_seen
        if fresh:
            self._transient_seen |= fresh
            raise EngineError("fake engine: 404 No such container (injected transient error)")


def _process(inputs: list[Path], out: Path, tool: str) -> int:
    code = 0
    for source in inputs:
        if "crash" in source.name:
            raise _CrashError
        if "fail" in source.name:
            code = 1
            continue
        shutil.copyfile(source, out / f"{source.stem}-{tool}.dcm")
    return code


def _path_mapper(spec: TaskSpec) -> Callable[[str], Path]:
    """Container path → host path, through the mounts (longest target first)."""
    mounts = sorted((*spec.mounts, Mount(spec.workdir, OUTPUT_DIR)), key=lambda m: -len(m.target))

    def to_host(path: str) -> Path:
        for mount in mounts:
            if path == mount.target or path.startswith(mount.target + "/"):
                return mount.source / path[len(mount.target) :].lstrip("/")
        return Path(path)

    return to_host
