"""Engines by name, for code that runs where only a name can travel (scheduler workers, other hosts).

One instance per engine name and process: a worker connects to Docker (and probes it) once, not once per
launch. Engines hold no per-run state beyond that connection, so sharing them between runs is safe.
"""

from __future__ import annotations

from functools import cache

from dicompose.engines.base import Engine


@cache
def engine_named(name: str) -> Engine:
    if name == "docker":
        from dicompose.engines.docker import DockerEngine

        return DockerEngine()
    if name == "apptainer":
        from dicompose.engines.apptainer import ApptainerEngine

        return ApptainerEngine()
    if name == "charliecloud":
        from dicompose.engines.chrun import CharliecloudEngine

        return CharliecloudEngine()
    if name == "local":
        from dicompose.engines.local import LocalEngine

        return LocalEngine()
    if name == "fake":
        from dicompose.engines.fake import FakeEngine

        return FakeEngine()
    raise ValueError(f"unknown engine {name!r}")
