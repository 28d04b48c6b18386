#!/usr/bin/env bash
# Benchmark-only tools (Snakemake, for bench/cohort.py) in their own hash-locked venv, .venv-bench: they must not
# leak into dicompose's own environment. Reinstalls only when requirements/bench.lock changes.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/locked-venv.sh .venv-bench requirements/bench.lock
.venv-bench/bin/snakemake --version >/dev/null
