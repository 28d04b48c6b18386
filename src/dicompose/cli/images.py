"""``dicompose build``, ``base-image`` and ``export-apptainer``: images without a registry."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Annotated

import typer

from dicompose.cli.console import emit_json, fail, stderr, stdout
from dicompose.errors import UsageError
from dicompose.images.base import BaseImageRecipe


def _say(message: str) -> None:
    stderr.print(f"[dim]{message}[/]")


def build(
    tool: Annotated[str, typer.Argument(help="Built-in tool name (e.g. normalize).")],
    as_json: Annotated[bool, typer.Option("--json", help='Print {"image": ..., "digest": ...}.')] = False,
    rebuild_base: Annotated[bool, typer.Option("--rebuild-base", help="Rebuild the Debian base image first.")] = False,
) -> None:
    """Build the tool's container image offline and pin it by digest for `dicompose run`."""
    from dicompose.descriptors.descriptor import load_descriptor
    from dicompose.images.build import build_tool_image
    from dicompose.images.docker_client import connect

    result = build_tool_image(load_descriptor(tool), connect(), rebuild_base=rebuild_base, report=_say)
    if as_json:
        emit_json("dicompose.build/1", {"image": result.image, "digest": result.digest})
    else:
        stdout.print(f"{result.image} {result.digest} (built in {result.seconds:.0f} s, base {result.base[:19]})")


def base_image(
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Rebuild even if the image exists.")] = False,
    suite: Annotated[str, typer.Option("--suite", help="Debian release.")] = BaseImageRecipe().suite,
    mirror: Annotated[str, typer.Option("--mirror", help="Debian mirror (a local one for air-gapped sites).")] = (
        BaseImageRecipe().mirror
    ),
) -> None:
    """Build the minimal base image from Debian's signed packages (debootstrap): no registry needed."""
    from dicompose.images.build import ensure_base_image
    from dicompose.images.docker_client import connect

    recipe = BaseImageRecipe(suite=suite, mirror=mirror)
    image_id = ensure_base_image(connect(), recipe, rebuild=rebuild, report=_say)
    stdout.print(f"{recipe.tag} {image_id}")


def export_apptainer_command(
    tool: Annotated[str, typer.Argument(help="Built-in tool name.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the .def, its wheelhouse and the .sif.")] = Path(
        "apptainer"
    ),
    build_sif: Annotated[bool, typer.Option("--build/--no-build", help="Build the .sif if apptainer exists.")] = True,
) -> None:
    """Write an Apptainer/Singularity definition (and build a .sif where apptainer is installed)."""
    from dicompose.descriptors.descriptor import load_descriptor
    from dicompose.images.build import export_apptainer

    definition, wheels = export_apptainer(load_descriptor(tool), out)
    stdout.print(f"definition: {definition}\nwheelhouse: {wheels}")
    executable = shutil.which("apptainer") or shutil.which("singularity")
    if not build_sif:
        return
    if executable is None:
        stdout.print(
            "apptainer/singularity not found here: build on the HPC site with "
            f"`apptainer build {definition.stem}.sif {definition.name}` (run inside {out})"
        )
        return
    sif = out / f"{definition.stem}.sif"
    proc = subprocess.run([executable, "build", "--force", sif.name, definition.name], cwd=out, check=False)
    if proc.returncode != 0:
        fail(UsageError(f"{executable} build failed (exit {proc.returncode})"))
    stdout.print(f"image: {sif}")


def export_charliecloud_command(
    tool: Annotated[str, typer.Argument(help="Built-in tool name or descriptor (its image must be pinned).")],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Image folder (default: $DICOMPOSE_IMAGE_DIR, the configuration's image_dir, else "
            "$DICOMPOSE_HOME/charliecloud).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable.")] = False,
) -> None:
    """Export the tool's pinned image as a Charliecloud directory image, verified by a manifest of hashes."""
    from dicompose.config import use_image_dir
    from dicompose.descriptors.descriptor import load_descriptor
    from dicompose.engines.charliecloud import PINS, export_image, image_dir
    from dicompose.engines.chrun import image_pin
    from dicompose.images.docker_client import connect
    from dicompose.images.pins import pinned, record_pin

    use_image_dir(out)
    descriptor = load_descriptor(tool)
    pin = pinned(descriptor.name, descriptor.digest)
    if pin is None:
        fail(UsageError(f"{tool}: no pinned image for this descriptor; build it first (dicompose build {tool})"))
    client = connect()

    def tag(digest: str, reference: str) -> None:
        repository, _sep, label = reference.rpartition(":")
        client.images.get(digest).tag(repository, label)

    def untag(reference: str) -> None:
        client.images.remove(reference)

    images = image_dir(out)
    folder, fresh = export_image(pin["image"], pin["digest"], images, tag, untag)
    record_pin(descriptor.name, descriptor.digest, pin["image"], pin["digest"], images / PINS)
    record_pin(image_pin(pin["image"]), "", pin["image"], pin["digest"], images / PINS)  # for other descriptors
    if as_json:
        emit_json(
            "dicompose.export-charliecloud/1",
            {"image": pin["image"], "digest": pin["digest"], "folder": str(folder), "exported": fresh},
        )
        return
    stdout.print(f"{pin['image']} {pin['digest']}: {'exported to' if fresh else 'already in'} {folder}")
