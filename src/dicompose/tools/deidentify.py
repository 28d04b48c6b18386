"""The ``deidentify`` tool over many files, and the site's de-identification key."""

from __future__ import annotations

import os
import secrets
from functools import partial
from pathlib import Path

from dicompose.config import data_home
from dicompose.dicom.deidentify import DeidParams, deidentify_file, deidentify_file_fingerprinted, output_name_for
from dicompose.dicom.identifiers import Fingerprints
from dicompose.dicom.kernel import ValueRange
from dicompose.errors import UsageError
from dicompose.tools.batch import Hashing, Operation


def site_key_path() -> Path:
    """The site's de-identification key (``$DICOMPOSE_HOME/deid-keys/deid.key``), created 0600 if missing."""
    path = data_home() / "deid-keys" / "deid.key"
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


def _apply(
    params: DeidParams, source: Path, destination: Path, _range: ValueRange | None, hashing: Hashing | None
) -> Fingerprints | None:
    if hashing is not None:
        return deidentify_file_fingerprinted(source, destination, params, hash_on_thread=hashing == "thread")
    deidentify_file(source, destination, params)
    return None


def deidentify_operation(params: DeidParams) -> Operation:
    return Operation("deidentify", partial(_apply, params), partial(output_name_for, params), flatten=True)
