"""The ``charliecloud`` engine: each launch under ``ch-run``, as the calling user, from a verified image folder.

HPC sites run unprivileged containers without a daemon. ``ch-run`` (Charliecloud 0.31) gives us a read-only
image, a cleared environment (``--unset-env='*'``, then the image's own with ``--set-env``), a private /tmp and
only the binds we name; it runs as the caller, with no capabilities and no new privileges. What it does not
give, :mod:`dicompose.engines.confine` adds before it starts: the inputs re-mounted read-only and no network.
What neither can enforce without a privileged helper (cgroup limits, device isolation) is said in
:data:`NOT_ENFORCED`, in ``--dry-run``, the run record and docs/hpc.md; a SLURM job's own cgroup may enforce
memory and cores.

Charliecloud binds a host path only onto a path that exists in the image. The image has ``/dicompose/in``,
``/dicompose/out`` and ``/dicompose/tasks``; each launch binds a small host *skeleton* onto the first and the
last (folders and empty files at exactly the targets it needs), then each input and output onto it. So a launch
may have any number of input folders and tasks, and single files (a key) are bound as that one file.

As root, ``ch-run`` would keep every capability: the engine refuses root (use docker, or an ordinary account).
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from dicompose.config import data_home
from dicompose.engines.base import EngineInfo, ImageRef, RunResult, TaskSpec
from dicompose.engines.charliecloud import MANIFEST, PINS, image_dir, image_folder, verify_image
from dicompose.engines.hardening import INPUT_ROOT, LABEL_PREFIX, OUTPUT_DIR, TASKS_ROOT, gpu_environment
from dicompose.engines.process import Children, run_process
from dicompose.errors import UnpinnedImageError, UsageError
from dicompose.images.pins import pinned
from dicompose.notes import note

CONFINE = Path(__file__).with_name("confine.py")
#: Parts of the hardening policy this engine leaves to the site (the SLURM job's cgroup, the node's setup).
NOT_ENFORCED = (
    "memory limit",
    "pids limit",
    "CPU limit",
    "/tmp size limit",  # noqa: S108 - a name, not a path
    "device isolation (host /dev)",
    "process isolation (host processes visible)",
)
#: The image's bind areas: a launch's skeleton is bound onto each, its mounts under them.
AREAS = (INPUT_ROOT, TASKS_ROOT)


@dataclass(frozen=True)
class Layout:
    """The host side of a launch's binds (pure data; :func:`make_skeleton` creates it)."""

    skeleton: Path
    binds: list[tuple[str, str]] = field(default_factory=list)  # (host, container), in order
    folders: list[str] = field(default_factory=list)  # skeleton-relative mount points
    files: list[str] = field(default_factory=list)  # skeleton-relative empty files (single-file binds)
    aliases: dict[str, str] = field(default_factory=dict)  # skeleton-relative link → host path (a ':' in it)
    read_only: list[str] = field(default_factory=list)
    writable: list[str] = field(default_factory=list)


def layout(spec: TaskSpec, skeleton: Path) -> Layout:
    """Every bind of ``spec`` and where it lands (reads only whether each source is a file)."""
    plan = Layout(skeleton)
    areas = sorted({area for m in spec.mounts for area in AREAS if m.target.startswith(area + "/")})
    for area in areas:
        name = area.rsplit("/", 1)[-1]
        plan.binds.append((str(skeleton / name), area))
        plan.folders.append(name)
    for mount in spec.mounts:
        if not any(mount.target.startswith(a + "/") for a in areas):
            raise UsageError(f"the charliecloud engine cannot bind at {mount.target} (only under {', '.join(AREAS)})")
        relative = mount.target[len("/dicompose/") :]
        (plan.files if mount.source.is_file() else plan.folders).append(relative)
        plan.binds.append((_bindable(plan, mount.source), mount.target))
        (plan.read_only if mount.read_only else plan.writable).append(str(mount.source))
    plan.binds.append((_bindable(plan, spec.workdir), OUTPUT_DIR))
    (plan.read_only if spec.workdir_read_only else plan.writable).append(str(spec.workdir))
    if areas:
        plan.read_only.append(str(skeleton))
    return plan


def _bindable(plan: Layout, source: Path) -> str:
    """``ch-run -b`` splits SRC:DST at a colon: a source with one is bound through a link in the skeleton."""
    if ":" not in str(source):
        return str(source)
    relative = f"alias/{len(plan.aliases)}"
    plan.aliases[relative] = str(source)
    return str(plan.skeleton / relative)


def make_skeleton(plan: Layout) -> None:
    for relative in plan.folders:
        (plan.skeleton / relative).mkdir(parents=True, exist_ok=True)
    for relative in plan.files:
        (plan.skeleton / relative).parent.mkdir(parents=True, exist_ok=True)
        (plan.skeleton / relative).touch()
    for relative, target in plan.aliases.items():
        (plan.skeleton / relative).parent.mkdir(parents=True, exist_ok=True)
        (plan.skeleton / relative).symlink_to(target)


def chrun_argv(
    spec: TaskSpec,
    folder: Path,
    skeleton: Path,
    *,
    ch_run: str = "ch-run",
    python: str = sys.executable,
    environ: dict[str, str] | None = None,
) -> list[str]:
    """The exact command of a launch: the confinement launcher, then ``ch-run`` (pure but for folder checks)."""
    plan = layout(spec, skeleton)
    argv = [python, "-I", "-S", str(CONFINE)]
    for path in plan.read_only:
        argv += ["--ro", path]
    for path in plan.writable:
        argv += ["--rw", path]
    if spec.permissions.network:
        argv.append("--net")
    argv += ["--", ch_run, "--unset-env=*", "--set-env", "--env-no-expand", "--private-tmp"]
    environment = dict(spec.environment)
    if spec.permissions.gpu:
        environment.update(gpu_environment(os.environ if environ is None else environ))
    for key, value in sorted(environment.items()):
        argv.append(f"--set-env={key}={value}")
    for host, container in plan.binds:
        argv += ["-b", f"{host}:{container}"]
    argv += ["-c", OUTPUT_DIR, str(folder), "--", *spec.argv]
    return argv


def _manifest(folder: Path) -> dict[str, object]:
    try:
        recorded = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}
    return recorded if isinstance(recorded, dict) else {}


def image_pin(name: str) -> str:
    """The key under which an image folder's pins name the last export of image ``name`` (any tool using it)."""
    return f"image:{name}"


def exported(images: Path, name: str) -> list[tuple[str, Path]]:
    """(digest, folder) of every export of image ``name`` in ``images``."""
    found = []
    for manifest in sorted(images.glob(f"sha256-*/{MANIFEST}")) if images.is_dir() else []:
        try:
            recorded = json.loads(manifest.read_text())
        except (OSError, ValueError):
            continue
        if recorded.get("image") == name and image_folder(images, str(recorded.get("digest"))) == manifest.parent:
            found.append((str(recorded["digest"]), manifest.parent))
    return found


def fingerprint(folder: Path) -> str:
    """What changes whenever any file of ``folder`` does: inode, size, mode, mtime and ctime of every entry (no
    one can set a ctime back), so a verified image need not be hashed again until something in it changed."""
    digest = hashlib.sha256()
    for base, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for name in sorted([*dirnames, *filenames]):
            path = f"{base}/{name}"
            info = os.lstat(path)
            line = f"{path}\0{info.st_ino}\0{info.st_size}\0{info.st_mode}\0{info.st_mtime_ns}\0{info.st_ctime_ns}\n"
            digest.update(line.encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def verify_cached(folder: Path) -> list[str]:
    """:func:`verify_image`, skipped when nothing in the folder changed since it last passed (per user)."""
    record = data_home() / "cache" / "charliecloud-verified" / f"{folder.name}.json"
    current = fingerprint(folder)
    try:
        if json.loads(record.read_text()) == {"folder": str(folder), "fingerprint": current}:
            return []
    except (OSError, ValueError):
        pass
    note(
        f"verifying image {folder.name[:19]} file by file (its first use by this account, or it changed: up to "
        "a minute)"
    )
    problems = verify_image(folder)
    if not problems:
        record.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=record.parent, prefix=".verified.")
        with os.fdopen(fd, "w") as fh:
            json.dump({"folder": str(folder), "fingerprint": current}, fh)
        Path(tmp).replace(record)
    return problems


class CharliecloudEngine:
    name = "charliecloud"
    isolates = True

    def __init__(self) -> None:
        self.ch_run = shutil.which("ch-run")
        self.children = Children()
        self._info: EngineInfo | None = None

    def not_enforced(self) -> tuple[str, ...]:
        return NOT_ENFORCED

    def site_pin(self, tool: str, descriptor_digest: str) -> str | None:
        """What ``export-charliecloud`` last pinned the tool to in the image folder (``PINS``): the site's
        choice among the exports there, made where the images were built."""
        record = pinned(tool, descriptor_digest, image_dir() / PINS)
        return record["digest"] if record else None

    def info(self) -> EngineInfo:
        if self._info is None:
            self._info = self._probe()
        return self._info

    def _probe(self) -> EngineInfo:
        if self.ch_run is None:
            return EngineInfo(self.name, False, None, "ch-run is not on PATH (Debian: charliecloud-runtime)")
        if os.getuid() == 0:
            why = "ch-run runs steps as the calling user, and as root they would keep every capability: run as an "
            why += "ordinary user"
            return EngineInfo(self.name, False, None, why)
        proc = subprocess.run(
            [self.ch_run, "--version"], capture_output=True, text=True, check=False, env=self._environment()
        )
        version = (proc.stdout + proc.stderr).strip()
        if proc.returncode != 0:
            return EngineInfo(self.name, False, None, f"ch-run --version failed: {version or proc.returncode}")
        return EngineInfo(self.name, True, f"charliecloud {version}")

    @staticmethod
    def _environment() -> dict[str, str]:
        """ch-run's own environment (the step's is set from the image): it needs $USER."""
        return {"USER": os.environ.get("USER") or getpass.getuser(), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}

    def resolve_image(
        self, name: str, pin: str | None, *, allow_unpinned: bool, hint: str, tool: str = "TOOL"
    ) -> tuple[ImageRef, bool]:
        """The exported image of ``pin`` (or the image folder's pin of ``name``, or its one export), verified.

        An export found by name alone, with no pin anywhere, is unpinned (as a Docker tag is): refused unless
        ``allow_unpinned``."""
        images = image_dir()
        export = (
            f"export it where Docker has the image, dicompose export-charliecloud {tool} --out {images} (or into a "
            "folder copied there: docs/hpc.md)"
        )
        if not images.is_dir():
            by = os.environ.get("DICOMPOSE_IMAGE_DIR_FROM") or "DICOMPOSE_IMAGE_DIR"
            named = (
                f"named by {by}"
                if os.environ.get("DICOMPOSE_IMAGE_DIR")
                else "the default; name the site's with --image-dir, DICOMPOSE_IMAGE_DIR or image_dir in a "
                "configuration file, or ask whoever keeps it"
            )
            if images.exists():
                raise UsageError(f"image folder {images} ({named}): not a folder (the folder that holds the exports)")
            raise UsageError(f"image folder {images} ({named}): no such folder; {export}")
        if not os.access(images, os.R_OK | os.X_OK):
            raise UsageError(f"image folder {images}: not readable by {getpass.getuser()}")
        is_pinned = True
        if pin:
            folder = image_folder(images, pin)
            if not (folder / MANIFEST).is_file():
                raise UsageError(f"pinned image {pin[:19]} ({name}) is not in the image folder {images} ({export})")
            digest = pin
        else:
            found = exported(images, name)
            if not found:
                raise UsageError(f"image {name} is not in the image folder {images} ({export})")
            chosen = pinned(image_pin(name), "", images / PINS)  # the image's last export, for other tools
            if chosen is not None:
                found = [(d, f) for d, f in found if d == chosen["digest"]] or found
            if len(found) > 1:
                digests = ", ".join(d[:19] for d, _ in found)
                raise UsageError(
                    f"{images} holds {len(found)} exports of {name} ({digests}) and none is pinned: export the one "
                    "to run again (dicompose export-charliecloud pins it there), or set the descriptor's "
                    "container-hash"
                )
            digest, folder = found[0]
            is_pinned = chosen is not None and chosen["digest"] == digest
            if not is_pinned and not allow_unpinned:
                raise UnpinnedImageError(
                    name,
                    f"the image folder has no pin for it in {PINS}: exporting it again pins it, where Docker has "
                    f"the image (dicompose export-charliecloud {tool} --out {images}; ask whoever keeps the folder)",
                )
        recorded = _manifest(folder)
        if recorded.get("image") != name or recorded.get("digest") != digest:
            raise UsageError(
                f"{folder}: holds {recorded.get('image')} ({str(recorded.get('digest'))[:19]}), not {name} "
                f"({digest[:19]}): check the pins in {images / PINS}"
            )
        problems = verify_cached(folder)
        if problems:
            raise UsageError(f"{folder}: differs from its export, refusing to run it ({'; '.join(problems)})")
        return ImageRef(name, digest, str(folder)), is_pinned

    def has_image(self, image: ImageRef) -> bool:
        """The export of this digest is in the image folder and intact (a rerun runs nothing else): absent is
        False; present but edited is a UsageError naming what changed."""
        folder = self._folder(image)
        if not (folder / MANIFEST).is_file():
            return False
        if problems := verify_cached(folder):
            raise UsageError(f"{folder}: differs from its export, refusing to run it ({'; '.join(problems)})")
        return True

    def cleanup(self, run_id: str | None = None) -> int:
        """Stop a run's steps; a killed run's died with it (PR_SET_PDEATHSIG)."""
        return self.children.stop(run_id) if run_id is not None else 0

    @staticmethod
    def _folder(image: ImageRef) -> Path:
        return Path(image.location) if image.location else image_folder(image_dir(), image.digest)

    def _skeleton(self, spec: TaskSpec) -> Path:
        """Where the launch's skeleton goes: its scratch folder in the workspace, unless that path has a colon
        (``ch-run -b`` would split it, and every bind comes from the skeleton): then the temp folder."""
        if spec.scratch is not None and ":" not in str(spec.scratch):
            return spec.scratch / "charliecloud"
        launch = spec.labels.get(f"{LABEL_PREFIX}.task", "launch")
        return Path(tempfile.gettempdir()) / f"dicompose-ch-{os.getpid()}-{launch}"

    def command(self, spec: TaskSpec) -> list[str]:
        if spec.image is None:
            raise UsageError("the charliecloud engine needs an image")
        return chrun_argv(spec, self._folder(spec.image), self._skeleton(spec), ch_run=self.ch_run or "ch-run")

    def run(self, spec: TaskSpec) -> RunResult:
        argv = self.command(spec)
        skeleton = self._skeleton(spec)
        if skeleton.exists():
            shutil.rmtree(skeleton)
        make_skeleton(layout(spec, skeleton))
        try:
            return run_process(
                argv,
                engine=self.name,
                env=self._environment(),
                timeout=spec.resources.timeout_s,
                image_digest=spec.image.digest if spec.image else None,
                children=self.children,
                run=spec.labels.get(f"{LABEL_PREFIX}.run", ""),
            )
        finally:
            shutil.rmtree(skeleton, ignore_errors=True)
