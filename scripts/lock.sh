#!/usr/bin/env bash
# Re-lock dependencies with hashes (maintainers only; needs pip-tools). The lock files are what every
# install uses, with --require-hashes, so an install is repeatable and tamper-evident.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_FIND_LINKS=          # lock against the package index only, never a machine-local wheel folder
# The index is the machine's own pip configuration (pip.conf / PIP_INDEX_URL); the lock names none.
for name in runtime dev validator bench; do
  pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-find-links --no-emit-index-url \
    --output-file "requirements/${name}.lock" "requirements/${name}.in"  # runtime.lock links into the package
done
