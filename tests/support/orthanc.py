"""A real PACS for the tests: Debian's Orthanc, in a network namespace of its own with only loopback.

Orthanc 1.10 has no bind-address setting and listens on every interface, so it runs, and the dicompose commands
that talk to it run, inside ``ip netns`` (root only: CI). It checks AE titles both ways (an unknown calling AE
title and a wrong called one are refused), requires HTTP authentication, and never overwrites an instance it
holds. The REST API (``rest``) is what the tests read back, to check what the PACS really stored.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.support.certs import Certs

USER, PASSWORD = "alice", "not-a-real-secret"
AET, PORT, HTTP_PORT = "ORTHANC", 4242, 8042
DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"  # Debian's orthanc-dicomweb
#: The calling AE titles Orthanc knows (with where C-MOVE sends to them).
PEERS = {"DICOMPOSE": 11112, "MOVER": 11113}


def orthanc_available() -> tuple[bool, str]:
    if shutil.which("Orthanc") is None:
        return False, "Orthanc not installed (Debian: apt-get install orthanc; scripts/orthanc.sh)"
    if os.getuid() != 0 or shutil.which("ip") is None:
        return False, "a private network namespace (ip netns) needs root"
    return True, ""


class Orthanc:
    def __init__(self, folder: Path, *, allow_get: bool = True, tls: Certs | None = None) -> None:
        self.folder = folder
        self.tls = tls
        digest = hashlib.sha256(str(folder.absolute()).encode()).hexdigest()[:10]
        self.ns = f"dicompose-pacs-{digest}"  # the same folder (a restarted PACS) gets the same namespace
        self.allow_get = allow_get
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def web_url(self) -> str:
        return f"dicomweb+http://127.0.0.1:{HTTP_PORT}/dicom-web"

    @property
    def url(self) -> str:
        return f"{'dicom+tls' if self.tls else 'dicom'}://{AET}@127.0.0.1:{PORT}"

    def config(self) -> dict[str, Any]:
        peers = {
            name.lower(): {
                "AET": name,
                "Host": "127.0.0.1",
                "Port": port,
                "AllowEcho": True,
                "AllowFind": True,
                "AllowGet": self.allow_get,
                "AllowMove": True,
                "AllowStore": True,
            }
            for name, port in PEERS.items()
        }
        tls = (
            {
                "DicomTlsEnabled": True,
                "DicomTlsCertificate": str(self.tls.server_cert),
                "DicomTlsPrivateKey": str(self.tls.server_key),
                "DicomTlsTrustedCertificates": str(self.tls.ca),
                "DicomTlsRemoteCertificateRequired": True,
            }
            if self.tls
            else {}
        )
        return {
            **tls,
            "Name": "dicompose-test-pacs",
            "StorageDirectory": str(self.folder / "storage"),
            "IndexDirectory": str(self.folder / "index"),
            "DicomAet": AET,
            "DicomPort": PORT,
            "HttpPort": HTTP_PORT,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": True,
            "RegisteredUsers": {USER: PASSWORD},
            "DicomCheckCalledAet": True,
            "DicomAlwaysAllowEcho": False,
            "DicomAlwaysAllowStore": False,
            "DicomAlwaysAllowFind": False,
            "DicomAlwaysAllowGet": False,
            "DicomAlwaysAllowMove": False,
            "DicomModalities": peers,
            "Plugins": [DICOMWEB_PLUGIN] if Path(DICOMWEB_PLUGIN).exists() else [],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False},
            "OverwriteInstances": False,
            "UnknownSopClassAccepted": True,  # a SOP class newer than the PACS's toolkit is stored all the same
            "SaveJobs": False,
            "StableAge": 1,
        }

    def start(self) -> Orthanc:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "orthanc.json").write_text(json.dumps(self.config(), indent=1))
        subprocess.run(["ip", "netns", "del", self.ns], check=False, capture_output=True)  # a killed one's
        subprocess.run(["ip", "netns", "add", self.ns], check=True)
        subprocess.run(["ip", "-n", self.ns, "link", "set", "lo", "up"], check=True)
        log = (self.folder / "orthanc.log").open("wb")
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", self.ns, "Orthanc", str(self.folder / "orthanc.json")], stdout=log, stderr=log
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                self.rest("/system")
                return self
            except (AssertionError, json.JSONDecodeError):
                time.sleep(0.1)
        raise AssertionError(f"Orthanc did not start: {(self.folder / 'orthanc.log').read_text()[-2000:]}")

    def run(self, argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        """``argv`` inside the PACS's network namespace (where 127.0.0.1:4242 is Orthanc)."""
        return subprocess.run(["ip", "netns", "exec", self.ns, *argv], capture_output=True, text=True, **kwargs)

    def popen(self, argv: list[str], **kwargs: Any) -> subprocess.Popen[str]:
        return subprocess.Popen(
            ["ip", "netns", "exec", self.ns, *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            **kwargs,
        )

    def rest(self, path: str) -> Any:
        """GET ``path`` from Orthanc's REST API (authenticated), as JSON."""
        script = (
            "import base64, sys, urllib.request\n"
            f"request = urllib.request.Request('http://127.0.0.1:{HTTP_PORT}' + sys.argv[1])\n"
            "request.add_header('Authorization', 'Basic ' + base64.b64encode(sys.argv[2].encode()).decode())\n"
            "sys.stdout.write(urllib.request.urlopen(request, timeout=5).read().decode())\n"
        )
        proc = self.run([sys.executable, "-c", script, path, f"{USER}:{PASSWORD}"], timeout=30)
        assert proc.returncode == 0, proc.stderr[-500:]
        return json.loads(proc.stdout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        subprocess.run(["ip", "netns", "del", self.ns], check=False, capture_output=True)
