"""Confine a command before it starts: inputs read-only, no network. Run as ``python -I -S confine.py``.

``ch-run`` (Charliecloud 0.31) binds host folders read-write and keeps the host's network, and an ordinary user
cannot ask it for more. So this small launcher, standard library only (it runs before any import path is set),
enters a new user, mount and network namespace as the same uid (no privilege is gained), re-mounts every
``--ro`` path read-only onto itself, gives every ``--rw`` path that lies under one back its write access, and
then becomes the command (``exec``: same pid, same process group, so timeouts and Ctrl-C reach the step). The
network namespace has only its own loopback interface (up, as under Docker's ``--network none``): the step can
reach nothing outside itself, not even this host. ``--net`` keeps the host's network (a step whose descriptor
asks for it). ``/dev/shm`` becomes a private, empty tmpfs: ``ch-run`` binds the host's ``/dev``, whose shared
memory folder other processes of the node (and other steps) could otherwise read and write; only when the
launch's own inputs or outputs live there is it left as it is.

Usage: ``confine.py [--ro PATH]... [--rw PATH]... [--net] -- PROGRAM [ARG]...``; exit 125 when confinement fails.
"""

from __future__ import annotations

import ctypes
import os
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_NOATIME, MS_NODIRATIME, MS_BIND, MS_REC = 32, 1024, 2048, 4096, 16384
MS_PRIVATE, MS_RELATIME = 1 << 18, 1 << 21
PR_SET_NO_NEW_PRIVS = 38
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
FAILED = 125
#: statvfs flags a re-mount must keep (an unprivileged mount namespace may not clear them).
_KEPT = (
    (os.ST_NOSUID, MS_NOSUID),
    (os.ST_NODEV, MS_NODEV),
    (os.ST_NOEXEC, MS_NOEXEC),
    (os.ST_NOATIME, MS_NOATIME),
    (os.ST_NODIRATIME, MS_NODIRATIME),
    (os.ST_RELATIME, MS_RELATIME),
)


class ConfineError(Exception):
    pass


def parse(argv: list[str]) -> tuple[list[str], list[str], bool, list[str]]:
    """(read-only paths, writable paths, keep network?, command) from ``argv`` (without the program name)."""
    ro: list[str] = []
    rw: list[str] = []
    net = False
    rest = list(argv)
    while rest and rest[0] != "--":
        option = rest.pop(0)
        if option == "--net":
            net = True
        elif option in ("--ro", "--rw") and rest:
            (ro if option == "--ro" else rw).append(rest.pop(0))
        else:
            raise ConfineError(f"unknown option {option!r}")
    if len(rest) < 2:
        raise ConfineError("no command after --")
    return ro, rw, net, rest[1:]


def under(path: str, folders: list[str]) -> bool:
    """Is ``path`` one of ``folders`` or inside one (by real path)?"""
    real = os.path.realpath(path)
    for folder in folders:
        base = os.path.realpath(folder)
        if real == base or real.startswith(base.rstrip("/") + "/"):
            return True
    return False


def _call(result: int, what: str) -> None:
    if result != 0:
        raise ConfineError(f"{what}: {os.strerror(ctypes.get_errno())}")


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _rebind(libc: ctypes.CDLL, path: str, read_only: bool) -> None:
    """``path`` mounted onto itself, read-only or writable, keeping the flags the namespace must keep."""
    raw = os.fsencode(path)
    _call(libc.mount(raw, raw, None, MS_BIND | MS_REC, None), f"bind {path}")
    kept = os.statvfs(path).f_flag
    flags = MS_REMOUNT | MS_BIND | (MS_RDONLY if read_only else 0)
    for statvfs_flag, mount_flag in _KEPT:
        if kept & statvfs_flag:
            flags |= mount_flag
    _call(libc.mount(None, raw, None, flags, None), f"re-mount {path} {'read-only' if read_only else 'writable'}")


def confine(ro: list[str], rw: list[str], net: bool) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    uid, gid = os.getuid(), os.getgid()
    flags = CLONE_NEWUSER | CLONE_NEWNS | (0 if net else CLONE_NEWNET)
    _call(libc.unshare(flags), "new user, mount and network namespace (are user namespaces allowed here?)")
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"{uid} {uid} 1")  # the same uid inside: nothing is gained
    _write("/proc/self/gid_map", f"{gid} {gid} 1")
    _call(libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "private mounts")
    for path in ro:
        _rebind(libc, path, read_only=True)
    for path in rw:
        if under(path, ro):
            _rebind(libc, path, read_only=False)
    shm = "/dev/shm"  # noqa: S108 - the host's shared memory folder, replaced by a private one...
    if os.path.isdir(shm) and not any(under(p, [shm]) for p in [*ro, *rw]):  # noqa: PTH112 - ...unless ours are there
        options = b"mode=1777,size=64m"
        _call(libc.mount(b"tmpfs", b"/dev/shm", b"tmpfs", MS_NOSUID | MS_NODEV, options), "private /dev/shm")
    if not net:
        _loopback_up()
    _call(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no new privileges")


def _loopback_up() -> None:
    """Bring the new network namespace's ``lo`` up (we hold CAP_NET_ADMIN over it until exec)."""
    import fcntl
    import socket
    import struct

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))


def main(argv: list[str]) -> int:
    try:
        ro, rw, net, command = parse(argv)
        confine(ro, rw, net)
        os.execvp(command[0], command)  # noqa: S606 - an argument list, never a shell
    except (ConfineError, OSError) as exc:
        sys.stderr.write(f"dicompose-confine: {exc}\n")
    return FAILED


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
