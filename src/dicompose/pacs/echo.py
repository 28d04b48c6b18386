"""``dicompose pacs echo``: is the PACS there, and does it accept us? (C-ECHO, the DICOM ping)."""

from __future__ import annotations

import time

from dicompose.errors import PacsError
from dicompose.pacs.address import PacsAddress
from dicompose.pacs.association import NetworkSettings, associated, dropped

VERIFICATION = "1.2.840.10008.1.1"


def echo(address: PacsAddress, settings: NetworkSettings) -> float:
    """Seconds from association request to the C-ECHO's answer; a PacsError says why there was none."""
    started = time.perf_counter()
    with associated(address, settings, [(VERIFICATION, ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"])]) as assoc:
        status = assoc.send_c_echo()
        if not status:
            raise dropped(assoc, address, "C-ECHO") or PacsError(f"{address}: no answer to C-ECHO")
        if int(status.Status) != 0:
            raise PacsError(f"{address}: C-ECHO failed (status 0x{int(status.Status):04X})")
    return time.perf_counter() - started
