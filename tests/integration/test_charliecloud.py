"""Charliecloud images (engines/charliecloud.py, ``dicompose export-charliecloud``) on real Charliecloud 0.31
and the real pinned normalize image (CI: DICOMPOSE_REQUIRE=…,charliecloud; ``scripts/charliecloud.sh``)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from dicompose.engines.charliecloud import MANIFEST, verify_image
from dicompose.tools.samples import sample_data_folder
from tests.support.cli import BIN
from tests.support.components import need


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    need("charliecloud", bool(shutil.which("ch-convert") and shutil.which("ch-run")), "ch-convert/ch-run not on PATH")
    need("docker", shutil.which("docker") is not None, "no docker client")
    images = tmp_path_factory.mktemp("images")
    argv = [str(BIN / "dicompose"), "export-charliecloud", "normalize", "--out", str(images), "--json"]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0 and "no pinned image" in proc.stderr:
        need("docker", False, "the normalize image is not built here (dicompose build normalize)")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["exported"] is True and Path(doc["folder"]).parent == images
    return Path(doc["folder"])


def test_an_export_is_named_by_digest_complete_read_only_and_reused(exported: Path):
    assert exported.name.startswith("sha256-")
    assert (exported / MANIFEST).is_file() and verify_image(exported) == []
    for point in ("dicompose/out", "dicompose/in", "dicompose/tasks"):
        assert (exported / point).is_dir(), point  # ch-run binds only onto folders the image has
    assert not [p for p in exported.rglob("*") if not p.is_symlink() and not p.stat().st_mode & 0o004]  # all read
    assert not stat.S_IMODE((exported / "dicompose").stat().st_mode) & 0o222
    argv = [str(BIN / "dicompose"), "export-charliecloud", "normalize", "--out", str(exported.parent), "--json"]
    again = json.loads(subprocess.run(argv, capture_output=True, text=True, check=True).stdout)
    assert again["exported"] is False and again["folder"] == str(exported)  # verified and reused


def test_the_exported_image_runs_the_tool_and_gives_the_host_s_bytes(exported: Path, tmp_path: Path):
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    source = next(sample_data_folder().rglob("*.dcm"))
    shutil.copy(source, tmp_path / "in" / source.name)
    argv = ["ch-run", "--unset-env=*", "--set-env", "-b", f"{tmp_path / 'in'}:/dicompose/in"]
    argv += ["-b", f"{tmp_path / 'out'}:/dicompose/out", "-c", "/dicompose/out", str(exported), "--"]
    argv += ["dicompose", "normalize", "/dicompose/in", "--out", "/dicompose/out", "--min", "0", "--max", "100"]
    proc = subprocess.run(
        argv, capture_output=True, text=True, env={**os.environ, "USER": os.environ.get("USER", "root")}
    )
    assert proc.returncode == 0, proc.stderr
    host = subprocess.run(
        [
            str(BIN / "dicompose"),
            "normalize",
            str(tmp_path / "in"),
            "--out",
            str(tmp_path / "host"),
            "--min",
            "0",
            "--max",
            "100",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "DICOMPOSE_HOME": str(tmp_path / "home")},
    )
    assert host.returncode == 0, host.stderr
    (made,) = (tmp_path / "out").glob("*.dcm")
    assert made.read_bytes() == (tmp_path / "host" / made.name).read_bytes()  # same results everywhere


def test_an_edited_image_is_named_and_not_reused(exported: Path, tmp_path: Path):
    copy = tmp_path / exported.name
    shutil.copytree(exported, copy, symlinks=True)
    target = copy / "etc" / "hostname"
    if not target.exists():
        target = next(p for p in (copy / "etc").iterdir() if p.is_file() and not p.is_symlink())
    mode = target.stat().st_mode
    target.chmod(0o644)
    target.write_text(target.read_text() + "tampered\n")
    target.chmod(mode & 0o7777)  # its mode as exported: only the content differs
    problems = verify_image(copy)
    assert problems == [f"{target.relative_to(copy).as_posix()}: changed since export"]
    argv = [str(BIN / "dicompose"), "export-charliecloud", "normalize", "--out", str(tmp_path)]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert proc.returncode == 2 and "differs from its export" in proc.stderr and "Traceback" not in proc.stderr
