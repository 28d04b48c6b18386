"""PACS URLs and AE titles (pacs/address.py) and how a push groups files into associations (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dicompose.errors import UsageError
from dicompose.pacs.address import PacsAddress, is_pacs_url, parse_pacs_url
from dicompose.pacs.store import MAX_CONTEXTS, Instance, context_batches


def test_urls_name_the_pacs_and_its_ae_title():
    assert parse_pacs_url("dicom://ORTHANC@pacs.example.org:104") == PacsAddress("ORTHANC", "pacs.example.org", 104)
    tls = parse_pacs_url("dicom+tls://ARCHIVE%20A@[::1]:2762?study=1.2.3&series=1.2.3.4")
    assert tls == PacsAddress("ARCHIVE A", "::1", 2762, True, {"study": "1.2.3", "series": "1.2.3.4"})
    assert str(tls) == "dicom+tls://ARCHIVE A@[::1]:2762"  # messages and records: no query
    assert is_pacs_url("dicom://A@h:1") and not is_pacs_url("scans=dicom/x") and not is_pacs_url("dicomweb://x")


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("dicom://h:104", "AE title before '@'"),
        ("dicom://A:secret@h:104", "AE title before '@'"),
        ("dicom://A@h", "host and port"),
        ("dicom://A@h:0", "host and port"),
        ("dicom://A@h:70000", "port"),
        ("dicom://A@h:104/studies", "no path"),
        ("dicom://A@h:104?study=abc", "not a DICOM UID"),
        ("dicom://A@h:104?study=1.2&study=1.3", "once each"),
        ("dicom://A@h:104?patient=1", "study=UID"),
        ("dicom://AAAAAAAAAAAAAAAAA@h:104", "an AE title is 1 to 16"),
        ("dicom://A%5CB@h:104", "no backslash"),
        ("ftp://A@h:104", "not a PACS URL"),
    ],
)
def test_every_malformed_url_is_refused_naming_the_problem(url: str, said: str):
    with pytest.raises(UsageError, match=said.replace("(", r"\(")):
        parse_pacs_url(url)


def test_a_push_needs_one_association_per_128_encodings():
    def instance(n: int, syntax: str = "1.2.840.10008.1.2.1") -> Instance:
        return Instance(Path(f"/f{n}"), f"1.2.840.10008.5.1.4.1.1.{n % 300}", f"9.{n}", syntax, "1.1", "1.2")

    same = [instance(0) for _ in range(500)]
    assert [len(b) for b in context_batches(same)] == [500]  # one encoding: one association
    many = [instance(n) for n in range(300)]
    batches = context_batches(many)
    assert all(len({(i.sop_class, i.transfer_syntax) for i in b}) <= MAX_CONTEXTS for b in batches)
    assert sorted(i.path for b in batches for i in b) == sorted(i.path for i in many) and len(batches) == 3


def test_run_inputs_and_push_targets_recognise_urls_before_name_equals_path():
    from dicompose.cli.pipeline import parse_inputs, parse_push_to

    url = "dicom://PACS@h:104?study=1.2&series=1.2.3"
    assert parse_inputs([url], ["scans"]) == ({}, {"scans": url})
    assert parse_inputs([f"scans={url}", "key=k.bin"], ["scans", "key"])[1] == {"scans": url}
    with pytest.raises(UsageError, match="name the input"):
        parse_inputs([url], ["scans", "key"])
    assert parse_push_to(["dicom://PACS@h:104", "masks=dicom://PACS@h:104"]) == (
        (None, "dicom://PACS@h:104"),
        ("masks", "dicom://PACS@h:104"),
    )
    for bad in ("masks", "masks=/tmp/out", "dicom://h:104"):
        with pytest.raises(UsageError):
            parse_push_to([bad])
