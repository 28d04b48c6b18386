"""The tamper-evident audit log of patient-data access (45 CFR 164.312(b) and (c)).

Every read of patient data, derived file written, export and step execution appends one JSON line to
``<workspace>/audit/audit.jsonl``::

    {"seq", "time" (UTC), "actor" {user, uid, host}, "action", "object" {study, series, instance, patient:
     HMAC pseudonyms; path; sha256}, "tool", "image", "run", "outcome", "prev", "hash"}

``hash`` = sha256(prev hash + canonical JSON of the entry without ``hash``): editing, deleting, inserting or
reordering any entry breaks the chain from there on. At the end of each run a checkpoint (sequence number and
hash of the last entry) is signed with an Ed25519 key kept outside the workspace, so truncating the tail (which
a chain alone cannot reveal) is detected against the last checkpoint. Writers serialise on a file lock.
Raw patient identifiers never enter the log: UIDs and patient ids are replaced by keyed HMAC-SHA256 pseudonyms
(same key → same pseudonym, so one patient's entries can be found without naming the patient).
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import hashlib
import hmac
import json
import os
import secrets
import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from dicompose.config import data_home

GENESIS = "0" * 64
#: One entry for :meth:`AuditLog.append_many`: (action, object, tool, image, run, outcome).
Item = tuple[str, "Mapping[str, Any] | None", "str | None", "str | None", "str | None", str]
ACTIONS = ("read", "write", "export", "execute", "send", "receive")  # send/receive: PACS transfers


def _canonical(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(previous: str, entry: Mapping[str, Any]) -> str:
    body = {k: v for k, v in entry.items() if k != "hash"}
    return hashlib.sha256(previous.encode() + _canonical(body)).hexdigest()


def _canonical_split(entry: Mapping[str, Any]) -> tuple[bytes, bytes]:
    """The canonical JSON of ``entry`` (without ``hash``) cut where ``"hash"`` sorts in: ``head + tail`` is
    what :func:`entry_hash` hashes, and ``head + ',"hash":"…"' + tail`` is the canonical JSON of the entry
    with its hash (sorted keys: every key of ``head`` sorts before "hash", every key of ``tail`` after), so
    each entry is encoded once."""
    before = {k: v for k, v in entry.items() if k < "hash"}
    after = {k: v for k, v in entry.items() if k > "hash"}
    if not before or not after:
        raise ValueError("an audit entry has keys on both sides of 'hash'")
    return _canonical(before)[:-1], b"," + _canonical(after)[1:]


@dataclass(frozen=True)
class Keys:
    """The site's audit keys: HMAC key for pseudonyms, Ed25519 key for checkpoints (never in a workspace)."""

    pseudonym_key: bytes
    signing_key_pem: bytes

    def pseudonym(self, value: str | None) -> str | None:
        if not value:
            return None
        return "p-" + hmac.digest(self.pseudonym_key, value.encode(), "sha256").hex()[:24]


def load_keys(home: Path | None = None) -> Keys:
    """Read (or create, 0600) the keys in the dicompose data folder."""
    folder = (home or data_home()) / "audit-keys"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    hmac_path, signing_path = folder / "pseudonym.key", folder / "signing-key.pem"
    if not hmac_path.exists():
        _write_private(hmac_path, secrets.token_bytes(32))
    if not signing_path.exists():
        from cryptography.hazmat.primitives import serialization  # only to create a key (start-up time)
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        _write_private(signing_path, pem)
    return Keys(hmac_path.read_bytes(), signing_path.read_bytes())


def _private_append(path: Path) -> BinaryIO:
    """``path`` opened for appending, created 0600 (the log names files whose paths may name patients)."""
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab")


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def actor() -> dict[str, Any]:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return {"user": user, "uid": os.getuid(), "host": socket.gethostname()}


ANCHORS_NAME = "audit-anchors.jsonl"  # in $DICOMPOSE_HOME: every checkpoint of every log, outside the logs


def log_id(folder: Path) -> str | None:
    """The random identity of the log in ``folder`` (None if there is none): a log deleted and started again
    at the same place is another log, and its anchors tell the two apart."""
    try:
        return (folder / "log-id").read_text().strip() or None
    except OSError:
        return None


class AuditLog:
    def __init__(self, folder: Path, keys: Keys, anchors: Path | None = None) -> None:
        self.folder = folder
        self.keys = keys
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)  # it names files that may name patients
        for private in (folder, folder / "audit.jsonl", folder / "checkpoints.jsonl"):  # logs made before this rule
            with contextlib.suppress(OSError):
                private.chmod(0o700 if private == folder else 0o600)
        self.path = folder / "audit.jsonl"
        self.checkpoints = folder / "checkpoints.jsonl"
        self.public_key = folder / "signing-key.pub"
        if not self.public_key.exists():
            self.public_key.write_bytes(_public_pem(keys.signing_key_pem))
        if log_id(folder) is None:
            with contextlib.suppress(FileExistsError):
                _write_private(folder / "log-id", secrets.token_hex(16).encode())
        self.id = log_id(folder) or ""
        self.anchors = anchors if anchors is not None else data_home() / ANCHORS_NAME
        self._actor = actor()
        from dicompose.records.audit_forward import forward_target

        self.forward_to = forward_target()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with (self.folder / "audit.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _tail(self) -> tuple[int, str]:
        """(last sequence number, last hash); reads only the end of the file."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            return 0, GENESIS
        with self.path.open("rb") as fh:
            fh.seek(max(0, self.path.stat().st_size - 16384))  # entries are well under 16 KB
            last = fh.read().rstrip(b"\n").rsplit(b"\n", 1)[-1]
        entry = json.loads(last)
        return int(entry["seq"]), str(entry["hash"])

    def append(
        self,
        action: str,
        *,
        obj: Mapping[str, Any] | None = None,
        tool: str | None = None,
        image: str | None = None,
        run: str | None = None,
        outcome: str = "ok",
    ) -> dict[str, Any]:
        """Append one entry (pseudonymising any DICOM identifiers in ``obj``); returns it."""
        return self.append_many([(action, obj, tool, image, run, outcome)])[0]

    def append_many(self, items: list[Item]) -> list[dict[str, Any]]:
        """Append several entries under one lock and one fsync: (action, obj, tool, image, run, outcome)."""
        entries: list[dict[str, Any]] = []
        lines: list[bytes] = []
        pseudonyms: dict[str | None, str | None] = {}  # a batch names the same study, series, patient often
        with self._locked():
            seq, previous = self._tail()
            for action, obj, tool, image, run, outcome in items:
                if action not in ACTIONS:
                    raise ValueError(f"unknown audit action {action!r}")
                safe = dict(obj or {})
                for key in ("study", "series", "instance", "patient"):
                    if key in safe:
                        value = safe[key]
                        if value not in pseudonyms:
                            pseudonyms[value] = self.keys.pseudonym(value)
                        safe[key] = pseudonyms[value]
                seq += 1
                entry: dict[str, Any] = {
                    "seq": seq,
                    "time": datetime.now(UTC).isoformat(timespec="microseconds"),
                    "actor": self._actor,
                    "action": action,
                    "object": safe,
                    "tool": tool,
                    "image": image,
                    "run": run,
                    "outcome": outcome,
                    "prev": previous,
                }
                head, tail = _canonical_split(entry)
                entry["hash"] = previous = hashlib.sha256(previous.encode() + head + tail).hexdigest()
                lines.append(head + b',"hash":"' + previous.encode() + b'"' + tail + b"\n")
                entries.append(entry)
            with _private_append(self.path) as fh:
                fh.write(b"".join(lines))
                fh.flush()
                os.fsync(fh.fileno())
        if self.forward_to:  # after the local log has them: a collector never holds what the log does not
            from dicompose.records.audit_forward import forward

            forward(self.forward_to, entries, lines)
        return entries

    def checkpoint(self) -> dict[str, Any] | None:
        """Sign (seq, hash) of the last entry; a later truncation of the log is then detectable."""
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        with self._locked():
            seq, last = self._tail()
            if seq == 0:
                return None
            body = {"seq": seq, "hash": last, "time": datetime.now(UTC).isoformat(timespec="seconds")}
            key = load_pem_private_key(self.keys.signing_key_pem, password=None)
            signature = key.sign(_canonical(body))  # type: ignore[call-arg, union-attr]
            record = {**body, "signature": signature.hex()}
            with _private_append(self.checkpoints) as fh:
                fh.write(_canonical(record) + b"\n")
                fh.flush()
                os.fsync(fh.fileno())
            self._anchor(record)
        return record

    def _anchor(self, record: Mapping[str, Any]) -> None:
        """Copy the checkpoint outside the log (``$DICOMPOSE_HOME``): deleting or rolling back the log's folder
        cannot remove it, so :func:`verify` notices."""
        anchor = {"log": str(self.folder.resolve()), "id": self.id, **{k: record[k] for k in ("seq", "hash", "time")}}
        self.anchors.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.anchors, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "ab") as fh:
            fh.write(_canonical(anchor) + b"\n")
            fh.flush()
            os.fsync(fh.fileno())


def _public_pem(private_pem: bytes) -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    key = load_pem_private_key(private_pem, password=None)
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


@dataclass(frozen=True)
class Verdict:
    ok: bool
    entries: int
    checkpoints: int
    problem: str = ""


def home_anchors(folder: Path, anchors: Path | None = None) -> list[dict[str, Any]]:
    """The anchors ``$DICOMPOSE_HOME`` keeps for the log at ``folder`` (every log ever kept there)."""
    path = anchors if anchors is not None else data_home() / ANCHORS_NAME
    try:
        lines = path.read_bytes().splitlines()
    except OSError:
        return []
    where = str(folder.resolve())
    found = []
    for line in lines:
        with contextlib.suppress(ValueError):
            anchor = json.loads(line)
            if isinstance(anchor, dict) and anchor.get("log") == where:
                found.append(anchor)
    return found


def check_anchors(folder: Path, hashes: list[str], anchors: list[dict[str, Any]]) -> str:
    """What the anchors kept outside the log say about it: "" if they agree, else one line."""
    current = log_id(folder)
    for anchor in sorted(anchors, key=lambda a: (str(a.get("time", "")), int(a.get("seq", 0))), reverse=True):
        seq, when, source = int(anchor["seq"]), anchor.get("time", "?"), anchor.get("source", "$DICOMPOSE_HOME")
        if not hashes and current is None:
            return f"the audit log is missing: {source} holds a checkpoint of it ({seq} entries, {when})"
        if anchor.get("id") and current is not None and anchor["id"] != current:
            return (
                f"the audit log was deleted and started again: the log anchored in {source} at {when} "
                f"({seq} entries) is gone"
            )
        if seq > len(hashes):
            return f"log truncated or rolled back: {source} anchored {seq} entries at {when}, only {len(hashes)} remain"
        if hashes[seq - 1] != anchor["hash"]:
            return f"line {seq} (seq {seq}): does not match the checkpoint anchored in {source} at {when}"
    return ""


def verify(folder: Path, anchors: list[dict[str, Any]] | None = None) -> Verdict:
    """Check the chain, every checkpoint signature, and the anchors kept outside the log (``anchors``:
    those of the workspace index, each with a ``source``; ``$DICOMPOSE_HOME``'s are read here); name the first
    problem (line and seq)."""
    path = folder / "audit.jsonl"
    lines = path.read_bytes().splitlines() if path.exists() else []
    hashes, problem = _chain(lines)
    if problem:
        return Verdict(False, len(lines), 0, problem)
    checkpoints_path = folder / "checkpoints.jsonl"
    records = (
        [json.loads(line) for line in checkpoints_path.read_bytes().splitlines()] if checkpoints_path.exists() else []
    )
    problem = _checkpoints(folder, records, hashes)
    if not problem:
        problem = check_anchors(folder, hashes, [*(anchors or []), *home_anchors(folder)])
    return Verdict(not problem, len(lines), len(records), problem or "")


def _chain(lines: list[bytes]) -> tuple[list[str], str]:
    """Every entry's hash, in order, and the first break of the chain ("" if none)."""
    previous = GENESIS
    hashes: list[str] = []
    for number, raw in enumerate(lines, start=1):
        try:
            entry = json.loads(raw)
        except json.JSONDecodeError:
            return hashes, f"line {number}: not valid JSON (edited or damaged)"
        if entry.get("seq") != number:
            return hashes, (
                f"line {number}: sequence {entry.get('seq')} where {number} was "
                "expected (an entry was deleted, inserted or moved)"
            )
        if entry.get("prev") != previous or entry_hash(previous, entry) != entry.get("hash"):
            return (
                hashes,
                f"line {number} (seq {number}): hash chain broken (entry edited, or the one before it removed)",
            )
        previous = str(entry["hash"])
        hashes.append(previous)
    return hashes, ""


def _checkpoints(folder: Path, records: list[dict[str, Any]], hashes: list[str]) -> str:
    """The first checkpoint whose signature fails or that the chain no longer matches ("" if none)."""
    if not records:
        return ""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    public = load_pem_public_key((folder / "signing-key.pub").read_bytes())
    for index, record in enumerate(records, start=1):
        body = {k: record[k] for k in ("seq", "hash", "time")}
        try:
            public.verify(bytes.fromhex(record["signature"]), _canonical(body))  # type: ignore[call-arg, union-attr]
        except (InvalidSignature, ValueError):
            return f"checkpoint {index}: bad signature"
        seq = int(record["seq"])
        if seq > len(hashes):
            return f"log truncated: checkpoint {index} covers {seq} entries, only {len(hashes)} remain"
        if hashes[seq - 1] != record["hash"]:
            return f"line {seq} (seq {seq}): does not match signed checkpoint {index}"
    return ""


def read_entries(folder: Path) -> list[dict[str, Any]]:
    path = folder / "audit.jsonl"
    return [json.loads(line) for line in path.read_bytes().splitlines()] if path.exists() else []
