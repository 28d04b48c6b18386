"""Which image each step runs, by digest, and the image part of cache keys."""

from __future__ import annotations

from dicompose import __version__
from dicompose.descriptors.descriptor import BUILTIN_TOOLS, Descriptor
from dicompose.engines.base import Engine, ImageRef
from dicompose.errors import UsageError
from dicompose.images.pins import pinned
from dicompose.images.wheelhouse import runtime_lock, sha256_file


def resolve_step_image(descriptor: Descriptor, engine: Engine, allow_unpinned: bool) -> tuple[ImageRef | None, bool]:
    if not engine.isolates:
        return None, False
    container = descriptor.container
    name = container.get("image")
    if not name:
        raise UsageError(f"{descriptor.name}: the descriptor names no container-image; use --engine local")
    record = pinned(descriptor.name, descriptor.digest)
    pin = (
        container.get("container-hash")
        or (record or {}).get("digest")
        or engine.site_pin(descriptor.name, descriptor.digest)  # an image folder's, on a cluster without pins
    )
    hint = f"run: dicompose build {descriptor.name}" if descriptor.name in BUILTIN_TOOLS else "build or load it"
    image, is_pinned = engine.resolve_image(str(name), pin, allow_unpinned=allow_unpinned, hint=hint)
    return image, is_pinned


def image_key(engine: Engine, image: ImageRef | None) -> str:
    """What the cache key knows of the software: the image digest, or (no container) our version and lock."""
    if image is not None:
        return image.digest
    return f"{engine.name}:dicompose-{__version__}:lock-{sha256_file(runtime_lock())[:16]}"
