#!/usr/bin/env bash
# The HPC tests (tests/hpc) as an HPC user runs them: an ordinary account, the charliecloud engine, images
# exported by root into a shared, read-only image folder, SLURM worker jobs submitted as that user.
# Needs root (creates the user, exports the images); the tool images must be built or buildable offline.
# Usage: scripts/user-tests.sh [pytest args...]     (env: DICOMPOSE_TEST_USER, DICOMPOSE_IMAGE_DIR)
set -euo pipefail
cd "$(dirname "$0")/.."
user="${DICOMPOSE_TEST_USER:-dicompose-ci}"
images="${DICOMPOSE_IMAGE_DIR:-/var/tmp/dicompose-images}"
dest="/home/$user/dicompose"
[ "$(id -u)" = 0 ] || { echo "user-tests: needs root; as an ordinary user run: pytest tests/hpc" >&2; exit 2; }

echo "==> $user: the project and its venv in $dest"
scripts/user-venv.sh "$user" "$dest" >/dev/null
echo "==> Charliecloud images in $images (readable by all, verified by their manifests)"
mkdir -p "$images" && chmod 755 "$images"
for tool in normalize threshold deidentify; do
  if ! out=$(.venv/bin/dicompose export-charliecloud "$tool" --out "$images" 2>&1); then
    case "$out" in
      *"no pinned image"*) .venv/bin/dicompose build "$tool" --json >/dev/null
                           .venv/bin/dicompose export-charliecloud "$tool" --out "$images" >/dev/null ;;
      *) echo "$out" >&2; exit 1 ;;
    esac
  fi
done
echo "==> pytest tests/hpc as $user"
require="${DICOMPOSE_REQUIRE:+$DICOMPOSE_REQUIRE,}unprivileged"
exec runuser -u "$user" -- env -i HOME="/home/$user" USER="$user" LANG=C.UTF-8 \
  PATH="$dest/.venv/bin:/usr/bin:/bin" DICOMPOSE_IMAGE_DIR="$images" DICOMPOSE_REQUIRE="$require" \
  bash -c 'cd "$1" && shift && exec .venv/bin/python -m pytest -n 2 -p no:cacheprovider tests/hpc "$@"' _ "$dest" "$@"
