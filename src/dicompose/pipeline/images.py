"""Which image each step runs, by digest, and the image part of cache keys."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from dicompose import __version__
from dicompose.descriptors.descriptor import BUILTIN_TOOLS, Descriptor
from dicompose.engines.base import Engine, ImageRef
from dicompose.engines.resolve import Resolution, resolve_engine
from dicompose.errors import ImageProblemsError, UnpinnedImageError, UsageError
from dicompose.images.pins import pinned
from dicompose.images.wheelhouse import runtime_lock, sha256_file

if TYPE_CHECKING:
    from dicompose.pipeline.graph import StepNode


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
    image, is_pinned = engine.resolve_image(
        str(name), pin, allow_unpinned=allow_unpinned, hint=hint, tool=descriptor.name
    )
    return image, is_pinned


Images = dict[str, tuple[ImageRef | None, bool]]


def step_images(steps: Iterable[StepNode], engine: Engine, allow_unpinned: bool) -> Images:
    """Each step's image on ``engine``, refused with a :class:`UsageError` where one is missing or unpinned:
    every step's problem at once (the user exports or builds them all before trying again, as ``check`` lists
    them), an image two steps share said once."""
    images: Images = {}
    problems: dict[str, UsageError] = {}
    for node in steps:
        try:
            images[node.name] = resolve_step_image(node.descriptor, engine, allow_unpinned)
        except UsageError as exc:
            problems.setdefault(str(exc), exc)
    if len(problems) == 1:
        raise next(iter(problems.values()))
    if problems:
        raise ImageProblemsError(list(problems.values()))
    return images


def choose_engine(choice: str, images_of: Callable[[Engine], Images]) -> tuple[Resolution, Images]:
    """The engine for some work and the image of each of its steps, ``images_of`` resolving them (refusing
    with a :class:`UsageError`). ``auto`` passes over an engine that answers but lacks an image (not built, not
    exported, unpinned): it says so and tries the next, down to the local engine; an engine asked for by name
    is refused as before."""
    found: dict[str, Images] = {}

    def can_run(engine: Engine) -> str | None:
        return missing_image(lambda: found.setdefault(engine.name, images_of(engine)))

    resolution = resolve_engine(choice, can_run)
    engine = resolution.engine
    return resolution, found[engine.name] if engine.name in found else images_of(engine)


def missing_image(resolve: Callable[[], object]) -> str | None:
    """Why ``resolve`` (of a step's or a pipeline's images) failed, in words that follow "docker answers but",
    or None when it did not."""
    try:
        resolve()
    except ImageProblemsError as exc:
        return "; ".join(_why_not(error) for error in exc.errors)  # "docker answers but image A …; image B …"
    except UsageError as exc:
        return _why_not(exc)
    return None


def _why_not(error: UsageError) -> str:
    if isinstance(error, UnpinnedImageError):  # without "pass --allow-unpinned": not every caller offers it
        return f"image {error.image} is not pinned by digest ({error.how_pinned})"
    return str(error)


def image_key(engine: Engine, image: ImageRef | None) -> str:
    """What the cache key knows of the software: the image digest, or (no container) our version and lock."""
    if image is not None:
        return image.digest
    return f"{engine.name}:dicompose-{__version__}:lock-{sha256_file(runtime_lock())[:16]}"
