"""Host paths → the neutral paths a container sees (pipeline/path_map.py), and back in messages."""

from __future__ import annotations

import os
from pathlib import Path

from dicompose.engines.hardening import INPUT_ROOT
from dicompose.pipeline.path_map import PathMap


def test_folders_once_single_files_alone_links_by_their_own_name(tmp_path: Path):
    patient = tmp_path / "Doe^John" / "CT"  # a folder name that may identify someone
    patient.mkdir(parents=True)
    files = [str(patient / "a.dcm"), str(patient / "b.dcm")]
    for f in files:
        Path(f).write_bytes(b"x")
    key = tmp_path / "keys" / "site.key"
    key.parent.mkdir()
    key.write_bytes(b"k")
    (key.parent / "other-secret").write_bytes(b"s")
    target = tmp_path / "real.dcm"
    target.write_bytes(b"y")
    os.symlink(target, patient / "link.dcm")
    paths = PathMap([*files, str(patient / "link.dcm")], [str(key)], isolates=True)
    mounts = {m.target: m.source for m in paths.mounts}
    assert mounts[f"{INPUT_ROOT}/0"] == patient  # one mount for the folder of both files
    assert mounts[f"{INPUT_ROOT}/p0/site.key"] == key  # the key alone: its folder's other files stay unseen
    assert mounts[f"{INPUT_ROOT}/l0/link.dcm"] == target  # a link: its target, under the link's name
    assert all(m.read_only for m in paths.mounts)
    assert paths(Path(files[1])) == f"{INPUT_ROOT}/0/b.dcm"
    assert paths(key) == f"{INPUT_ROOT}/p0/site.key"
    assert "Doe" not in " ".join(m.target for m in paths.mounts)  # no patient name inside the container
    message = f"{INPUT_ROOT}/0/b.dcm: damaged; {INPUT_ROOT}/p0/site.key unreadable"
    assert paths.to_host(message) == f"{files[1]}: damaged; {key} unreadable"


def test_without_isolation_paths_are_the_host_s(tmp_path: Path):
    paths = PathMap([str(tmp_path / "a.dcm")], [], isolates=False)
    assert paths(tmp_path / "a.dcm") == str(tmp_path / "a.dcm")
    assert paths.to_host("nothing to map") == "nothing to map"
