"""The site's de-identification key: shared by the host tool and by runs (which pass it to containers), and
light to import (a no-op rerun must not load pydicom to learn where the key is)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from dicompose.config import data_home
from dicompose.errors import UsageError


def site_key_file() -> Path:
    """Where the site's de-identification key is (``$DICOMPOSE_HOME/deid-keys/deid.key``), made or not."""
    return data_home() / "deid-keys" / "deid.key"


def site_key_path() -> Path:
    """The site's de-identification key (:func:`site_key_file`), created 0600 if missing."""
    path = site_key_file()
    if not path.exists():
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path
        except OSError as exc:
            raise UsageError(
                f"no de-identification key and cannot create one at {path} ({exc.strerror or exc}); give --key-file"
            ) from None
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_bytes(32))
    return path


def load_key(key_file: Path | None) -> bytes:
    """The key behind UID mapping, pseudonyms and date shifts: ``--key-file`` or the site key (created 0600).

    Share the key file between sites (or runs) that must map the same patient to the same pseudonym.
    """
    path = key_file or site_key_path()
    try:
        key = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the de-identification key ({exc.strerror or exc})") from None
    if len(key) < 16:
        raise UsageError(f"{path}: a de-identification key must hold at least 16 bytes")
    return key
