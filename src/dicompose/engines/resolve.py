"""Choosing the engine: an explicit choice, or ``auto`` = the first of docker, apptainer, charliecloud that is
usable here (and, when the caller can tell, has the images the work needs), else local. The sentence saying
why also names what the chosen engine does not enforce."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dicompose.engines.base import Engine
from dicompose.engines.registry import engine_named
from dicompose.errors import UsageError

#: What the local engine does not enforce, said where the engine is named (no container: no policy at all).
NO_CONTAINER = "no container, no isolation"
#: What users choose from (``fake`` also resolves, for tests, but is not offered).
ENGINES = ("auto", "docker", "apptainer", "charliecloud", "local")
#: ``auto``'s order: the strongest isolation first (a daemon's), then the unprivileged HPC runtimes.
CONTAINER_ENGINES = ("docker", "apptainer", "charliecloud")


@dataclass(frozen=True)
class Resolution:
    engine: Engine
    why: str


#: Why an engine that answers cannot run the work (its images are missing or unpinned), or None if it can.
CanRun = Callable[[Engine], "str | None"]


def resolve_engine(choice: str, can_run: CanRun | None = None) -> Resolution:
    """The engine to use and a sentence saying why (printed and recorded with the run).

    ``can_run`` (for ``auto`` only) passes over an engine that answers but lacks what the work needs: a cluster
    node with ``ch-run`` but no exported images falls through to the next engine, not into a refusal."""
    if choice == "fake":
        return Resolution(engine_named("fake"), "fake engine requested (tests only: runs no tool)")
    if choice not in ENGINES:
        raise UsageError(f"unknown engine {choice!r} (choose from {', '.join(ENGINES)})")
    if choice == "local":
        return Resolution(engine_named("local"), f"local engine requested; {NO_CONTAINER}")
    reasons: list[str] = []
    lacking = False  # an engine answered but lacked the images
    for name in CONTAINER_ENGINES if choice == "auto" else (choice,):
        engine = engine_named(name)
        info = engine.info()
        lacks = can_run(engine) if info.available and can_run is not None and choice == "auto" else None
        if lacks is not None:
            reasons.append(f"{name} answers but {lacks}")
            lacking = True
            continue
        if info.available:
            why = f"{info.version} " + ("requested" if choice == name else "answers" if name == "docker" else "found")
            if reasons:
                why += f" ({'; '.join(reasons)})"
            return Resolution(engine, why + _not_enforced(engine))
        if choice == name:
            raise UsageError(f"--engine {name}: {info.why}")
        reasons.append(f"{name}: {info.why}")
    none = "no container engine with the images" if lacking else "no container engine"
    return Resolution(engine_named("local"), f"{none} ({'; '.join(reasons)}): running locally; {NO_CONTAINER}")


def _not_enforced(engine: Engine) -> str:
    missing = engine.not_enforced()
    return f"; not enforced by {engine.name}: {', '.join(missing)}" if missing else ""
