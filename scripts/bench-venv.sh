#!/usr/bin/env bash
# Benchmark-only tools (Snakemake, for bench/cohort.py) in their own hash-locked venv, .venv-bench: they must not
# leak into dicompose's own environment. Reinstalls only when requirements/bench.lock changes.
set -euo pipefail
cd "$(dirname "$0")/.."
lock=requirements/bench.lock
[ -x .venv-bench/bin/python ] || python3 -m venv .venv-bench
want="$(sha256sum "$lock" | cut -c1-64)"
if [ "$(cat .venv-bench/.installed 2>/dev/null)" != "$want" ]; then
  PIP_FIND_LINKS= .venv-bench/bin/python -m pip install --quiet --disable-pip-version-check --require-hashes \
    -r "$lock" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
  echo "$want" > .venv-bench/.installed
fi
.venv-bench/bin/snakemake --version >/dev/null
