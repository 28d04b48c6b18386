"""Forwarding the audit log, as it is written, to a hospital's log collector: RFC 5424 syslog messages.

Where: ``DICOMPOSE_AUDIT_FORWARD`` or the configuration's ``[audit] forward``: ``udp://HOST:PORT``,
``tcp://HOST:PORT`` (RFC 6587 octet-counting frames) or ``unix:///dev/log`` (a local syslog socket, datagram or
stream). Each entry is one message, facility authpriv, severity notice, app ``dicompose``, message id the entry's
action, and the entry itself (already pseudonymised, with its sequence number and hash) as the message: a
collector can check the chain as the local log can. The local log stays the record: an entry is forwarded after
it is written and synced, and a collector that does not answer costs one warning line, never an entry.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from dicompose.errors import UsageError

PRI = 10 * 8 + 5  # facility authpriv (10), severity notice (5)
APP = "dicompose"
_warned: set[str] = set()


def forward_target() -> str | None:
    from dicompose.config import configured

    given = os.environ.get("DICOMPOSE_AUDIT_FORWARD") or configured("audit", "forward", None, None)
    if not given:
        return None
    try:
        check_target(str(given))
    except UsageError as exc:  # said before anything is done, not as a late warning
        raise UsageError(f"DICOMPOSE_AUDIT_FORWARD or [audit] forward: {exc}") from None
    return str(given)


def check_target(target: str) -> tuple[str, Any]:
    """(transport, address) of a forward target, or a UsageError naming it."""
    parts = urlsplit(target)
    if parts.scheme == "unix" and parts.path:
        return "unix", parts.path
    if parts.scheme in ("udp", "tcp"):
        try:
            port = parts.port
        except ValueError:  # out of range
            port = None
        if parts.hostname and port:
            return parts.scheme, (parts.hostname, port)
    raise UsageError(f"audit forward {target!r}: expected udp://HOST:PORT, tcp://HOST:PORT or unix:///PATH")


def message(entry: Mapping[str, Any], line: bytes, host: str | None = None) -> bytes:
    """One RFC 5424 message for an audit entry (``line``: the entry as the local log holds it)."""
    stamp = str(entry.get("time") or datetime.now(UTC).isoformat(timespec="microseconds"))
    name = (host or socket.gethostname()).split(".")[0][:255] or "-"
    action = str(entry.get("action", "-"))[:32]
    header = f"<{PRI}>1 {stamp.replace('+00:00', 'Z')} {name} {APP} {os.getpid()} {action} - "
    return header.encode() + line.rstrip(b"\n")


def forward(target: str, entries: Sequence[Mapping[str, Any]], lines: Sequence[bytes]) -> None:
    """Send each entry to the collector; a failure is one warning (per target and process), never an error."""
    try:
        transport, address = check_target(target)
        payloads = [message(entry, line) for entry, line in zip(entries, lines, strict=True)]
        if transport == "udp":
            with socket.socket(socket.AF_INET6 if ":" in address[0] else socket.AF_INET, socket.SOCK_DGRAM) as sock:
                for payload in payloads:
                    sock.sendto(payload, address)
        elif transport == "tcp":
            with socket.create_connection(address, timeout=5) as sock:
                sock.sendall(b"".join(str(len(p)).encode() + b" " + p for p in payloads))
        else:
            _send_unix(address, payloads)
    except (OSError, UsageError) as exc:
        if target not in _warned:
            _warned.add(target)
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            sys.stderr.write(f"warning: audit entries not forwarded to {target} ({why}); the local log has them\n")


def _send_unix(path: str, payloads: list[bytes]) -> None:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(path)
            for payload in payloads:
                sock.send(payload)
    except OSError as exc:
        if exc.errno != 91:  # EPROTOTYPE: a stream socket (rsyslog's imuxsock is datagram; some are not)
            raise
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(path)
            sock.sendall(b"".join(str(len(p)).encode() + b" " + p for p in payloads))
