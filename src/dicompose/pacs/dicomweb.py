"""A PACS over DICOMweb (dicomweb-client): QIDO-RS to search, WADO-RS to retrieve, STOW-RS to store.

``dicomweb+http(s)://HOST[:PORT]/PREFIX`` names the service root (``…/dicom-web``). Credentials never come from
the command line (they would sit in shell histories and process lists): ``--auth-file`` or the configuration's
``[pacs] dicomweb_auth_file``, else ``DICOMPOSE_DICOMWEB_AUTH``; either holds ``USER:PASSWORD`` (HTTP basic) or
``Bearer TOKEN``, and is never logged. Pull and push behave as their DIMSE twins (:mod:`retrieve`, :mod:`store`):
the same layout, whole files only, what is already there neither fetched nor sent again, one line per failure.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial as partial_call
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from dicompose.errors import PacsError, UsageError
from dicompose.pacs.address import as_is, check_uid, shown
from dicompose.pacs.association import NetworkSettings
from dicompose.pacs.local_copies import whole_instance
from dicompose.pacs.retrieve import PARTIAL, PullReport, instance_path
from dicompose.pacs.store import PRESENT, STORED, PushReport, sendable

SCHEMES = ("dicomweb+http", "dicomweb+https")
BATCH = 16  # instances per STOW-RS request


@dataclass(frozen=True)
class WebAddress:
    base: str  # http(s)://host:port/prefix
    query: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"dicomweb+{self.base}"


def parse_web_url(text: str) -> WebAddress:
    parts = urlsplit(text)
    if parts.scheme not in SCHEMES or not parts.hostname:
        raise UsageError(f"{shown(text)}: not a DICOMweb URL (expected dicomweb+https://HOST[:PORT]/PREFIX)")
    if parts.username or parts.password:
        raise UsageError(
            f"{shown(text)}: no credentials in the URL: give them with --auth-file or DICOMPOSE_DICOMWEB_AUTH"
        )
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        raise UsageError(f"{shown(text)}: the port must be a number from 1 to 65535") from None
    query: dict[str, str] = {}
    for key, values in parse_qs(parts.query, keep_blank_values=True).items():
        if key not in ("study", "series") or len(values) != 1:
            raise UsageError(f"{shown(text)}: the query takes study=UID and series=UID, once each")
        query[key] = check_uid(values[0], key)
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    base = f"{parts.scheme.removeprefix('dicomweb+')}://{host}{port}{parts.path.rstrip('/')}"
    return WebAddress(base, query)


def credentials(auth_file: Path | None) -> tuple[str, str] | str | None:
    """(user, password) for basic, a bearer token, or None: from the file, else DICOMPOSE_DICOMWEB_AUTH."""
    if auth_file is not None:
        try:
            text = auth_file.read_text().strip()
        except OSError as exc:
            raise UsageError(f"auth file {auth_file}: cannot read it ({exc.strerror or exc})") from None
        if not text:
            raise UsageError(f"auth file {auth_file}: empty (expected USER:PASSWORD or Bearer TOKEN)")
    else:
        text = os.environ.get("DICOMPOSE_DICOMWEB_AUTH", "").strip()
    if not text:
        return None
    first = text.splitlines()[0].strip()
    if first.lower().startswith("bearer "):
        return first.split(None, 1)[1]
    user, sep, password = first.partition(":")
    if not sep or not user:
        where = auth_file or "DICOMPOSE_DICOMWEB_AUTH"
        raise UsageError(f"{where}: expected USER:PASSWORD or Bearer TOKEN")
    return user, password


def _client(address: WebAddress, settings: NetworkSettings, auth: tuple[str, str] | str | None) -> Any:
    import requests
    from dicomweb_client.api import DICOMwebClient
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    class TimedSession(requests.Session):
        def request(self, *args: Any, **kwargs: Any) -> Any:
            kwargs.setdefault("timeout", settings.timeout)
            return super().request(*args, **kwargs)

    session = TimedSession()
    retries = Retry(total=settings.attempts - 1, backoff_factor=settings.pause, status_forcelist=(502, 503, 504))
    session.mount("http://", HTTPAdapter(max_retries=retries))
    session.mount("https://", HTTPAdapter(max_retries=retries))
    if isinstance(auth, tuple):
        session.auth = auth
    elif isinstance(auth, str):
        session.headers["Authorization"] = f"Bearer {auth}"
    if settings.tls_ca is not None:
        session.verify = str(settings.tls_ca)
    if settings.tls_cert is not None:
        session.cert = (str(settings.tls_cert), str(settings.tls_key)) if settings.tls_key else str(settings.tls_cert)
    return DICOMwebClient(url=address.base, session=session)


def _failure(address: WebAddress, exc: Exception, what: str) -> PacsError:
    """One line for what went wrong with an HTTP exchange (never the credentials)."""
    import requests

    response = getattr(exc, "response", None)
    if response is not None:
        code = response.status_code
        why = {401: "authentication refused", 403: "not allowed", 404: "not found"}.get(code, response.reason)
        return PacsError(f"{address}: {what} failed: HTTP {code} ({why})")
    if isinstance(exc, requests.exceptions.ConnectionError):
        return PacsError(f"{address}: cannot connect during {what} ({type(exc).__name__})")
    if isinstance(exc, requests.exceptions.Timeout):
        return PacsError(f"{address}: no answer during {what}")
    return PacsError(f"{address}: {what} failed ({type(exc).__name__})")


def _call(address: WebAddress, what: str, action: Callable[[], Any]) -> Any:
    import requests

    try:
        return action()
    except (requests.exceptions.RequestException, OSError, ValueError) as exc:
        raise _failure(address, exc, what) from None


def echo(address: WebAddress, settings: NetworkSettings, auth: tuple[str, str] | str | None) -> None:
    client = _client(address, settings, auth)
    _call(address, "a QIDO-RS search", lambda: client.search_for_studies(limit=1))


def _value(item: dict[str, Any], tag: str) -> str:
    return str((item.get(tag, {}).get("Value") or [""])[0])


def pull(
    address: WebAddress,
    settings: NetworkSettings,
    auth: tuple[str, str] | str | None,
    study: str,
    out: Path,
    *,
    series: str | None = None,
    name: Callable[[str], str] = as_is,
    skip_series: Callable[[str], bool] | None = None,
) -> PullReport:
    """The study (or series) into ``out``, instance by instance (WADO-RS), what is here already skipped."""
    client = _client(address, settings, auth)
    found = _call(
        address,
        "a QIDO-RS search",
        lambda: client.search_for_instances(
            study_instance_uid=study, series_instance_uid=series, fields=["SeriesInstanceUID", "SOPInstanceUID"]
        ),
    )
    report = PullReport(str(address))
    if not found:
        raise PacsError(f"{address}: no such study{' and series' if series else ''} on the PACS")
    if skip_series is not None:
        kept = [item for item in found if not skip_series(_value(item, "0020000E"))]
        report.skipped, found = len(found) - len(kept), kept
    (out / PARTIAL).mkdir(parents=True, exist_ok=True)
    try:
        _fetch(client, address, study, found, out, name, report)
    except BaseException as exc:  # what arrived before the end is still reported and audited
        exc.partial = report  # type: ignore[attr-defined]
        raise
    finally:
        for leftover in (out / PARTIAL).glob("*"):
            leftover.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            (out / PARTIAL).rmdir()
    return report


def _fetch(
    client: Any,
    address: WebAddress,
    study: str,
    found: list[dict[str, Any]],
    out: Path,
    name: Callable[[str], str],
    report: PullReport,
) -> None:
    for item in found:
        serie, sop = _value(item, "0020000E"), _value(item, "00080018")
        target = instance_path(out, study, serie, sop, name)
        if target.exists():
            if whole_instance(target, sop, name):
                report.present += 1
                continue
            target.unlink(missing_ok=True)  # cut short: fetched again
        dataset = _call(address, "a WADO-RS retrieve", partial_call(client.retrieve_instance, study, serie, sop))
        partial = out / PARTIAL / f"{uuid.uuid4().hex}.dcm"
        try:
            dataset.save_as(partial, enforce_file_format=True)
            with partial.open("rb+") as fh:
                os.fsync(fh.fileno())
            target.parent.mkdir(parents=True, exist_ok=True)
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)
        report.received += 1
        report.studies[study] = report.studies.get(study, 0) + 1


def _store_one(client: Any, address: WebAddress, instance: Any, report: PushReport) -> None:
    from pydicom import dcmread

    try:
        response = _call(
            address, "a STOW-RS store", partial_call(client.store_instances, datasets=[dcmread(instance.path)])
        )
    except (PacsError, ValueError, TypeError, AttributeError) as exc:
        if isinstance(exc, PacsError) and "HTTP 4" not in str(exc):
            raise
        report.results.append((instance.path, f"refused: {str(exc).split(': ', 1)[-1]}"))
        return
    if response is not None and response.get("FailedSOPSequence"):
        report.results.append((instance.path, "refused: the service lists it failed"))
    else:
        report.results.append((instance.path, STORED))
        report.studies[instance.study] = report.studies.get(instance.study, 0) + 1


def push(
    files: list[Path], address: WebAddress, settings: NetworkSettings, auth: tuple[str, str] | str | None
) -> PushReport:
    """STOW-RS every DICOM file; what the service holds (QIDO-RS per series) is not sent again."""

    client = _client(address, settings, auth)
    report = PushReport(str(address))
    instances, unsent = sendable(files)
    report.results.extend(unsent)
    held: set[str] = set()
    for study, serie in sorted({(i.study, i.series) for i in instances if i.study and i.series}):
        found = _call(
            address,
            "a QIDO-RS search",
            partial_call(
                client.search_for_instances,
                study_instance_uid=study,
                series_instance_uid=serie,
                fields=["SOPInstanceUID"],
            ),
        )
        held |= {_value(item, "00080018") for item in found}
    to_send = []
    for instance in instances:
        if instance.sop_instance in held:
            report.results.append((instance.path, PRESENT))
        else:
            to_send.append(instance)
    try:
        for first in range(0, len(to_send), BATCH):
            _store_batch(client, address, to_send[first : first + BATCH], report)
    except BaseException as exc:  # what was stored before the end is still reported and audited
        setattr(exc, "partial", report)  # noqa: B010 - any exception, Ctrl-C included
        raise
    return report


def _store_batch(client: Any, address: WebAddress, batch: list[Any], report: PushReport) -> None:
    """One STOW-RS request; a batch the service refuses (HTTP 4xx) is sent again file by file, so only the
    files it refuses are reported refused."""
    from pydicom import dcmread

    try:
        datasets = [dcmread(i.path) for i in batch]
        response = _call(address, "a STOW-RS store", partial_call(client.store_instances, datasets=datasets))
    except (PacsError, ValueError, TypeError, AttributeError) as exc:
        if isinstance(exc, PacsError) and "HTTP 4" not in str(exc):
            raise  # the service, not a file
        for one in batch:
            _store_one(client, address, one, report)
        return
    failed = {
        str(item.get("ReferencedSOPInstanceUID", "")): int(item.get("FailureReason", 0) or 0)
        for item in (response.get("FailedSOPSequence", []) if response is not None else [])
    }
    for instance in batch:
        if instance.sop_instance in failed:
            report.results.append((instance.path, f"refused: failure reason 0x{failed[instance.sop_instance]:04X}"))
        else:
            report.results.append((instance.path, STORED))
            report.studies[instance.study] = report.studies.get(instance.study, 0) + 1
