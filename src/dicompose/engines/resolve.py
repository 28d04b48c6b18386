"""Choosing the engine: explicit choice, or ``auto`` = docker if it answers, else apptainer, else local."""

from __future__ import annotations

from dataclasses import dataclass

from dicompose.engines.base import Engine
from dicompose.engines.registry import engine_named
from dicompose.errors import UsageError

#: What users choose from (``fake`` also resolves, for tests, but is not offered).
ENGINES = ("auto", "docker", "apptainer", "local")


@dataclass(frozen=True)
class Resolution:
    engine: Engine
    why: str


def resolve_engine(choice: str) -> Resolution:
    """The engine to use and a sentence saying why (printed and recorded with the run)."""
    if choice == "fake":
        return Resolution(engine_named("fake"), "fake engine requested (tests only: runs no tool)")
    if choice not in ENGINES:
        raise UsageError(f"unknown engine {choice!r} (choose from {', '.join(ENGINES)})")
    if choice == "local":
        return Resolution(engine_named("local"), "local engine requested")
    docker_why = ""
    if choice in ("docker", "auto"):
        docker = engine_named("docker")
        info = docker.info()
        if info.available:
            return Resolution(docker, f"docker {info.version} " + ("requested" if choice == "docker" else "answers"))
        if choice == "docker":
            raise UsageError(f"--engine docker: {info.why}")
        docker_why = info.why
    apptainer = engine_named("apptainer")
    ainfo = apptainer.info()
    if ainfo.available:
        return Resolution(apptainer, f"{ainfo.version} " + ("requested" if choice == "apptainer" else "found"))
    if choice == "apptainer":
        raise UsageError(f"--engine apptainer: {ainfo.why}")
    return Resolution(engine_named("local"), f"no container engine ({docker_why}; {ainfo.why}): running locally")
