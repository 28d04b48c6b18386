"""Choosing the engine: an explicit choice, or ``auto`` = the first of docker, apptainer, charliecloud that is
usable here, else local. The sentence saying why also names what the chosen engine does not enforce."""

from __future__ import annotations

from dataclasses import dataclass

from dicompose.engines.base import Engine
from dicompose.engines.registry import engine_named
from dicompose.errors import UsageError

#: What users choose from (``fake`` also resolves, for tests, but is not offered).
ENGINES = ("auto", "docker", "apptainer", "charliecloud", "local")
#: ``auto``'s order: the strongest isolation first (a daemon's), then the unprivileged HPC runtimes.
CONTAINER_ENGINES = ("docker", "apptainer", "charliecloud")


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
    reasons: list[str] = []
    for name in CONTAINER_ENGINES if choice == "auto" else (choice,):
        engine = engine_named(name)
        info = engine.info()
        if info.available:
            why = f"{info.version} " + ("requested" if choice == name else "answers" if name == "docker" else "found")
            if reasons:
                why += f" ({'; '.join(reasons)})"
            return Resolution(engine, why + _not_enforced(engine))
        if choice == name:
            raise UsageError(f"--engine {name}: {info.why}")
        reasons.append(f"{name}: {info.why}")
    return Resolution(engine_named("local"), f"no container engine ({'; '.join(reasons)}): running locally")


def _not_enforced(engine: Engine) -> str:
    missing = engine.not_enforced()
    return f"; not enforced by {engine.name}: {', '.join(missing)}" if missing else ""
