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
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from dicompose.errors import PacsError
from dicompose.pacs.address import PacsAddress

DEFAULT_AET = "DICOMPOSE"
#: Study Root Query/Retrieve information models (PS3.4 C.6.2) and the transfer syntaxes their requests travel in.
FIND = "1.2.840.10008.5.1.4.1.2.2.1"
MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
GET = "1.2.840.10008.5.1.4.1.2.2.3"
PLAIN = ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2")  # explicit and implicit VR little endian


@dataclass(frozen=True)
class NetworkSettings:
    """Our side of every association: the calling AE title, timeouts (seconds) and attempts."""

    aet: str = DEFAULT_AET
    timeout: float = 30.0  # connection, association, each DIMSE message and the network
    attempts: int = 3  # per association, for a PACS that is down or does not answer (never for a refusal)
    pause: float = 1.0  # before the second attempt; doubled each time


def quiet_pynetdicom() -> None:
    """pynetdicom logs every refusal and abort itself; we say each once, in our words."""
    logging.getLogger("pynetdicom").setLevel(logging.CRITICAL)


def _reachable(address: PacsAddress, timeout: float) -> str:
    """'' if something accepts TCP connections at the address, else why not (for the message)."""
    try:
        with socket.create_connection((address.host, address.port), timeout=timeout):
            return ""
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
    tls: Any = None,
) -> Iterator[Any]:
    """An established association (pynetdicom's) proposing ``contexts`` ((SOP class, transfer syntaxes)), or a
    :class:`PacsError`; released (or aborted) when the block ends."""
    from pynetdicom import AE, evt

    quiet_pynetdicom()
    ae = AE(ae_title=settings.aet)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = settings.timeout
    ae.connection_timeout = settings.timeout
    ae.maximum_associations = 1
    for sop_class, syntaxes in contexts:
        ae.add_requested_context(sop_class, list(syntaxes))
    refusal: dict[str, str] = {}

    def on_acse(event: Any) -> None:
        primitive: Any = getattr(event, "primitive", None)
        if getattr(primitive, "result", None) in (1, 2):
            refusal["reason"] = f"{primitive.reason_str} ({primitive.source_str.lower()})"

    every: list[Any] = [*handlers, (evt.EVT_ACSE_RECV, on_acse)]
    pause = settings.pause
    for attempt in range(1, settings.attempts + 1):
        refusal.clear()
        assoc = ae.associate(
            address.host,
            address.port,
            ae_title=address.called_aet,
            ext_neg=list(roles) or None,
            evt_handlers=every,
            tls_args=tls,
        )
        if assoc.is_established:
            break
        if assoc.is_rejected:
            reason = refusal.get("reason", "no reason given")
            raise PacsError(
                f"{address}: the PACS refused the association of {settings.aet} ({reason}); check --aet and the "
                "PACS's AE title, and that the PACS knows ours"
            )
        why = _reachable(address, settings.timeout) or "the association was aborted or timed out"
        if attempt == settings.attempts:
            tries = f"{settings.attempts} attempts" if settings.attempts > 1 else "1 attempt"
            raise PacsError(f"{address}: {why} (after {tries})")
        time.sleep(pause)
        pause *= 2
    try:
        yield assoc
    finally:
        if assoc.is_established:
            assoc.release()
        elif not assoc.is_aborted:
            assoc.abort()


def dropped(assoc: Any, address: PacsAddress, what: str) -> PacsError | None:
    """A PacsError if the association died under a request (aborted, or the peer went away), else None."""
    if assoc.is_aborted or not assoc.is_established:
        return PacsError(f"{address}: the association was dropped during {what}")
    return None
