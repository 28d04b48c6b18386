#!/usr/bin/env bash
# The project as an ordinary user has it: a copy of this tree in a folder the user owns, with its own venv
# (hash-locked dev requirements). HPC engines run as the calling user (Charliecloud refuses root), so the
# tests of the charliecloud engine run as this user (scripts/user-tests.sh). Needs root; idempotent.
# Usage: scripts/user-venv.sh [USER [FOLDER]]    (default: dicompose-ci, /home/USER/dicompose)
# This machine's default python3 may live where other users cannot enter: the venv comes from Debian's
# /usr/bin/python3 (python3-venv), found first on the user's PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
user="${1:-dicompose-ci}"
dest="${2:-/home/$user/dicompose}"
[ "$(id -u)" = 0 ] || { echo "user-venv: needs root (creates a user)" >&2; exit 2; }
id -u "$user" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash "$user"
if ! /usr/bin/python3 -c 'import venv, ensurepip' 2>/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
fi
mkdir -p "$dest"
# the tree as it is (uncommitted changes too), without this machine's environments and caches
tar --create --exclude=./.venv --exclude=./.venv-validator --exclude=./.git --exclude='*/__pycache__' \
    --exclude=./.dicompose --exclude=./.mypy_cache --exclude=./.ruff_cache --exclude=./.pytest_cache . \
  | tar --extract --directory "$dest"
chown -R "$user:" "$dest"
runuser -u "$user" -- env -i HOME="/home/$user" USER="$user" PATH=/usr/bin:/bin \
  bash -c 'cd "$1" && scripts/bootstrap.sh dev' _ "$dest"
echo "user-venv: $dest/.venv for $user ($(runuser -u "$user" -- "$dest/.venv/bin/python" --version))"
