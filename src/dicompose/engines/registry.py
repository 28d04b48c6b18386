"""Engines by name, for code that runs where only a name can travel (scheduler workers, other hosts)."""

from __future__ import annotations

from dicompose.engines.apptainer import ApptainerEngine
from dicompose.engines.base import Engine
from dicompose.engines.docker import DockerEngine
from dicompose.engines.local import LocalEngine


def engine_named(name: str) -> Engine:
    if name == "docker":
        return DockerEngine()
    if name == "apptainer":
        return ApptainerEngine()
    if name == "local":
        return LocalEngine()
    raise ValueError(f"unknown engine {name!r}")
