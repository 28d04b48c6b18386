"""Connecting to the Docker engine (shared by image builds and the docker engine)."""

from __future__ import annotations

from typing import Any

from dicompose.errors import UsageError


def connect() -> Any:
    """A Docker client negotiating the API version with whatever engine answers (20.10 in Debian 12)."""
    import docker

    try:
        client = docker.from_env(version="auto", timeout=300)
        client.ping()
    except Exception as exc:  # DockerException, requests errors, FileNotFoundError on the socket...
        raise UsageError(f"the Docker engine does not answer ({short(exc)})") from None
    return client


def short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."
