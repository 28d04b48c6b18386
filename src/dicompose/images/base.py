"""A minimal base image built from Debian's signed packages with debootstrap: no registry needed.

Air-gapped hospitals (and this project's CI) cannot pull images; the paper's advice is to "build the container
from scratch in order to have full control". debootstrap verifies the Release file signatures with the
Debian archive keyring, so every package is as trusted as the host's own apt.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from dicompose.errors import UsageError

BASE_IMAGE = "dicompose/base"
DEFAULT_SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
#: What every tool image needs: Python with venv (pip comes from ensurepip's bundled wheel).
BASE_PACKAGES = ("python3", "python3-venv", "tini")


@dataclass(frozen=True)
class BaseImageRecipe:
    suite: str = DEFAULT_SUITE
    mirror: str = DEFAULT_MIRROR
    packages: tuple[str, ...] = BASE_PACKAGES

    @property
    def tag(self) -> str:
        return f"{BASE_IMAGE}:{self.suite}"


def debootstrap_argv(recipe: BaseImageRecipe, rootfs: Path) -> list[str]:
    """The debootstrap command (an argv list: no shell, values never interpreted)."""
    return [
        "debootstrap",
        "--variant=minbase",
        f"--include={','.join(recipe.packages)}",
        recipe.suite,
        str(rootfs),
        recipe.mirror,
    ]


def build_rootfs(recipe: BaseImageRecipe, workdir: Path) -> Path:
    """Run debootstrap into ``workdir/rootfs`` and trim caches; returns the rootfs path."""
    if shutil.which("debootstrap") is None:
        raise UsageError("debootstrap is not installed (Debian/Ubuntu: apt-get install debootstrap)")
    rootfs = workdir / "rootfs"
    proc = subprocess.run(debootstrap_argv(recipe, rootfs), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = " ".join(proc.stderr.strip().splitlines()[-3:])
        raise UsageError(f"debootstrap failed (exit {proc.returncode}): {tail}")
    for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
        target = rootfs / cache
        if target.is_dir():
            for child in target.iterdir():
                if child.is_file():
                    child.unlink()
    return rootfs


def rootfs_tarball(rootfs: Path, destination: Path) -> Path:
    """A tar of the rootfs with numeric owners, as ``docker import`` expects."""
    proc = subprocess.run(
        [shutil.which("tar") or "/bin/tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(destination), "."],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise UsageError(f"cannot pack the base rootfs: {proc.stderr.strip()[:200]}")
    return destination


def with_temporary_rootfs(recipe: BaseImageRecipe) -> tuple[tempfile.TemporaryDirectory[str], Path]:
    """A temp workdir holding the packed rootfs (caller imports it, then cleans the workdir)."""
    workdir = tempfile.TemporaryDirectory(prefix="dicompose-base-")
    path = Path(workdir.name)
    rootfs = build_rootfs(recipe, path)
    tarball = rootfs_tarball(rootfs, path / "rootfs.tar")
    shutil.rmtree(rootfs, ignore_errors=True)
    return workdir, tarball
