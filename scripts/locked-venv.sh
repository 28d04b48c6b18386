#!/usr/bin/env bash
# A venv holding exactly a hash-locked requirements file: scripts/locked-venv.sh VENV LOCK
# Used for tools that must not leak into dicompose's own environment. Reinstalls only when LOCK changes.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="$1" lock="$2"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
want="$(sha256sum "$lock" | cut -c1-64)"
if [ "$(cat "$venv/.installed" 2>/dev/null)" != "$want" ]; then
  PIP_FIND_LINKS= "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --require-hashes \
    -r "$lock" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
  echo "$want" > "$venv/.installed"
fi
