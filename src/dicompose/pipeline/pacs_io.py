"""Pipelines that start and end at a PACS: ``--in scans=dicom://AET@HOST:PORT?study=UID`` and ``--push-to``.

An input from a PACS is pulled into the workspace (``WORKSPACE/pacs/<PACS>/<study>/<series>/<instance>.dcm``,
each UID a keyed pseudonym: those paths reach the run's records and audit log)
before the run plans its tasks, and then is a folder like any other: the same study with the same instances is
not transferred again (:func:`dicompose.pacs.retrieve.pull` skips complete series), and unchanged files are
cached tasks. After a run that succeeded, ``--push-to [OUTPUT=]URL`` sends its published DICOM outputs (all, or
one output's) back; derived images carry new UIDs, so the PACS stores them as new series, and a push again
sends nothing it holds. Each transfer is in the run's audit log (PACS, study as a keyed pseudonym, count).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dicompose.config import configured
from dicompose.errors import UsageError
from dicompose.pacs.association import NetworkSettings, configured_settings
from dicompose.records.audit import Item

PACS_FOLDER = "pacs"


def network_settings() -> NetworkSettings:
    """Our side of a run's associations, from the configuration's ``[pacs]`` table (docs/pacs.md)."""
    return configured_settings()


def auth_file() -> Path | None:
    """DICOMweb credentials of a run: the configuration's ``[pacs] dicomweb_auth_file`` (else the environment's)."""
    value = configured("pacs", "dicomweb_auth_file", None, None)
    return Path(str(value)).expanduser() if value is not None else None


@dataclass(frozen=True)
class Transfer:
    """One pull or push of a run: what the report prints and the audit log keeps."""

    action: str  # "receive" | "send"
    pacs: str
    study_counts: dict[str, int]
    received: int = 0  # pulled now, or stored now
    present: int = 0  # already here (pull) or already on the PACS (push)
    refused: list[str] | None = None  # push: "file: why", one each
    fell_back: str = ""  # pull: why C-MOVE to [pacs] move_dest was used instead of C-GET (said, never silent)

    def audit_items(self, run_id: str) -> list[Item]:
        return [
            (self.action, {"pacs": self.pacs, "study": study, "instances": count}, "pacs", None, run_id, "ok")
            for study, count in self.study_counts.items()
        ]


def pacs_address(name: str, url: str) -> dict[str, str]:
    """The URL's query (study, series), checked: a PACS input names its study."""
    from dicompose.pacs.endpoints import name_of, query_of

    query = query_of(url)
    if "study" not in query:
        raise UsageError(
            f"--in {name}={name_of(url)}: name the study to pull (?study=UID, and &series=UID for one series)"
        )
    return query


def fetch_inputs(pacs_inputs: dict[str, str], workspace: Path) -> tuple[dict[str, Path], list[Transfer]]:
    """Pull every PACS input into the workspace: (input name → its folder, the transfers)."""
    from dicompose.pacs.endpoints import name_of, pull
    from dicompose.records.audit import load_keys

    settings = network_settings()
    keys = load_keys()

    def keyed(uid: str) -> str:  # paths reach records and the audit log: keyed pseudonyms, never UIDs
        return str(keys.pseudonym(uid))

    folders: dict[str, Path] = {}
    transfers: list[Transfer] = []
    ours = pushed_series(workspace)  # this workspace's own results, pushed back: never read again as inputs

    def skip(serie: str) -> bool:
        return keyed(serie) in ours

    for name, url in sorted(pacs_inputs.items()):
        query = pacs_address(name, url)
        study, series = query["study"], query.get("series")
        where = workspace / PACS_FOLDER / hashlib.sha256(name_of(url).encode()).hexdigest()[:16]
        try:
            report = pull(
                url,
                settings,
                study,
                where,
                series=series,
                auth_file=auth_file(),
                name=keyed,
                skip_series=skip if ours else None,
            )
        except BaseException as exc:  # Ctrl-C, a PACS gone: what arrived is patient data received, audited now
            partial = getattr(exc, "partial", None)
            if partial is not None and partial.studies:
                _audit_interrupted(workspace, keys, Transfer("receive", partial.pacs, partial.studies))
            raise
        folders[name] = where / keyed(study) / keyed(series) if series else where / keyed(study)
        transfers.append(
            Transfer(
                "receive", report.pacs, report.studies, report.received, report.present, fell_back=report.fell_back
            )
        )
    return folders, transfers


def _audit_interrupted(workspace: Path, keys: Any, transfer: Transfer) -> None:
    """A pull that ended early, in the workspace's audit log (no run was recorded yet)."""
    from dicompose.records.audit import AuditLog

    items: list[Item] = [
        (action, obj, tool, image, None, "interrupted") for action, obj, tool, image, _, _ in transfer.audit_items("")
    ]
    AuditLog(workspace / "audit", keys).append_many(items)


#: The series (keyed pseudonyms) this workspace pushed to a PACS: a pipeline that reads a study and pushes its
#: results into the same study would otherwise read them as inputs on its next run (masks of masks).
PUSHED = "pushed-series.json"


def pushed_series(workspace: Path) -> set[str]:
    try:
        return set(json.loads((workspace / PACS_FOLDER / PUSHED).read_text()))
    except (OSError, ValueError, TypeError):
        return set()


def _remember_pushed(workspace: Path, files: list[Path]) -> None:
    from dicompose.fileio import atomic_write_bytes
    from dicompose.pacs.store import read_instance
    from dicompose.records.audit import load_keys

    keys = load_keys()
    series = {str(keys.pseudonym(i.series)) for i in map(read_instance, files) if i is not None and i.series}
    known = pushed_series(workspace)
    if series - known:
        (workspace / PACS_FOLDER).mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(workspace / PACS_FOLDER / PUSHED, json.dumps(sorted(known | series)).encode())


def push_outputs(
    push_to: tuple[tuple[str | None, str], ...], out_dir: Path, outputs: list[str], workspace: Path
) -> list[Transfer]:
    """Send the published DICOM outputs (all, or the named output's) to each PACS; what it holds is skipped.
    The series sent (or found there) are remembered, so a run reading that study never reads them back."""
    from dicompose.pacs.endpoints import name_of, push
    from dicompose.pacs.store import PRESENT, STORED
    from dicompose.walk import Found, walk

    settings = network_settings()
    transfers = []
    for output, url in push_to:
        address = name_of(url)
        if output is not None and output not in outputs:
            raise UsageError(f"--push-to {output}={address}: no output {output!r} (outputs: {', '.join(outputs)})")
        folder = out_dir / output if output is not None else out_dir
        files = [Path(i.path) for i in walk(folder, [folder]) if isinstance(i, Found)] if folder.is_dir() else []
        report = push(url, files, settings, auth_file())
        _remember_pushed(workspace, [path for path, said in report.results if said in (STORED, PRESENT)])
        refused = [f"{path}: {said}" for path, said in report.not_stored]
        transfers.append(
            Transfer("send", report.pacs, report.studies, report.count(STORED), report.count(PRESENT), refused)
        )
    return transfers
