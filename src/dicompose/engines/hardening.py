"""The security policy for containerised steps, as data shared by every engine.

Each setting is checked by a test against a live container (``docker inspect`` and probes from inside).
A step that needs more (network, GPU) asks for it in its descriptor and the run record says so.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

#: Where inputs and the output folder appear inside a container (neutral names: no patient data in paths).
INPUT_ROOT = "/dicompose/in"
OUTPUT_DIR = "/dicompose/out"
TASKS_ROOT = "/dicompose/tasks"  # a pack's task output folders: TASKS_ROOT/N/out
#: The unprivileged identity used when the caller is root (a container never runs as uid 0).
FALLBACK_UID = 65534
FALLBACK_GID = 65534
LABEL_PREFIX = "org.dicompose"
#: Variables naming the GPUs a job was given (SLURM sets them with --gres): passed to a step that asks for GPUs.
GPU_VARIABLES = ("CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES", "GPU_DEVICE_ORDINAL")


def gpu_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The GPU-naming variables of ``environ`` (a SLURM job's), for a step that asks for GPUs."""
    return {key: environ[key] for key in GPU_VARIABLES if environ.get(key)}


@dataclass(frozen=True)
class Hardening:
    drop_all_capabilities: bool = True
    no_new_privileges: bool = True
    read_only_rootfs: bool = True
    tmpfs_tmp: str = "rw,nosuid,nodev,noexec,size=256m"
    pids_limit: int = 512
    memory_bytes: int = 4 * 1024**3
    init: bool = True
    #: Apptainer's cgroup limits (--memory, --pids-limit, --cpus) need cgroup delegation to the user.
    apptainer_limits: bool = False


DEFAULT = Hardening()


def container_user(uid: int | None = None, gid: int | None = None) -> tuple[int, int]:
    """The caller's uid:gid, so outputs belong to the caller, except root, which maps to nobody."""
    uid = os.getuid() if uid is None else uid
    gid = os.getgid() if gid is None else gid
    if uid == 0:
        return FALLBACK_UID, FALLBACK_GID
    return uid, gid
