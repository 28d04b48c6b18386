"""The ``docker`` engine, through the Docker SDK (no shell, no CLI parsing).

``create_kwargs`` is the pure heart (what the container gets); ``cli_argv`` renders the same policy as the
equivalent ``docker run`` command for ``--dry-run`` and for users who want to reproduce a step by hand.
Every container is labelled with its owner's host and pid, removed after the run, and, if dicompose was
killed, removed by the next run (:func:`remove_leftovers`, called once per run through ``cleanup``).
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from typing import Any

from dicompose.engines.base import EngineInfo, ImageRef, RunResult, TaskSpec
from dicompose.engines.hardening import DEFAULT, LABEL_PREFIX, OUTPUT_DIR, Hardening, container_user
from dicompose.errors import EngineError, UsageError
from dicompose.images.docker_client import connect, short

_CPU_PERIOD = 100_000


def owner_labels() -> dict[str, str]:
    return {
        f"{LABEL_PREFIX}.managed": "true",
        f"{LABEL_PREFIX}.host": socket.gethostname(),
        f"{LABEL_PREFIX}.pid": str(os.getpid()),
    }


def create_kwargs(spec: TaskSpec, policy: Hardening = DEFAULT) -> dict[str, Any]:
    """Keyword arguments for ``client.containers.create`` (pure: a function of the spec and policy)."""
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
    if spec.permissions.gpu:
        kwargs["device_requests"] = [DeviceRequest(count=-1, capabilities=[["gpu"]])]
    return kwargs


def cli_argv(spec: TaskSpec, policy: Hardening = DEFAULT) -> list[str]:
    """The equivalent ``docker run`` argv (same policy as :func:`create_kwargs`)."""
    kw = create_kwargs(spec, policy)
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
        argv += ["--gpus", "all"]
    for mount in kw["mounts"]:
        option = f"type=bind,source={mount['Source']},target={mount['Target']}"
        argv += ["--mount", option + (",readonly" if mount.get("ReadOnly") else "")]
    for key, value in sorted(kw["labels"].items()):
        argv += ["--label", f"{key}={value}"]
    argv += ["--workdir", kw["working_dir"], kw["image"], *kw["command"]]
    return argv


def remove_leftovers(client: Any) -> int:
    """Remove containers this host's dicompose processes left behind when they were killed."""
    host = socket.gethostname()
    removed = 0
    for container in client.containers.list(all=True, filters={"label": f"{LABEL_PREFIX}.managed=true"}):
        labels = container.labels or {}
        if labels.get(f"{LABEL_PREFIX}.host") != host:
            continue
        pid = int(labels.get(f"{LABEL_PREFIX}.pid", "0") or 0)
        if pid == os.getpid() or (pid and _alive(pid)):
            continue  # ours (another thread is using it) or a live run's
        with contextlib.suppress(Exception):
            container.remove(force=True)
            removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class DockerEngine:
    name = "docker"
    isolates = True

    def __init__(self, client: Any | None = None, policy: Hardening = DEFAULT) -> None:
        self._client = client
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
                version = self.client.version().get("Version", "?")
                self._info = EngineInfo(self.name, True, str(version))
            except UsageError as exc:
                self._info = EngineInfo(self.name, False, None, str(exc))
        return self._info

    def resolve_image(self, name: str, pin: str | None, *, allow_unpinned: bool, hint: str) -> tuple[ImageRef, bool]:
        image_id, is_pinned = resolve_image(self.client, name, pin, allow_unpinned=allow_unpinned, hint=hint)
        return ImageRef(name, image_id), is_pinned

    def has_image(self, image: ImageRef) -> bool:
        import docker.errors

        try:
            self.client.images.get(image.digest)
        except docker.errors.ImageNotFound:
            return False
        except docker.errors.APIError as exc:
            raise EngineError(f"the Docker engine did not answer ({short(exc)})") from None
        return True

    def cleanup(self, run_id: str | None = None) -> int:
        """Remove a run's containers (after Ctrl-C), or those of dead dicompose processes on this host."""
        if run_id is None:
            return remove_leftovers(self.client)
        removed = 0
        with contextlib.suppress(Exception):
            label = f"{LABEL_PREFIX}.run={run_id}"
            for container in self.client.containers.list(all=True, filters={"label": label}):
                with contextlib.suppress(Exception):
                    container.remove(force=True)
                    removed += 1
        return removed

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


def image_matches(image: Any, pin: str) -> bool:
    """True if a local image is the pinned one (image ID, or a registry digest among its RepoDigests)."""
    if image.id == pin:
        return True
    return any(ref.split("@", 1)[-1] == pin for ref in image.attrs.get("RepoDigests") or [])


def resolve_image(client: Any, name: str, pin: str | None, *, allow_unpinned: bool, hint: str) -> tuple[str, bool]:
    """(image ID to run, pinned?) for ``name``; a tag that moved away from its pin is refused."""
    import docker.errors

    try:
        image = client.images.get(name)
    except docker.errors.ImageNotFound:
        image = None
    if pin:
        if image is not None and image_matches(image, pin):
            return str(image.id), True
        if image is not None:
            raise UsageError(
                f"image {name} is now {str(image.id)[:19]}, but the tool is pinned to {pin[:19]}: refusing to run "
                f"a different image ({hint})"
            )
        try:
            return str(client.images.get(pin).id), True
        except docker.errors.ImageNotFound:
            raise UsageError(f"pinned image {pin[:19]} ({name}) is not available locally ({hint})") from None
    if image is None:
        raise UsageError(f"image {name} is not available locally ({hint})")
    if not allow_unpinned:
        raise UsageError(
            f"image {name} is not pinned by digest (descriptor container-hash or dicompose build); "
            "pass --allow-unpinned to run it anyway"
        )
    return str(image.id), False
