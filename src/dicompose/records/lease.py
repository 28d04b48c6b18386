"""A workspace lease that holds across hosts, for shared filesystems whose locks do not.

The workspace lock is an ``flock``: exact on one host, but on a shared filesystem it may stay local to each
node (Lustre without ``-o flock``, some NFS setups), so two login nodes could both "hold" it. The lease adds
what every shared filesystem does honour: ``lock.lease`` is created with ``O_EXCL`` (atomic on NFSv3+ and the
parallel filesystems), says who holds it, and is kept fresh (its mtime touched every :data:`BEAT` seconds).
Another host's lease that is fresh refuses the run; one not touched for :data:`STALE` seconds (its run was
killed, or its node lost) is taken over, as is one of this host whose process is gone.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from dicompose.errors import UsageError
from dicompose.lifetime import alive

BEAT = 15.0
STALE = 90.0
CLOCK_SKEW = 86400.0
LEASE = "lock.lease"


def holder(path: Path) -> tuple[str, int, float] | None:
    """(host, pid, seconds since it was last touched) of a live lease at ``path``, or None (none, or stale)."""
    try:
        text = path.read_text()
        age = time.time() - path.stat().st_mtime
    except OSError:
        return None
    host, _sep, pid_text = text.strip().rpartition(" pid ")
    pid = int(pid_text) if pid_text.isdigit() else 0
    if not host or not pid:
        return None  # not a lease (a half-written or foreign file): nobody holds it
    if host == socket.gethostname():
        return (host, pid, age) if pid and alive(pid) else None
    # in the future: that node's clock is ahead, and its run may be alive (safer to wait than to share); a day
    # ahead is a clock gone wrong, not a run
    return (host, pid, age) if -CLOCK_SKEW < age < STALE else None


def filesystem_of(path: Path) -> str:
    """The filesystem type ``path`` lives on (from /proc/self/mountinfo), for messages; '' if unknown."""
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return ""
    target, best, kind = str(path.resolve()), "", ""
    for line in lines:
        fields, _sep, rest = line.partition(" - ")
        mount = fields.split()[4] if len(fields.split()) > 4 else ""
        if (target == mount or target.startswith(mount.rstrip("/") + "/")) and len(mount) >= len(best):
            best, kind = mount, rest.split()[0] if rest else ""
    return kind


@contextlib.contextmanager
def leased(folder: Path) -> Iterator[None]:
    """Hold ``folder``'s lease for the duration (refused, in one line, while another host holds it)."""
    path = folder / LEASE
    me = f"{socket.gethostname()} pid {os.getpid()}\n"
    for _attempt in range(3):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            break
        except FileExistsError:
            found = holder(path)
            if found is not None:
                host, pid, age = found
                kind = filesystem_of(folder)
                seen = f"seen {age:.0f} s ago" if age >= 0 else f"its clock is {-age:.0f} s ahead of ours"
                raise UsageError(
                    f"workspace {folder} is in use by pid {pid} on {host} ({seen}"
                    f"{', on ' + kind if kind else ''}); wait for it or use --workspace"
                ) from None
            with contextlib.suppress(OSError):  # stale: set aside (atomically), then try again
                path.rename(folder / f"{LEASE}.stale-{os.getpid()}")
                (folder / f"{LEASE}.stale-{os.getpid()}").unlink()
        except OSError as exc:
            raise UsageError(f"cannot lease workspace {folder} ({exc.strerror or exc})") from None
    else:
        raise UsageError(f"workspace {folder}: could not take its lease (another run keeps taking it)")
    try:
        os.write(fd, me.encode())
    finally:
        os.close(fd)  # on NFS, close is what makes it visible to the other hosts
    stop = threading.Event()
    beat = threading.Thread(target=_keep_fresh, args=(path, stop), name="dicompose-lease", daemon=True)
    beat.start()
    try:
        yield
    finally:
        stop.set()
        beat.join(timeout=5)
        with contextlib.suppress(OSError):
            if path.read_text() == me:
                path.unlink()


def _keep_fresh(path: Path, stop: threading.Event) -> None:
    while not stop.wait(BEAT):
        with contextlib.suppress(OSError):
            os.utime(path)
