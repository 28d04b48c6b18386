"""Charliecloud images for HPC sites: the pinned Docker image as a directory image, found by digest, verified.

``dicompose export-charliecloud TOOL`` converts the image the tool is pinned to (``ch-convert -i docker``, by a
temporary tag on the pinned image ID, so a moved tag never changes what is exported) into a folder of the
image folder (``--out``, ``DICOMPOSE_IMAGE_DIR``, default ``$DICOMPOSE_HOME/charliecloud``) named after the
digest. Charliecloud 0.31 can bind a host folder only onto a folder that already exists in the (read-only)
image, so the export makes the mount points a launch needs (``/dicompose/in``, ``/dicompose/out``,
``/dicompose/tasks``). It then writes a manifest of every file's sha256 and makes the folder read-only and
readable by all: :func:`verify_image` recomputes the hashes before use, so an edited image never runs
silently. The folder may be copied to a cluster without Docker as it is (or packed with ``ch-convert -o tar``).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dicompose.config import data_home
from dicompose.engines.hardening import INPUT_ROOT, OUTPUT_DIR, TASKS_ROOT
from dicompose.errors import UsageError
from dicompose.records.hashing import sha256_file

MANIFEST = "dicompose-image.json"
PINS = "pins.json"  # in the image folder: tool@descriptor → the export its last export-charliecloud pinned


def image_dir(given: Path | None = None) -> Path:
    """Where exported images live: ``given`` (``--out``/``--image-dir``), ``DICOMPOSE_IMAGE_DIR``, or the home's."""
    if given is not None:
        return given
    explicit = os.environ.get("DICOMPOSE_IMAGE_DIR")
    return Path(explicit) if explicit else data_home() / "charliecloud"


def image_folder(images: Path, digest: str) -> Path:
    return images / digest.replace(":", "-")


def mount_points() -> list[str]:
    """The folders a launch binds onto, relative to the image root (each launch binds a skeleton of its own
    mount points onto the input and task areas: see ``engines.chrun``)."""
    return [point.lstrip("/") for point in (OUTPUT_DIR, INPUT_ROOT, TASKS_ROOT)]


def manifest_of(root: Path) -> dict[str, Any]:
    """sha256 and mode of every regular file, the target of every link, and every folder, relative to
    ``root``. Modes are recorded as export leaves them (read-only for all, execute and set-id bits kept): a file
    made executable, or set-uid, after export is a changed image even if its bytes are the same."""
    files: dict[str, str] = {}
    modes: dict[str, str] = {}
    links: dict[str, str] = {}
    folders: list[str] = []
    for folder, dirnames, filenames in os.walk(root):
        base = Path(folder)
        for name in sorted(dirnames):
            path = base / name
            if path.is_symlink():
                links[path.relative_to(root).as_posix()] = str(path.readlink())
            else:
                folders.append(path.relative_to(root).as_posix())
        for name in sorted(filenames):
            path = base / name
            relative = path.relative_to(root).as_posix()
            if relative == MANIFEST:
                continue
            mode = os.lstat(path).st_mode
            if stat.S_ISLNK(mode):
                links[relative] = str(path.readlink())
            elif stat.S_ISREG(mode):
                files[relative] = sha256_file(path)
                modes[relative] = oct(stat.S_IMODE(_sealed(mode)))
    return {"files": files, "modes": modes, "links": links, "folders": sorted(folders)}


#: Mode bits a copy by an ordinary user drops (``cp -a``, ``tar x``, ``rsync -a`` without root): losing them
#: takes privileges away (and ``ch-run`` ignores them anyway: its user namespace mounts nothing set-id).
_SET_ID_BITS = stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX


def _same_or_safer(want: str, have: str) -> bool:
    """A file's mode as exported, or the same without its set-id bits."""
    exported, found = int(want, 8), int(have, 8)
    return found in (exported, exported & ~_SET_ID_BITS)


def verify_image(folder: Path) -> list[str]:
    """What differs from the manifest written at export (nothing: []), at most a few lines, each naming a path
    inside the image (the caller names the image folder once)."""
    try:
        recorded = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return [f"{folder}: no readable {MANIFEST} (export it with dicompose export-charliecloud)"]
    try:
        found = manifest_of(folder)
    except OSError as exc:
        return [f"{exc.filename or folder}: cannot be read ({exc.strerror}); an image folder must be readable by all"]
    problems = []
    for kind in ("files", "links", "modes"):  # manifests written before modes were recorded have none
        if kind not in recorded:
            continue
        want, have = recorded.get(kind, {}), found[kind]
        if kind == "modes":
            problems += [
                f"{name}: mode changed since export ({want[name]} -> {have[name]})"
                for name in sorted(want)
                if name in have and not _same_or_safer(want[name], have[name])
            ]
            continue  # a missing or added file is said once, under "files"
        problems += [
            f"{name}: changed since export" for name in sorted(want) if name in have and have[name] != want[name]
        ]
        problems += [f"{name}: missing" for name in sorted(set(want) - set(have))]
        problems += [f"{name}: added since export" for name in sorted(set(have) - set(want))]
    return problems[:5] + ([f"... and {len(problems) - 5} more"] if len(problems) > 5 else [])


def export_image(
    name: str,
    digest: str,
    images: Path,
    tag: Callable[[str, str], None],
    untag: Callable[[str], None],
    converter: str = "ch-convert",
) -> tuple[Path, bool]:
    """(the image folder, exported now?) for the Docker image ``digest`` (known as ``name``). ``tag(digest,
    reference)`` and ``untag(reference)`` give ``ch-convert`` a name for exactly that image, for the time it
    reads it. An existing, intact export is reused."""
    target = image_folder(images, digest)
    if target.is_dir() and not verify_image(target):
        return target, False
    if target.exists():
        raise UsageError(
            f"{target}: differs from its export ({'; '.join(verify_image(target))}); remove it to export again"
        )
    if shutil.which(converter) is None:
        raise UsageError(f"{converter} not found: install Charliecloud (Debian: charliecloud-builders)")
    images.mkdir(parents=True, exist_ok=True)
    partial = images / f".partial-{target.name}-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    reference = f"dicompose-export/{name.split('/')[-1].split(':')[0]}:{digest.split(':')[-1][:16]}"
    tag(digest, reference)
    try:
        proc = subprocess.run([converter, "-i", "docker", reference, str(partial)], capture_output=True, text=True)
    finally:
        untag(reference)
    if proc.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise UsageError(f"{converter} failed for {name} (exit {proc.returncode}): {tail[0]}")
    for point in mount_points():
        (partial / point).mkdir(parents=True, exist_ok=True)
    manifest = {"image": name, "digest": digest, **manifest_of(partial)}
    (partial / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
    _read_only_for_all(partial)
    partial.rename(target)
    return target, True


def _read_only_for_all(root: Path) -> None:
    """Nothing in the image may be written by its users (binds aside), and everything may be read by all: the
    folder is shared by a site's users, each verifies it before use, and ``ch-run`` runs as each of them."""
    for folder, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            path = Path(folder) / name
            if not path.is_symlink():
                _seal(path)
    _seal(root)


def _seal(path: Path) -> None:
    path.chmod(_sealed(path.stat().st_mode))


def _sealed(mode: int) -> int:
    """A path's mode once exported: no write bit, readable by all (and executable by all if by anyone)."""
    readable = 0o555 if stat.S_ISDIR(mode) or mode & 0o111 else 0o444
    return (stat.S_IMODE(mode) & ~0o222) | readable
