"""Help pages that read as command-line help does: arguments in capitals on the usage line.

Typer (0.28, the locked version) writes an optional argument as ``[inputs]...`` and a required one as
``{target}``; the usage line here says ``[INPUTS]...`` and ``TARGET``, as POSIX utilities do. Flags already
show no type. Set once, for every command; with a Typer that lacks the hook the help keeps Typer's own
style (nothing else depends on it).
"""

from __future__ import annotations

from typing import Any


def usage_name(argument: Any) -> str:
    """``NAME``, ``[NAME]`` when optional, with ``...`` when it takes several values."""
    name = str(argument.metavar or argument.name or "").upper()
    name = name if argument.required else f"[{name}]"
    return name + ("..." if argument.nargs != 1 else "")


def apply() -> None:
    from typer import core

    if hasattr(core.TyperArgument, "get_usage_pieces"):
        core.TyperArgument.get_usage_pieces = lambda self, ctx: [usage_name(self)]  # type: ignore[method-assign]
