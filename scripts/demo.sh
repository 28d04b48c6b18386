#!/usr/bin/env bash
# Install dicompose and run the main job: normalize the bundled sample scans, print where the results are.
# Usage: scripts/demo.sh [output folder]      (default: ./demo-output)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh runtime
exec .venv/bin/dicompose demo --out "${1:-demo-output}"
