#!/usr/bin/env bash
# Install what the tests need and run every check: lint, format, types, layer contract, tests.
# Usage: scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."

# System tools the integration tests use (the real DICOM validator). Installed when we are root with apt;
# otherwise the tests that need them skip with a reason (or fail when DICOMPOSE_REQUIRE names them).
if ! command -v dciodvfy >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing dicom3tools (dciodvfy)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dicom3tools >/dev/null
  else
    echo "==> dciodvfy not found and cannot install it (not root): its tests will skip" >&2
  fi
fi

# A Docker engine for the container tests (Debian's docker.io, dockerd started without systemd) and a
# single-node SLURM for the scheduler tests. Where one cannot be had, its tests skip with a reason (or fail
# when DICOMPOSE_REQUIRE names it).
if [ "$(id -u)" = 0 ]; then
  echo "==> docker engine"
  scripts/docker-engine.sh || echo "==> no docker engine: docker tests will skip" >&2
  echo "==> single-node SLURM"
  scripts/slurm-up.sh || echo "==> no SLURM: the --scheduler slurm tests will skip" >&2
  echo "==> charliecloud"
  scripts/charliecloud.sh || echo "==> no Charliecloud: its tests will skip" >&2
  echo "==> Orthanc (a real PACS)"
  scripts/orthanc.sh || echo "==> no Orthanc: the PACS tests will skip" >&2
fi

echo "==> python environment (.venv, hash-locked requirements/dev.lock)"
scripts/bootstrap.sh dev
bin=.venv/bin

echo "==> RO-Crate validator (its own venv: .venv-validator)"
scripts/validator-venv.sh || echo "==> no RO-Crate validator: provenance validation tests will skip" >&2

echo "==> ruff (lint + format)"
"$bin/ruff" check src tests bench
"$bin/ruff" format --check src tests bench
echo "==> mypy --strict src"
"$bin/mypy"
echo "==> import-linter (layers)"
"$bin/lint-imports"
echo "==> pytest"
if [ "$(id -u)" = 0 ]; then
  # tests/hpc needs an ordinary user (the charliecloud engine refuses root): run below as one
  "$bin/python" -m pytest -n auto -p no:cacheprovider --ignore=tests/hpc "$@"
  if [ $# = 0 ]; then
    echo "==> the HPC tests (tests/hpc) as an ordinary user: charliecloud engine, SLURM"
    scripts/user-tests.sh
  fi
else
  "$bin/python" -m pytest -n auto -p no:cacheprovider "$@"
fi
