"""The ``docker`` engine, through the Docker SDK (no shell, no CLI parsing).

``create_kwargs`` is the pure heart (what the container gets); ``cli_argv`` renders the same policy as the
equivalent ``docker run`` command for ``--dry-run`` and for users who want to reproduce a step by hand.
Every container is labelled with its owner's host and pid, removed after the run, and, if dicompose was
killed, removed by the next run (:func:`leftovers`, asked once per run through ``cleanup``).
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Callable, Mapping
from typing import Any

from dicompose.descriptors.shell import SHELL
from dicompose.engines.base import EngineInfo, ImageRef, RunResult, TaskSpec
from dicompose.engines.hardening import (
    DEFAULT,
    LABEL_PREFIX,
    OUTPUT_DIR,
    Hardening,
    container_user,
    gpu_environment,
)
from dicompose.errors import EngineError, UnpinnedImageError, UsageError
from dicompose.images.docker_api import DockerAPI, EngineUnavailableError, unix_socket
from dicompose.images.docker_client import connect, short
from dicompose.lifetime import alive

_CPU_PERIOD = 100_000


def owner_labels() -> dict[str, str]:
    return {
        f"{LABEL_PREFIX}.managed": "true",
        f"{LABEL_PREFIX}.host": socket.gethostname(),
        f"{LABEL_PREFIX}.pid": str(os.getpid()),
    }


def create_kwargs(
    spec: TaskSpec, policy: Hardening = DEFAULT, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Keyword arguments for ``client.containers.create`` (pure: a function of the spec, the policy and, for a
    step that asks for GPUs, the GPUs ``environ`` names: a SLURM job's own)."""
    from docker.types import DeviceRequest, Mount

    if spec.image is None:
        raise UsageError("the docker engine needs an image")
    uid, gid = container_user()
    mounts = [Mount(target=m.target, source=str(m.source), type="bind", read_only=m.read_only) for m in spec.mounts]
    mounts.append(Mount(target=OUTPUT_DIR, source=str(spec.workdir), type="bind", read_only=spec.workdir_read_only))
    kwargs: dict[str, Any] = {
        "image": spec.image.digest,
        "command": list(spec.argv),
        "user": f"{uid}:{gid}",
        "working_dir": OUTPUT_DIR,
        "mounts": mounts,
        "labels": {**owner_labels(), **spec.labels},
        "environment": dict(spec.environment),
        "cap_drop": ["ALL"] if policy.drop_all_capabilities else [],
        "security_opt": ["no-new-privileges"] if policy.no_new_privileges else [],
        "read_only": policy.read_only_rootfs,
        "tmpfs": {"/tmp": policy.tmpfs_tmp},  # noqa: S108 - a tmpfs inside the container
        "pids_limit": policy.pids_limit,
        "mem_limit": spec.resources.memory_bytes or policy.memory_bytes,
        "init": policy.init,
        "network_mode": "bridge" if spec.permissions.network else "none",
        "detach": True,
    }
    if spec.resources.cpus:
        kwargs["nano_cpus"] = int(spec.resources.cpus * 1e9)
    if spec.argv[:2] == [SHELL, "-c"]:  # a template with shell syntax: the image's entrypoint must not wrap it
        kwargs["entrypoint"], kwargs["command"] = [SHELL], list(spec.argv[1:])
    if spec.permissions.gpu:
        given = gpu_environment(os.environ if environ is None else environ).get("CUDA_VISIBLE_DEVICES")
        if given:  # the GPUs this job was given, not the first ones of the node
            request = DeviceRequest(device_ids=given.split(","), capabilities=[["gpu"]])
        else:
            request = DeviceRequest(count=spec.resources.gpus or -1, capabilities=[["gpu"]])
        kwargs["device_requests"] = [request]
    return kwargs


def cli_argv(spec: TaskSpec, policy: Hardening = DEFAULT, environ: Mapping[str, str] | None = None) -> list[str]:
    """The equivalent ``docker run`` argv (same policy as :func:`create_kwargs`)."""
    kw = create_kwargs(spec, policy, environ)
    argv = ["docker", "run", "--rm", "--user", kw["user"], "--network", kw["network_mode"]]
    argv += [f"--cap-drop={c}" for c in kw["cap_drop"]]
    argv += [f"--security-opt={s}" for s in kw["security_opt"]]
    if kw["read_only"]:
        argv.append("--read-only")
    argv += ["--tmpfs", f"/tmp:{policy.tmpfs_tmp}", "--pids-limit", str(kw["pids_limit"])]  # noqa: S108
    argv += ["--memory", str(kw["mem_limit"])]
    for key, value in sorted(kw["environment"].items()):
        argv += ["--env", f"{key}={value}"]
    if kw["init"]:
        argv.append("--init")
    if "nano_cpus" in kw:
        argv += ["--cpus", str(kw["nano_cpus"] / 1e9)]
    if "device_requests" in kw:
        (request,) = kw["device_requests"]
        if request.get("DeviceIDs"):
            argv += ["--gpus", f"device={','.join(request['DeviceIDs'])}"]
        else:
            argv += ["--gpus", "all" if request["Count"] == -1 else str(request["Count"])]
    for mount in kw["mounts"]:
        option = f"type=bind,source={mount['Source']},target={mount['Target']}"
        argv += ["--mount", option + (",readonly" if mount.get("ReadOnly") else "")]
    for key, value in sorted(kw["labels"].items()):
        argv += ["--label", f"{key}={value}"]
    if "entrypoint" in kw:
        argv += ["--entrypoint", kw["entrypoint"][0]]
    argv += ["--workdir", kw["working_dir"], kw["image"], *kw["command"]]
    return argv


def leftovers(containers: list[dict[str, Any]], host: str, me: int) -> list[str]:
    """IDs of containers that dead dicompose processes on ``host`` left behind (pure; ``containers`` as listed
    by the engine: dicts with ``Id`` and ``Labels``)."""
    found = []
    for container in containers:
        labels = container.get("Labels") or {}
        if labels.get(f"{LABEL_PREFIX}.host") != host:
            continue
        pid = int(labels.get(f"{LABEL_PREFIX}.pid", "0") or 0)
        if pid == me or (pid and alive(pid)):
            continue  # ours (another thread is using it) or a live run's
        found.append(str(container["Id"]))
    return found


class DockerEngine:
    """Read-only questions (probe, images, leftovers) go over the socket with the standard library
    (``images.docker_api``), so a rerun that launches nothing never imports the SDK; launches use the SDK."""

    name = "docker"
    isolates = True

    def __init__(self, client: Any | None = None, policy: Hardening = DEFAULT) -> None:
        self._client = client
        socket_path = unix_socket() if client is None else None
        self._api = DockerAPI(socket_path) if socket_path else None
        self._info: EngineInfo | None = None
        self.policy = policy

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = connect()
        return self._client

    def info(self) -> EngineInfo:
        if self._info is None:
            try:
                version = self._api.version() if self._api else str(self.client.version().get("Version", "?"))
                self._info = EngineInfo(self.name, True, version)
            except EngineUnavailableError as exc:
                self._info = EngineInfo(self.name, False, None, f"the Docker engine does not answer ({exc})")
            except UsageError as exc:
                self._info = EngineInfo(self.name, False, None, str(exc))
        return self._info

    def _inspect(self, name: str) -> dict[str, Any] | None:
        """``docker image inspect`` (None if absent)."""
        if self._api is not None:
            try:
                return self._api.image(name)
            except EngineUnavailableError as exc:
                raise EngineError(f"the Docker engine did not answer ({exc})") from None
        import docker.errors

        try:
            return dict(self.client.api.inspect_image(name))
        except docker.errors.ImageNotFound:
            return None
        except docker.errors.APIError as exc:
            raise EngineError(f"the Docker engine did not answer ({short(exc)})") from None

    def resolve_image(
        self, name: str, pin: str | None, *, allow_unpinned: bool, hint: str, tool: str = "TOOL"
    ) -> tuple[ImageRef, bool]:
        image_id, is_pinned = resolve_image(self._inspect, name, pin, allow_unpinned=allow_unpinned, hint=hint)
        return ImageRef(name, image_id), is_pinned

    def has_image(self, image: ImageRef) -> bool:
        return self._inspect(image.digest) is not None

    def _containers(self, label: str) -> list[dict[str, Any]]:
        if self._api is not None:
            return self._api.containers(label)
        return [dict(c) for c in self.client.api.containers(all=True, filters={"label": label})]

    def cleanup(self, run_id: str | None = None) -> int:
        """Remove a run's containers (after Ctrl-C), or those of dead dicompose processes on this host."""
        try:
            if run_id is None:
                listed = self._containers(f"{LABEL_PREFIX}.managed=true")
                doomed = leftovers(listed, socket.gethostname(), os.getpid())
            else:
                doomed = [str(c["Id"]) for c in self._containers(f"{LABEL_PREFIX}.run={run_id}")]
        except (EngineUnavailableError, EngineError):
            return 0
        removed = 0
        for container_id in doomed:  # rare: only now is the SDK needed
            with contextlib.suppress(Exception):
                self.client.api.remove_container(container_id, force=True)
                removed += 1
        return removed

    def site_pin(self, tool: str, descriptor_digest: str) -> str | None:
        return None

    def not_enforced(self) -> tuple[str, ...]:
        return ()

    def command(self, spec: TaskSpec) -> list[str]:
        return cli_argv(spec, self.policy)

    def run(self, spec: TaskSpec) -> RunResult:
        import docker.errors

        kwargs = create_kwargs(spec, self.policy)
        started = time.perf_counter()
        container = None
        timed_out = False
        try:
            container = self.client.containers.create(**kwargs)
            container.start()
            try:
                status = container.wait(timeout=spec.resources.timeout_s)
                exit_code = int(status.get("StatusCode", 1))
            except Exception:  # requests' ReadTimeout on wait: the step overran its timeout
                timed_out = True
                with contextlib.suppress(Exception):
                    container.kill()
                exit_code = 124
            stdout = container.logs(stdout=True, stderr=False)
            stderr = container.logs(stdout=False, stderr=True)
        except docker.errors.ImageNotFound:
            raise EngineError(f"image {spec.image.name if spec.image else '?'} is not available locally") from None
        except (docker.errors.APIError, OSError) as exc:  # incl. "404 No such container" races, socket errors
            raise EngineError(f"the Docker engine failed to run the step ({short(exc)})") from None
        finally:
            if container is not None:
                with contextlib.suppress(Exception):
                    container.remove(force=True)
        return RunResult(
            exit_code,
            stdout,
            stderr,
            time.perf_counter() - started,
            self.name,
            self.command(spec),
            image_digest=spec.image.digest if spec.image else None,
            timed_out=timed_out,
        )


def image_matches(image: dict[str, Any], pin: str) -> bool:
    """True if a local image (as inspected) is the pinned one (image ID, or a registry digest it carries)."""
    if image.get("Id") == pin:
        return True
    return any(ref.split("@", 1)[-1] == pin for ref in image.get("RepoDigests") or [])


def resolve_image(
    inspect: Callable[[str], dict[str, Any] | None], name: str, pin: str | None, *, allow_unpinned: bool, hint: str
) -> tuple[str, bool]:
    """(image ID to run, pinned?) for ``name``; a tag that moved away from its pin is refused."""
    image = inspect(name)
    if pin:
        if image is not None and image_matches(image, pin):
            return str(image["Id"]), True
        if image is not None:
            raise UsageError(
                f"image {name} is now {str(image['Id'])[:19]}, but the tool is pinned to {pin[:19]}: refusing to "
                f"run a different image ({hint})"
            )
        pinned_image = inspect(pin)
        if pinned_image is None:
            raise UsageError(f"pinned image {pin[:19]} ({name}) is not available locally ({hint})")
        return str(pinned_image["Id"]), True
    if image is None:
        raise UsageError(f"image {name} is not available locally ({hint})")
    if not allow_unpinned:
        raise UnpinnedImageError(name, "descriptor container-hash or dicompose build")
    return str(image["Id"]), False
