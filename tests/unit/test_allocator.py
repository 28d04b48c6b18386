"""The allocator tuning: freed slice-sized buffers are reused instead of faulted in again for every file."""

from __future__ import annotations

import subprocess
import sys

import pytest

_CHURN = """
import resource, sys
import numpy as np
if sys.argv[1] == "tuned":
    from dicompose.allocator import keep_freed_buffers
    assert keep_freed_buffers()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(200):  # what each file does: decode, remap and encode a 512x512 slice
    stored = np.ones((512, 512), np.int16)
    out = (stored.astype(np.int32) * 3).astype(np.uint16)
    encoded = out.tobytes()
    del stored, out, encoded
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", _CHURN, mode], capture_output=True, text=True, check=True)
    return int(done.stdout.strip())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's (Linux)")
def test_tuned_allocator_stops_faulting_pages_in_for_every_file():
    default, tuned = _faults("default"), _faults("tuned")
    assert tuned * 5 < default, (tuned, default)
