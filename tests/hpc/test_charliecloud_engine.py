"""The charliecloud engine for real, as an HPC user has it: an ordinary account, ``ch-run`` 0.31, images exported
into a shared image folder, SLURM worker jobs. ``scripts/user-tests.sh`` runs this folder as such a user (CI:
DICOMPOSE_REQUIRE=charliecloud,unprivileged,slurm); as root these tests skip (the engine refuses root).

Each guarantee of the hardening policy is probed from inside a live step (tests/data/probe_tool.py), as for
Docker; what this engine does not enforce is said in the run record and checked to be said.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from dicompose.engines.charliecloud import MANIFEST, manifest_of
from dicompose.tools.samples import demo_pipeline, sample_data_folder
from tests.support.cli import BIN
from tests.support.components import need, slurm_up
from tests.support.hpc import dicompose, outputs
from tests.support.links import link_farm
from tests.support.probe import probe_descriptor

pytestmark = pytest.mark.charliecloud


def scans(folder: Path, names: tuple[str, ...] = ("ct_01.dcm", "ct_02.dcm")) -> Path:
    folder.mkdir(parents=True)
    for name in names:
        shutil.copyfile(sample_data_folder() / name, folder / name)
    return folder


def run_id_of(text: str) -> str:
    import re

    found = re.findall(r"\b\d{8}-\d{6}-[0-9a-f]{6}\b", text)
    assert found, text
    return found[-1]


def test_a_step_is_confined_as_the_policy_says_and_the_record_names_what_is_not_enforced(images: Path, tmp_path: Path):
    source = scans(tmp_path / "scans")
    tool = probe_descriptor(tmp_path, "dicompose/normalize:0.1.0", None)
    marker = tmp_path.name + "-host-tmp"
    Path("/tmp", marker).write_text("host")  # must stay invisible to the step
    Path("/dev/shm", marker).write_text("host")  # so must the node's shared memory
    try:
        proc = dicompose(
            tmp_path,
            *("run", str(tool), "--in", str(source), "--out", "out", "--engine", "charliecloud", "--json"),
            DICOMPOSE_LEAK_CHECK="host-secret",
        )
    finally:
        Path("/tmp", marker).unlink()
        Path("/dev/shm", marker).unlink()
    assert proc.returncode == 0, proc.stderr
    inside = json.loads((tmp_path / "out" / "probe.json").read_text())
    assert inside["uid"] == os.getuid() != 0 and inside["cwd"] == "/dicompose/out"
    assert int(inside["cap_eff"], 16) == 0 and inside["no_new_privs"] == "1"
    assert inside["write_input"] is False  # the inputs, read-only (enforced by the launcher, not ch-run)
    assert inside["write_root"] is False  # the image, read-only
    assert inside["write_cwd"] is True and inside["write_tmp"] is True
    assert inside["net_devices"] == ["lo"]  # no network: a namespace of its own with loopback only
    assert marker not in inside["tmp_entries"] and marker not in inside["shm_entries"]  # private /tmp, /dev/shm
    assert inside["loopback"] is True  # its own loopback works, as under Docker's --network none
    assert "DICOMPOSE_LEAK_CHECK" not in inside["env"]  # the environment: the image's, not the caller's
    assert inside["inputs_readable"] is True and all(a.startswith("/dicompose/in/") for a in inside["argv"])
    report = json.loads(proc.stdout)
    assert "not enforced by charliecloud: memory limit" in report["engine"]["why"]
    shown = dicompose(tmp_path, "show", report["run"], "--workspace", ".dicompose", "--json")
    record = json.loads(shown.stdout)
    assert record["engine"] == "charliecloud"
    assert "not enforced by charliecloud: memory limit, pids limit, CPU limit" in record["engine_why"]
    dry = dicompose(
        tmp_path,
        "run",
        str(tool),
        "--in",
        str(source),
        "--out",
        "o2",
        "--engine",
        "charliecloud",
        "--dry-run",
        "--workspace",
        "dry",
    )
    said = " ".join((dry.stdout + dry.stderr).split())
    assert "not enforced by charliecloud: memory limit" in said and "ch-run" in said and "--ro" in said


def test_local_charliecloud_and_verify_agree_byte_for_byte_on_hostile_folder_names(images: Path, tmp_path: Path):
    """Hostile names in the inputs' folders, and a colon in the workspace's (ch-run -b splits at colons)."""
    source = scans(tmp_path / "scans: one\nthree ü -x", ("ct_01.dcm", "ct_02.dcm", "ct_03.dcm"))
    results = {}
    for engine in ("local", "charliecloud"):
        proc = dicompose(
            tmp_path,
            *("run", "normalize", "--in", str(source), "--out", engine, "--engine", engine, "-p", "max=1000"),
            *("--workspace", "ws"),
        )
        assert proc.returncode == 0, proc.stderr
        results[engine] = outputs(tmp_path / engine)
    colon = ("run", "normalize", "--in", str(source), "--out", "colon", "--engine", "charliecloud", "-p", "max=1000")
    proc = dicompose(tmp_path, *colon, "--workspace", "wsb:1")
    assert proc.returncode == 0, proc.stderr
    assert outputs(tmp_path / "colon") == results["charliecloud"]
    assert len(results["local"]) == 3 and results["local"] == results["charliecloud"]
    runs = json.loads(dicompose(tmp_path, "runs", "--workspace", "ws", "--json").stdout)
    (local_run,) = [r["id"] for r in runs if r["engine"] == "local"]
    verified = dicompose(tmp_path, "verify", local_run, "--engine", "charliecloud", "--workspace", "ws", "--out", "v")
    assert verified.returncode == 0 and "byte-identical" in verified.stdout, verified.stdout + verified.stderr


def test_a_key_file_and_linked_inputs_are_bound_as_on_the_local_engine(images: Path, tmp_path: Path):
    source = scans(tmp_path / "scans")
    key = tmp_path / "secret" / "site.key"
    key.parent.mkdir()
    key.write_bytes(os.urandom(32))
    key.chmod(0o600)
    (key.parent / "other.txt").write_text("not for the step")
    results = {}
    for engine in ("local", "charliecloud"):
        proc = dicompose(
            tmp_path,
            *("run", "deidentify", "--in", str(source), "--out", f"deid-{engine}", "--engine", engine),
            *("-p", f"key_file={key}", "--workspace", f"ws-{engine}"),
        )
        assert proc.returncode == 0, proc.stderr
        results[engine] = outputs(tmp_path / f"deid-{engine}")
    assert len(results["local"]) == 2 and results["local"] == results["charliecloud"]
    farm = link_farm(tmp_path / "farm")
    linked = {}
    for engine in ("local", "charliecloud"):
        proc = dicompose(
            tmp_path,
            *("run", "normalize", "--in", str(farm), "--out", f"links-{engine}", "--engine", engine),
            *("--workspace", f"wl-{engine}"),
        )
        assert proc.returncode == 0, proc.stderr
        linked[engine] = outputs(tmp_path / f"links-{engine}")
    assert len(linked["local"]) == 2 and linked["local"] == linked["charliecloud"]


def _alive(word: str) -> list[str]:
    """Processes of this user whose command line holds ``word``."""
    proc = subprocess.run(["pgrep", "-u", str(os.getuid()), "-f", word], capture_output=True, text=True)
    return proc.stdout.split()


def test_a_timeout_and_ctrl_c_stop_the_step_and_everything_it_started(images: Path, tmp_path: Path):
    source = scans(tmp_path / "scans")
    tool = probe_descriptor(tmp_path, "dicompose/normalize:0.1.0", None)
    timed = dicompose(
        tmp_path,
        *("run", str(tool), "--in", str(source), "--out", "t", "--engine", "charliecloud"),
        *("--timeout", "2", "-p", "seconds=60.5"),
    )
    assert timed.returncode != 0 and "timed out" in (timed.stdout + timed.stderr)
    assert _alive("60.5") == []
    argv = [str(BIN / "dicompose"), "run", str(tool), "--in", str(source), "--out", "i", "--engine", "charliecloud"]
    env = {**os.environ, "DICOMPOSE_HOME": str(tmp_path / "home")}
    run = subprocess.Popen(
        [*argv, "-p", "seconds=61.5"], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not _alive("61.5 /dicompose/in"):
        time.sleep(0.1)
    assert _alive("61.5 /dicompose/in"), "the step never started"
    run.send_signal(signal.SIGINT)
    _out, err = run.communicate(timeout=60)
    assert run.returncode == 130 and "Traceback" not in err, err
    assert _alive("61.5") == []


def test_an_edited_or_missing_image_is_refused_in_one_line(images: Path, tmp_path: Path):
    source = scans(tmp_path / "scans")
    fake = tmp_path / "images" / ("sha256-" + "ab" * 32)
    (fake / "etc").mkdir(parents=True)
    (fake / "etc" / "os-release").write_text("debian\n")
    recorded = {"image": "dicompose/normalize:0.1.0", "digest": "sha256:" + "ab" * 32, **manifest_of(fake)}
    (fake / MANIFEST).write_text(json.dumps(recorded))
    pin = {"image": recorded["image"], "digest": recorded["digest"]}
    (fake.parent / "pins.json").write_text(json.dumps({"image:dicompose/normalize:0.1.0@": pin}))
    (fake / "etc" / "os-release").write_text("tampered\n")
    argv = ["run", "normalize", "--in", str(source), "--out", "o", "--engine", "charliecloud"]
    proc = dicompose(tmp_path, *argv, "--image-dir", str(tmp_path / "images"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "differs from its export" in proc.stderr and "etc/os-release: changed since export" in proc.stderr
    empty = dicompose(tmp_path, *argv, "--image-dir", str(tmp_path / "nothing"))
    assert empty.returncode == 2 and "no such folder" in empty.stderr and "export-charliecloud" in empty.stderr
    assert "(named by --image-dir): no such folder" in empty.stderr, empty.stderr
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_the_demo_on_slurm_and_charliecloud_gives_the_local_bytes(images: Path, tmp_path: Path):
    need("slurm", *slurm_up())
    common = ["run", str(demo_pipeline()), "--in", str(sample_data_folder())]
    local = dicompose(tmp_path, *common, "--out", "local", "--engine", "local", "--workspace", "ws-local")
    assert local.returncode == 0, local.stderr
    hpc = [*common, "--out", "hpc", "--engine", "charliecloud", "--scheduler", "slurm", "--slurm", "jobs=2"]
    proc = dicompose(tmp_path, *hpc, "--workspace", "ws")
    assert proc.returncode == 0, proc.stderr
    mine, theirs = outputs(tmp_path / "hpc"), outputs(tmp_path / "local")
    assert len(theirs) == 10 and mine == theirs
    run_id = run_id_of(proc.stdout)
    assert 1 <= len(list((tmp_path / "ws" / "slurm-logs" / run_id).glob("*.err"))) <= 2  # pilot jobs
    shown = json.loads(dicompose(tmp_path, "show", run_id, "--workspace", "ws", "--json").stdout)
    assert shown["engine"] == "charliecloud" and shown["scheduler"].startswith("slurm")
    assert all(a["engine"] == "charliecloud" and a["exit_code"] == 0 for a in shown["attempts"])
    # this account's first use of the two images: each verified file by file, and the run says so while it does
    assert proc.stderr.count("note: verifying image sha256-") == 2, proc.stderr
    again = dicompose(tmp_path, *hpc, "--workspace", "ws")
    assert again.returncode == 0 and "verifying image" not in again.stderr, again.stderr


def _queue(run_id: str) -> list[tuple[str, str]]:
    """(job id, state) of this run's worker jobs still in the queue."""
    proc = subprocess.run(["squeue", "-h", "-n", f"dicompose-{run_id}", "-o", "%i %T"], capture_output=True, text=True)
    return [tuple(line.split()) for line in proc.stdout.splitlines() if line.strip()]  # type: ignore[misc]


def test_a_worker_job_killed_under_charliecloud_steps_loses_no_finished_work(images: Path, tmp_path: Path):
    """scancel of one of two worker jobs while both run a ch-run step: no partial output is published, the
    next run finishes what was lost, and none of the run's jobs or steps is left behind."""
    need("slurm", *slurm_up())
    from dicompose.dicom import synthetic

    for series in range(4):
        synthetic.write_ct_series(tmp_path / "scans" / f"s{series}", f"kill-{series}", 1, 8, 8)
    tool = probe_descriptor(tmp_path, "dicompose/normalize:0.1.0", None)
    argv = ["run", str(tool), "--in", str(tmp_path / "scans"), "--out", "out", "--engine", "charliecloud"]
    argv += ["--scheduler", "slurm", "--slurm", "jobs=2", "--workspace", "ws", "-p", "seconds=4.25"]
    env = {**os.environ, "DICOMPOSE_HOME": str(tmp_path / "home")}
    run = subprocess.Popen(
        [str(BIN / "dicompose"), *argv],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    killed, run_id = "", ""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not killed and run.poll() is None:
        for folder in (tmp_path / "ws" / "slurm-logs").glob("*"):
            run_id = folder.name
            running = [job for job, state in _queue(run_id) if state == "RUNNING"]
            if len(running) == 2 and len(_alive("4.25 /dicompose/in")) >= 2:  # both jobs run a step
                subprocess.run(["scancel", running[0]], check=True)
                killed = running[0]
        time.sleep(0.1)
    _out, err = run.communicate(timeout=300)
    assert killed, f"never saw two worker jobs running steps: {err}"
    assert "Traceback" not in err
    for report in (tmp_path / "out").rglob("probe.json"):
        json.loads(report.read_text())  # whatever was published is whole
    again = dicompose(tmp_path, *argv)
    assert again.returncode == 0, again.stderr
    reports = list((tmp_path / "out").rglob("probe.json"))
    assert len(reports) == 4 and all(json.loads(r.read_text())["uid"] == os.getuid() for r in reports)
    assert _queue(run_id) == [] and _alive("4.25 /dicompose/in") == []


def test_hostile_parameter_values_reach_the_step_verbatim_on_both_engines(images: Path, tmp_path: Path):
    """Shell syntax, quotes, newlines, globs, variables, a leading dash, non-ASCII: as an argument and as an
    environment variable, each reaches the tool byte for byte (argument lists end to end, ``ch-run
    --env-no-expand``), and nothing is run by a shell on the way."""
    from tests.support.descriptors import boutiques

    hostile = "$(touch /tmp/pwned-cc); `id` 'q\" \\n\nline2 * ~ $HOME ${PATH} -x ü"
    code = "import json, os, sys; json.dump({'argv': sys.argv[1:], 'env': os.environ.get('VALUE')}, "
    code += "open('seen.json', 'w'))"
    doc = boutiques(
        "hostile",
        "python3 -c [CODE] [VALUE] [INPUT]",
        [
            {"id": "code", "name": "code", "type": "String", "value-key": "[CODE]", "default-value": code},
            {"id": "value", "name": "value", "type": "String", "value-key": "[VALUE]"},
            {"id": "input", "name": "input", "type": "File", "list": True, "value-key": "[INPUT]"},
        ],
        [{"id": "seen", "name": "seen", "path-template": "seen.json"}],
        {
            "container-image": {"type": "docker", "image": "dicompose/normalize:0.1.0"},
            "environment-variables": [{"name": "VALUE", "value": "[VALUE]"}],
        },
    )
    tool = tmp_path / "hostile.json"
    tool.write_text(json.dumps(doc))
    (tmp_path / "invocation.json").write_text(json.dumps({"value": hostile}))
    source = scans(tmp_path / "scans", ("ct_01.dcm",))
    seen = {}
    for engine in ("local", "charliecloud"):
        argv = ["run", str(tool), "--in", str(source), "--out", engine, "--engine", engine]
        proc = dicompose(tmp_path, *argv, "--invocation", str(tmp_path / "invocation.json"), "--workspace", engine)
        assert proc.returncode == 0, proc.stderr
        seen[engine] = json.loads((tmp_path / engine / "seen.json").read_text())
    assert seen["charliecloud"]["argv"][0] == hostile == seen["local"]["argv"][0]
    assert seen["charliecloud"]["env"] == hostile == seen["local"]["env"]
    assert not Path("/tmp/pwned-cc").exists()
