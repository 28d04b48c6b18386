"""One association with a PACS, opened with timeouts and retries, and every failure said in one line.

pynetdicom logs what goes wrong and leaves flags on the association; a user needs one sentence naming the PACS
and the cause: not listening, not answering in time, the association refused (and the PACS's reason: our AE
title unknown, its own AE title wrong), or the transfer dropped. Refusals are not retried (asking again
changes nothing); a PACS that is down or slow is, with a growing pause.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dicompose.errors import PacsError, UsageError
from dicompose.pacs.address import PacsAddress

DEFAULT_AET = "DICOMPOSE"
#: Study Root Query/Retrieve information models (PS3.4 C.6.2) and the transfer syntaxes their requests travel in.
FIND = "1.2.840.10008.5.1.4.1.2.2.1"
MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
GET = "1.2.840.10008.5.1.4.1.2.2.3"
PLAIN = ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2")  # explicit and implicit VR little endian


#: pynetdicom's default largest PDU (bytes) we accept: what PACS are tested against most.
DEFAULT_MAX_PDU = 16382


@dataclass(frozen=True)
class NetworkSettings:
    """Our side of every association: the calling AE title, timeouts (seconds) and attempts."""

    aet: str = DEFAULT_AET
    timeout: float = 30.0  # connection, association, each DIMSE message and the network
    attempts: int = 3  # per association, for a PACS that is down or does not answer (never for a refusal)
    pause: float = 1.0  # before the second attempt; doubled each time
    tls_ca: Path | None = None  # dicom+tls://: the CA that signed the PACS's certificate (else the system's)
    tls_cert: Path | None = None  # our client certificate, for a PACS that requires one
    tls_key: Path | None = None  # its private key (default: in the certificate file)
    move_dest: str | None = None  # [pacs] move_dest: AET:PORT for C-MOVE when a PACS refuses C-GET
    max_pdu: int = DEFAULT_MAX_PDU  # the largest PDU we accept (0: no limit)
    per_association: int = 0  # push: instances per association at most (0: no limit), for PACS that cap them


def configured_settings(
    aet: str | None = None,
    timeout: float | None = None,
    attempts: int | None = None,
    tls: tuple[Path | None, Path | None, Path | None] = (None, None, None),
    max_pdu: int | None = None,
    per_association: int | None = None,
) -> NetworkSettings:
    """Our side of every association: each value given (the command line's) over the configuration's
    ``[pacs]`` table over the defaults. Shared by ``dicompose pacs`` and runs that start or end at a PACS."""
    from dicompose.config import configured
    from dicompose.pacs.address import check_ae_title

    keys = ("tls_ca", "tls_cert", "tls_key")
    files = [configured("pacs", key, given, None) for key, given in zip(keys, tls, strict=True)]
    ca, cert, key = (Path(str(f)).expanduser() if f is not None else None for f in files)
    return NetworkSettings(
        aet=check_ae_title(str(configured("pacs", "aet", aet, DEFAULT_AET)), "--aet" if aet else "[pacs] aet"),
        timeout=float(configured("pacs", "timeout", timeout, 30)),
        attempts=int(configured("pacs", "attempts", attempts, 3)),
        tls_ca=ca,
        tls_cert=cert,
        tls_key=key,
        move_dest=configured("pacs", "move_dest", None, None),
        max_pdu=int(configured("pacs", "max_pdu", max_pdu, DEFAULT_MAX_PDU)),
        per_association=int(configured("pacs", "per_association", per_association, 0)),
    )


def tls_context(settings: NetworkSettings) -> ssl.SSLContext:
    """A client TLS context: the PACS's certificate verified (against ``tls_ca``, else the system's CAs) and its
    name checked; our certificate presented when given. Files that cannot be read are a UsageError."""
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=settings.tls_ca)
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(f"--tls-ca {settings.tls_ca}: not a readable CA certificate ({_why(exc)})") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if settings.tls_cert is not None:
        try:
            context.load_cert_chain(settings.tls_cert, settings.tls_key)
        except (OSError, ssl.SSLError) as exc:
            raise UsageError(
                f"--tls-cert {settings.tls_cert}: not a readable certificate and key ({_why(exc)})"
            ) from None
    return context


def _why(exc: Exception) -> str:
    return str(getattr(exc, "strerror", None) or getattr(exc, "reason", None) or exc)


def quiet_pynetdicom() -> None:
    """pynetdicom logs every refusal and abort itself; we say each once, in our words."""
    logging.getLogger("pynetdicom").setLevel(logging.CRITICAL)


def _reachable(address: PacsAddress, timeout: float, tls: ssl.SSLContext | None) -> str:
    """'' if something accepts TCP connections (and, for TLS, completes a handshake) at the address, else why
    not (for the message)."""
    try:
        with socket.create_connection((address.host, address.port), timeout=timeout) as raw:
            if tls is not None:
                with tls.wrap_socket(raw, server_hostname=address.host) as secured:
                    secured.settimeout(min(timeout, 2.0))  # TLS 1.3: a refused client certificate comes after
                    with contextlib.suppress(TimeoutError):
                        secured.recv(1)
            return ""
    except ssl.SSLCertVerificationError as exc:
        if "mismatch" in str(exc.verify_message):
            return (
                f"the TLS handshake with {address.host}:{address.port} failed: the PACS's certificate does not "
                f"name {address.host} ({exc.verify_message.rstrip('.')}); connect by a name it carries"
            )
        return (
            f"the TLS handshake with {address.host}:{address.port} failed: the PACS's certificate is not trusted "
            f"({exc.verify_message}; check --tls-ca)"
        )
    except ssl.SSLError as exc:
        hint = "; the PACS may require a client certificate (--tls-cert)" if "CERTIFICATE" in str(exc.reason) else ""
        return f"the TLS handshake with {address.host}:{address.port} failed ({exc.reason or exc}{hint})"
    except TimeoutError:
        return f"no answer from {address.host}:{address.port} within {timeout:g} s"
    except OSError as exc:
        return f"cannot connect to {address.host}:{address.port} ({exc.strerror or exc})"


@contextlib.contextmanager
def associated(
    address: PacsAddress,
    settings: NetworkSettings,
    contexts: Sequence[tuple[str, Sequence[str]]],
    *,
    roles: Sequence[Any] = (),
    handlers: Sequence[tuple[Any, Callable[..., Any]]] = (),
) -> Iterator[Any]:
    """An established association (pynetdicom's) proposing ``contexts`` ((SOP class, transfer syntaxes)), or a
    :class:`PacsError`; released (or aborted) when the block ends."""
    from pynetdicom import AE, evt

    quiet_pynetdicom()
    ae = AE(ae_title=settings.aet)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = settings.timeout
    ae.connection_timeout = settings.timeout
    ae.maximum_associations = 1
    ae.maximum_pdu_size = settings.max_pdu
    for sop_class, syntaxes in contexts:
        ae.add_requested_context(sop_class, list(syntaxes))
    refusal: dict[str, str] = {}

    def on_acse(event: Any) -> None:
        primitive: Any = getattr(event, "primitive", None)
        if getattr(primitive, "result", None) in (1, 2):
            refusal["reason"] = f"{primitive.reason_str} ({primitive.source_str.lower()})"

    every: list[Any] = [*handlers, (evt.EVT_ACSE_RECV, on_acse)]
    tls = tls_context(settings) if address.tls else None
    pause = settings.pause
    for attempt in range(1, settings.attempts + 1):
        refusal.clear()
        try:
            assoc = ae.associate(
                address.host,
                address.port,
                ae_title=address.called_aet,
                max_pdu=settings.max_pdu,  # what we accept from the PACS (ae.maximum_pdu_size is for our SCPs)
                ext_neg=list(roles) or None,
                evt_handlers=every,
                tls_args=(tls, address.host) if tls is not None else None,
            )
        except OSError as exc:  # a host name that does not resolve, and the like
            raise PacsError(f"{address}: cannot connect to {address.host}:{address.port} ({_why(exc)})") from None
        if assoc.is_established:
            break
        if assoc.is_rejected:
            reason = refusal.get("reason", "no reason given")
            raise PacsError(
                f"{address}: the PACS refused the association of {settings.aet} ({reason}); check --aet and the "
                "PACS's AE title, and that the PACS knows ours"
            )
        why = _reachable(address, settings.timeout, tls) or "the association was aborted or timed out" + (
            "" if address.tls else " (a port that speaks only TLS? then dicom+tls://)"
        )
        if why.startswith("the TLS handshake"):  # a certificate problem does not go away by asking again
            raise PacsError(f"{address}: {why}")
        if attempt == settings.attempts:
            tries = f"{settings.attempts} attempts" if settings.attempts > 1 else "1 attempt"
            raise PacsError(f"{address}: {why} (after {tries})")
        time.sleep(pause)
        pause *= 2
    try:
        yield assoc
    except BaseException:  # Ctrl-C or an error mid-transfer: abort, never wait for an orderly release
        if not assoc.is_aborted:
            assoc.abort()
        raise
    if assoc.is_established:
        assoc.release()
    elif not assoc.is_aborted:
        assoc.abort()


def dropped(assoc: Any, address: PacsAddress, what: str) -> PacsError | None:
    """A PacsError if the association died under a request (aborted, or the peer went away), else None."""
    if assoc.is_aborted or not assoc.is_established:
        return PacsError(f"{address}: the association was dropped during {what}")
    return None
