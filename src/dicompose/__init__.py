"""dicompose: portable, reproducible, secure container-based medical image analysis."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    __version__: str

__all__ = ["__version__"]


@cache
def _installed_version() -> str:
    # importlib.metadata costs ~25 ms at import: only paid by the code that asks for the version.
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("dicompose")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0.0.0+unknown"


def __getattr__(name: str) -> str:
    """``dicompose.__version__``, computed on first use (PEP 562)."""
    if name == "__version__":
        return _installed_version()
    raise AttributeError(f"module 'dicompose' has no attribute {name!r}")
