"""Choosing the engine: explicit choice, or ``auto`` = docker if it answers, else apptainer, else local."""

from __future__ import annotations

from dataclasses import dataclass

from dicompose.engines.apptainer import ApptainerEngine
from dicompose.engines.base import Engine
from dicompose.engines.docker import DockerEngine
from dicompose.engines.local import LocalEngine
from dicompose.errors import UsageError

ENGINES = ("auto", "docker", "apptainer", "local")


@dataclass(frozen=True)
class Resolution:
    engine: Engine
    why: str


def resolve_engine(choice: str) -> Resolution:
    """The engine to use and a sentence saying why (printed and recorded with the run)."""
    if choice not in ENGINES:
        raise UsageError(f"unknown engine {choice!r} (choose from {', '.join(ENGINES)})")
    if choice == "local":
        return Resolution(LocalEngine(), "local engine requested")
    if choice in ("docker", "auto"):
        docker = DockerEngine()
        info = docker.info()
        if info.available:
            return Resolution(docker, f"docker {info.version} " + ("requested" if choice == "docker" else "answers"))
        if choice == "docker":
            raise UsageError(f"--engine docker: {info.why}")
        docker_why = info.why
    if choice in ("apptainer", "auto"):
        apptainer = ApptainerEngine()
        ainfo = apptainer.info()
        if ainfo.available:
            return Resolution(apptainer, f"{ainfo.version} " + ("requested" if choice == "apptainer" else "found"))
        if choice == "apptainer":
            raise UsageError(f"--engine apptainer: {ainfo.why}")
        return Resolution(LocalEngine(), f"no container engine ({docker_why}; {ainfo.why}): running locally")
    raise AssertionError(choice)  # pragma: no cover
