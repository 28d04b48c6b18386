"""The scheduler interface: submit a picklable call, get told when it finishes, cancel what is left."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

Done = Callable[[Any, BaseException | None], None]


class Scheduler(Protocol):
    name: str

    def submit(self, fn: Callable[[Any], Any], arg: Any, done: Done) -> None:
        """Run ``fn(arg)`` somewhere; call ``done(result, error)`` when it ends (from any thread)."""

    def cancel_all(self) -> None:
        """Cancel everything not yet started (running tasks are stopped by the engine cleanup)."""

    def close(self) -> None: ...
