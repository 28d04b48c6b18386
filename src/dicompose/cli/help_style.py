"""Help pages that read as command-line help does: flags without a type, arguments in capitals.

Typer 0.29 (the locked version) labels every option with a type, ``<bool>`` for flags that take no value,
and writes required arguments as ``{target}``. Both are set right here, once, for every command; with a
Typer that lacks these hooks the help keeps Typer's own style (nothing else depends on it).
"""

from __future__ import annotations

from typing import Any


def apply() -> None:
    from typer import core

    option_type = getattr(core.TyperOption, "display_type_rich", None)
    if option_type is not None and not getattr(option_type, "_dicompose", False):

        def display_type_rich(self: Any, ctx: Any) -> str | None:
            return None if getattr(self, "is_flag", False) else option_type(self, ctx)

        display_type_rich._dicompose = True  # type: ignore[attr-defined]
        core.TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]

    if hasattr(core.TyperArgument, "_usage_display_name"):

        def usage_name(self: Any) -> str:
            name = str(self.metavar or self.name or "").upper()
            name = name if self.required else f"[{name}]"
            return name + ("..." if self.nargs != 1 else "")

        core.TyperArgument._usage_display_name = usage_name  # type: ignore[method-assign]
