"""Memory allocator tuning for the image tools: keep freed image-sized buffers for reuse.

Each file the tools handle allocates several buffers of about a slice's size (decoded pixels, remapped
values, encoded bytes). With glibc's defaults these come from fresh ``mmap`` pages or from a heap top that is
trimmed back after every file, so each file pays hundreds of page faults (measured: 800 per 512×512 slice,
about a third of normalize's time per file). Raising the mmap and trim thresholds lets freed buffers be
reused; peak memory is unchanged (the same buffers, kept instead of returned and taken again). Buffers above
the mmap threshold (whole volumes) still come from, and go back to, the kernel. A leaf module (like ``fileio``).
"""

from __future__ import annotations

import contextlib
import ctypes
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 16 << 20  # buffers larger than this are mapped and unmapped each time (whole volumes)
TRIM_THRESHOLD = 32 << 20  # free memory kept at the heap's top before it is given back


def keep_freed_buffers() -> bool:
    """Tune glibc's malloc in this process (inherited by forked children); True if it took effect.

    A no-op where the C library has no ``mallopt`` (musl, macOS): only speed differs there.
    """
    if sys.platform != "linux":
        return False
    with contextlib.suppress(OSError, AttributeError):
        mallopt = ctypes.CDLL(None).mallopt
        mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return False
