#!/usr/bin/env bash
# Re-vendor the Boutiques descriptor JSON schema (MIT) from the boutiques wheel on PyPI, hash-checked.
set -euo pipefail
cd "$(dirname "$0")/.."
version=0.5.33
sha256=c5c7bacab04edd8b660fe7cdd93cd11f72be1d5a097f51f5982a65aa6a1bd29d
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
PIP_FIND_LINKS= python3 -m pip download --quiet --no-deps --only-binary=:all: "boutiques==$version" -d "$tmp"
wheel="$tmp/boutiques-$version-py3-none-any.whl"
echo "$sha256  $wheel" | sha256sum -c --quiet
dest=src/dicompose/descriptors/schema
python3 - "$wheel" "$dest" "$version" <<'PY'
import sys, zipfile, pathlib
wheel, dest, version = sys.argv[1], pathlib.Path(sys.argv[2]), sys.argv[3]
with zipfile.ZipFile(wheel) as z:
    (dest / "boutiques-descriptor.schema.json").write_bytes(z.read("boutiques/schema/descriptor.schema.json"))
    license_text = z.read(f"boutiques-{version}.dist-info/licenses/LICENSE").decode()
(dest / "BOUTIQUES-LICENSE").write_text(
    f"boutiques-descriptor.schema.json is the Boutiques descriptor schema, copied unchanged from the\n"
    f"boutiques {version} wheel on PyPI (https://github.com/boutiques/boutiques). Its license:\n\n{license_text}"
)
PY
echo "vendored Boutiques $version schema into $dest"
