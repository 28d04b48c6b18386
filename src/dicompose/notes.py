"""What a long wait owes the person at the terminal ("verifying image … (first use)", "waiting for worker jobs
…"): said through the logger ``dicompose.notes``, which the command line shows on stderr (``--json`` does not),
so the code that waits needs no console of its own. Never patient data: engines, images, jobs."""

from __future__ import annotations

import logging

NOTES = logging.getLogger("dicompose.notes")


def note(text: str) -> None:
    NOTES.info(text)
