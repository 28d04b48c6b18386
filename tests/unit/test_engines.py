"""Engines as pure command builders: every hardening flag is in the command, for every engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from dicompose.engines.apptainer import apptainer_argv
from dicompose.engines.base import ImageRef, Mount, Permissions, TaskSpec
from dicompose.engines.docker import cli_argv, create_kwargs
from dicompose.engines.hardening import OUTPUT_DIR, container_user
from dicompose.engines.resolve import resolve_engine
from dicompose.errors import UsageError


def spec(**changes: object) -> TaskSpec:
    base = {
        "argv": ["dicompose", "normalize", "/dicompose/in/0/a b.dcm", "--out", "."],
        "workdir": Path("/work/task"),
        "mounts": (Mount(Path("/data/scans"), "/dicompose/in/0"),),
        "image": ImageRef("dicompose/normalize:0.1.0", "sha256:" + "ab" * 32),
        "labels": {"org.dicompose.task": "t1"},
    }
    base.update(changes)
    return TaskSpec(**base)  # type: ignore[arg-type]


def test_docker_defaults_are_hardened():
    kw = create_kwargs(spec())
    assert kw["network_mode"] == "none"
    assert kw["cap_drop"] == ["ALL"]
    assert kw["security_opt"] == ["no-new-privileges"]
    assert kw["read_only"] is True and "/tmp" in kw["tmpfs"]
    assert kw["init"] is True and kw["pids_limit"] > 0 and kw["mem_limit"] > 0
    assert kw["environment"] == {}
    assert kw["image"] == "sha256:" + "ab" * 32  # by digest, never by tag
    uid, _gid = (int(x) for x in kw["user"].split(":"))
    assert uid != 0
    mounts = {m["Target"]: m for m in kw["mounts"]}
    assert mounts["/dicompose/in/0"]["ReadOnly"] is True
    assert mounts[OUTPUT_DIR]["ReadOnly"] is False and mounts[OUTPUT_DIR]["Source"] == "/work/task"
    assert kw["working_dir"] == OUTPUT_DIR
    assert not any("docker.sock" in str(m["Source"]) for m in kw["mounts"])
    assert kw["labels"]["org.dicompose.managed"] == "true" and kw["labels"]["org.dicompose.task"] == "t1"


def test_docker_permissions_widen_only_when_asked():
    kw = create_kwargs(spec(permissions=Permissions(network=True, gpu=True)))
    assert kw["network_mode"] == "bridge" and kw["device_requests"]


def test_docker_cli_rendering_matches_the_policy():
    argv = cli_argv(spec())
    assert argv[:3] == ["docker", "run", "--rm"]
    for flag in ("--read-only", "--init", "--cap-drop=ALL", "--security-opt=no-new-privileges"):
        assert flag in argv
    assert argv[argv.index("--network") + 1] == "none"
    assert "type=bind,source=/data/scans,target=/dicompose/in/0,readonly" in argv
    assert argv[-5:] == ["dicompose", "normalize", "/dicompose/in/0/a b.dcm", "--out", "."]


def test_root_callers_run_as_nobody():
    assert container_user(0, 0) == (65534, 65534)
    assert container_user(1000, 1000) == (1000, 1000)


def test_apptainer_argv_is_contained():
    argv = apptainer_argv(spec(image=ImageRef("normalize.sif", "/sif/normalize.sif")))
    assert argv[:2] == ["apptainer", "exec"]
    for flag in ("--containall", "--cleanenv", "--no-home", "--no-privs"):
        assert flag in argv
    assert argv[argv.index("--no-mount") + 1] == "bind-paths"
    assert argv[argv.index("--network") + 1] == "none" and "--net" in argv
    binds = [argv[i + 1] for i, a in enumerate(argv) if a == "--bind"]
    assert binds == ["/data/scans:/dicompose/in/0:ro", f"/work/task:{OUTPUT_DIR}:rw"]
    assert argv[argv.index("--pwd") + 1] == OUTPUT_DIR
    assert argv[-6:] == ["/sif/normalize.sif", "dicompose", "normalize", "/dicompose/in/0/a b.dcm", "--out", "."]


def test_apptainer_network_and_gpu_when_asked():
    argv = apptainer_argv(spec(permissions=Permissions(network=True, gpu=True)))
    assert "--network" not in argv and "--nv" in argv


def test_engines_need_an_image():
    with pytest.raises(UsageError):
        apptainer_argv(spec(image=None))
    with pytest.raises(UsageError):
        create_kwargs(spec(image=None))


def test_auto_falls_back_to_local_and_says_why(monkeypatch):
    from dicompose.engines.registry import engine_named

    engine_named.cache_clear()  # engines are one per process: another test may have probed the real engine
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    monkeypatch.setenv("PATH", "/nonexistent")
    resolution = resolve_engine("auto")
    assert resolution.engine.name == "local"
    assert "Docker engine does not answer" in resolution.why and "apptainer" in resolution.why
    with pytest.raises(UsageError, match="--engine docker"):
        resolve_engine("docker")
    with pytest.raises(UsageError, match="unknown engine"):
        resolve_engine("podman")
    engine_named.cache_clear()  # nor may this test's unreachable engine be left for the others


def test_apptainer_follows_the_shared_policy():
    from dataclasses import replace

    from dicompose.engines.apptainer import not_enforced
    from dicompose.engines.hardening import DEFAULT

    base = spec(image=ImageRef("normalize.sif", "/sif/normalize.sif"))
    argv = apptainer_argv(base)
    assert "--no-privs" in argv and "--memory" not in argv
    assert not_enforced() == ["memory limit", "pids limit", "CPU limit"]
    limited = replace(DEFAULT, apptainer_limits=True, pids_limit=64)
    argv = apptainer_argv(base, policy=limited)
    assert argv[argv.index("--pids-limit") + 1] == "64"
    assert argv[argv.index("--memory") + 1] == str(DEFAULT.memory_bytes)
    assert not_enforced(limited) == []
    assert "--no-privs" not in apptainer_argv(base, policy=replace(DEFAULT, drop_all_capabilities=False))


def test_leftovers_are_containers_of_dead_processes_on_this_host():
    import os

    from dicompose.engines.docker import leftovers

    def container(cid: str, host: str, pid: int) -> dict:
        return {"Id": cid, "Labels": {"org.dicompose.host": host, "org.dicompose.pid": str(pid)}}

    dead = 2**22 + 12345  # above the default pid_max: no such process
    listed = [
        container("dead-here", "h1", dead),
        container("alive-here", "h1", os.getppid()),
        container("mine", "h1", os.getpid()),
        container("dead-elsewhere", "h2", dead),
        {"Id": "unlabelled", "Labels": None},
    ]
    assert leftovers(listed, "h1", os.getpid()) == ["dead-here"]


def test_the_socket_client_only_speaks_to_unix_sockets(monkeypatch):
    from dicompose.images.docker_api import DockerAPI, EngineUnavailableError, unix_socket

    monkeypatch.setenv("DOCKER_HOST", "tcp://10.0.0.1:2376")
    assert unix_socket() is None  # remote engines: the SDK (TLS, SSH) handles them
    monkeypatch.setenv("DOCKER_HOST", "unix:///run/user/1000/docker.sock")
    assert unix_socket() == "/run/user/1000/docker.sock"
    monkeypatch.delenv("DOCKER_HOST")
    assert unix_socket() == "/var/run/docker.sock"
    with pytest.raises(EngineUnavailableError, match=r"nowhere\.sock"):
        DockerAPI("/nonexistent/nowhere.sock", timeout=1).version()


def test_gpus_reach_every_engine_as_the_job_names_them():
    """A step asking for GPUs: the GPUs a SLURM job was given (CUDA_VISIBLE_DEVICES), else as many as asked."""
    from dicompose.engines.base import Resources

    asked = spec(permissions=Permissions(gpu=True), resources=Resources(gpus=2))
    job = {"CUDA_VISIBLE_DEVICES": "1,3", "PATH": "/bin"}
    assert create_kwargs(asked, environ=job)["device_requests"][0]["DeviceIDs"] == ["1", "3"]
    argv = cli_argv(asked, environ=job)
    assert argv[argv.index("--gpus") + 1] == "device=1,3"
    argv = cli_argv(asked, environ={})
    assert argv[argv.index("--gpus") + 1] == "2"
    assert "--gpus" not in cli_argv(spec(), environ=job)  # never without asking
    sif = spec(image=ImageRef("n.sif", "/sif/n.sif"), permissions=Permissions(gpu=True))
    argv = apptainer_argv(sif, environ=job)
    assert "--nv" in argv and "CUDA_VISIBLE_DEVICES=1,3" in argv and "PATH=/bin" not in argv
    assert "CUDA_VISIBLE_DEVICES=1,3" not in apptainer_argv(spec(image=sif.image), environ=job)
