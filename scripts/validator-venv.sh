#!/usr/bin/env bash
# The independent RO-Crate validator (roc-validator) in its own hash-locked venv, for the provenance tests,
# with its HTTP cache seeded from the RO-Crate context bundled in the `rocrate` package (validation offline).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/locked-venv.sh .venv-validator requirements/validator.lock
.venv-validator/bin/python tests/support/seed_rocrate_validator_cache.py .venv-validator/rocrate-cache >/dev/null
