"""Generated Dockerfile and Apptainer definition: offline, hash-locked, non-root, labelled."""

from __future__ import annotations

import json

from dicompose.images.definitions import ImageRecipe, apptainer_definition, dockerfile
from dicompose.images.wheelhouse import download_argv, runtime_lock

RECIPE = ImageRecipe(
    tool="normalize",
    tool_version="0.1.0",
    description="Remap intensities",
    descriptor_digest="sha256:" + "cd" * 32,
    dicompose_version="0.1.0",
    lock_sha256="ef" * 32,
    base_image="sha256:" + "01" * 32,
)


def test_dockerfile_is_offline_non_root_exec_form_and_labelled():
    text = dockerfile(RECIPE)
    lines = text.splitlines()
    assert [line for line in lines if line.startswith("FROM ")] == [
        f"FROM {RECIPE.base_image} AS install",
        f"FROM {RECIPE.base_image}",
    ]
    assert "--no-index" in text and "--require-hashes" in text and "--find-links /wheels" in text
    user = [line for line in lines if line.startswith("USER ")]
    assert user == ["USER 10001:10001"]
    entrypoint = next(line for line in lines if line.startswith("ENTRYPOINT "))
    assert json.loads(entrypoint.removeprefix("ENTRYPOINT ")) == ["/opt/dicompose/bin/dicompose-entrypoint"]
    assert 'org.dicompose.descriptor.sha256="sha256:' + "cd" * 32 + '"' in text
    assert "maintainer=" in text and 'org.opencontainers.image.version="0.1.0"' in text
    final_stage = text.split(f"FROM {RECIPE.base_image}\n", 1)[1]
    assert "COPY wheels" not in final_stage  # no wheel survives into the runtime image


def test_apptainer_definition_builds_from_debian_with_the_same_wheelhouse():
    text = apptainer_definition(RECIPE)
    assert "Bootstrap: debootstrap" in text and "OSVersion: bookworm" in text
    assert "--require-hashes" in text and "--no-index" in text
    assert '%runscript\n    exec /opt/dicompose/bin/dicompose-entrypoint "$@"' in text
    assert "org.dicompose.descriptor.sha256 sha256:" in text


def test_wheel_download_is_binary_only_and_hash_checked(tmp_path):
    argv = download_argv(runtime_lock(), tmp_path)
    assert "--require-hashes" in argv and "--only-binary=:all:" in argv and "--no-deps" in argv
    assert argv[argv.index("--python-version") + 1] == "3.11"
    assert any(a.startswith("manylinux") for a in argv)
    lock = runtime_lock().read_text()
    assert "pydicom==" in lock and "--hash=sha256:" in lock
