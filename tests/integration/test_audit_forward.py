"""The audit log forwarded as it is written (records/audit_forward.py), to real local listeners: UDP, TCP with
RFC 6587 octet counting, and a unix datagram socket, as a hospital's log collector would receive it."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import threading
import time
from pathlib import Path

import pydicom
import pytest

from dicompose.tools.samples import sample_data_folder
from tests.support.cli import BIN

RFC5424 = re.compile(rb"^<(\d+)>1 (\S+) (\S+) dicompose (\d+) (\S+) - (.*)$", re.S)


class Listener:
    """Collects what a collector would: datagrams, or octet-counted frames over TCP."""

    def __init__(self, kind: str, folder: Path) -> None:
        self.kind, self.messages = kind, []
        if kind == "udp":
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind(("127.0.0.1", 0))
            self.target = f"udp://127.0.0.1:{self.sock.getsockname()[1]}"
        elif kind == "tcp":
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.sock.bind(("127.0.0.1", 0))
            self.sock.listen(8)
            self.target = f"tcp://127.0.0.1:{self.sock.getsockname()[1]}"
        else:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self.sock.bind(str(folder / "log.sock"))
            self.target = f"unix://{folder / 'log.sock'}"
        self.sock.settimeout(0.2)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                if self.kind == "tcp":
                    connection, _ = self.sock.accept()
                    data = b""
                    with connection:
                        connection.settimeout(5)
                        while chunk := connection.recv(65536):
                            data += chunk
                    while data:
                        length, _, rest = data.partition(b" ")
                        self.messages.append(rest[: int(length)])
                        data = rest[int(length) :]
                else:
                    self.messages.append(self.sock.recv(65536))
            except TimeoutError:
                continue

    def close(self) -> list[bytes]:
        self.stop.set()
        self.thread.join(timeout=5)
        self.sock.close()
        return self.messages


@pytest.mark.parametrize("kind", ["udp", "tcp", "unix"])
def test_every_entry_reaches_the_collector_as_rfc5424_with_its_chain(tmp_path: Path, kind: str):
    listener = Listener(kind, tmp_path)
    env = {
        "PATH": "/usr/bin:/bin",
        "DICOMPOSE_HOME": str(tmp_path / "home"),
        "DICOMPOSE_AUDIT_FORWARD": listener.target,
    }
    argv = [str(BIN / "dicompose"), "normalize", str(sample_data_folder()), "--out", str(tmp_path / "out")]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0 and "warning" not in proc.stderr, proc.stderr
    time.sleep(0.5)  # the last datagrams are on their way
    messages = listener.close()
    local = (tmp_path / "home" / "audit" / "audit.jsonl").read_bytes().splitlines()
    assert len(messages) == len(local) == 10  # a read and a write per file
    for message, line in zip(messages, local, strict=True):
        match = RFC5424.match(message)
        assert match, message[:120]
        assert int(match[1]) == 85  # authpriv.notice
        entry = json.loads(match[6])
        assert match[6] == line and match[5].decode() == entry["action"]  # the entry as logged: its hash chain
    uids = {
        str(pydicom.dcmread(p, stop_before_pixels=True).StudyInstanceUID) for p in sample_data_folder().glob("*.dcm")
    }
    assert not any(uid.encode() in m for uid in uids for m in messages)  # keyed pseudonyms only


def test_a_collector_that_does_not_answer_costs_one_warning_never_an_entry(tmp_path: Path):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    env = {
        "PATH": "/usr/bin:/bin",
        "DICOMPOSE_HOME": str(tmp_path / "home"),
        "DICOMPOSE_AUDIT_FORWARD": f"tcp://127.0.0.1:{port}",
    }
    argv = [str(BIN / "dicompose"), "normalize", str(sample_data_folder()), "--out", str(tmp_path / "out")]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0
    assert proc.stderr.count("warning: audit entries not forwarded") == 1 and "the local log has them" in proc.stderr
    assert len((tmp_path / "home" / "audit" / "audit.jsonl").read_bytes().splitlines()) == 10
    bad = subprocess.run(argv, capture_output=True, text=True, env={**env, "DICOMPOSE_AUDIT_FORWARD": "syslog:x"})
    assert "expected udp://HOST:PORT" in bad.stderr
