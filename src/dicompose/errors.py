"""One exception hierarchy for the whole package.

The CLI maps these to exit codes, so a user sees one clear line and never a traceback::

    DicomposeError                 base; never raised directly
    ├── UsageError                 the user asked for something impossible      → exit 2
    ├── StepError                  a tool/step failed on its input              → exit 1
    │   ├── InputError             an input file is unreadable, corrupt or truncated
    │   ├── UnsupportedInputError  a valid file this tool does not handle (colour, non-image, ...)
    │   └── EngineError            the engine could not run a launch (API error, vanished container)
    ├── StorageError               a place we write is full or read-only: stop, keep what finished → exit 1
    ├── PacsError                  a PACS is down, refuses us, or drops a transfer                  → exit 1
    └── RunInterruptedError             Ctrl-C / SIGTERM during a run; finished work is kept → exit 130/143

Anything else that escapes is an internal bug and keeps its traceback.
"""

from __future__ import annotations

from pathlib import Path

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class DicomposeError(Exception):
    """Base of every error dicompose raises on purpose."""

    exit_code = EXIT_FAILED


class UsageError(DicomposeError):
    """The command line or configuration asks for something that cannot be done."""

    exit_code = EXIT_USAGE


class UnpinnedImageError(UsageError):
    """An image that no digest pins: refused unless the user allows unpinned images (``--allow-unpinned``);
    callers that take no such option (the demo) say what to do instead from ``image`` and ``how_pinned``."""

    def __init__(self, image: str, how_pinned: str) -> None:
        super().__init__(
            f"image {image} is not pinned by digest ({how_pinned}); pass --allow-unpinned to run it anyway"
        )
        self.image, self.how_pinned = image, how_pinned


class ImageProblemsError(UsageError):
    """Several steps' images cannot run (missing, unpinned): one line naming each; ``errors`` keeps them apart
    (an unpinned one is said differently where ``--allow-unpinned`` is not offered)."""

    def __init__(self, errors: list[UsageError]) -> None:
        super().__init__(f"{len(errors)} images cannot run: " + "; ".join(str(e) for e in errors))
        self.errors = errors


class ProblemsError(UsageError):
    """Several problems found together (a pipeline file's): commands that list problems say one per line."""

    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__(f"{source}: " + "; ".join(problems))
        self.problems = problems


class StepError(DicomposeError):
    """A step could not produce its output for one input."""

    exit_code = EXIT_FAILED


class EngineError(StepError):
    """The engine failed to run a launch (not the tool): retried like a failed attempt, once even unasked."""


class StorageError(DicomposeError):
    """Where we write is full (ENOSPC, quota) or has become read-only: every later write there would fail too,
    so the batch or run stops at once; what finished is kept and the same command resumes once it is fixed."""

    exit_code = EXIT_FAILED

    def __init__(self, path: Path | str | None, problem: str) -> None:
        self.path = Path(path) if path is not None else None
        super().__init__(f"{path}: {problem}" if path is not None else problem)


class ClusterError(DicomposeError):
    """The cluster the run's launches go to cannot run them (its worker jobs all ended before one joined): said
    in one line, with where its logs are, instead of waiting for workers that never come."""

    exit_code = EXIT_FAILED


class PacsError(DicomposeError):
    """A PACS could not be reached, refused the association or the request, or dropped a transfer: one line
    naming the PACS (its URL, never a patient) and the cause; what was received whole is kept."""

    exit_code = EXIT_FAILED


#: errno values of a full or read-only place (ENOSPC, EDQUOT, EROFS, EFBIG): see :func:`storage_error`
STORAGE_ERRNOS = frozenset({28, 122, 30, 27})


def storage_error(path: Path | str, exc: OSError) -> StorageError | None:
    """The :class:`StorageError` an ``OSError`` writing ``path`` amounts to, or None if it is not one."""
    if exc.errno in STORAGE_ERRNOS:
        return StorageError(path, f"cannot write ({exc.strerror or exc})")
    return None


class RunInterruptedError(DicomposeError):
    """A run stopped by Ctrl-C or SIGTERM; the message says what finished and how to resume."""

    def __init__(self, message: str, exit_code: int = 130) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class InputError(StepError):
    """An input file is unreadable, corrupt or truncated.

    The message always starts with the file, so batch summaries and logs stay one line per problem.
    """

    def __init__(self, path: Path | str, problem: str) -> None:
        self.path = Path(path)
        self.problem = " ".join(problem.split())  # values quoted from damaged files may hold line breaks
        super().__init__(f"{path}: {self.problem}")


class UnsupportedInputError(InputError):
    """A valid input that this tool deliberately refuses (e.g. colour images for normalize)."""
