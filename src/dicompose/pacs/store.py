"""``dicompose pacs push``: C-STORE every DICOM file of a folder to a PACS, each instance's fate reported.

A presentation context per (SOP class, transfer syntax) the files carry, so each file travels as it is (never
re-encoded); more than an association can propose (128) are sent over several. What the PACS already holds (a
C-FIND per series, by SOP Instance UID) is not sent again and is reported ``already present``: a push is
idempotent, and a PACS that silently drops duplicates (Orthanc) cannot make a re-push look like a store.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dicompose.errors import PacsError
from dicompose.pacs.address import PacsAddress
from dicompose.pacs.association import FIND, PLAIN, NetworkSettings, associated, dropped

MAX_CONTEXTS = 128  # PS3.8: presentation context IDs are odd numbers 1-255
MEDIA_DIRECTORY = "1.2.840.10008.1.3.10"  # DICOMDIR: an index of a medium, not an instance to store
STORED, PRESENT, REFUSED, NOT_DICOM = "stored", "already present", "refused", "skipped (not a DICOM instance)"
DAMAGED = "refused: damaged (it ends before its last element, or an image has no pixel data): not sent"


@dataclass(frozen=True)
class Instance:
    path: Path
    sop_class: str
    sop_instance: str
    transfer_syntax: str
    study: str
    series: str


@dataclass
class PushReport:
    pacs: str
    results: list[tuple[Path, str]] = field(default_factory=list)  # (file, outcome: stored, refused: why, ...)
    studies: dict[str, int] = field(default_factory=dict)  # study UID → instances sent (for the audit log)

    def count(self, outcome: str) -> int:
        """Files whose outcome is ``outcome`` (``refused`` counts every refusal, whatever its status)."""
        return sum(1 for _path, said in self.results if said.split(":")[0] == outcome)

    @property
    def not_stored(self) -> list[tuple[Path, str]]:
        return [
            (path, said)
            for path, said in self.results
            if said not in (STORED, PRESENT) and not said.startswith("skipped")
        ]


def read_instance(path: Path) -> Instance | None:
    """What C-STORE needs of a file (header only), or None if it is not a DICOM instance we can send."""
    from pydicom import dcmread
    from pydicom.errors import InvalidDicomError

    try:
        ds = dcmread(path, stop_before_pixels=True, specific_tags=None)
        meta = ds.file_meta
        sop_class = str(meta.get("MediaStorageSOPClassUID", "") or ds.get("SOPClassUID", ""))
        sop_instance = str(meta.get("MediaStorageSOPInstanceUID", "") or ds.get("SOPInstanceUID", ""))
        if not sop_class or not sop_instance or not ds.get("SOPClassUID") or not ds.get("SOPInstanceUID"):
            return None  # a DICOMDIR (no SOP Instance of its own to store) or a file missing its identity
        if sop_class == MEDIA_DIRECTORY:
            return None
        return Instance(
            path,
            sop_class,
            sop_instance,
            str(meta.TransferSyntaxUID),
            str(ds.get("StudyInstanceUID", "")),
            str(ds.get("SeriesInstanceUID", "")),
        )
    except (InvalidDicomError, AttributeError, OSError, ValueError, KeyError, TypeError):
        return None


def sendable(files: list[Path]) -> tuple[list[Instance], list[tuple[Path, str]]]:
    """The instances a push may send, and an outcome for each file it may not: not DICOM (skipped), or
    damaged (refused: a PACS would store it cut short, as Orthanc does)."""
    from dicompose.pacs.local_copies import complete_file

    instances: list[Instance] = []
    unsent: list[tuple[Path, str]] = []
    for path in files:
        instance = read_instance(path)
        if instance is None:
            unsent.append((path, NOT_DICOM))
        elif not complete_file(path, instance.sop_instance):
            unsent.append((path, DAMAGED))
        else:
            instances.append(instance)
    return instances, unsent


def context_batches(instances: list[Instance], per_association: int = 0) -> list[list[Instance]]:
    """Instances in groups whose (SOP class, transfer syntax) pairs fit one association each, and (when
    ``per_association`` is set) no more than that many instances per group (pure)."""
    batches: list[list[Instance]] = []
    pairs: list[set[tuple[str, str]]] = []
    for instance in sorted(instances, key=lambda i: (i.sop_class, i.transfer_syntax, str(i.path))):
        pair = (instance.sop_class, instance.transfer_syntax)
        full = per_association > 0 and bool(batches) and len(batches[-1]) >= per_association
        if not batches or full or (pair not in pairs[-1] and len(pairs[-1]) >= MAX_CONTEXTS):
            batches.append([])
            pairs.append(set())
        batches[-1].append(instance)
        pairs[-1].add(pair)
    return batches


def present_on(address: PacsAddress, settings: NetworkSettings, instances: list[Instance]) -> set[str]:
    """SOP Instance UIDs of ``instances`` the PACS already holds (one C-FIND per series)."""
    from pydicom.dataset import Dataset

    series = sorted({(i.study, i.series) for i in instances if i.study and i.series})
    found: set[str] = set()
    if not series:
        return found
    with associated(address, settings, [(FIND, PLAIN)]) as assoc:
        for study, serie in series:
            query = Dataset()
            query.QueryRetrieveLevel = "IMAGE"
            query.StudyInstanceUID, query.SeriesInstanceUID, query.SOPInstanceUID = study, serie, ""
            for status, identifier in assoc.send_c_find(query, FIND):
                if not status:  # None or an empty dataset: the association went away under the request
                    raise dropped(assoc, address, "a query") or PacsError(f"{address}: no answer to a query")
                if status.Status in (0xFF00, 0xFF01) and identifier is not None:
                    found.add(str(identifier.get("SOPInstanceUID", "")))
    return found


def push(
    files: list[Path],
    address: PacsAddress,
    settings: NetworkSettings,
) -> PushReport:
    """Send ``files`` to the PACS; every file gets an outcome (stored, already present, refused: STATUS, or
    skipped when it is no DICOM instance). A PACS that drops the association mid-way raises a PacsError after
    what was stored."""

    report = PushReport(str(address))

    def outcome(path: Path, what: str) -> None:
        report.results.append((path, what))

    instances, unsent = sendable(files)
    report.results.extend(unsent)
    held = present_on(address, settings, instances)
    for instance in instances:
        if instance.sop_instance in held:
            outcome(instance.path, PRESENT)
    to_send = [i for i in instances if i.sop_instance not in held]
    try:
        for batch in context_batches(to_send, settings.per_association):
            _store_batch(address, settings, batch, report, outcome)
    except BaseException as exc:  # what was stored before the end is still reported and audited
        exc.partial = report  # type: ignore[attr-defined]
        raise
    return report


def _store_batch(
    address: PacsAddress,
    settings: NetworkSettings,
    batch: list[Instance],
    report: PushReport,
    outcome: Callable[[Path, str], None],
) -> None:
    """C-STORE a batch; a file the PACS drops the association on is reported refused and the rest go on over a
    new association (twice in a row: the PACS is gone, and that is an error)."""
    from pydicom import dcmread

    contexts = sorted({(i.sop_class, (i.transfer_syntax,)) for i in batch})
    left = list(batch)
    drops = 0
    while left:
        with associated(address, settings, contexts) as assoc:
            accepted = {(c.abstract_syntax, c.transfer_syntax[0]) for c in assoc.accepted_contexts}
            while left:
                instance = left.pop(0)
                if (instance.sop_class, instance.transfer_syntax) not in accepted:
                    outcome(instance.path, f"{REFUSED}: the PACS accepts no {instance.sop_class} in this encoding")
                    continue
                try:
                    status = assoc.send_c_store(dcmread(instance.path))
                except Exception as exc:  # one file pynetdicom cannot encode never stops the others
                    outcome(instance.path, f"{REFUSED}: cannot be sent as it is ({type(exc).__name__})")
                    continue
                if not status:  # the association went away under this file
                    drops += 1
                    outcome(instance.path, f"{REFUSED}: the PACS dropped the association on it")
                    if drops >= 3:  # three files in a row: the PACS, not the files
                        raise dropped(assoc, address, "a store") or PacsError(f"{address}: no answer to a store")
                    break
                drops = 0
                code = int(status.Status)
                if code == 0x0000 or code in (0xB000, 0xB007, 0xB006):  # success, or success with a warning
                    outcome(instance.path, STORED)
                    report.studies[instance.study] = report.studies.get(instance.study, 0) + 1
                else:
                    outcome(instance.path, f"{REFUSED}: status 0x{code:04X}")
