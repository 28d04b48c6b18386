"""One PACS, whichever way it is reached: DICOM networking (``dicom://``, ``dicom+tls://``) or DICOMweb
(``dicomweb+http(s)://``). Commands and pipelines call these and never ask which."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from dicompose.pacs.address import as_is

if TYPE_CHECKING:  # the network stack (ssl, pynetdicom) is imported only when a PACS is used
    from dicompose.pacs.association import NetworkSettings
    from dicompose.pacs.retrieve import PullReport
    from dicompose.pacs.store import PushReport


def is_web(url: str) -> bool:
    return url.startswith("dicomweb+")


def name_of(url: str) -> str:
    """The PACS as messages and records name it (no query, no credentials)."""
    if is_web(url):
        from dicompose.pacs.dicomweb import parse_web_url

        return str(parse_web_url(url))
    from dicompose.pacs.address import parse_pacs_url

    return str(parse_pacs_url(url))


def query_of(url: str) -> dict[str, str]:
    if is_web(url):
        from dicompose.pacs.dicomweb import parse_web_url

        return parse_web_url(url).query
    from dicompose.pacs.address import parse_pacs_url

    return parse_pacs_url(url).query


def echo(url: str, settings: NetworkSettings, auth_file: Path | None = None) -> float:
    import time

    if is_web(url):
        from dicompose.pacs import dicomweb

        started = time.perf_counter()
        dicomweb.echo(dicomweb.parse_web_url(url), settings, dicomweb.credentials(auth_file))
        return time.perf_counter() - started
    from dicompose.pacs.address import parse_pacs_url
    from dicompose.pacs.echo import echo as c_echo

    return c_echo(parse_pacs_url(url), settings)


def pull(
    url: str,
    settings: NetworkSettings,
    study: str,
    out: Path,
    *,
    series: str | None = None,
    move_dest: str | None = None,
    auth_file: Path | None = None,
    name: Callable[[str], str] = as_is,
    skip_series: Callable[[str], bool] | None = None,
) -> PullReport:
    """``skip_series``: series not to pull (a pipeline's own results, pushed to the study it reads)."""
    if is_web(url):
        from dicompose.errors import UsageError
        from dicompose.pacs import dicomweb

        if move_dest is not None:
            raise UsageError("--move-dest is for DICOM networking (C-MOVE), not DICOMweb")
        web = dicomweb.parse_web_url(url)
        credentials = dicomweb.credentials(auth_file)
        return dicomweb.pull(web, settings, credentials, study, out, series=series, name=name, skip_series=skip_series)
    from dicompose.pacs.address import parse_pacs_url
    from dicompose.pacs.retrieve import pull as c_get

    address = parse_pacs_url(url)
    return c_get(address, settings, study, out, series=series, move_dest=move_dest, name=name, skip_series=skip_series)


def push(url: str, files: list[Path], settings: NetworkSettings, auth_file: Path | None = None) -> PushReport:
    if is_web(url):
        from dicompose.pacs import dicomweb

        return dicomweb.push(files, dicomweb.parse_web_url(url), settings, dicomweb.credentials(auth_file))
    from dicompose.pacs.address import parse_pacs_url
    from dicompose.pacs.store import push as c_store

    return c_store(files, parse_pacs_url(url), settings)
