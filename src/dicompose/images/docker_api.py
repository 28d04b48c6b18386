"""Read-only questions to the Docker engine over its UNIX socket, with the standard library only.

Why not the SDK here: importing it (requests, urllib3) costs ~0.2 s, a quarter of a no-op rerun's budget on
docker, and a rerun with nothing to launch only asks whether the engine answers, which image a name or pin
is, and which containers dead runs left. Everything that changes the engine (create, start, remove, build)
goes through the Docker SDK (``docker_client.connect``). Engines reached over TCP/TLS use the SDK throughout.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
from typing import Any
from urllib.parse import quote, urlencode

_DEFAULT_SOCKET = "/var/run/docker.sock"


class EngineUnavailableError(OSError):
    """The engine did not answer (no socket, refused, timed out, or an error status)."""


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.socket_path)
        self.sock = sock


def unix_socket() -> str | None:
    """The engine's UNIX socket from ``DOCKER_HOST`` (default ``/var/run/docker.sock``); None for TCP/SSH."""
    host = os.environ.get("DOCKER_HOST", "")
    if not host:
        return _DEFAULT_SOCKET
    if host.startswith("unix://"):
        return host.removeprefix("unix://")
    return None


class DockerAPI:
    """``get`` answers JSON, or None for 404; any other failure is :class:`EngineUnavailableError`."""

    def __init__(self, socket_path: str, timeout: float = 10.0) -> None:
        self.socket_path, self.timeout = socket_path, timeout

    def get(self, path: str, query: dict[str, str] | None = None) -> Any:
        url = quote(path, safe="/:@") + (f"?{urlencode(query)}" if query else "")
        connection = _UnixConnection(self.socket_path, self.timeout)
        try:
            connection.request("GET", url)
            response = connection.getresponse()
            body = response.read()
        except OSError as exc:
            raise EngineUnavailableError(f"{self.socket_path}: {exc.strerror or exc}") from None
        finally:
            connection.close()
        if response.status == 404:
            return None
        if response.status >= 400:
            raise EngineUnavailableError(f"{response.status} {body.decode(errors='replace').strip()[:200]}")
        return json.loads(body)

    def version(self) -> str:
        return str((self.get("/version") or {}).get("Version", "?"))

    def image(self, name: str) -> dict[str, Any] | None:
        """``docker image inspect NAME`` (a name, tag, or ID), or None if the engine has no such image."""
        found = self.get(f"/images/{name}/json")
        return found if isinstance(found, dict) else None

    def containers(self, label: str) -> list[dict[str, Any]]:
        """Every container (running or not) carrying ``label`` (``key=value``)."""
        found = self.get("/containers/json", {"all": "1", "filters": json.dumps({"label": [label]})})
        return found if isinstance(found, list) else []
