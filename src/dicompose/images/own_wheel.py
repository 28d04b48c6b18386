"""dicompose's own wheel for an image, from however this dicompose was installed.

* From a source checkout (a development or editable install): ``pip wheel`` of the checkout, without build
  isolation when this Python has the build backend (offline, as air-gapped sites need), else with it (pip
  fetches the backend from the machine's configured index).
* From a regular install (a wheel in site-packages, no source anywhere): the installed distribution packed
  back into a wheel, file for file as its RECORD lists them, with a new RECORD.

Where neither can work, one line says what to do.
"""

from __future__ import annotations

import base64
import csv
import email
import hashlib
import importlib.util
import io
import os
import subprocess
import sys
import zipfile
from importlib.metadata import Distribution, PackageNotFoundError, distribution
from pathlib import Path

from dicompose.errors import UsageError

#: Files an installer adds to a distribution's metadata: not part of the wheel it came from.
_INSTALLER_FILES = {"INSTALLER", "REQUESTED", "direct_url.json", "RECORD"}
BACKEND = ("setuptools", "wheel")


def own_wheel(dest: Path) -> Path:
    """Put a wheel of this dicompose in ``dest`` (replacing any older one there) and return it."""
    for old in dest.glob("dicompose-*.whl"):
        old.unlink()
    dest.mkdir(parents=True, exist_ok=True)
    source = source_checkout()
    if source is not None:
        return _build_from_source(source, dest)
    try:
        dist = distribution("dicompose")
    except PackageNotFoundError:
        raise UsageError(
            "cannot make the dicompose wheel for the image: no source checkout and no installed distribution; "
            "install dicompose with pip (from its source or a wheel) and build again"
        ) from None
    return repack(dist, dest)


def source_checkout() -> Path | None:
    """The source tree this dicompose runs from (editable install or checkout), or None (a regular install)."""
    from importlib.resources import files

    root = Path(str(files("dicompose"))).resolve().parents[1]
    if (root / "pyproject.toml").is_file() and (root / "src" / "dicompose").is_dir():
        return root
    return None


def wheel_argv(source: Path, dest: Path, *, isolated: bool) -> list[str]:
    argv = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--disable-pip-version-check"]
    return [*argv, *([] if isolated else ["--no-build-isolation"]), "-w", str(dest), str(source)]


def has_backend() -> bool:
    """This Python can build the wheel itself (no index needed)."""
    return all(importlib.util.find_spec(name) is not None for name in BACKEND)


def _build_from_source(source: Path, dest: Path) -> Path:
    isolated = not has_backend()
    env = {**os.environ, "PIP_FIND_LINKS": ""}  # never a machine-local wheel the lock does not know
    proc = subprocess.run(wheel_argv(source, dest, isolated=isolated), capture_output=True, text=True, env=env)
    wheels = sorted(dest.glob("dicompose-*.whl"))
    if proc.returncode == 0 and wheels:
        return wheels[0]
    last = next((line.strip() for line in reversed(proc.stderr.splitlines()) if line.strip()), "no output")
    if isolated:
        raise UsageError(
            f"cannot build the dicompose wheel from {source}: this Python lacks its build backend and pip could "
            f"not fetch it ({last[-200:]}); install it with: {sys.executable} -m pip install {' '.join(BACKEND)}"
        )
    raise UsageError(f"cannot build the dicompose wheel from {source}: {last[-300:]}")


def repack(dist: Distribution, dest: Path) -> Path:
    """The installed distribution as a wheel: the files its RECORD lists (minus the installer's and
    anything outside site-packages, such as console scripts, which the wheel's entry points recreate)."""
    info = _dist_info_name(dist)
    name, version = dist.metadata["Name"].replace("-", "_"), dist.version
    tags = email.message_from_string(dist.read_text("WHEEL") or "").get_all("Tag") or ["py3-none-any"]
    tag = str(tags[0]).strip()
    wheel = dest / f"{name}-{version}-{tag}.whl"
    tops = {*(dist.read_text("top_level.txt") or "dicompose").split(), info}
    records: list[tuple[str, str, str]] = []
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(dist.files or [], key=str):
            path = str(file)
            if path.split("/", 1)[0] not in tops or "__pycache__" in path or path.endswith(".pyc"):
                continue
            if path.startswith(f"{info}/") and path.split("/", 1)[1] in _INSTALLER_FILES:
                continue
            data = Path(str(file.locate())).read_bytes()
            archive.writestr(path, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            records.append((path, f"sha256={digest}", str(len(data))))
        table = io.StringIO()
        csv.writer(table, lineterminator="\n").writerows([*records, (f"{info}/RECORD", "", "")])
        archive.writestr(f"{info}/RECORD", table.getvalue())
    return wheel


def _dist_info_name(dist: Distribution) -> str:
    for file in dist.files or []:
        if str(file).endswith(".dist-info/METADATA"):
            return str(file).split("/", 1)[0]
    raise UsageError(f"cannot repack dicompose {dist.version}: its installed metadata lists no METADATA file")
