"""The pydicom-free header reader (dicom/headscan.py) answers only where its answer is pydicom's.

Every file of pydicom's own test corpus and files built to stress it (sequences of undefined length before the
identifiers, nested items, implicit VR, padding, text pydicom decodes by character set, multiple values) are
read both ways; every prefix of a file too, so a value or sequence cut by the end of the bytes read is never
taken as read.
"""

from __future__ import annotations

import io
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from dicompose.dicom import synthetic
from dicompose.dicom.headscan import scan_values
from dicompose.dicom.identifiers import _QUICK as IDENTIFIERS
from dicompose.dicom.quicklook import HEAD_BYTES, first_values, pydicom_values
from dicompose.dicom.writing import rebuild_file_meta
from tests.support.dicom_checks import pydicom_corpus

SERIES_AND_INSTANCE = {0x0020000E: "UI", 0x00080018: "UI"}


def pydicom_reads(data: bytes, wanted: dict[int, str]) -> dict[int, str | None]:
    """What a full pydicom read of the file says (the quick look's contract: the same, or "cannot tell")."""
    ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    return {tag: (str(ds[tag].value or "") or None) if tag in ds else None for tag in wanted}


def agree(data: bytes, end: int, wanted: dict[int, str], whole: bool) -> bool:
    """Is the quick reader sure of the first ``end`` bytes of ``data``, and if so is it right? (asserted)"""
    head = data[:end]
    sure, values = scan_values(head, wanted, whole=whole)
    if sure and values is None:
        assert not whole  # "read more" only where there is more
    elif sure:
        assert values == pydicom_reads(data, wanted)
        quick_pydicom = pydicom_values(head, wanted, whole=whole)
        assert quick_pydicom in (None, values)  # pydicom's element reader gives up at sequences
    return sure


def test_every_file_of_pydicom_s_corpus_reads_as_pydicom_reads_it():
    files = pydicom_corpus()
    assert len(files) > 100
    sure = 0
    for path in files:
        data = path.read_bytes()
        for wanted in (IDENTIFIERS, SERIES_AND_INSTANCE):
            sure += agree(data, HEAD_BYTES, wanted, whole=len(data) <= HEAD_BYTES)
            sure += agree(data, len(data), wanted, whole=True)
    assert sure > len(files) * 2  # it answers for most files (else the runner would load pydicom after all)


def _derived_like(syntax: str, patient: str = "PAT-1") -> Dataset:
    """A slice with what derived and enhanced files put before the identifiers: nested sequences."""
    ds = synthetic.ct_slice("scan", 0, 8, 8)
    rebuild_file_meta(ds, "test")
    ds.file_meta.TransferSyntaxUID = syntax
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = "113130", "DCM", "Predecessor"
    inner = Dataset()
    inner.ReferencedSOPClassUID, inner.ReferencedSOPInstanceUID = ds.SOPClassUID, "1.2.3.4"
    inner.PurposeOfReferenceCodeSequence = Sequence([code])
    ds.SourceImageSequence = Sequence([inner, inner])  # (0008,2112)
    ds.ReferencedImageSequence = Sequence([])  # (0008,1140): empty
    ds.DerivationCodeSequence = Sequence([code])  # (0008,9215)
    ds.PatientID = patient
    return ds


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
def test_sequences_before_the_identifiers_are_stepped_over(tmp_path: Path, syntax: str):
    path = tmp_path / "a.dcm"
    _derived_like(syntax).save_as(path, enforce_file_format=True)
    data = path.read_bytes()
    assert agree(data, len(data), IDENTIFIERS, whole=True)
    assert first_values(data, IDENTIFIERS, whole=True)[0x00100020] == "PAT-1"  # type: ignore[index]


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
def test_every_prefix_is_either_read_right_or_left_to_a_longer_read(tmp_path: Path, syntax: str):
    path = tmp_path / "a.dcm"
    _derived_like(syntax).save_as(path, enforce_file_format=True)
    data = path.read_bytes()
    answers = set()
    for end in range(0, min(len(data), 1400)):
        sure, values = scan_values(data[:end], IDENTIFIERS, whole=False)
        if sure:
            answers.add(values is None)
            assert agree(data, end, IDENTIFIERS, whole=False)
        cut_file, values = scan_values(data[:end], IDENTIFIERS, whole=True)  # a file damaged, cut short here
        if cut_file:  # it ends between two elements: what it holds is what pydicom reads of it
            assert values == pydicom_reads(data[:end], IDENTIFIERS)
    assert answers == {True, False}  # both "read more" and full answers were given


@pytest.mark.parametrize(
    ("patient", "sure"),
    [
        ("PAT-1", True),
        (" LEADING", True),  # pydicom keeps leading spaces
        ("", True),  # empty: None
        ("Müller", False),  # decoded by character set: pydicom's job
        ("A\\B", False),  # two values
    ],
)
def test_text_values_as_pydicom_decodes_them(tmp_path: Path, patient: str, sure: bool):
    ds = _derived_like(ExplicitVRLittleEndian, patient)
    ds.SpecificCharacterSet = "ISO_IR 192"
    path = tmp_path / "a.dcm"
    ds.save_as(path, enforce_file_format=True)
    data = path.read_bytes()
    assert agree(data, len(data), IDENTIFIERS, whole=True) is sure
    assert first_values(data, IDENTIFIERS, whole=True) == pydicom_reads(data, IDENTIFIERS)


def test_what_it_leaves_to_pydicom(tmp_path: Path):
    ds = _derived_like(ExplicitVRBigEndian)
    path = tmp_path / "big.dcm"
    ds.save_as(path, enforce_file_format=True)
    assert scan_values(path.read_bytes(), IDENTIFIERS, whole=True) == (False, None)
    ds = _derived_like(ExplicitVRLittleEndian)
    ds.add_new(0x00080018, "LO", ds.SOPInstanceUID)  # a VR other than the dictionary's
    ds.save_as(path, enforce_file_format=True)
    assert scan_values(path.read_bytes(), IDENTIFIERS, whole=True) == (False, None)
    assert scan_values(b"not dicom" * 50, IDENTIFIERS, whole=True) == (False, None)


def test_a_pipeline_run_over_plain_files_never_loads_pydicom_in_the_runner(tmp_path: Path):
    """Grouping inputs and sealing outputs read identifiers of every file: without pydicom (0.2 s a run)."""
    import subprocess
    import sys

    scans = tmp_path / "scans"
    for i in range(3):
        synthetic.write_ct_series(scans / f"s{i}", f"series-{i}", 2, 8, 8)
    probe = (
        "import sys, atexit\n"
        "atexit.register(lambda: print('pydicom' in sys.modules, file=sys.stderr))\n"
        "from dicompose.cli.main import main\n"
        "main()\n"
    )
    argv = [sys.executable, "-c", probe, "run", "normalize", "--in", str(scans), "--out", str(tmp_path / "out")]
    argv += ["--engine", "local", "--workspace", str(tmp_path / "ws"), "-p", "min=0", "-p", "max=1"]
    proc = subprocess.run(argv, capture_output=True, text=True, env={"DICOMPOSE_HOME": str(tmp_path / "home")})
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "False"
    assert len(list((tmp_path / "out").rglob("*.dcm"))) == 6
    assert pydicom.dcmread(next((tmp_path / "out").rglob("*.dcm"))).ImageType[0] == "DERIVED"


def test_threads_that_need_pydicom_at_once_all_get_it(tmp_path: Path):
    """The runner imports pydicom lazily, from whichever thread first meets a file the quick reader leaves to
    it; two at once used to fail in pydicom's circular imports ("partially initialized module")."""
    import subprocess
    import sys

    ds = _derived_like(ExplicitVRBigEndian)  # left to pydicom by the quick reader
    path = tmp_path / "big.dcm"
    ds.save_as(path, enforce_file_format=True)
    probe = (
        "import sys, threading\n"
        "from pathlib import Path\n"
        "from dicompose.dicom.identifiers import identifiers\n"
        "from dicompose.dicom.quicklook import bare_dataset_syntax, pydicom_values\n"
        "errors = []\n"
        "data = Path(sys.argv[1]).read_bytes()\n"
        "ways = [lambda: identifiers(Path(sys.argv[1]))['instance'],\n"
        "        lambda: pydicom_values(data, {0x00080018: 'UI'}, whole=True),\n"
        "        lambda: bare_dataset_syntax(b'\\x08\\x00\\x16\\x00UI\\x02\\x00' + b'1\\x00' * 40) or True]\n"
        "def read(way):\n"
        "    try:\n"
        "        assert way()\n"
        "    except Exception as exc:\n"
        "        errors.append(repr(exc))\n"
        "threads = [threading.Thread(target=read, args=(ways[i % 3],)) for i in range(9)]\n"
        "[t.start() for t in threads]\n"
        "[t.join() for t in threads]\n"
        "print(errors)\n"
    )
    for _ in range(8):  # a fresh interpreter each time: pydicom not yet imported
        proc = subprocess.run([sys.executable, "-c", probe, str(path)], capture_output=True, text=True, check=True)
        assert proc.stdout.strip() == "[]", proc.stdout
