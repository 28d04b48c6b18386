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
from dicompose.errors import UsageError


def pins_file() -> Path:
    return data_home() / "images.json"


def _key(tool: str, descriptor_digest: str) -> str:
    return f"{tool}@{descriptor_digest}"


def read_pins(path: Path | None = None) -> dict[str, dict[str, str]]:
    """Every pin of the file (none if it does not exist); a file that cannot be read or is not a pins file is
    a UsageError naming it: which image runs is never decided by ignoring a damaged file."""
    path = path or pins_file()
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, NotADirectoryError):
        return {}
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the image pins ({exc.strerror or exc})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: not a pins file ({exc}); restore it, or remove it and pin again") from None
    well_formed = isinstance(data, dict) and all(
        isinstance(v, dict) and isinstance(v.get("digest"), str) and isinstance(v.get("image"), str)
        for v in data.values()
    )
    if not well_formed:
        raise UsageError(f'{path}: not a pins file (each entry is {{"image": ..., "digest": ...}})')
    return {str(k): {"image": v["image"], "digest": v["digest"]} for k, v in data.items()}


def pinned(tool: str, descriptor_digest: str, path: Path | None = None) -> dict[str, str] | None:
    """The pin of ``tool`` at this descriptor: in the user's pins, or in ``path`` (a shared image folder's)."""
    return read_pins(path).get(_key(tool, descriptor_digest))


def record_pin(tool: str, descriptor_digest: str, image: str, digest: str, path: Path | None = None) -> None:
    """Record (atomically) that ``tool`` with this descriptor runs ``image`` at ``digest`` (in the user's pins,
    or in ``path``)."""
    path = path or pins_file()
    pins = read_pins(path)
    pins[_key(tool, descriptor_digest)] = {"image": image, "digest": digest}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".images.", suffix=".json")
    if path != pins_file():
        os.fchmod(fd, 0o644)  # a shared image folder's pins are read by all its users
    with os.fdopen(fd, "w") as fh:
        json.dump(pins, fh, indent=2, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    Path(tmp).replace(path)
