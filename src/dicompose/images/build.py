"""Building tool images with no registry: base from debootstrap, packages from the hash-locked wheelhouse."""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dicompose import __version__
from dicompose.config import cache_home
from dicompose.descriptors.descriptor import BUILTIN_TOOLS, Descriptor
from dicompose.errors import UsageError
from dicompose.images import wheelhouse
from dicompose.images.base import BaseImageRecipe, with_temporary_rootfs
from dicompose.images.definitions import ImageRecipe, apptainer_definition, dockerfile
from dicompose.images.docker_client import short
from dicompose.images.pins import record_pin

Report = Callable[[str], None]


@dataclass(frozen=True)
class BuildResult:
    image: str
    digest: str
    base: str
    seconds: float


def recipe_for(descriptor: Descriptor, base_image: str, lock_sha256: str) -> ImageRecipe:
    if descriptor.name not in BUILTIN_TOOLS:
        raise UsageError(
            f"{descriptor.source}: only built-in tools ({', '.join(BUILTIN_TOOLS)}) are built by dicompose; "
            "a user tool names its own image in container-image"
        )
    return ImageRecipe(
        tool=descriptor.name,
        tool_version=descriptor.version,
        description=str(descriptor.doc.get("description", "")),
        descriptor_digest=descriptor.digest,
        dicompose_version=__version__,
        lock_sha256=lock_sha256,
        base_image=base_image,
    )


def ensure_base_image(client: Any, recipe: BaseImageRecipe, *, rebuild: bool, report: Report) -> str:
    """The base image's ID, building it from Debian packages first if it is missing (or ``rebuild``)."""
    import docker.errors

    if not rebuild:
        try:
            return str(client.images.get(recipe.tag).id)
        except docker.errors.ImageNotFound:
            pass
    report(f"building base image {recipe.tag} from Debian {recipe.suite} packages (debootstrap)")
    workdir, tarball = with_temporary_rootfs(recipe)
    try:
        repository, tag = recipe.tag.split(":")
        client.api.import_image_from_file(str(tarball), repository=repository, tag=tag)
    finally:
        workdir.cleanup()
    return str(client.images.get(recipe.tag).id)


def build_tool_image(descriptor: Descriptor, client: Any, *, rebuild_base: bool = False, report: Report) -> BuildResult:
    import docker.errors

    started = time.perf_counter()
    base_id = ensure_base_image(client, BaseImageRecipe(), rebuild=rebuild_base, report=report)
    with tempfile.TemporaryDirectory(prefix="dicompose-build-") as tmp:
        context = Path(tmp)
        report("preparing the hash-locked wheelhouse")
        house = wheelhouse.prepare(context / "wheels", cache=cache_home() / "wheelhouse")
        recipe = recipe_for(descriptor, base_id, house.lock_sha256)
        (context / "Dockerfile").write_text(dockerfile(recipe))
        report(f"building {recipe.tag} (offline: --network none)")
        try:
            image, _logs = client.images.build(
                path=str(context), tag=recipe.tag, rm=True, forcerm=True, pull=False, network_mode="none"
            )
        except docker.errors.BuildError as exc:
            tail = " | ".join(str(line.get("stream", "")).strip() for line in list(exc.build_log)[-5:])
            raise UsageError(f"image build failed: {exc.msg} ({tail})") from None
        except docker.errors.APIError as exc:
            raise UsageError(f"image build failed: {short(exc)}") from None
    with contextlib.suppress(Exception):  # the install stage's image: ours (labelled), never needed again
        client.images.prune(filters={"dangling": True, "label": "org.dicompose.build-stage=install"})
    record_pin(descriptor.name, descriptor.digest, recipe.tag, str(image.id))
    return BuildResult(recipe.tag, str(image.id), base_id, time.perf_counter() - started)


def export_apptainer(descriptor: Descriptor, out_dir: Path) -> tuple[Path, Path]:
    """Write ``<tool>.def`` and the wheelhouse it installs from into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    house = wheelhouse.prepare(out_dir / "wheels", cache=cache_home() / "wheelhouse")
    recipe = recipe_for(descriptor, f"debian:{BaseImageRecipe().suite} (debootstrap)", house.lock_sha256)
    definition = out_dir / f"{descriptor.name}.def"
    definition.write_text(apptainer_definition(recipe))
    return definition, house.folder
