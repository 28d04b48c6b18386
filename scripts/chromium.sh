#!/usr/bin/env bash
# Debian's Chromium and ChromeDriver, for the tests that open the QC report in a real browser. Idempotent;
# needs root. apt uses the package sources configured on the machine.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-dejavu-core >/dev/null
fi
/usr/bin/chromium --version
