"""``dicompose pacs pull``: a study (or one series) from a PACS into a folder, by C-GET, or by C-MOVE to a storage
SCP dicompose starts itself.

Each instance lands as ``OUT/<study UID>/<series UID>/<SOP instance UID>.dcm``, written under a hidden partial
name, synced, then renamed: a PACS that drops mid-transfer leaves whole files only. A series whose instances
are all here already (a C-FIND lists them) is not transferred again, and an instance received again is not
rewritten: a pull is idempotent.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dicompose.errors import PacsError, UsageError
from dicompose.pacs.address import PacsAddress, as_is, check_ae_title
from dicompose.pacs.association import FIND, GET, MOVE, PLAIN, NetworkSettings, associated, dropped
from dicompose.pacs.local_copies import present_instances

PARTIAL = ".dicompose-partial"
_SUCCESS, _PENDING = 0x0000, (0xFF00, 0xFF01)


@dataclass
class PullReport:
    pacs: str
    received: int = 0
    present: int = 0  # already here: not transferred (whole series) or not rewritten
    failed: int = 0  # sub-operations the PACS reported failed
    studies: dict[str, int] = field(default_factory=dict)  # study UID → instances received
    fell_back: str = ""  # why C-MOVE was used instead of C-GET (the PACS refused it, [pacs] move_dest set)
    skipped: int = 0  # instances of series not pulled (``skip_series``: a pipeline's own pushed results)


def instance_path(out: Path, study: str, series: str, sop: str, name: Callable[[str], str] = as_is) -> Path:
    """Where an instance lands: ``OUT/<study>/<series>/<instance>.dcm``, each UID through ``name`` (as it is, or
    a keyed pseudonym where paths end up in records and logs)."""
    for uid in (study, series, sop):
        if not uid or "/" in uid or uid.startswith("."):
            raise ValueError(f"not a UID: {uid!r}")
    return out / name(study) / name(series) / f"{name(sop)}.dcm"


class Receiver:
    """The storage side of a retrieve: each instance written whole, or not at all (thread-safe)."""

    def __init__(self, out: Path, report: PullReport, name: Callable[[str], str] = as_is) -> None:
        self.out, self.report, self.name = out, report, name
        self.lock = threading.Lock()
        self.sealer = ThreadPoolExecutor(2, thread_name_prefix="dicompose-receive")
        (out / PARTIAL).mkdir(parents=True, exist_ok=True)

    def on_store(self, event: Any) -> int:
        try:
            ds = event.dataset
            target = instance_path(
                self.out, str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID), self.name
            )
        except (AttributeError, ValueError, KeyError):
            return 0xC211  # cannot understand: no UIDs to name it by
        if target.exists():
            with self.lock:
                self.report.present += 1
            return _SUCCESS
        partial = self.out / PARTIAL / f"{uuid.uuid4().hex}.dcm"
        try:
            data = event.encoded_dataset()  # preamble, file meta and the dataset as the PACS sent it
            with partial.open("wb") as fh:
                fh.write(data)
        except OSError:
            partial.unlink(missing_ok=True)
            return 0xA700  # out of resources: the PACS counts it failed, the pull says so
        # synced and renamed on another thread while the next instance arrives: in place only once on disk
        self.sealer.submit(self._seal, partial, target, str(ds.StudyInstanceUID))
        return _SUCCESS

    def _seal(self, partial: Path, target: Path, study: str) -> None:
        try:
            fd = os.open(partial, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            target.parent.mkdir(parents=True, exist_ok=True)
            partial.replace(target)
        except OSError:
            partial.unlink(missing_ok=True)
            with self.lock:
                self.report.failed += 1
            return
        with self.lock:
            self.report.received += 1
            self.report.studies[study] = self.report.studies.get(study, 0) + 1

    def close(self) -> None:
        self.sealer.shutdown(wait=True)  # every instance received is in place (or counted failed) first
        partial = self.out / PARTIAL
        for leftover in partial.glob("*"):
            leftover.unlink(missing_ok=True)
        partial.rmdir() if partial.is_dir() and not any(partial.iterdir()) else None


@dataclass
class Holding:
    """What the PACS holds of a study: series UID → SOP Instance UIDs, and the SOP classes among them (empty
    when the PACS does not say: then the common storage classes are proposed)."""

    series: dict[str, set[str]] = field(default_factory=dict)
    classes: set[str] = field(default_factory=set)


def list_series(address: PacsAddress, settings: NetworkSettings, study: str, series: str | None) -> Holding:
    """What the PACS holds for the study (or that one series), by a C-FIND at IMAGE level."""
    from pydicom.dataset import Dataset

    held = Holding()
    with associated(address, settings, [(FIND, PLAIN)]) as assoc:
        query = Dataset()
        query.QueryRetrieveLevel = "IMAGE"
        query.StudyInstanceUID, query.SeriesInstanceUID, query.SOPInstanceUID = study, series or "", ""
        query.SOPClassUID = ""  # which storage contexts a C-GET must offer (any class, even one we never heard of)
        for status, identifier in assoc.send_c_find(query, FIND):
            if not status:  # None or an empty dataset: the association went away under the request
                raise dropped(assoc, address, "a query") or PacsError(f"{address}: no answer to a query")
            if status.Status in _PENDING and identifier is not None:
                held.series.setdefault(str(identifier.SeriesInstanceUID), set()).add(str(identifier.SOPInstanceUID))
                sop_class = str(identifier.get("SOPClassUID", "") or "").strip()
                if sop_class:
                    held.classes.add(sop_class)
            elif status.Status != _SUCCESS:
                raise PacsError(f"{address}: the query failed (status 0x{int(status.Status):04X})")
    return held


#: Transfer syntaxes in the order they are given their own context when not all fit: the uncompressed ones, then
#: the compressions PACS archives hold most (JPEG baseline and lossless, JPEG-LS, JPEG 2000, RLE), then the rest.
COMMON_SYNTAXES = [
    "1.2.840.10008.1.2",  # implicit VR little endian
    "1.2.840.10008.1.2.1",  # explicit VR little endian
    "1.2.840.10008.1.2.4.70",  # JPEG lossless SV1
    "1.2.840.10008.1.2.4.50",  # JPEG baseline
    "1.2.840.10008.1.2.4.51",  # JPEG extended
    "1.2.840.10008.1.2.4.57",  # JPEG lossless
    "1.2.840.10008.1.2.4.80",  # JPEG-LS lossless
    "1.2.840.10008.1.2.4.81",  # JPEG-LS near-lossless
    "1.2.840.10008.1.2.4.90",  # JPEG 2000 lossless
    "1.2.840.10008.1.2.4.91",  # JPEG 2000
    "1.2.840.10008.1.2.5",  # RLE lossless
    "1.2.840.10008.1.2.1.99",  # deflated explicit VR little endian
    "1.2.840.10008.1.2.2",  # explicit VR big endian (retired, still in archives)
]

#: Presentation contexts one association may propose (PS3.8: odd context ids 1-255); one is the C-GET's own.
MAX_CONTEXTS = 128


def get_contexts(classes: set[str], budget: int = MAX_CONTEXTS - 1) -> list[tuple[str, list[str]]]:
    """The storage contexts a C-GET proposes so the PACS can send every instance *as it holds it*.

    One context per SOP class with every transfer syntax (so each class is offered whatever happens), then, while
    the budget lasts, one context per (class, transfer syntax): a PACS picks a single syntax per context at
    negotiation, and an instance held in another one would have to be transcoded, which many PACS cannot do
    for every encoding (the sub-operation then fails). With the classes unknown, the common storage classes."""
    from pynetdicom import ALL_TRANSFER_SYNTAXES, StoragePresentationContexts

    syntaxes = sorted(ALL_TRANSFER_SYNTAXES, key=lambda s: [*COMMON_SYNTAXES, s].index(s))
    if not classes:
        return [(str(cx.abstract_syntax), syntaxes) for cx in StoragePresentationContexts][:budget]
    ordered = sorted(classes)[:budget]
    contexts = [(sop, syntaxes) for sop in ordered]
    for syntax in syntaxes:
        for sop in ordered:
            if len(contexts) >= budget:
                return contexts
            contexts.append((sop, [syntax]))
    return contexts


def _storage_contexts(classes: set[str] | None = None) -> list[tuple[str, list[str]]]:
    """What our own storage SCP accepts for C-MOVE (no limit on an acceptor): every class, every syntax."""
    from pynetdicom import ALL_TRANSFER_SYNTAXES, StoragePresentationContexts

    known = [str(cx.abstract_syntax) for cx in StoragePresentationContexts]
    return [(sop, list(ALL_TRANSFER_SYNTAXES)) for sop in [*known, *sorted(set(classes or ()) - set(known))]]


def _retrieve_identifier(study: str, series: str | None) -> Any:
    """What to retrieve: one series, or (``None``) the whole study."""
    from pydicom.dataset import Dataset

    identifier = Dataset()
    identifier.QueryRetrieveLevel = "SERIES" if series else "STUDY"
    identifier.StudyInstanceUID = study
    if series:
        identifier.SeriesInstanceUID = series
    return identifier


def _check(status: Any, assoc: Any, address: PacsAddress, report: PullReport, what: str) -> bool:
    """Follow one C-GET/C-MOVE response: True while pending. A refusal or a drop raises."""
    if not status:  # None or an empty dataset: the association went away under the request
        raise dropped(assoc, address, what) or PacsError(f"{address}: no answer during {what}")
    code = int(status.Status)
    if code in _PENDING:
        return True
    failed = int(status.get("NumberOfFailedSuboperations", 0) or 0)
    report.failed += failed
    if code in (_SUCCESS, 0xB000) or failed:  # some sub-operations failed (counted): the rest is still good
        return False
    raise PacsError(f"{address}: the PACS refused {what} (status 0x{code:04X})")


def pull(
    address: PacsAddress,
    settings: NetworkSettings,
    study: str,
    out: Path,
    *,
    series: str | None = None,
    move_dest: str | None = None,
    name: Callable[[str], str] = as_is,
    skip_series: Callable[[str], bool] | None = None,
) -> PullReport:
    """Retrieve the study (or series) into ``out`` by C-GET, or by C-MOVE to ``move_dest`` (AET:PORT) when given
    or when the PACS refuses C-GET. ``name`` turns each UID into its path component (default: the UID)."""
    report = PullReport(str(address))
    first = series is None and skip_series is None and not _anything_in(out / name(study))
    if first:  # a first pull: the whole study, in one request
        classes = study_classes(address, settings, study)
        wanted: list[str | None] = [None]
        held = Holding(classes=classes)
    else:
        held = list_series(address, settings, study, series)
        if not held.series:
            raise PacsError(f"{address}: no such study{' and series' if series else ''} on the PACS")
        wanted = []
    for serie, sops in sorted(held.series.items()):
        if skip_series is not None and skip_series(serie):
            report.skipped += len(sops)
            continue
        folder = out / name(study) / name(serie)
        if present_instances(folder, {sop: name(sop) for sop in sops}, name) == sops:
            report.present += len(sops)
        else:
            wanted.append(serie)
    if not wanted:
        return report
    receiver = Receiver(out, report, name)
    try:
        return _retrieve(address, settings, study, wanted, receiver, report, move_dest, held.classes)
    except BaseException as exc:  # what arrived before the end is still reported and audited
        exc.partial = report  # type: ignore[attr-defined]
        raise
    finally:
        receiver.close()


def _anything_in(folder: Path) -> bool:
    try:
        return any(folder.iterdir())
    except OSError:  # not there (or not a folder: the receiver will say)
        return False


def study_classes(address: PacsAddress, settings: NetworkSettings, study: str) -> set[str]:
    """The SOP classes of a study by one STUDY-level C-FIND (SOP Classes in Study), or a PacsError when the
    PACS does not hold it. Empty when the PACS does not say: the common storage classes are proposed then."""
    from pydicom.dataset import Dataset

    classes: set[str] = set()
    found = False
    with associated(address, settings, [(FIND, PLAIN)]) as assoc:
        query = Dataset()
        query.QueryRetrieveLevel = "STUDY"
        query.StudyInstanceUID = study
        query.SOPClassesInStudy = ""
        query.NumberOfStudyRelatedInstances = ""
        for status, identifier in assoc.send_c_find(query, FIND):
            if not status:
                raise dropped(assoc, address, "a query") or PacsError(f"{address}: no answer to a query")
            if status.Status in _PENDING and identifier is not None:
                found = found or str(identifier.get("StudyInstanceUID", "")) == study
                value = identifier.get("SOPClassesInStudy")
                values = value if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue" else [value]
                classes.update(str(v).strip() for v in values if v and str(v).strip())
            elif status.Status != _SUCCESS:
                raise PacsError(f"{address}: the query failed (status 0x{int(status.Status):04X})")
    if not found:
        raise PacsError(f"{address}: no such study on the PACS")
    return classes


def _retrieve(
    address: PacsAddress,
    settings: NetworkSettings,
    study: str,
    wanted: list[str | None],
    receiver: Receiver,
    report: PullReport,
    move_dest: str | None,
    classes: set[str],
) -> PullReport:
    if move_dest is None:
        refused = _get(address, settings, study, wanted, receiver, report, classes)
        if refused is None:
            return report
        if settings.move_dest is None:
            raise PacsError(
                f"{address}: {refused}; give --move-dest AET:PORT (or set [pacs] move_dest) to receive by C-MOVE"
            )
        report.fell_back = f"{refused}: received by C-MOVE to {settings.move_dest} ([pacs] move_dest)"
        move_dest, source = settings.move_dest, "[pacs] move_dest"
    else:
        source = "--move-dest"
    _move(address, settings, study, wanted, receiver, report, move_dest, source, classes)
    return report


def _get(
    address: PacsAddress,
    settings: NetworkSettings,
    study: str,
    wanted: list[str | None],
    receiver: Receiver,
    report: PullReport,
    classes: set[str],
) -> str | None:
    """C-GET each wanted series; None when done, or why the PACS will not serve C-GET."""
    from pynetdicom import build_role, evt

    storage = get_contexts(classes)
    contexts = [(GET, PLAIN), *storage]
    roles = [build_role(sop, scp_role=True) for sop in dict.fromkeys(sop for sop, _ in storage)]
    with associated(address, settings, contexts, roles=roles, handlers=[(evt.EVT_C_STORE, receiver.on_store)]) as assoc:
        if not any(cx.abstract_syntax == GET for cx in assoc.accepted_contexts):
            return "the PACS does not accept C-GET"
        for serie in wanted:
            for status, _identifier in assoc.send_c_get(_retrieve_identifier(study, serie), GET):
                refusal = status and int(status.Status) in (0xA701, 0xA702, 0xC000)
                if refusal and report.received == 0 and not status.get("NumberOfFailedSuboperations"):
                    return f"the PACS refused C-GET (status 0x{int(status.Status):04X})"
                if not status and assoc.is_established and report.received == 0:  # DCMTK-based PACS refusing
                    return "the PACS refused C-GET (no response: it may not allow C-GET for our AE title)"
                if not _check(status, assoc, address, report, "a C-GET"):
                    break
    return None


def _move(
    address: PacsAddress,
    settings: NetworkSettings,
    study: str,
    wanted: list[str | None],
    receiver: Receiver,
    report: PullReport,
    move_dest: str,
    source: str,
    classes: set[str],
) -> None:
    """C-MOVE each wanted series to our own storage SCP, listening at ``move_dest`` (AET:PORT) for the run."""
    from pynetdicom import AE, evt

    aet, sep, port_text = move_dest.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise UsageError(f"{source} {move_dest!r}: expected AET:PORT, e.g. DICOMPOSE:11112")
    aet = check_ae_title(aet, f"{source} AE title")
    scp = AE(ae_title=aet)
    scp.maximum_pdu_size = settings.max_pdu
    scp.network_timeout = scp.acse_timeout = scp.dimse_timeout = settings.timeout
    for sop, syntaxes in _storage_contexts(classes):
        scp.add_supported_context(sop, syntaxes)
    try:
        server = scp.start_server(
            ("", int(port_text)), block=False, evt_handlers=[(evt.EVT_C_STORE, receiver.on_store)]
        )
    except OSError as exc:
        raise PacsError(f"cannot listen on port {port_text} for C-MOVE ({exc.strerror or exc})") from None
    try:
        with associated(address, settings, [(MOVE, PLAIN)]) as assoc:
            for serie in wanted:
                for status, _identifier in assoc.send_c_move(_retrieve_identifier(study, serie), aet, MOVE):
                    try:
                        if not _check(status, assoc, address, report, f"a C-MOVE to {aet}"):
                            break
                    except PacsError as exc:
                        if "refused" not in str(exc):
                            raise
                        raise PacsError(  # the usual cause: the PACS has no such AE title, or another port for it
                            f"{exc}; does the PACS know {aet} as this host, port {port_text}?"
                        ) from None
    finally:
        if server is not None:
            server.shutdown()
