"""Process lifetime: children that die with their parent, so a killed run leaves no orphans behind.

A leaf module (like ``fileio``): the engines use it for the steps they start, the built-in tools for their
process pools (their workers), so SIGKILL of dicompose takes the whole tree down.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int | None = None) -> None:
    """Ask the kernel for SIGKILL when this process's parent (thread) ends. Linux only; a no-op elsewhere.

    If the parent died before the request was made (it was killed between our fork and this call), exit now:
    the request only covers a death that happens after it. ``parent`` is the pid we expect, when known;
    otherwise being adopted by init (pid 1) tells. Safe between fork and exec, and as a pool initializer.
    """
    if sys.platform != "linux":
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    now = os.getppid()
    if now == 1 or (parent is not None and now != parent):
        os._exit(1)


def alive(pid: int) -> bool:
    """Is process ``pid`` running on this host (one of another user counts)?"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
