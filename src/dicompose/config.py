"""Defaults and environment overrides, in one place. Values are read when asked for, never cached globally."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

#: Root for UIDs dicompose derives. pydicom's root is registered for exactly this use (derived, generated UIDs).
UID_ROOT = "1.2.826.0.1.3680043.8.498."


@dataclass(frozen=True)
class Settings:
    """Run-time settings; construct with :func:`load_settings` so environment overrides apply."""

    workers: int
    uid_root: str = UID_ROOT


def default_workers() -> int:
    """Use every core the process may run on (cgroup/affinity aware where the OS says so)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


def data_home() -> Path:
    """Where dicompose keeps machine-level state (image pins, caches): ``DICOMPOSE_HOME`` or XDG data."""
    explicit = os.environ.get("DICOMPOSE_HOME")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_DATA_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "share") / "dicompose"


def cache_home() -> Path:
    """Downloaded wheelhouses and other re-creatable data: ``XDG_CACHE_HOME`` or ``~/.cache``."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "dicompose"


def load_settings() -> Settings:
    """Settings from defaults, overridden by ``DICOMPOSE_WORKERS``."""
    raw = os.environ.get("DICOMPOSE_WORKERS", "").strip()
    workers = int(raw) if raw.isdigit() and int(raw) > 0 else default_workers()
    return Settings(workers=workers)
