#!/usr/bin/env bash
# Charliecloud (unprivileged HPC containers) from Debian: ch-run, ch-convert (charliecloud-runtime and
# charliecloud-builders 0.31). Idempotent; needs root to install. Used by scripts/test.sh and .ci/run.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
if ! command -v ch-run >/dev/null || ! command -v ch-convert >/dev/null; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends charliecloud-runtime charliecloud-builders >/dev/null
fi
echo "charliecloud $(USER="${USER:-root}" ch-run --version 2>&1)"
