"""Which image digest a tool runs with: pins recorded by ``dicompose build`` (or a descriptor's container-hash).

Stored as JSON in the dicompose data folder (``DICOMPOSE_HOME``, default ``~/.local/share/dicompose``) and
keyed by tool name and descriptor digest, so a changed descriptor never silently runs an old image.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from dicompose.config import data_home


def pins_file() -> Path:
    return data_home() / "images.json"


def _key(tool: str, descriptor_digest: str) -> str:
    return f"{tool}@{descriptor_digest}"


def read_pins() -> dict[str, dict[str, str]]:
    try:
        data = json.loads(pins_file().read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def pinned(tool: str, descriptor_digest: str) -> dict[str, str] | None:
    return read_pins().get(_key(tool, descriptor_digest))


def record_pin(tool: str, descriptor_digest: str, image: str, digest: str) -> None:
    """Record (atomically) that ``tool`` with this descriptor runs ``image`` at ``digest``."""
    pins = read_pins()
    pins[_key(tool, descriptor_digest)] = {"image": image, "digest": digest}
    path = pins_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".images.", suffix=".json")
    with os.fdopen(fd, "w") as fh:
        json.dump(pins, fh, indent=2, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    Path(tmp).replace(path)
