"""Runs INSIDE a container launched by dicompose and reports what the step can see and do (tests only).

It never sends network traffic: it lists network interfaces instead (with --network none only 'lo' exists).
"""

import json
import os
import sys
import time


def can_write(path):
    try:
        with open(path, "w") as handle:
            handle.write("x")
        return True
    except OSError:
        return False


def cpu_quota():
    """CPUs the container may use (cgroup v1 or v2), or None when unlimited."""
    for quota_file, period_file in (
        ("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu/cpu.cfs_period_us"),
        ("/sys/fs/cgroup/cpu.max", None),
    ):
        try:
            with open(quota_file) as handle:
                text = handle.read().split()
        except OSError:
            continue
        if period_file is None:
            return None if text[0] == "max" else int(text[0]) / int(text[1])
        with open(period_file) as handle:
            period = int(handle.read())
        return None if int(text[0]) < 0 else int(text[0]) / period
    return None


def net_devices():
    """Interfaces of the step's own network namespace (/sys/class/net may be the host's sysfs, bound in)."""
    with open("/proc/self/net/dev") as handle:
        return sorted(line.split(":")[0].strip() for line in handle.read().splitlines()[2:])


def loopback_works():
    """Can the step talk to itself over 127.0.0.1 (a tool's own local server)?"""
    import socket

    try:
        with socket.socket() as server:
            server.bind(("127.0.0.1", 0))
            server.listen(1)
            with socket.create_connection(server.getsockname(), timeout=2):
                return True
    except OSError:
        return False


def main():
    mode, seconds, inputs = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
    with open("/proc/self/status") as handle:
        status = dict(line.split(":\t", 1) for line in handle.read().splitlines() if ":\t" in line)
    with open("/proc/1/cmdline", "rb") as handle:
        pid1 = handle.read().split(b"\0")[0].decode()
    report = {
        "uid": os.getuid(),
        "gid": os.getgid(),
        "cwd": os.getcwd(),
        "tmp_entries": sorted(os.listdir("/tmp")),
        "write_root": can_write("/probe"),
        "write_tmp": can_write("/tmp/probe"),
        "write_input": can_write(os.path.join(os.path.dirname(inputs[0]), "probe")),
        "write_cwd": can_write("probe-cwd"),
        "interfaces": sorted(os.listdir("/sys/class/net")),
        "net_devices": net_devices(),
        "loopback": loopback_works(),
        "shm_entries": sorted(os.listdir("/dev/shm")) if os.path.isdir("/dev/shm") else [],
        "cap_eff": status["CapEff"].strip(),
        "no_new_privs": status["NoNewPrivs"].strip(),
        "pid1": pid1,
        "docker_socket": os.path.exists("/var/run/docker.sock") or os.path.exists("/run/docker.sock"),
        "env": sorted(os.environ),
        "inputs_readable": all(os.access(p, os.R_OK) for p in inputs),
        "argv": inputs,
        "workers": os.environ.get("DICOMPOSE_WORKERS"),
        "omp_threads": os.environ.get("OMP_NUM_THREADS"),
        "cpu_quota": cpu_quota(),
    }
    time.sleep(seconds)
    if mode == "escape":
        os.symlink("/etc/passwd", "probe.json")
    elif mode != "nothing":
        with open("probe.json", "w") as handle:
            json.dump(report, handle)


main()
