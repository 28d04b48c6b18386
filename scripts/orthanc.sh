#!/usr/bin/env bash
# Debian's Orthanc (a real PACS) for the PACS tests: installed only; each test starts its own, in a private
# network namespace with only loopback (Orthanc 1.10 listens on every interface). Idempotent; needs root.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
if ! command -v Orthanc >/dev/null || [ ! -e /usr/share/orthanc/plugins/libOrthancDicomWeb.so ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends orthanc orthanc-dicomweb iproute2 >/dev/null
fi
# the package's own service (where an init system starts it) is not the tests': they run their own
if command -v service >/dev/null && [ -x /etc/init.d/orthanc ]; then service orthanc stop >/dev/null 2>&1 || true; fi
echo "$(Orthanc --version | head -1)"
