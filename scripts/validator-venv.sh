#!/usr/bin/env bash
# The independent RO-Crate validator (roc-validator) in its own hash-locked venv, for the provenance tests,
# with its HTTP cache seeded from the RO-Crate context bundled in the `rocrate` package (validation offline).
set -euo pipefail
cd "$(dirname "$0")/.."
lock=requirements/validator.lock
[ -x .venv-validator/bin/python ] || python3 -m venv .venv-validator
want="$(sha256sum "$lock" | cut -c1-64)"
if [ "$(cat .venv-validator/.installed 2>/dev/null)" != "$want" ]; then
  PIP_FIND_LINKS= .venv-validator/bin/python -m pip install --quiet --disable-pip-version-check --require-hashes \
    -r "$lock" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
  echo "$want" > .venv-validator/.installed
fi
.venv-validator/bin/python tests/support/seed_rocrate_validator_cache.py .venv-validator/rocrate-cache >/dev/null
