"""Atomic file publication, shared by every layer that writes results: temp file, fsync, rename, fsync dir.

Readers see either the old file or the complete new one; on any failure the temp file is removed, so no
half-written output is ever left behind. :class:`Hasher` computes sha256 digests of bytes as they are read
or written, on a helper thread, so that knowing what a file holds costs no second read of it.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import itertools
import os
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from queue import SimpleQueue
from types import TracebackType
from typing import BinaryIO, Literal, Protocol

_BLOCK = 1 << 20
_SMALL = 1 << 16  # pieces shorter than this are gathered before hashing


#: How a piece of work hashes the files it reads and writes: ``inline`` (in its own thread, as it goes: when
#: no core is spare, threads only compete for them), ``overlapped`` (on the process's hashing thread while the
#: work goes on, for digests read as soon as it ends) or ``deferred`` (on that thread once the work ends, for
#: digests read later, by another thread).
Hashing = Literal["inline", "overlapped", "deferred"]
#: One hand-over to the hashing thread: every piece one file's work fed, and the event set once they are hashed.
_Item = tuple[list[tuple["hashlib._Hash", bytes]], threading.Event]
_helper: tuple[int, SimpleQueue[_Item], threading.Thread] | None = None
_helper_lock = threading.Lock()
#: A hasher holds at most this many bytes before handing them over (a streamed big output is hashed as it
#: goes, not kept in memory until the end).
_HOLD = 8 << 20


def _helper_queue() -> SimpleQueue[_Item]:
    """The queue of this process's one hashing thread, started on first use (and again in a forked child,
    which inherits the parent's thread object but not the thread): starting a thread per file cost more
    than the overlap it bought."""
    global _helper
    with _helper_lock:
        if _helper is None or _helper[0] != os.getpid() or not _helper[2].is_alive():
            queue: SimpleQueue[_Item] = SimpleQueue()
            thread = threading.Thread(target=_hash_forever, args=(queue,), name="dicompose-sha256", daemon=True)
            thread.start()
            _helper = (os.getpid(), queue, thread)
        return _helper[1]


def _hash_forever(queue: SimpleQueue[_Item]) -> None:
    while True:
        pieces, done = queue.get()
        for digest, data in pieces:
            digest.update(data)
        done.set()


class Hasher:
    """sha256 digests of one piece of work, computed on the process's hashing thread (or inline with
    ``inline`` mode).

    Threaded, the bytes fed are held and handed to the thread in one go when the work ends (:meth:`close`),
    and nobody waits for them until a digest is read: each hand-over wakes the thread and contends for the
    GIL with the work (measured: a thread hashing while the work runs slowed it by 6 %, handing over per
    piece and waiting per file cost 9 % of a 512×512 slice's work), so one hand-over per file, read later
    (by the audit log's writer thread), leaves the work almost nothing to pay.
    """

    def __init__(self, mode: Hashing = "inline") -> None:
        self._queue = _helper_queue() if mode != "inline" else None
        self._eager = mode == "overlapped"
        self._digests: list[Digest] = []
        self._held: list[tuple[hashlib._Hash, bytes]] = []
        self._held_bytes = 0
        self._handed: threading.Event | None = None
        self._lock = threading.Lock()  # a digest may be read on another thread while this one feeds others

    @property
    def threaded(self) -> bool:
        return self._queue is not None

    def sha256(self) -> Digest:
        digest = Digest(self)
        self._digests.append(digest)
        return digest

    def _feed(self, digest: hashlib._Hash, data: bytes) -> None:
        if self._queue is None:
            digest.update(data)
            return
        with self._lock:
            self._held.append((digest, data))
            self._held_bytes += len(data)
        if self._eager or self._held_bytes >= _HOLD:
            self._hand_over()

    def _hand_over(self) -> threading.Event | None:
        """Give the held bytes to the thread; return the event set once all bytes fed so far are hashed."""
        with self._lock:
            if self._held and self._queue is not None:
                self._handed = threading.Event()
                self._queue.put((self._held, self._handed))
                self._held, self._held_bytes = [], 0
            return self._handed

    def _wait(self) -> None:
        """Return once every byte fed so far has been hashed (the thread works through its queue in order)."""
        if (handed := self._hand_over()) is not None:
            handed.wait()

    def close(self) -> None:
        """The work is done: hand every byte over (the digests are final once hashed; nothing waits here)."""
        for digest in self._digests:
            digest._hand_over_small()
        self._hand_over()

    def __enter__(self) -> Hasher:
        return self

    def __exit__(self, *_exc: type[BaseException] | TracebackType | None) -> None:
        self.close()


class Digest:
    """One sha256 fed through a :class:`Hasher`; ``hexdigest()`` waits for the bytes fed before it.

    Small pieces (a writer's tags and lengths) are gathered into blocks before they are held for the thread:
    handing each over on its own would cost more than hashing it.
    """

    def __init__(self, hasher: Hasher) -> None:
        self._hasher = hasher
        self._sha = hashlib.sha256()
        self._small = bytearray()
        self._hex: str | None = None

    def update(self, data: bytes) -> None:
        """Hash ``data`` (bytes given here must not be changed afterwards: they may be hashed later)."""
        if not self._hasher.threaded:
            self._sha.update(data)
            return
        if len(data) < _SMALL:
            self._small += data
            if len(self._small) < _SMALL:
                return
            data, self._small = bytes(self._small), bytearray()
        else:
            self._hand_over_small()
        self._hasher._feed(self._sha, data)  # the two classes are one mechanism

    def _hand_over_small(self) -> None:
        if self._small:
            self._hasher._feed(self._sha, bytes(self._small))
            self._small = bytearray()

    def hexdigest(self) -> str:
        """The digest of every byte fed; from another thread, only once the hasher is closed."""
        if self._hex is None:
            self._hand_over_small()
            self._hasher._wait()
            self._hex = self._sha.hexdigest()
        return self._hex


class _Writable(Protocol):
    def write(self, data: bytes, /) -> int: ...
    def seek(self, offset: int, whence: int = 0, /) -> int: ...
    def tell(self) -> int: ...


class _DigestingWriter:
    """Passes writes through to ``fh`` and feeds them to ``digest``, as long as the writes are appends.

    A writer that seeks back to patch bytes already written (pydicom buffers each element, so it does not)
    sets ``rewritten``: the digest is then wrong and the caller hashes the finished file instead.
    """

    def __init__(self, fh: _Writable, digest: Digest) -> None:
        self._fh, self._digest = fh, digest
        self.position = self.end = 0
        self.rewritten = False

    def write(self, data: bytes | bytearray | memoryview, /) -> int:
        if not isinstance(data, bytes):
            data = bytes(data)  # a bytearray or view could change before the helper thread hashes it
        written = self._fh.write(data)
        if self.position == self.end:
            self._digest.update(data)
        else:
            self.rewritten = True
        self.position += written
        self.end = max(self.end, self.position)
        return written

    def seek(self, offset: int, whence: int = os.SEEK_SET, /) -> int:
        self.position = self._fh.seek(offset, whence)
        return self.position

    def tell(self) -> int:
        return self.position


_umask: int | None = None


def umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux: /proc), else set-and-restore
    once (the value is cached: the umask of a running tool does not change)."""
    global _umask
    if _umask is None:
        try:
            status = Path("/proc/self/status").read_text()
            _umask = int(next(line.split()[1] for line in status.splitlines() if line.startswith("Umask:")), 8)
        except (OSError, StopIteration, ValueError, IndexError):
            _umask = os.umask(0o022)
            os.umask(_umask)
    return _umask


def output_mode(like: Path | None = None) -> int:
    """Permissions for a new output file: what the umask allows, and never more open than ``like`` (the input
    it is derived from), so a private scan never yields a world-readable output."""
    mode = 0o666 & ~umask()
    if like is not None:
        with contextlib.suppress(OSError):
            mode &= like.stat().st_mode & 0o666
    return mode


_temp_serial = itertools.count()


def _create_temp(destination: Path) -> tuple[int, Path]:
    """A new hidden file (0600) beside ``destination``, named after it, this process and a serial number (what
    ``mkstemp`` does, without its random names: about a tenth of a batch's per-file overhead); its folder is
    made only when it is missing (not asked once per file)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    while True:
        tmp = destination.with_name(f".{destination.name}.{os.getpid()}-{next(_temp_serial)}.partial")
        try:
            return os.open(tmp, flags, 0o600), tmp
        except FileExistsError:  # left by a killed process that had this pid: take the next number
            continue
        except FileNotFoundError:
            destination.parent.mkdir(parents=True, exist_ok=True)
            return os.open(tmp, flags, 0o600), tmp


@contextlib.contextmanager
def _published(destination: Path, *, buffering: int = -1, mode: int | None = None) -> Iterator[tuple[BinaryIO, Path]]:
    """A hidden temp file beside ``destination``; once the block succeeds it is fsynced and renamed into place,
    on any failure it is removed. The caller fsyncs the folder (or leaves that to whoever syncs it for many)."""
    fd, tmp = _create_temp(destination)
    try:
        with os.fdopen(fd, "wb", buffering=buffering) as fh:
            yield fh, tmp
            fh.flush()
            os.fsync(fh.fileno())
        tmp.chmod(output_mode() if mode is None else mode)  # mkstemp made it 0600
        tmp.replace(destination)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def atomic_write(
    destination: Path,
    write: Callable[[BinaryIO], None],
    *,
    hasher: Hasher | None = None,
    sync_folder: bool = True,
    mode: int | None = None,
) -> Digest | None:
    """Call ``write(fh)`` on a hidden temp file beside ``destination``, then make it ``destination``
    (permissions ``mode``, by default :func:`output_mode`).

    With ``hasher``, returns the sha256 of the bytes written, computed from them as they pass (no re-read).
    ``sync_folder=False``: see :func:`atomic_write_bytes`.
    """
    digest: Digest | None = None
    with _published(destination, mode=mode) as (fh, tmp):
        if hasher is None:
            write(fh)
        else:
            digest = hasher.sha256()
            writer = _DigestingWriter(fh, digest)
            write(writer)  # type: ignore[arg-type]  # the three methods writers use: write, seek, tell
            if writer.rewritten:
                fh.flush()
                digest = _digest_file(tmp, hasher)
    if sync_folder:
        fsync_directory(destination.parent)
    return digest


def atomic_write_bytes(
    destination: Path, data: bytes, *, hasher: Hasher | None = None, sync_folder: bool = True, mode: int | None = None
) -> Digest | None:
    """:func:`atomic_write` of bytes already in memory: one write call, and with ``hasher`` one digest update
    (on the hasher's thread, the bytes are hashed once the work is done, without holding it up).

    ``sync_folder=False`` leaves the rename's durability to the caller, who fsyncs the folder once for many
    files (:func:`fsync_directory`) before it reports them done.
    """
    digest: Digest | None = None
    if hasher is not None:
        digest = hasher.sha256()
        digest.update(data)
    with _published(destination, buffering=0, mode=mode) as (fh, _tmp):
        view = memoryview(data)
        while view:
            view = view[fh.write(view) :]
    if sync_folder:
        fsync_directory(destination.parent)
    return digest


def _digest_file(path: Path, hasher: Hasher) -> Digest:
    digest = hasher.sha256()
    with path.open("rb") as fh:
        while block := fh.read(_BLOCK):
            digest.update(block)
    return digest


def check_output_folder(inputs: Iterable[Path], out_dir: Path) -> None:
    """Refuse an output folder inside (or equal to) an input folder: a rerun would take the outputs as new
    inputs. One rule for every tool and pipeline run."""
    from dicompose.errors import UsageError  # errors is a leaf too

    resolved_out = out_dir.resolve()
    for given in inputs:
        if given.is_dir() and resolved_out.is_relative_to(given.resolve()):
            raise UsageError(f"output folder {out_dir} is inside input folder {given}; choose another --out")


def check_not_a_file(folder: Path, what: str = "output folder") -> None:
    """Refuse a folder path that is a file, or lies under one (one line naming it), before anything is made."""
    from dicompose.errors import UsageError

    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        where = "is a file" if existing == folder else f"lies under {existing}, a file"
        raise UsageError(f"{what} {folder} {where}, not a folder; choose another")


def check_writable_folder(folder: Path, what: str = "output folder") -> None:
    """Refuse, before any work, a folder we could not write into: a file (or a path through one), a folder
    that cannot be created, or one that takes no new file (read-only, permissions, no inodes). Creates it."""
    from dicompose.errors import UsageError

    check_not_a_file(folder, what)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".dicompose-probe-", dir=folder)
        os.close(fd)
        Path(probe).unlink()
    except OSError as exc:
        raise UsageError(f"cannot write into {what} {folder} ({exc.strerror or exc}); choose another") from None


_FOLDER_SYNC: contextvars.ContextVar[bool] = contextvars.ContextVar("dicompose_folder_sync", default=True)


@contextlib.contextmanager
def folder_syncs_deferred() -> Iterator[None]:
    """Within this block, writers that ask :func:`folder_sync_wanted` leave folder fsyncs to the caller, who
    syncs each output folder once (:func:`fsync_directory`) before reporting the files done: one folder fsync
    per batch instead of one per file."""
    token = _FOLDER_SYNC.set(False)
    try:
        yield
    finally:
        _FOLDER_SYNC.reset(token)


def folder_sync_wanted() -> bool:
    return _FOLDER_SYNC.get()


def fsync_directory(folder: Path) -> None:
    """Make a rename durable (POSIX: the directory entry lives in the folder)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
