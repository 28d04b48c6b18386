"""The audit log of host commands (``dicompose normalize DIR``): one read and one write entry per file, from
what the tool learnt while it worked, written in groups on a helper thread. A launch inside a pipeline run is
audited by its runner instead (see :func:`auditing`)."""

from __future__ import annotations

import os
import stat
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from dicompose.config import data_home
from dicompose.dicom.identifiers import Fingerprint, file_facts
from dicompose.errors import UsageError
from dicompose.fileio import Digest
from dicompose.records.audit import AuditLog, Item, load_keys
from dicompose.tools.batch_types import FileResult, Status


def auditing() -> bool:
    """Host commands audit into the machine log; a step inside a run is audited by its runner instead."""
    return os.environ.get("DICOMPOSE_AUDIT", "") != "host"


def audit_object(path: Path, fingerprint: Fingerprint) -> dict[str, object]:
    """The audit log's object for a file: the same keys and values as reading ``identifiers(path)`` and
    ``sha256_file(path)`` from disk would give (the digest may still be computing: :class:`AuditBuffer`
    reads it on its writer thread)."""
    return {**fingerprint.identifiers, "path": str(path.absolute()), "sha256": fingerprint.digest}


def open_machine_audit() -> AuditLog | None:
    """The machine-level audit log of host commands (``$DICOMPOSE_HOME/audit``), or None inside a run."""
    if not auditing():
        return None
    try:
        return AuditLog(data_home() / "audit", load_keys())
    except OSError as exc:
        raise UsageError(
            f"cannot write the audit log in {data_home()} ({exc.strerror or exc}); "
            "set DICOMPOSE_HOME to a writable folder"
        ) from None


class AuditBuffer:
    """Audit entries of a batch, written in small groups (one lock and one fsync per group, not per file:
    per-file fsyncs competed with the outputs' own and halved parallel throughput). At most ``limit`` entries
    or ``seconds`` of work are pending; the rest is flushed when the batch ends, however it ends.

    A group is written on a helper thread while the batch goes on (its fsync would otherwise stall the work
    for milliseconds); at most one group is being written at a time, in order, and a failure to write one
    is raised by the next ``add`` or by ``close``.
    """

    def __init__(self, audit: AuditLog | None, tool: str, limit: int = 64, seconds: float = 0.5) -> None:
        self.audit, self.tool, self.limit, self.seconds = audit, tool, limit, seconds
        self.pending: list[Item] = []
        self.since = time.monotonic()
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="dicompose-audit") if audit is not None else None
        self._writing: Future[object] | None = None

    def add(self, result: FileResult) -> None:
        if self.audit is None:
            return
        if result.status is Status.PROCESSED and len(result.audit) == 2:
            self.pending += [
                ("read", result.audit[0], self.tool, None, None, "ok"),
                ("write", result.audit[1], self.tool, None, None, "ok"),
            ]
        elif result.status is Status.FAILED:
            self.pending.append(("read", _failed_read(result.source), self.tool, None, None, "failed"))
        if len(self.pending) >= self.limit or time.monotonic() - self.since >= self.seconds:
            self.flush()

    def flush(self) -> None:
        self._wait()
        if self._writer is not None and self.audit is not None and self.pending:
            self._writing = self._writer.submit(_append_settled, self.audit, self.pending)
        self.pending = []
        self.since = time.monotonic()

    def _wait(self) -> None:
        """Wait for the group being written; raise its failure, if any."""
        writing, self._writing = self._writing, None
        if writing is not None:
            writing.result()

    def close(self) -> None:
        try:
            self.flush()
            self._wait()
        finally:
            if self._writer is not None:
                self._writer.shutdown()
        if self.audit is not None:
            self.audit.checkpoint()


def _failed_read(path: Path) -> dict[str, object]:
    """The audit object of a file the tool refused: who it is about and its sha256 where it can be read (a
    refused file was still opened: a query by patient must find it), else its path alone."""
    obj: dict[str, object] = {"path": str(path.absolute())}
    try:
        if stat.S_ISREG(path.stat().st_mode):
            sha256, ids = file_facts(path)
            obj = {**ids, **obj, "sha256": sha256}
    except OSError:
        pass
    return obj


def _append_settled(audit: AuditLog, items: list[Item]) -> None:
    """Append ``items`` once their digests are computed (waiting here, on the writer thread, not in the work)."""
    settled: list[Item] = []
    for action, obj, tool, a, b, outcome in items:
        if obj is not None and isinstance(digest := obj.get("sha256"), Digest):
            obj = {**obj, "sha256": digest.hexdigest()}
        settled.append((action, obj, tool, a, b, outcome))
    audit.append_many(settled)
