"""A hash-locked wheelhouse, prepared on the host, from which images install Python packages offline.

Containers here cannot reach the package index (and air-gapped sites have none), so wheels are downloaded on
the host, every one checked against the lock's sha256, and images install with ``--no-index
--require-hashes``. The same wheelhouse feeds the Dockerfile and the Apptainer definition.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from dicompose.errors import UsageError
from dicompose.images.own_wheel import own_wheel

#: Python of the Debian bookworm base image.
TARGET_PYTHON = "3.11"
_GLIBC_MINORS = (5, 12, 17, 24, 27, 28, 31, 34, 35, 36)  # bookworm has glibc 2.36


@dataclass(frozen=True)
class Wheelhouse:
    folder: Path
    requirements: Path  # hash-pinned requirements, dicompose's own wheel included
    lock_sha256: str


def runtime_lock() -> Path:
    return Path(str(files("dicompose.images") / "runtime.lock"))


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def platform_tags(machine: str | None = None) -> list[str]:
    arch = machine or platform.machine()
    return [f"manylinux_2_{minor}_{arch}" for minor in _GLIBC_MINORS] + [f"manylinux2014_{arch}"]


def download_argv(lock: Path, dest: Path, python: str = TARGET_PYTHON) -> list[str]:
    """``pip download`` of exactly the locked wheels for the image's Python and platform (hash-checked)."""
    abi = "cp" + python.replace(".", "")
    argv = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check"]
    argv += ["--only-binary=:all:", "--no-deps", "--require-hashes", "--python-version", python]
    argv += ["--implementation", "cp", "--abi", abi, "--abi", "abi3", "--abi", "none"]
    for tag in platform_tags():
        argv += ["--platform", tag]
    return [*argv, "-r", str(lock), "-d", str(dest)]


def _pip_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PIP_FIND_LINKS"] = ""  # never take a machine-local wheel the lock does not know
    return env


def prepare(dest: Path, cache: Path | None = None) -> Wheelhouse:
    """Fill ``dest`` with the locked wheels (via a cache keyed by the lock's hash) and dicompose's wheel."""
    lock = runtime_lock()
    lock_sha = sha256_file(lock)
    dest.mkdir(parents=True, exist_ok=True)
    source = cache / lock_sha[:16] if cache is not None else dest
    if cache is None or not (source / ".complete").exists():
        source.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(download_argv(lock, source), capture_output=True, text=True, check=False, env=_pip_env())
        if proc.returncode != 0:
            lines = [line for line in proc.stderr.splitlines() if "is ignored" not in line]
            raise UsageError(f"cannot prepare the wheelhouse: {' '.join(lines)[-400:]}")
        (source / ".complete").write_text(lock_sha)
    if source != dest:
        for wheel in source.glob("*.whl"):
            shutil.copy2(wheel, dest / wheel.name)
    own = own_wheel(dest)
    requirements = dest / "requirements.txt"
    requirements.write_text(
        lock.read_text() + f"\ndicompose @ file:///wheels/{own.name} \\\n    --hash=sha256:{sha256_file(own)}\n"
    )
    return Wheelhouse(dest, requirements, lock_sha)
