#!/usr/bin/env bash
# Create .venv and install dicompose from the hash-locked requirements.
# Usage: scripts/bootstrap.sh runtime|dev      (idempotent: a no-op when the lock has not changed)
set -euo pipefail
cd "$(dirname "$0")/.."
kind="${1:-runtime}"
lock="requirements/${kind}.lock"
[ -f "$lock" ] || { echo "bootstrap: no lock file $lock" >&2; exit 2; }

if ! python3 -c 'import sys, venv, ensurepip; assert sys.version_info >= (3, 11)' 2>/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null
  else
    echo "bootstrap: needs Python >= 3.11 with the venv module (Debian/Ubuntu: apt-get install python3-venv)" >&2
    exit 2
  fi
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
stamp=".venv/.installed-${kind}"
want="$(sha256sum "$lock" pyproject.toml | sha256sum | cut -c1-64)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  # Only locked, hash-checked packages; machine-local wheel folders are ignored so every machine gets the same bits.
  PIP_FIND_LINKS= .venv/bin/python -m pip install --quiet --disable-pip-version-check --require-hashes -r "$lock" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
  PIP_FIND_LINKS= .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
  echo "$want" > "$stamp"
fi
