"""The one rule for symbolic links in input folders (dicompose.walk), on a real tree of links."""

from __future__ import annotations

import os
from pathlib import Path

from dicompose.walk import Found, Ignored, walk


def tree(tmp_path: Path) -> Path:
    """in/a/x.dcm, in/b/y.dcm, a hidden store, and every kind of link: inside, outside, dangling, looping."""
    root, outside = tmp_path / "in", tmp_path / "outside"
    for folder in (root / "a", root / "b", root / ".store", outside):
        folder.mkdir(parents=True)
    for path in (root / "a" / "x.dcm", root / "b" / "y.dcm", root / ".store" / "z.dcm", outside / "secret.dcm"):
        path.write_bytes(path.name.encode())
    os.symlink("../b/y.dcm", root / "a" / "again.dcm")  # a file also found directly: read once
    os.symlink("../.store/z.dcm", root / "a" / "stored.dcm")  # under the input, hidden: followed
    os.symlink(outside / "secret.dcm", root / "a" / "secret.dcm")  # outside: reported, not read
    os.symlink("/etc/shadow", root / "a" / "shadow.dcm")
    os.symlink(outside, root / "b" / "elsewhere")  # a folder outside
    os.symlink("../b", root / "a" / "b-again")  # a folder also walked directly
    os.symlink("..", root / "b" / "up")  # a loop to an ancestor
    os.symlink(root / "nowhere", root / "b" / "dangling.dcm")
    os.mkfifo(root / "b" / "pipe")
    return root


def test_links_under_the_inputs_are_followed_and_every_other_is_reported(tmp_path: Path):
    root = tree(tmp_path)
    items = list(walk(root, [root]))
    found = {Path(f.path).relative_to(root).as_posix(): f.target for f in items if isinstance(f, Found)}
    assert found == {
        "a/x.dcm": str(root / "a" / "x.dcm"),
        "b/y.dcm": str(root / "b" / "y.dcm"),
        "a/stored.dcm": os.path.realpath(root / ".store" / "z.dcm"),
    }
    ignored = {Path(i.path).relative_to(root).as_posix(): i.reason for i in items if isinstance(i, Ignored)}
    assert set(ignored) == {"a/secret.dcm", "a/shadow.dcm", "b/elsewhere", "b/dangling.dcm", "b/pipe"}
    assert all("outside the inputs" in ignored[k] for k in ("a/secret.dcm", "a/shadow.dcm", "b/elsewhere"))
    assert "dangling" in ignored["b/dangling.dcm"] and "not a regular file" in ignored["b/pipe"]
    assert [i.path for i in items] == sorted(i.path for i in items)  # a stable order


def test_the_explicit_option_follows_links_to_anywhere(tmp_path: Path):
    root = tree(tmp_path)
    items = list(walk(root, [root], allow_outside=True))
    found = {Path(f.path).relative_to(root).as_posix() for f in items if isinstance(f, Found)}
    assert "b/elsewhere/secret.dcm" in found and "a/secret.dcm" not in found  # one file, read once
    assert not any(isinstance(i, Ignored) and "outside" in i.reason for i in items)


def test_a_link_into_another_named_input_is_followed(tmp_path: Path):
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    (second / "s.dcm").write_bytes(b"s")
    os.symlink(second / "s.dcm", first / "s.dcm")
    assert [type(i).__name__ for i in walk(first, [first])] == ["Ignored"]
    assert [i.target for i in walk(first, [first, second])] == [os.path.realpath(second / "s.dcm")]
