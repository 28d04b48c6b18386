"""The docker engine for real: live containers launched through dicompose, inspected and probed from inside.

Needs a Docker engine and the normalize image (built here if missing). Skips with a reason where there is no
engine, unless DICOMPOSE_REQUIRE names docker (CI), in which case it fails.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pydicom
import pytest

from dicompose.descriptors.descriptor import load_descriptor
from dicompose.errors import UsageError
from dicompose.images.pins import pinned, pins_file
from dicompose.pipeline.runner import PipelineReport, PipelineRequest, run_pipeline
from dicompose.pipeline.tool_graph import tool_graph
from tests.support.cli import BIN
from tests.support.components import need
from tests.support.dicom_checks import independent_modality_values
from tests.support.links import link_farm
from tests.support.probe import probe_descriptor

pytestmark = pytest.mark.docker
#: Containers this test process launched (tests run in parallel processes: never look at another's).
MINE = {"label": ["org.dicompose.tool=probe", f"org.dicompose.pid={os.getpid()}"]}
SAMPLES = Path(__file__).parents[2] / "src" / "dicompose" / "sample_data"


@pytest.fixture(scope="session")
def client() -> Any:
    from dicompose.images.docker_client import connect

    try:
        return connect()
    except UsageError as exc:
        need("docker", False, str(exc))


@pytest.fixture(scope="session")
def image_id(client: Any) -> str:
    """The pinned normalize image, built (offline, from the wheelhouse) if this machine has none yet."""
    descriptor = load_descriptor("normalize")
    record = pinned(descriptor.name, descriptor.digest)
    if record is not None:
        try:
            return str(client.images.get(record["digest"]).id)
        except Exception:
            pass
    proc = subprocess.run([str(BIN / "dicompose"), "build", "normalize", "--json"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    built = json.loads(proc.stdout)
    assert set(built) == {"image", "digest"} and built["digest"].startswith("sha256:")
    return str(built["digest"])


@pytest.fixture
def scans(tmp_path: Path) -> Path:
    folder = tmp_path / "scans"
    folder.mkdir()
    for name in ("ct_01.dcm", "ct_02.dcm"):
        (folder / name).write_bytes((SAMPLES / name).read_bytes())
    return folder


def wait_for_containers(client: Any, filters: dict[str, Any], seconds: float = 120) -> list[Any]:
    """The running containers matching ``filters``, waiting until one appears; fails if none does."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        running = client.containers.list(filters=filters)
        if running:
            return list(running)
        time.sleep(0.1)
    raise AssertionError("the step never started")


def run_tool(
    tool: str,
    source: Path,
    out: Path,
    params: dict[str, Any],
    *,
    engine: str = "docker",
    allow_unpinned: bool = False,
    timeout_s: float | None = None,
) -> PipelineReport:
    """``dicompose run TOOL`` as the CLI does it: a one-step pipeline, its workspace beside ``out``."""
    graph = tool_graph(tool, params, timeout_s)
    workspace = out.parent / f".{out.name}-workspace"
    request = PipelineRequest(
        Path(tool), {"in": source}, out, workspace, engine, allow_unpinned=allow_unpinned, graph=graph, kind="tool"
    )
    return run_pipeline(request)


def problems(report: PipelineReport) -> list[str]:
    return [p for t in report.tasks if t.result is not None for p in t.result.problems]


def run_probe(tmp_path: Path, scans: Path, image_id: str, **params: object) -> PipelineReport:
    tool = probe_descriptor(tmp_path, "dicompose/normalize:0.1.0", image_id)
    return run_tool(str(tool), scans, tmp_path / "out", dict(params))


def test_live_container_is_hardened(tmp_path: Path, scans: Path, image_id: str, client: Any):
    seen: dict[str, Any] = {}

    def watch() -> None:
        deadline = time.time() + 60
        while time.time() < deadline and not seen:
            for container in client.containers.list(filters=MINE):
                seen.update(container.attrs)
                return
            time.sleep(0.1)

    watcher = threading.Thread(target=watch)
    watcher.start()
    report = run_probe(tmp_path, scans, image_id, seconds=3)
    watcher.join()
    assert report.ok, problems(report)
    host = seen["HostConfig"]
    assert host["NetworkMode"] == "none"
    assert host["CapDrop"] == ["ALL"] and not host.get("CapAdd")
    assert host["SecurityOpt"] == ["no-new-privileges"]
    assert host["ReadonlyRootfs"] is True and "/tmp" in host["Tmpfs"]
    assert host["PidsLimit"] and host["PidsLimit"] > 0 and host["Memory"] > 0
    assert host["Init"] is True and host["Privileged"] is False
    user = seen["Config"]["User"]
    assert user and not user.startswith("0:") and user != "root"
    assert seen["Config"]["Env"] is None or all(
        not e.startswith(("PatientName", "MIN=")) for e in seen["Config"]["Env"]
    )
    mounts = {m["Destination"]: m for m in seen["Mounts"]}
    assert mounts["/dicompose/in/0"]["RW"] is False and mounts["/dicompose/out"]["RW"] is True
    assert len(mounts) == 2 and not any("docker.sock" in m["Source"] for m in mounts.values())
    assert seen["Config"]["WorkingDir"] == "/dicompose/out"
    assert seen["Image"] == image_id
    labels = seen["Config"]["Labels"]
    assert labels["org.dicompose.managed"] == "true" and labels["org.dicompose.pid"] == str(os.getpid())
    assert "scans" not in json.dumps(seen["Config"]["Cmd"])  # neutral container paths: no host path leaks
    # ... and from inside:
    inside = json.loads((tmp_path / "out" / "probe.json").read_text())
    cores = len(os.sched_getaffinity(0))  # one task and every core free: the launch gets them all
    assert inside["workers"] == inside["omp_threads"] == str(cores) and inside["cpu_quota"] == cores
    assert host["NanoCpus"] == cores * 1_000_000_000
    assert inside["uid"] != 0 and inside["cwd"] == "/dicompose/out"
    assert inside["write_root"] is False and inside["write_input"] is False
    assert inside["write_tmp"] is True and inside["write_cwd"] is True
    assert inside["interfaces"] == ["lo"] and inside["loopback"] is True
    assert int(inside["cap_eff"], 16) == 0 and inside["no_new_privs"] == "1"
    assert "init" in inside["pid1"] and inside["docker_socket"] is False
    assert inside["inputs_readable"] is True
    assert not client.containers.list(all=True, filters=MINE)  # removed


def slow_run(tool: Path, scans: Path, out: Path) -> list[str]:
    """A docker run of the probe tool that sleeps a minute: long enough to be killed or interrupted."""
    argv = [str(BIN / "dicompose"), "run", str(tool), "--in", str(scans), "--out", str(out)]
    return [*argv, "-p", "seconds=60", "--engine", "docker"]


def test_killed_run_leaves_a_container_that_the_next_run_removes(
    tmp_path: Path, scans: Path, image_id: str, client: Any
):
    tool = probe_descriptor(tmp_path, "dicompose/normalize:0.1.0", image_id)
    proc = subprocess.Popen(
        slow_run(tool, scans, tmp_path / "out"),
        cwd=tmp_path,  # the run's workspace (.dicompose) goes there, not into the repository
    )
    label = {"label": f"org.dicompose.pid={proc.pid}"}
    wait_for_containers(client, label)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert client.containers.list(filters=label)  # orphaned: nobody removed it
    (tmp_path / "again").mkdir()
    run_probe(tmp_path / "again", scans, image_id)  # any docker run first removes what dead runs left
    assert not client.containers.list(all=True, filters=label)


def test_docker_and_local_outputs_are_byte_identical_and_batched(tmp_path: Path, image_id: str):
    source = tmp_path / "study"
    for series, names in (("ct", ("ct_01.dcm", "ct_02.dcm", "ct_03.dcm")), ("mr", ("mr_01.dcm", "mr_02.dcm"))):
        (source / series).mkdir(parents=True)
        for name in names:
            (source / series / name).write_bytes((SAMPLES / name).read_bytes())
    (source / "README.txt").write_text("not dicom")
    outputs = {}
    for engine in ("docker", "local"):
        report = run_tool("normalize", source, tmp_path / engine, {"max": "1000"}, engine=engine)
        assert report.ok and len(report.tasks) == 2  # one task per series and folder
        assert report.launches <= 2  # packs of tasks, at most one per core
        assert [p.name for p in report.skipped] == ["README.txt"]
        outputs[engine] = {p.relative_to(tmp_path / engine): p.read_bytes() for p in (tmp_path / engine).rglob("*.dcm")}
    assert len(outputs["docker"]) == 5 and outputs["docker"] == outputs["local"]
    values = independent_modality_values(pydicom.dcmread(tmp_path / "docker" / "ct" / "ct_01-normalized.dcm"))
    assert (values.min(), values.max()) == (0, 1000)
    assert not list((tmp_path / "docker").rglob(".*"))  # nothing of ours left in --out


def test_the_papers_docker_run_works_unchanged(tmp_path: Path, image_id: str):
    (tmp_path / "myfile.dcm").write_bytes((SAMPLES / "ct_01.dcm").read_bytes())
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o777)  # the image runs as uid 10001, never root: its output folder must let it write
    base = ["docker", "run", "--rm", "-v", f"{tmp_path}/myfile.dcm:/infile.dcm", "-v", f"{out}:/mnt/vout"]
    proc = subprocess.run([*base, "dicompose/normalize:0.1.0"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    values = independent_modality_values(pydicom.dcmread(out / "infile-normalized.dcm"))
    assert (values.min(), values.max()) == (0, 100)
    proc = subprocess.run(
        [*base[:3], "-e", "MIN=-5", "-e", "MAX=5", *base[3:], "dicompose/normalize:0.1.0"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    values = independent_modality_values(pydicom.dcmread(out / "infile-normalized.dcm"))
    assert (values.min(), values.max()) == (-5, 5)
    proc = subprocess.run(
        [*base[:3], "-e", "MIN=abc", *base[3:], "dicompose/normalize:0.1.0"], capture_output=True, text=True
    )
    assert proc.returncode == 2 and "MIN='abc' is not a number" in proc.stderr and "Traceback" not in proc.stderr


def test_image_metadata(client: Any, image_id: str):
    image = client.images.get(image_id)
    config = image.attrs["Config"]
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["/opt/dicompose/bin/dicompose-entrypoint"]
    labels = config["Labels"]
    assert labels["org.dicompose.descriptor.sha256"] == load_descriptor("normalize").digest
    assert labels["org.opencontainers.image.version"] == "0.1.0" and "maintainer" in labels


def test_pins_are_enforced(tmp_path: Path, scans: Path, image_id: str, client: Any):
    base = client.images.get("dicompose/base:bookworm")
    base.tag("dicompose-test/moved", "1")
    try:
        moved = probe_descriptor(tmp_path, "dicompose-test/moved:1", image_id)
        with pytest.raises(UsageError, match="pinned to"):
            run_tool(str(moved), scans, tmp_path / "o1", {})
        loose = probe_descriptor(tmp_path, "dicompose/normalize:0.1.0", None)
        with pytest.raises(UsageError, match="not pinned by digest"):
            run_tool(str(loose), scans, tmp_path / "o2", {})
        report = run_tool(str(loose), scans, tmp_path / "o3", {}, allow_unpinned=True)
        assert report.ok and report.images["probe"] == (report.images["probe"][0], False)
    finally:
        client.images.remove("dicompose-test/moved:1")


def test_missing_and_escaping_outputs_fail_the_step(tmp_path: Path, scans: Path, image_id: str):
    for mode, needle in (("nothing", "required output 'report'"), ("escape", "points outside the output folder")):
        (tmp_path / mode).mkdir()
        report = run_probe(tmp_path / mode, scans, image_id, mode=mode)
        task = report.tasks[0]
        assert task.status == "failed" and any(needle in p for p in problems(report))
        assert not (tmp_path / mode / "out" / "probe.json").exists()
        assert task.result is not None and (Path(task.result.log_dir) / "stderr").exists()


def test_timeout_stops_and_removes_the_container(tmp_path: Path, scans: Path, image_id: str, client: Any):
    tool = probe_descriptor(tmp_path, "dicompose/normalize:0.1.0", image_id)
    started = time.perf_counter()
    report = run_tool(str(tool), scans, tmp_path / "out", {"seconds": 60}, timeout_s=2)
    assert time.perf_counter() - started < 30
    assert report.tasks[0].status == "failed" and any("timed out" in p for p in problems(report))
    assert not client.containers.list(all=True, filters=MINE)


def test_dry_run_prints_the_command_and_launches_nothing(tmp_path: Path, scans: Path, image_id: str):
    proc = subprocess.run(
        [
            str(BIN / "dicompose"),
            "run",
            "normalize",
            "--in",
            str(scans),
            "--out",
            str(tmp_path / "out"),
            "--engine",
            "docker",
            "--dry-run",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    command = next(line.strip() for line in proc.stdout.splitlines() if line.strip().startswith("docker run"))
    assert command.startswith("docker run --rm --user ") and "--network none" in command
    assert image_id in command and "--read-only" in command and "--manifest /dicompose/out/manifest.json" in command
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.dcm"))


def test_output_folder_mode_is_private_to_the_task(tmp_path: Path, scans: Path, image_id: str):
    report = run_probe(tmp_path, scans, image_id)
    assert report.ok
    published = tmp_path / "out" / "probe.json"
    assert published.stat().st_uid == os.getuid()  # handed back to the caller
    assert not stat.S_IMODE(published.stat().st_mode) & 0o002


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_run_removes_its_container(tmp_path: Path, scans: Path, image_id: str, client: Any, sig: int):
    tool = probe_descriptor(tmp_path, "dicompose/normalize:0.1.0", image_id)
    proc = subprocess.Popen(
        slow_run(tool, scans, tmp_path / "out"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    )
    label = {"label": f"org.dicompose.pid={proc.pid}"}
    wait_for_containers(client, label)
    proc.send_signal(sig)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert b"Traceback" not in err
    assert not client.containers.list(all=True, filters=label)


def test_pipeline_on_dask_passes_resources_and_interrupt_stops_containers(
    tmp_path: Path, scans: Path, image_id: str, client: Any
):
    """A pipeline step in a container under the Dask scheduler: its resources reach the engine, and Ctrl-C
    removes the running container (a cancelled Dask future alone would leave it running)."""
    name = f"probe-{os.getpid()}-{time.monotonic_ns()}"
    tool = probe_descriptor(tmp_path, "dicompose/normalize:0.1.0", image_id, name=name)
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text(
        "version: 1\nname: slow\ninputs:\n  scans: dicom\nsteps:\n  probe:\n"
        f"    tool: {tool}\n    with: {{input: inputs.scans, seconds: 60}}\n"
        "    resources: {memory: 512m, cpus: 0.5}\noutputs:\n  report: steps.probe.report\n"
    )
    proc = subprocess.Popen(
        [
            str(BIN / "dicompose"),
            "run",
            str(pipeline),
            "--in",
            str(scans),
            "--out",
            str(tmp_path / "out"),
            "--engine",
            "docker",
            "--scheduler",
            "dask",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    label = {"label": f"org.dicompose.tool={name}"}
    running = wait_for_containers(client, label)
    host = running[0].attrs["HostConfig"]
    assert host["Memory"] == 512 * 1024**2 and host["NanoCpus"] == 500_000_000
    assert host["NetworkMode"] == "none" and host["ReadonlyRootfs"] is True
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode != 0 and b"Traceback" not in err
    assert not client.containers.list(all=True, filters=label)


def test_rerun_refuses_a_vanished_image_digest(client: Any, image_id: str):
    from dicompose.engines.base import ImageRef
    from dicompose.engines.docker import DockerEngine
    from dicompose.pipeline.graph import build_graph
    from dicompose.pipeline.snapshot import recorded_images
    from dicompose.tools.samples import demo_pipeline

    graph = build_graph(demo_pipeline())
    gone = {node.name: ImageRef("dicompose/normalize:0.1.0", "sha256:" + "0" * 64) for node in graph.steps}
    with pytest.raises(UsageError, match="no longer available"):
        recorded_images(graph, gone, DockerEngine(client), allow_unpinned=False)
    present = {node.name: ImageRef("dicompose/normalize:0.1.0", image_id) for node in graph.steps}
    assert all(pinned for _image, pinned in recorded_images(graph, present, DockerEngine(client), False).values())


def _deidentify_image() -> None:
    descriptor = load_descriptor("deidentify")
    if pinned(descriptor.name, descriptor.digest) is None:
        proc = subprocess.run([str(BIN / "dicompose"), "build", "deidentify", "--json"], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr


def test_deidentify_in_a_container_matches_the_local_engine(tmp_path: Path, scans: Path, client: Any):
    """A File parameter other than the batch input (the key) is mounted read-only; outputs are identical. The
    key stays 0600 and root's: the container (nobody, when the caller is root) reads a staged 0400 copy."""
    _deidentify_image()
    key = tmp_path / "site.key"
    key.write_bytes(b"s" * 32)
    key.chmod(0o600)
    results = {}
    for engine in ("docker", "local"):
        report = run_tool("deidentify", scans, tmp_path / engine, {"key_file": str(key)}, engine=engine)
        assert report.ok, problems(report)
        results[engine] = {p.name: p.read_bytes() for p in (tmp_path / engine).glob("deid-*.dcm")}
    assert len(results["docker"]) == 2 and results["docker"] == results["local"]
    for data in results["docker"].values():
        assert b"PHANTOM^SYNTHETIC" not in data and b"SYNTH-0001" not in data
    assert stat.S_IMODE(key.stat().st_mode) == 0o600  # never loosened
    assert not list(tmp_path.rglob("staged/*/*"))  # the copies are gone with their launch


def test_a_key_is_a_pipeline_input_and_the_site_key_is_the_default(tmp_path: Path, scans: Path, client: Any):
    """Issue 9.14: a key given as a pipeline input of kind file (--in key=PATH), or none (the site key, as the
    host tool uses it), de-identifies in a container exactly as `dicompose deidentify` on the host does; a
    different key is a different computation (not a cache hit)."""
    _deidentify_image()
    home = {**os.environ, "DICOMPOSE_HOME": str(tmp_path / "home")}
    (tmp_path / "home").mkdir()
    shutil.copy(pins_file(), tmp_path / "home" / "images.json")  # this home runs the images built and pinned here
    key = tmp_path / "site.key"
    key.write_bytes(b"k" * 32)
    key.chmod(0o600)
    pipeline = tmp_path / "share.yaml"
    pipeline.write_text(
        "version: 1\nname: share\ninputs: {scans: dicom, key: file}\n"
        "steps:\n  deid:\n    tool: deidentify\n    with: {input: inputs.scans, key_file: inputs.key}\n"
        "outputs: {shareable: steps.deid.output}\n"
    )
    default = tmp_path / "default.yaml"
    default.write_text(pipeline.read_text().replace(", key: file", "").replace(", key_file: inputs.key", ""))

    def dicompose(*argv: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([str(BIN / "dicompose"), *argv], capture_output=True, text=True, env=home)
        assert proc.returncode == 0, proc.stderr
        return proc

    def files(folder: Path) -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in folder.rglob("deid-*.dcm")}

    ws = ["--workspace", str(tmp_path / "ws"), "--engine", "docker"]
    dicompose("run", str(pipeline), "--in", f"scans={scans}", "--in", f"key={key}", "--out", str(tmp_path / "a"), *ws)
    dicompose("deidentify", str(scans), "--out", str(tmp_path / "host-a"), "--key-file", str(key))
    assert len(files(tmp_path / "a")) == 2 and files(tmp_path / "a") == files(tmp_path / "host-a")
    dicompose("run", str(default), "--in", str(scans), "--out", str(tmp_path / "b"), *ws)
    dicompose("deidentify", str(scans), "--out", str(tmp_path / "host-b"))  # the site key of this home
    assert files(tmp_path / "b") == files(tmp_path / "host-b") and files(tmp_path / "b") != files(tmp_path / "a")
    key.write_bytes(b"j" * 32)  # same path, another key: computed anew, other pseudonyms
    argv = ["run", str(pipeline), "--in", f"scans={scans}", "--in", f"key={key}", "--out", str(tmp_path / "c")]
    assert "0 launches" not in dicompose(*argv, *ws).stdout
    assert files(tmp_path / "c") != files(tmp_path / "a")


def test_the_socket_client_agrees_with_the_sdk(client: Any, image_id: str):
    """Read-only questions go over the socket without the SDK (start-up time); they must see what it sees."""
    from dicompose.engines.docker import DockerEngine
    from dicompose.images.docker_api import DockerAPI, unix_socket

    socket_path = unix_socket()
    need("docker", socket_path is not None, "DOCKER_HOST is not a UNIX socket")
    api = DockerAPI(str(socket_path))
    assert api.version() == client.version()["Version"]
    assert api.image("dicompose/normalize:0.1.0")["Id"] == client.images.get("dicompose/normalize:0.1.0").id
    assert api.image(image_id)["Id"] == image_id and api.image("dicompose-test/absent:0") is None
    engine = DockerEngine()
    assert engine.info().available and engine.has_image(
        engine.resolve_image("dicompose/normalize:0.1.0", image_id, allow_unpinned=False, hint="")[0]
    )
    label = f"org.dicompose.test={os.getpid()}"
    container = client.containers.create(image_id, ["true"], labels={"org.dicompose.test": str(os.getpid())})
    try:
        assert [c["Id"] for c in api.containers(label)] == [container.id]
    finally:
        container.remove(force=True)


def test_links_follow_one_rule_on_every_engine(tmp_path: Path, image_id: str):
    """Issue 9.12: links into the inputs are read on Docker as on the local engine; links outside are
    reported and never mounted."""
    source = link_farm(tmp_path)
    outputs = {}
    for engine in ("docker", "local"):
        report = run_tool("normalize", source, tmp_path / engine, {"max": "1000"}, engine=engine)
        assert report.ok, problems(report)
        assert sorted(line.split(":")[0].rsplit("/", 1)[1] for line in report.ignored) == ["ct_03.dcm", "shadow.dcm"]
        mounted = " ".join(" ".join(launch.command) for launch in report.launch_log)
        assert "/etc" not in mounted and "elsewhere" not in mounted
        outputs[engine] = {p.relative_to(tmp_path / engine): p.read_bytes() for p in (tmp_path / engine).rglob("*.dcm")}
    assert sorted(map(str, outputs["docker"])) == ["series/ct_01-normalized.dcm", "series/ct_02-normalized.dcm"]
    assert outputs["docker"] == outputs["local"]


def test_the_demo_says_why_it_falls_back_when_docker_images_are_not_pinned(tmp_path: Path, image_id: str):
    """Docker answers and the images exist, but this DICOMPOSE_HOME pins none of them: the demo (which takes no
    --allow-unpinned) runs on the local engine and says which image is not pinned and how one pins it, without
    suggesting an option it does not accept."""
    env = {**os.environ, "DICOMPOSE_HOME": str(tmp_path / "home")}
    argv = [str(BIN / "dicompose"), "demo", "--out", str(tmp_path / "demo")]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    said = " ".join((proc.stdout + proc.stderr).split())  # the engine line (stderr) may wrap
    assert "docker answers but image dicompose/" in said and "is not pinned by digest" in said
    assert "dicompose build" in said and "--allow-unpinned" not in proc.stdout + proc.stderr
    assert len(list((tmp_path / "demo" / "results" / "masks").glob("*.dcm"))) == 5


def test_the_report_of_a_docker_run_names_the_image_digests(tmp_path: Path, image_id: str):
    """Issue 13.5: a docker run's QC report says exactly which image ran each step (its digest), and draws
    the figures from files the containers wrote."""
    from dicompose.tools.samples import demo_pipeline

    source = tmp_path / "scans"
    source.mkdir()
    for name in ("ct_01.dcm", "ct_02.dcm", "mr_01.dcm", "mr_02.dcm"):
        (source / name).write_bytes((SAMPLES / name).read_bytes())
    argv = [str(BIN / "dicompose"), "run", str(demo_pipeline()), "--in", f"scans={source}"]
    argv += ["--out", str(tmp_path / "out"), "--workspace", str(tmp_path / "ws"), "--engine", "docker"]
    proc = subprocess.run([*argv, "--report", "--json"], capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)["report"]
    assert summary["series"] == 2 and summary["failed_series"] == 0 and summary["figures"] >= 10
    index = (tmp_path / "out" / "report" / "index.html").read_text()
    assert image_id.removeprefix("sha256:") in index
    assert index.count("<td>docker</td>") == 2  # both steps, each in its own container
