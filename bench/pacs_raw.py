"""The raw pynetdicom loops bench/pacs.py compares dicompose with (what a user would write by hand):
``push FOLDER``: one association, C-STORE every file; ``pull STUDY OUT``: one C-GET of the study, each instance
written as received. Run inside the PACS's network namespace by bench/pacs.py; prints the seconds taken."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from pydicom import dcmread
from pydicom.dataset import Dataset
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, StoragePresentationContexts, build_role, evt

GET = "1.2.840.10008.5.1.4.1.2.2.3"


def push(folder: Path) -> None:
    files = sorted(folder.rglob("*.dcm"))
    ae = AE(ae_title="DICOMPOSE")
    for syntax in {(str(d.SOPClassUID), str(d.file_meta.TransferSyntaxUID)) for d in map(dcmread, files[:1])}:
        ae.add_requested_context(syntax[0], syntax[1])
    assoc = ae.associate("127.0.0.1", 4242, ae_title="ORTHANC")
    for path in files:
        assoc.send_c_store(dcmread(path))
    assoc.release()


def pull(study: str, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)

    def on_store(event: object) -> int:
        ds = event.dataset  # type: ignore[attr-defined]
        (out / f"{ds.SOPInstanceUID}.dcm").write_bytes(event.encoded_dataset())  # type: ignore[attr-defined]
        return 0

    ae = AE(ae_title="DICOMPOSE")
    ae.add_requested_context(GET)
    storage = StoragePresentationContexts[:127]
    for cx in storage:
        ae.add_requested_context(cx.abstract_syntax, ALL_TRANSFER_SYNTAXES)
    roles = [build_role(cx.abstract_syntax, scp_role=True) for cx in storage]
    assoc = ae.associate(
        "127.0.0.1", 4242, ae_title="ORTHANC", ext_neg=roles, evt_handlers=[(evt.EVT_C_STORE, on_store)]
    )
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = study
    for _status, _identifier in assoc.send_c_get(query, GET):
        pass
    assoc.release()


if __name__ == "__main__":
    started = time.perf_counter()
    if sys.argv[1] == "push":
        push(Path(sys.argv[2]))
    else:
        pull(sys.argv[2], Path(sys.argv[3]))
    print(f"{time.perf_counter() - started:.4f}")
