"""Where a PACS is: ``dicom://CALLED_AET@HOST:PORT`` (``dicom+tls://`` for TLS), parsed and checked (pure).

The calling AE title (ours) is not part of the URL: it comes from ``--aet`` or the configuration's
``[pacs] aet``, so one URL names one PACS whoever calls it. A query (``?study=UID&series=UID``) selects what a
pipeline input pulls.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from dicompose.errors import UsageError

SCHEMES = ("dicom", "dicom+tls")
#: PS3.5: an AE title is 1-16 characters of the default repertoire, no backslash or control characters, and
#: not all spaces (leading and trailing spaces are not significant).
_AE_TITLE = re.compile(r"^[\x20-\x5b\x5d-\x7e]{1,16}$")
_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")


@dataclass(frozen=True)
class PacsAddress:
    called_aet: str
    host: str
    port: int
    tls: bool = False
    query: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        """The URL without its query: what messages and records name (never a patient)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'dicom+tls' if self.tls else 'dicom'}://{self.called_aet}@{host}:{self.port}"


def as_is(uid: str) -> str:
    """A UID named by itself in paths (where paths reach no record, ``dicompose pacs pull --out``)."""
    return uid


def is_pacs_url(text: str) -> bool:
    """A PACS by DICOM networking (dicom://, dicom+tls://) or DICOMweb (dicomweb+http(s)://)."""
    return "://" in text and text.split("://", 1)[0] in (*SCHEMES, "dicomweb+http", "dicomweb+https")


def check_ae_title(title: str, what: str) -> str:
    """``title`` as sent (stripped), or a UsageError saying what is wrong with it."""
    stripped = title.strip()
    if not stripped or not _AE_TITLE.match(title) or len(title) > 16:
        raise UsageError(f"{what} {title!r}: an AE title is 1 to 16 printable ASCII characters, no backslash")
    return stripped


def check_uid(uid: str, what: str) -> str:
    if not _UID.match(uid) or len(uid) > 64:
        raise UsageError(f"{what} {uid!r}: not a DICOM UID (digits and dots, at most 64 characters)")
    return uid


def shown(text: str) -> str:
    """A URL as messages may show it: no credentials, no query (a study UID is an identifier)."""
    try:
        parts = urlsplit(text)
        netloc = parts.netloc.rsplit("@", 1)
        host = netloc[-1]
        who = netloc[0].split(":")[0] + "@" if len(netloc) == 2 else ""
        return f"{parts.scheme}://{who}{host}{parts.path}" if parts.scheme else "(not a URL)"
    except ValueError:
        return "(not a URL)"


def parse_pacs_url(text: str) -> PacsAddress:
    """``dicom://CALLED_AET@HOST:PORT[?study=UID&series=UID]`` (or ``dicom+tls://``) as a :class:`PacsAddress`."""
    parts = urlsplit(text)
    if parts.scheme not in SCHEMES:
        raise UsageError(f"{shown(text)}: not a PACS URL (expected dicom://CALLED_AET@HOST:PORT or dicom+tls://...)")
    if not parts.username or parts.password is not None:
        raise UsageError(f"{shown(text)}: name the PACS's AE title before '@' (dicom://CALLED_AET@HOST:PORT)")
    try:
        port = parts.port
    except ValueError:
        raise UsageError(f"{shown(text)}: the port must be a number from 1 to 65535") from None
    if not parts.hostname or port is None or not 0 < port < 65536:
        raise UsageError(f"{shown(text)}: give the PACS's host and port (dicom://CALLED_AET@HOST:PORT)")
    if parts.path not in ("", "/") or parts.fragment:
        raise UsageError(f"{shown(text)}: a PACS URL has no path (dicom://CALLED_AET@HOST:PORT?study=UID)")
    query: dict[str, str] = {}
    for key, values in parse_qs(parts.query, keep_blank_values=True, strict_parsing=False).items():
        if key not in ("study", "series") or len(values) != 1:
            raise UsageError(f"{shown(text)}: the query takes study=UID and series=UID, once each")
        query[key] = check_uid(values[0], key)
    called = check_ae_title(_unquote(parts.username), "called AE title")
    return PacsAddress(called, parts.hostname, port, parts.scheme == "dicom+tls", query)


def _unquote(text: str) -> str:
    from urllib.parse import unquote

    return unquote(text)
