#!/usr/bin/env bash
# Make sure a local Docker engine answers: install Debian's docker.io (root + apt) and start dockerd
# without systemd if needed. Idempotent; prints the engine version. Used by .ci/run.
set -euo pipefail
if ! command -v dockerd >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || { echo "docker-engine: dockerd missing and not root: install docker.io" >&2; exit 2; }
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io debootstrap >/dev/null
fi
command -v debootstrap >/dev/null 2>&1 || { [ "$(id -u)" = 0 ] && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
if ! docker info >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || { echo "docker-engine: the engine is not running and we are not root" >&2; exit 2; }
  log="${DOCKERD_LOG:-/var/log/dockerd.log}"
  nohup dockerd >"$log" 2>&1 &
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || { echo "docker-engine: dockerd did not start; see $log" >&2; tail -20 "$log" >&2; exit 1; }
fi
docker version --format 'docker engine {{.Server.Version}} ready'
