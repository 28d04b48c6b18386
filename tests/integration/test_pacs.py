"""``dicompose pacs`` against a real PACS: Debian's Orthanc, in a private network namespace with only loopback,
checking AE titles both ways (tests/support/orthanc.py; CI: DICOMPOSE_REQUIRE=orthanc, scripts/orthanc.sh)."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pydicom
import pytest

from dicompose.dicom import synthetic
from dicompose.tools.samples import sample_data_folder
from tests.support.cli import BIN
from tests.support.components import need
from tests.support.orthanc import Orthanc, orthanc_available

pytestmark = pytest.mark.pacs


@pytest.fixture(scope="module")
def pacs(tmp_path_factory: pytest.TempPathFactory):
    need("orthanc", *orthanc_available())
    server = Orthanc(tmp_path_factory.mktemp("orthanc")).start()
    yield server
    server.stop()


def dicompose(pacs: Orthanc, home: Path, *argv: str) -> tuple[int, str, str]:
    env = {"PATH": os.environ["PATH"], "DICOMPOSE_HOME": str(home), "HOME": str(home)}
    proc = pacs.run([str(BIN / "dicompose"), *argv], env=env, timeout=300)
    return proc.returncode, proc.stdout, proc.stderr


def one_line(text: str) -> str:
    return " ".join(text.split())


def study_of(path: Path) -> str:
    return str(pydicom.dcmread(path, stop_before_pixels=True).StudyInstanceUID)


def test_echo_and_every_refusal_is_one_line_naming_the_pacs(pacs: Orthanc, tmp_path: Path):
    code, out, err = dicompose(pacs, tmp_path, "pacs", "echo", pacs.url)
    assert code == 0 and "C-ECHO answered" in out, err
    code, _out, err = dicompose(pacs, tmp_path, "pacs", "echo", pacs.url, "--aet", "STRANGER")
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err
    assert "refused the association of STRANGER (Calling AE title not recognised" in one_line(err)
    code, _out, err = dicompose(pacs, tmp_path, "pacs", "echo", pacs.url.replace("ORTHANC@", "ARCHIVE@"))
    assert code == 1 and "Called AE title not recognised" in one_line(err) and "dicom://ARCHIVE@" in err
    code, _out, err = dicompose(pacs, tmp_path, "pacs", "echo", "dicom://ORTHANC@127.0.0.1:4999", "--attempts", "2")
    assert code == 1 and "cannot connect to 127.0.0.1:4999" in err and "after 2 attempts" in err
    for bad, said in (
        ("dicom://127.0.0.1:4242", "AE title before '@'"),
        ("dicom://ORTHANC@127.0.0.1", "host and port"),
        ("dicom://ORTHANC@127.0.0.1:99999", "port"),
        ("http://ORTHANC@127.0.0.1:4242", "not a PACS URL"),
        ("dicom://ORTHANC@127.0.0.1:4242?patient=x", "study=UID"),
    ):
        code, _out, err = dicompose(pacs, tmp_path, "pacs", "echo", bad)
        assert code == 2 and said in err and "Traceback" not in err, (bad, err)
    code, _out, err = dicompose(pacs, tmp_path, "pacs", "echo", pacs.url, "--aet", "A" * 17)
    assert code == 2 and "an AE title is 1 to 16" in err


def test_push_pull_round_trip_is_idempotent_whole_and_audited(pacs: Orthanc, tmp_path: Path):
    samples = tmp_path / "samples"
    samples.mkdir()
    for source in sorted(sample_data_folder().glob("*.dcm")):
        (samples / source.name).write_bytes(source.read_bytes())
    (samples / "README.txt").write_text("not a scan")
    before = len(pacs.rest("/instances"))
    code, out, err = dicompose(pacs, tmp_path / "home", "pacs", "push", str(samples), "--to", pacs.url)
    assert code == 0, err
    assert "5 stored, 0 already present, 1 skipped (not DICOM)" in one_line(out)
    assert len(pacs.rest("/instances")) == before + 5  # what the PACS itself says it holds
    code, out, _err = dicompose(pacs, tmp_path / "home", "pacs", "push", str(samples), "--to", pacs.url, "--json")
    report = json.loads(out)
    assert code == 0 and sorted(f["outcome"] for f in report["files"]).count("already present") == 5
    study = study_of(samples / "ct_01.dcm")
    pulled = tmp_path / "pulled"
    code, out, err = dicompose(
        pacs, tmp_path / "home", "pacs", "pull", pacs.url, "--study", study, "--out", str(pulled)
    )
    assert code == 0 and "3 received, 0 already present" in one_line(out), err
    files = sorted(pulled.rglob("*.dcm"))
    assert len(files) == 3 and not list(pulled.rglob(".dicompose-partial*"))
    originals = {pydicom.dcmread(p).SOPInstanceUID: pydicom.dcmread(p) for p in samples.glob("ct_*.dcm")}
    for path in files:
        got = pydicom.dcmread(path)
        assert path.stem == got.SOPInstanceUID and path.parent.name == got.SeriesInstanceUID
        assert (got.pixel_array == originals[got.SOPInstanceUID].pixel_array).all()
    stamps = {p: p.stat().st_mtime_ns for p in files}
    code, out, _err = dicompose(
        pacs, tmp_path / "home", "pacs", "pull", pacs.url, "--study", study, "--out", str(pulled)
    )
    assert code == 0 and "0 received, 3 already present" in one_line(out)
    assert {p: p.stat().st_mtime_ns for p in files} == stamps  # nothing rewritten
    damaged = files[0]
    damaged.write_bytes(damaged.read_bytes()[:-1000])  # a copy cut short (a full disk, a hand-made copy)
    code, out, _err = dicompose(
        pacs, tmp_path / "home", "pacs", "pull", pacs.url, "--study", study, "--out", str(pulled)
    )
    assert code == 0 and "1 received, 2 already present" in one_line(out), out
    assert pydicom.dcmread(damaged).pixel_array.shape == (128, 128)  # whole again
    moved = tmp_path / "moved"
    code, out, err = dicompose(
        pacs,
        tmp_path / "home",
        "pacs",
        "pull",
        pacs.url,
        "--study",
        study,
        "--out",
        str(moved),
        "--move-dest",
        "DICOMPOSE:11112",
    )
    assert code == 0 and "3 received" in out, err
    assert sorted(p.name for p in moved.rglob("*.dcm")) == sorted(p.name for p in files)
    log = (tmp_path / "home" / "audit" / "audit.jsonl").read_text()
    entries = [json.loads(line) for line in log.splitlines()]
    sent = [e for e in entries if e["action"] == "send"]
    received = [e for e in entries if e["action"] == "receive"]
    assert sorted(e["object"]["instances"] for e in sent) == [2, 3]  # two studies, once (the re-push sent none)
    assert [e["object"]["instances"] for e in received] == [3, 1, 3] and received[0]["object"]["pacs"] == pacs.url
    assert study not in log and received[0]["object"]["study"] in {e["object"]["study"] for e in sent}  # pseudonyms
    code, out, err = dicompose(pacs, tmp_path / "home", "audit", "show", "--workspace", str(tmp_path / "home"))
    assert code == 0 and f"{pacs.url} (3 instances, study p-" in one_line(out), err  # the text view says it too


def _new_study(folder: Path, series: str, count: int, size: int) -> str:
    """A CT series of ``count`` slices in a study of its own (a fresh Study Instance UID, returned)."""
    from pydicom.uid import generate_uid

    study = generate_uid()
    for path in synthetic.write_ct_series(folder, series, count, size, size):
        ds = pydicom.dcmread(path)
        ds.StudyInstanceUID = study
        ds.save_as(path, enforce_file_format=True)
    return study


def test_association_limits_are_options(pacs: Orthanc, tmp_path: Path):
    """--per-association splits a push over several associations, --max-pdu is what we
    accept (0: no limit), both also from the configuration file."""
    folder = tmp_path / "study"
    study = _new_study(folder, "limits", 5, 64)
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text("[pacs]\nmax_pdu = 0\n")
    push = ["pacs", "push", str(folder), "--to", pacs.url, "--per-association", "2", "--json"]
    code, out, err = dicompose(pacs, home, *push)
    assert code == 0 and [f["outcome"] for f in json.loads(out)["files"]] == ["stored"] * 5, err
    pull = ["pacs", "pull", pacs.url, "--study", study, "--out", str(tmp_path / "out"), "--max-pdu", "4096"]
    code, out, err = dicompose(pacs, home, *pull)
    assert code == 0 and "5 received" in one_line(out), err
    code, _out, err = dicompose(pacs, home, *pull[:-2], "--max-pdu", "-1")
    assert code == 2 and "Traceback" not in err
    (home / "config.toml").write_text("[pacs]\nper_association = -3\n")
    code, _out, err = dicompose(pacs, home, *push[:-3])
    assert code == 2 and "per_association" in err and "Traceback" not in err


def _published(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*.dcm") if ".dicompose-partial" not in path.parts]


def _pull_under_way(pacs: Orthanc, tmp_path: Path, series: str, *options: str) -> tuple[Any, list[str]]:
    """A 240-instance study pushed, then a pull of it started and seen to have published 5 instances (files
    still in its staging folder, ``.dicompose-partial``, do not count: an interrupt discards them)."""
    synthetic.write_ct_series(tmp_path / "big", series, 240, 256, 256)
    code, _out, err = dicompose(pacs, tmp_path / "home", "pacs", "push", str(tmp_path / "big"), "--to", pacs.url)
    assert code == 0, err
    study = study_of(next((tmp_path / "big").rglob("*.dcm")))
    env = {"PATH": os.environ["PATH"], "DICOMPOSE_HOME": str(tmp_path / "home")}
    argv = [str(BIN / "dicompose"), "pacs", "pull", pacs.url, "--study", study, "--out", str(tmp_path / "out")]
    run = pacs.popen([*argv, *options], env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(_published(tmp_path / "out")) < 5:
        time.sleep(0.01)
    return run, argv


def test_a_pacs_killed_mid_transfer_leaves_whole_files_and_the_next_pull_finishes(tmp_path: Path):
    need("orthanc", *orthanc_available())
    pacs = Orthanc(tmp_path / "orthanc").start()
    try:
        run, argv = _pull_under_way(pacs, tmp_path, "killed-mid-transfer", "--attempts", "1", "--timeout", "5")
        pacs.kill()
        _out, err = run.communicate(timeout=120)
        got = list((tmp_path / "out").rglob("*.dcm"))
        assert run.returncode == 1 and "Traceback" not in err and err.count("\n") == 1, err
        assert "dicom://ORTHANC@127.0.0.1:4242" in err and "received (whole files only) before it" in err
        assert 5 <= len(got) < 240, "the PACS was not killed mid-transfer"
        assert not list((tmp_path / "out").rglob(".dicompose-partial/*"))
        for path in got:  # whole files only
            assert pydicom.dcmread(path).pixel_array.shape == (256, 256)
        pacs = Orthanc(tmp_path / "orthanc").start()  # the same storage: the study is still there
        code, _out, err = dicompose(pacs, tmp_path / "home", *argv[1:])
        assert code == 0, err
        assert len(list((tmp_path / "out").rglob("*.dcm"))) == 240
    finally:
        pacs.stop()


def test_ctrl_c_mid_pull_stops_at_once_and_keeps_whole_files(tmp_path: Path):
    """Ctrl-C during a C-GET aborts the association (no orderly release to wait for while the PACS is still
    sending: that waited the whole timeout), says so in one line, keeps what arrived whole and audits it."""
    need("orthanc", *orthanc_available())
    pacs = Orthanc(tmp_path / "orthanc").start()
    try:
        run, _argv = _pull_under_way(pacs, tmp_path, "interrupted-pull")  # the default 30 s timeout
        run.send_signal(signal.SIGINT)
        interrupted = time.monotonic()
        _out, err = run.communicate(timeout=60)
        took = time.monotonic() - interrupted
        got = list((tmp_path / "out").rglob("*.dcm"))
        assert run.returncode == 130 and "Traceback" not in err and err.strip().count("\n") == 0, err
        assert "interrupted: " in err and "run the same command again to finish" in err
        assert took < 10, f"Ctrl-C took {took:.1f} s"
        assert 5 <= len(got) < 240 and not list((tmp_path / "out").rglob(".dicompose-partial/*"))
        for path in got:
            assert pydicom.dcmread(path).pixel_array.shape == (256, 256)
        log = (tmp_path / "home" / "audit" / "audit.jsonl").read_text().splitlines()
        received = [json.loads(line) for line in log if '"receive"' in line]
        assert received and received[-1]["object"]["instances"] == len(got)
    finally:
        pacs.stop()


def test_a_pacs_that_refuses_c_get_is_asked_by_c_move(tmp_path: Path):
    need("orthanc", *orthanc_available())
    pacs = Orthanc(tmp_path / "orthanc", allow_get=False).start()
    try:
        code, _out, err = dicompose(
            pacs, tmp_path / "home", "pacs", "push", str(sample_data_folder()), "--to", pacs.url
        )
        assert code == 0, err
        study = study_of(sample_data_folder() / "mr_01.dcm")
        argv = ["pacs", "pull", pacs.url, "--study", study, "--out", str(tmp_path / "out")]
        code, _out, err = dicompose(pacs, tmp_path / "home", *argv)
        assert code == 1 and "refused C-GET" in err and "--move-dest AET:PORT" in err and "[pacs] move_dest" in err, err
        assert not list((tmp_path / "out").rglob("*.dcm"))
        code, out, err = dicompose(pacs, tmp_path / "home", *argv, "--move-dest", "MOVER:11113")
        assert code == 0 and "2 received" in out, err
        # a site that configures its C-MOVE destination is served by C-MOVE when C-GET is refused, pipelines too
        home = tmp_path / "configured"
        home.mkdir()
        (home / "config.toml").write_text('[pacs]\nmove_dest = "MOVER:11113"\n')
        argv[-1] = str(tmp_path / "again")
        code, out, err = dicompose(pacs, home, *argv)
        assert code == 0 and "2 received" in out and "C-MOVE to MOVER:11113 ([pacs] move_dest)" in one_line(err), err
        run = ["run", "normalize", "--in", f"{pacs.url}?study={study}", "--out", str(tmp_path / "normalized")]
        code, out, err = dicompose(pacs, home, *run, "--workspace", str(tmp_path / "ws"), "--engine", "local")
        assert code == 0, err
        assert len(list((tmp_path / "normalized").rglob("*.dcm"))) == 2
        assert "note:" in err and "C-MOVE to MOVER:11113 ([pacs] move_dest)" in one_line(err), err  # a run says it too
    finally:
        pacs.stop()


def test_dicom_tls_both_ways_and_every_certificate_problem_in_one_line(tmp_path: Path):
    """A PACS that speaks only TLS and requires a client certificate signed by its CA."""
    need("orthanc", *orthanc_available())
    from tests.support.certs import make_certs

    certs = make_certs(tmp_path / "certs")
    pacs = Orthanc(tmp_path / "orthanc", tls=certs).start()
    try:
        mine = ["--tls-ca", str(certs.ca), "--tls-cert", str(certs.client_cert), "--tls-key", str(certs.client_key)]
        code, out, err = dicompose(pacs, tmp_path / "home", "pacs", "echo", pacs.url, *mine)
        assert code == 0 and "C-ECHO answered" in out, err
        code, out, err = dicompose(
            pacs, tmp_path / "home", "pacs", "push", str(sample_data_folder()), "--to", pacs.url, *mine
        )
        assert code == 0 and "5 stored" in one_line(out), err
        study = study_of(sample_data_folder() / "ct_01.dcm")
        pull = ["pacs", "pull", pacs.url, "--study", study, "--out", str(tmp_path / "out"), *mine]
        code, out, err = dicompose(pacs, tmp_path / "home", *pull)
        assert code == 0 and "3 received" in out, err
        for argv, said in (
            (["--tls-ca", str(certs.other_ca), *mine[2:]], "certificate is not trusted"),  # not the PACS's CA
            (mine[:2], "TLS handshake"),  # no client certificate: the PACS hangs up
            (["--tls-ca", str(tmp_path / "missing.pem")], "--tls-ca"),
        ):
            code, _out, err = dicompose(pacs, tmp_path / "home", "pacs", "echo", pacs.url, "--attempts", "1", *argv)
            assert code in (1, 2) and said in err and err.count("\n") == 1 and "Traceback" not in err, (argv, err)
        plain = pacs.url.replace("dicom+tls://", "dicom://")
        code, _out, err = dicompose(pacs, tmp_path / "home", "pacs", "echo", plain, "--attempts", "1", "--timeout", "3")
        assert code == 1 and "Traceback" not in err and err.count("\n") == 1, err
        code, _out, err = dicompose(pacs, tmp_path / "home", "pacs", "echo", plain, *mine)
        assert code == 2 and "are for dicom+tls://" in err
    finally:
        pacs.stop()


def test_a_pipeline_starts_and_ends_at_the_pacs(pacs: Orthanc, tmp_path: Path):
    """The demo pipeline from a series on the PACS, its masks pushed back as new series of the study; run again,
    nothing moves (same series, same instances: cached; results already stored). (The series is named: the
    study, once the masks are in it, holds them too, and a pipeline over the whole study would read them.)"""
    from dicompose.tools.samples import demo_pipeline

    code, _out, err = dicompose(pacs, tmp_path / "home", "pacs", "push", str(sample_data_folder()), "--to", pacs.url)
    assert code == 0, err
    study = study_of(sample_data_folder() / "ct_01.dcm")
    before = set(pacs.rest("/instances"))
    series = str(pydicom.dcmread(sample_data_folder() / "ct_01.dcm", stop_before_pixels=True).SeriesInstanceUID)
    source = f"{pacs.url}?study={study}&series={series}"
    argv = ["run", str(demo_pipeline()), "--in", source, "--out", str(tmp_path / "out")]
    argv += ["--workspace", str(tmp_path / "ws"), "--engine", "local", "--push-to", f"masks={pacs.url}"]
    code, out, err = dicompose(pacs, tmp_path / "home", *argv)
    said = one_line(out)
    assert code == 0, err
    assert f"pulled from {pacs.url}: 3 received, 0 already here" in said
    assert f"pushed to {pacs.url}: 3 stored, 0 already present" in said
    new = set(pacs.rest("/instances")) - before
    assert len(new) == 3  # the masks, as new instances...
    parents = {pacs.rest(f"/instances/{i}")["ParentSeries"] for i in new}
    assert not parents & {pacs.rest(f"/instances/{i}")["ParentSeries"] for i in before}  # ...of new series
    masks = sorted((tmp_path / "out" / "masks").rglob("*.dcm"))
    uids = {str(pydicom.dcmread(m, stop_before_pixels=True).SOPInstanceUID) for m in masks}
    stored = {pacs.rest(f"/instances/{i}/simplified-tags")["SOPInstanceUID"] for i in new}
    assert uids == stored and len(masks) == 3
    code, out, err = dicompose(pacs, tmp_path / "home", *argv)
    said = one_line(out)
    assert code == 0 and "0 received, 3 already here" in said and "0 stored, 3 already present" in said, err
    assert "normalize 1 cached" in said and "mask 1 cached" in said
    assert set(pacs.rest("/instances")) - before == new
    log = (tmp_path / "ws" / "audit" / "audit.jsonl").read_text()
    actions = [json.loads(line)["action"] for line in log.splitlines()]
    assert "receive" in actions and "send" in actions and study not in log
    code, _out, err = dicompose(pacs, tmp_path / "home", "run", str(demo_pipeline()), "--in", pacs.url, "--out", "x")
    assert code == 2 and "?study=UID" in err


def test_a_pipeline_over_a_whole_study_never_reads_back_its_own_results(pacs: Orthanc, tmp_path: Path):
    """Masks pushed into the study the pipeline reads are remembered by the workspace: the next run of the same
    command pulls nothing new and pushes nothing new (no masks of masks)."""
    from dicompose.tools.samples import demo_pipeline

    folder = tmp_path / "study"
    study = _new_study(folder, "whole-study", 3, 32)
    code, _out, err = dicompose(pacs, tmp_path / "home", "pacs", "push", str(folder), "--to", pacs.url)
    assert code == 0, err
    argv = ["run", str(demo_pipeline()), "--in", f"{pacs.url}?study={study}", "--out", str(tmp_path / "out")]
    argv += ["--workspace", str(tmp_path / "ws"), "--engine", "local", "--push-to", f"masks={pacs.url}"]
    code, out, err = dicompose(pacs, tmp_path / "home", *argv)
    assert code == 0 and "3 stored" in one_line(out), err
    count = len(pacs.rest("/instances"))
    code, out, err = dicompose(pacs, tmp_path / "home", *argv)
    said = one_line(out)
    assert code == 0 and "0 received, 3 already here" in said and "0 stored, 3 already present" in said, said
    assert "normalize 1 cached" in said and "mask 1 cached" in said
    assert len(pacs.rest("/instances")) == count


def test_dicomweb_push_pull_echo_with_credentials_from_a_file_or_the_environment(pacs: Orthanc, tmp_path: Path):
    """QIDO-RS, WADO-RS and STOW-RS against Orthanc's DICOMweb plugin (Debian's orthanc-dicomweb), HTTP basic
    authentication from a file or the environment; the secret never printed."""
    from tests.support.orthanc import DICOMWEB_PLUGIN, PASSWORD, USER

    need("orthanc", Path(DICOMWEB_PLUGIN).exists(), "orthanc-dicomweb not installed (scripts/orthanc.sh)")
    secret = tmp_path / "auth"
    secret.write_text(f"{USER}:{PASSWORD}\n")
    secret.chmod(0o600)
    web, auth = pacs.web_url, ["--auth-file", str(secret)]
    samples = tmp_path / "samples"
    samples.mkdir()
    for source in sorted(sample_data_folder().glob("mr_*.dcm")):
        (samples / source.name).write_bytes(source.read_bytes())
    code, out, err = dicompose(pacs, tmp_path / "home", "pacs", "echo", web, *auth)
    assert code == 0 and "QIDO-RS answered" in out, err
    code, out, err = dicompose(pacs, tmp_path / "home", "pacs", "push", str(samples), "--to", web, *auth)
    said = one_line(out)  # another test of this module may have stored them already
    assert code == 0 and ("2 stored" in said or "0 stored, 2 already present" in said), err
    code, out, err = dicompose(pacs, tmp_path / "home", "pacs", "push", str(samples), "--to", web, *auth)
    assert code == 0 and "0 stored, 2 already present" in one_line(out), err
    study = study_of(samples / "mr_01.dcm")
    pull = ["pacs", "pull", web, "--study", study, "--out", str(tmp_path / "out")]
    code, out, err = dicompose(pacs, tmp_path / "home", *pull, *auth)
    assert code == 0 and "2 received, 0 already present" in one_line(out), err
    originals = {pydicom.dcmread(p).SOPInstanceUID: pydicom.dcmread(p) for p in samples.glob("*.dcm")}
    for path in (tmp_path / "out").rglob("*.dcm"):
        got = pydicom.dcmread(path)
        assert (got.pixel_array == originals[got.SOPInstanceUID].pixel_array).all()
    got = {pydicom.dcmread(p).SOPInstanceUID for p in (tmp_path / "out").rglob("*.dcm")}
    assert got == {pydicom.dcmread(p).SOPInstanceUID for p in samples.glob("*.dcm")}
    env = {
        "PATH": os.environ["PATH"],
        "DICOMPOSE_HOME": str(tmp_path / "home"),
        "DICOMPOSE_DICOMWEB_AUTH": f"{USER}:{PASSWORD}",
    }
    proc = pacs.run([str(BIN / "dicompose"), *pull], env=env, timeout=120)
    assert proc.returncode == 0 and "0 received, 2 already present" in one_line(proc.stdout), proc.stderr
    (tmp_path / "wrong").write_text(f"{USER}:not-the-password\n")
    code, out, err = dicompose(pacs, tmp_path / "home", "pacs", "echo", web, "--auth-file", str(tmp_path / "wrong"))
    assert code == 1 and "HTTP 401 (authentication refused)" in err and err.count("\n") == 1
    code, _out, err = dicompose(pacs, tmp_path / "home", "pacs", "echo", web.replace("://", f"://{USER}:x@"))
    assert code == 2 and "no credentials in the URL" in err
    for said in (out, err, proc.stdout, proc.stderr):
        assert PASSWORD not in said


def test_odd_files_in_a_pushed_folder_never_stop_the_others_and_every_transfer_is_audited(tmp_path: Path):
    """A folder as it comes off a CD or out of an archive: a DICOMDIR, a file without its SOP identity, files
    pydicom cannot encode as they are, one the PACS aborts the association on. Each gets its own outcome, the
    good ones are stored, and what was stored is audited even when the push ends in an error."""
    need("orthanc", *orthanc_available())
    from pydicom.data import get_testdata_file

    pacs = Orthanc(tmp_path / "orthanc").start()
    try:
        folder = tmp_path / "cd"
        folder.mkdir()
        for source in sorted(sample_data_folder().glob("*.dcm")):
            (folder / source.name).write_bytes(source.read_bytes())
        odd = ["DICOMDIR", "rtplan_truncated.dcm", "SC_rgb_jpeg.dcm", "UN_sequence.dcm"]
        for name in odd:
            (folder / name).write_bytes(Path(str(get_testdata_file(name))).read_bytes())
        anonymous = pydicom.dcmread(sample_data_folder() / "ct_01.dcm")
        del anonymous.SOPClassUID
        anonymous.save_as(folder / "no-identity.dcm")
        cut = pydicom.dcmread(sample_data_folder() / "mr_01.dcm")
        cut.SOPInstanceUID = cut.file_meta.MediaStorageSOPInstanceUID = cut.SOPInstanceUID + ".7"
        cut.save_as(folder / "cut.dcm", enforce_file_format=True)
        (folder / "cut.dcm").write_bytes((folder / "cut.dcm").read_bytes()[:-3000])  # a copy cut short
        rle = pydicom.dcmread(get_testdata_file("MR_small_RLE.dcm"))
        rle.SOPInstanceUID = rle.file_meta.MediaStorageSOPInstanceUID = rle.SOPInstanceUID + ".8"
        rle.save_as(folder / "head-only.dcm", enforce_file_format=True)
        (folder / "head-only.dcm").write_bytes((folder / "head-only.dcm").read_bytes()[:2000])
        (folder / "elsewhere.dcm").symlink_to(sample_data_folder() / "ct_01.dcm")  # leads out of the folder
        code, out, err = dicompose(
            pacs, tmp_path / "home", "pacs", "push", str(folder), "--to", pacs.url, "--json", "--timeout", "5"
        )
        assert "Traceback" not in err, err
        outcomes = {Path(f["file"]).name: f["outcome"] for f in json.loads(out)["files"]}
        assert sorted(outcomes) == sorted(
            [
                *odd,
                "no-identity.dcm",
                "cut.dcm",
                "head-only.dcm",
                "elsewhere.dcm",
                *(p.name for p in sample_data_folder().glob("*.dcm")),
            ]
        )
        assert outcomes["elsewhere.dcm"].startswith("skipped (")  # said, not silently dropped
        for damaged in ("cut.dcm", "head-only.dcm"):  # never stored cut short on the PACS
            assert outcomes[damaged].startswith("refused: damaged"), outcomes[damaged]
        assert all(outcomes[p.name] == "stored" for p in sample_data_folder().glob("*.dcm")), outcomes
        assert outcomes["DICOMDIR"].startswith("skipped") and outcomes["no-identity.dcm"].startswith("skipped")
        assert code == (1 if any(o.startswith("refused") for o in outcomes.values()) else 0)
        log = (tmp_path / "home" / "audit" / "audit.jsonl").read_text().splitlines()
        sent = sum(json.loads(line)["object"]["instances"] for line in log if json.loads(line)["action"] == "send")
        assert sent == sum(1 for o in outcomes.values() if o == "stored")
    finally:
        pacs.stop()


def test_a_pull_receives_every_instance_as_the_pacs_holds_it(pacs: Orthanc, tmp_path: Path):
    """C-GET proposes the study's own SOP classes (found by the C-FIND) with a context per transfer syntax, so the
    PACS sends each instance in the encoding it holds: no transcoding (which Orthanc cannot do for JPEG 2000: the
    sub-operation would fail) and the pixel data arrive byte for byte. A SOP class newer than Orthanc's toolkit
    (Photoacoustic, 2023) is stored by Orthanc but refused by its C-GET SCP ("SOPClassNotSupported", Orthanc's
    limit): counted as failed, then received by C-MOVE, for which our storage SCP accepts any class."""
    from pydicom.data import get_testdata_file
    from pydicom.uid import generate_uid

    study = generate_uid()
    sources = tmp_path / "study"
    sources.mkdir()
    for name in ("MR_small_jpeg_ls_lossless.dcm", "MR_small_RLE.dcm", "JPEG2000.dcm", "SC_rgb_jpeg_dcmtk.dcm"):
        ds = pydicom.dcmread(get_testdata_file(name))
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, generate_uid()
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.save_as(sources / name, enforce_file_format=True)
    photoacoustic = pydicom.dcmread(sample_data_folder() / "ct_01.dcm")  # a class newer than pynetdicom's list
    photoacoustic.SOPClassUID = photoacoustic.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.6.3"
    photoacoustic.StudyInstanceUID, photoacoustic.SeriesInstanceUID = study, generate_uid()
    photoacoustic.SOPInstanceUID = photoacoustic.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    photoacoustic.save_as(sources / "photoacoustic.dcm", enforce_file_format=True)
    code, out, err = dicompose(pacs, tmp_path / "home", "pacs", "push", str(sources), "--to", pacs.url)
    assert code == 0 and "5 stored" in one_line(out), err
    for how, expected in (([], 4), (["--move-dest", "DICOMPOSE:11112"], 5)):
        pulled = tmp_path / ("moved" if how else "got")
        argv = ["pacs", "pull", pacs.url, "--study", study, "--out", str(pulled), *how]
        code, out, err = dicompose(pacs, tmp_path / "home", *argv)
        assert f"{expected} received" in one_line(out), (how, out, err)
        assert code == (0 if expected == 5 else 1) and ("1 the PACS could not send" in one_line(out)) is (not how)
        received = {pydicom.dcmread(p).SOPInstanceUID: pydicom.dcmread(p) for p in pulled.rglob("*.dcm")}
        for source in sources.iterdir():
            sent = pydicom.dcmread(source)
            if not how and source.name == "photoacoustic.dcm":
                assert sent.SOPInstanceUID not in received
                continue
            got = received[sent.SOPInstanceUID]
            assert got.file_meta.TransferSyntaxUID == sent.file_meta.TransferSyntaxUID, (how, source.name)
            assert got.SOPClassUID == sent.SOPClassUID and got.PixelData == sent.PixelData, (how, source.name)
